"""Context rules for values that reach a batch script, a mount list or a command line; the one redaction rule for
everything a record, a listing, an archive or an error message can contain lives in :mod:`.redaction` (imported by
the exception wrapper too, so it depends on nothing here) and is re-exported.

Why one module: a value is safe or not for the place it lands (a `#SBATCH` line ends at a newline, a pyxis
mount list splits at `,` and `:`), so every caller asks the same questions here and gets the same one-line
error, raised before anything is written or submitted.
"""

from __future__ import annotations

import re
import shlex
from typing import Iterable, Mapping

from .errors import ValidationError
from .redaction import (  # noqa: F401 - the one redaction rule, re-exported for the callers of this module
    MIN_SCRUB_LEN,
    REDACTED,
    is_secret_name,
    redact_argv,
    redact_command_line,
    redact_env,
    redact_json_bytes,
    redact_record,
    scrub,
    scrub_known_secrets,
    secret_values,
)

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SLURM_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")
# `--env`, `--env=`, and argparse's unambiguous abbreviations of it (`--en`, `--e`).
_ENV_FLAG = re.compile(r"^--e(?:n(?:v)?)?$")


def shown(value: str, secret: bool = False) -> str:
    """How an error shows a value: never a secret's value, control characters escaped, long values cut."""
    if secret:
        return REDACTED
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "...'"


def no_control(what: str, value: str, secret: bool | None = None) -> str:
    """``value`` when it has no control characters (a newline would end a `#SBATCH` line and leave a command).
    ``secret`` (default: judged from ``what``) keeps the value out of the error."""
    match = _CONTROL.search(value)
    if match:
        hide = is_secret_name(what) if secret is None else secret
        raise ValidationError(f"{what}={shown(value, hide)} is not valid: control character "
                              f"{match.group()!r} at position {match.start()}; expected printable text only")
    return value


def mount_path(what: str, value: str) -> str:
    """An absolute path that may go into a container mount list: pyxis splits `a:b:ro,c:d` at ',' and ':'."""
    no_control(what, value)
    if not value.startswith("/"):
        raise ValidationError(f"{what}={shown(value, is_secret_name(what))} is not valid: expected an absolute path")
    bad = sorted({c for c in value if c in ",:"})
    if bad:
        raise ValidationError(f"{what}={shown(value, is_secret_name(what))} is not valid: "
                              f"{' and '.join(map(repr, bad))} would split "
                              f"the container mount list; use a path (or a symlink) without ',' and ':'")
    return value


def slurm_args(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """``--slurm-arg key=value`` pairs for `#SBATCH --key=value` lines: a sbatch option name, printable value."""
    out: dict[str, str] = {}
    for key, value in pairs:
        if not _SLURM_KEY.match(key):
            raise ValidationError(f"--slurm-arg key {shown(key)} is not valid: expected a sbatch option name "
                                  f"such as reservation or qos")
        no_control(f"--slurm-arg {key}", value, secret=is_secret_name(key))
        out[key] = value
    return out


def env_values(env: Mapping[str, str], names: Iterable[str]) -> None:
    """Every named variable that is set must be printable text (a secret's value is never echoed)."""
    for name in names:
        value = env.get(name)
        if value is not None:
            no_control(name, value)


def interpreter(path: str) -> str:
    """The job's Python, quoted for the batch script's command line (a venv path may hold spaces or `$(`)."""
    no_control("the Python interpreter path", path)
    return shlex.quote(path)


def key_value(text: str) -> tuple[str, str]:
    """``KEY=VALUE`` from the command line; the error names the key only (the value may be a secret)."""
    key, sep, value = text.partition("=")
    if not sep or not key or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
        raise ValueError(f"expected KEY=VALUE with KEY made of letters, digits and '_', got key "
                         f"{shown(key[:60])}" + ("" if sep else " without '='"))
    return key, value
