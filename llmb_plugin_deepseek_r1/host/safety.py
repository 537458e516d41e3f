"""Context rules for values that reach a batch script, a mount list or a command line, and the one redaction
rule for everything a record, a listing, an archive or an error message can contain.

Why one module: a value is safe or not for the place it lands (a `#SBATCH` line ends at a newline, a pyxis
mount list splits at `,` and `:`), so every caller asks the same questions here and gets the same one-line
error, raised before anything is written or submitted.
"""

from __future__ import annotations

import json
import re
import shlex
from typing import Any, Iterable, Mapping, Sequence

from .contract import is_secret_name
from .errors import ValidationError

REDACTED = "***"
MIN_SCRUB_LEN = 6  # shorter secret values would blank out ordinary words in logs
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SLURM_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")
# `--env`, `--env=`, and argparse's unambiguous abbreviations of it (`--en`, `--e`).
_ENV_FLAG = re.compile(r"^--e(?:n(?:v)?)?$")
_ENV_WORD = re.compile(r"^(?P<flag>--e(?:n(?:v)?)?=)?(?P<key>[^=]*)=(?P<value>.*)$", re.S)


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


# --- redaction -------------------------------------------------------------------------------------------------


def redact_env(env: Mapping[str, str]) -> dict[str, str]:
    """A copy of ``env`` with values of secret-looking names replaced."""
    return {k: (REDACTED if is_secret_name(k) else v) for k, v in env.items()}


def secret_values(env: Mapping[str, str]) -> list[str]:
    return sorted({v for k, v in env.items() if is_secret_name(k) and v and len(v) >= MIN_SCRUB_LEN},
                  key=len, reverse=True)


def scrub(text: str, env: Mapping[str, str]) -> str:
    """Remove any secret value of ``env`` that leaked into ``text`` (belt and braces for printed output)."""
    for value in secret_values(env):
        text = text.replace(value, REDACTED)
    return text


def scrub_known_secrets(text: str, argv: Sequence[str] = ()) -> str:
    """``text`` without the value of any secret this process was given: its environment's and those of
    ``KEY=VALUE`` words (``--env HF_TOKEN=...``) on its command line and in ``argv``. The last line of defence for
    what a command prints when it fails (an error may quote a value the user pasted into the wrong variable)."""
    import os
    import sys

    given = dict(os.environ)
    for word in [*sys.argv[1:], *argv]:
        match = _ENV_WORD.match(word) if isinstance(word, str) else None
        if match and is_secret_name(match["key"]):
            given[f"{match['key']} {len(given)}"] = match["value"]  # every value, even under a repeated name
    return scrub(text, given)


def redact_argv(argv: Sequence[str]) -> list[str]:
    """A command line with the value of every secret-named ``KEY=VALUE`` word replaced (``--env HF_TOKEN=x``,
    ``--env=HF_TOKEN=x``, ``--slurm-arg``...), so records and listings can show how a job was submitted."""
    out = []
    for word in argv:
        match = _ENV_WORD.match(word)
        if match and is_secret_name(match.group("key")):
            word = f"{match.group('flag') or ''}{match.group('key')}={REDACTED}"
        out.append(word)
    return out


def redact_command_line(text: str) -> str:
    """``redact_argv`` for a command line stored as one shell string (records written before redaction)."""
    try:
        words = shlex.split(text)
    except ValueError:
        return REDACTED if "=" in text else text
    redacted = redact_argv(words)
    return shlex.join(redacted) if redacted != words else text


def redact_record(record: Any) -> Any:
    """A submission record (or any JSON value) with secret-named keys' values and command lines redacted."""
    if isinstance(record, Mapping):
        out = {}
        for key, value in record.items():
            if isinstance(key, str) and is_secret_name(key) and isinstance(value, (str, int, float)):
                out[key] = REDACTED
            elif key == "command_line" and isinstance(value, str):
                out[key] = redact_command_line(value)
            else:
                out[key] = redact_record(value)
        return out
    if isinstance(record, list):
        return [redact_record(item) for item in record]
    if isinstance(record, str):
        match = _ENV_WORD.match(record)
        if match and is_secret_name(match.group("key")) and not record.startswith("/"):
            return f"{match.group('flag') or ''}{match.group('key')}={REDACTED}"
    return record


def redact_json_bytes(data: bytes) -> bytes:
    """A JSON file's bytes with ``redact_record`` applied; other bytes are returned as they are."""
    try:
        document = json.loads(data)
    except (ValueError, RecursionError):
        return data
    redacted = redact_record(document)
    return data if redacted == document else (json.dumps(redacted, indent=2) + "\n").encode()
