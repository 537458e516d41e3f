"""The one redaction rule: which names hold secrets, and how their values are kept out of records, listings,
archives, printed plans and error messages.

A leaf module (the standard library only): :mod:`.errors` scrubs every message a command prints on failure with
it, :mod:`.contract` exports :func:`is_secret_name` to workloads, and :mod:`.safety` re-exports the rest.
"""

from __future__ import annotations

import json
import re
import shlex
from typing import Any, Iterable, Mapping, Sequence

SECRET_WORDS = frozenset({"TOKEN", "SECRET", "PASSWORD", "PASSWD", "PASS", "KEY", "APIKEY", "CREDENTIAL",
                          "CREDENTIALS", "AUTH", "PAT", "COOKIE", "PRIVATE"})
REDACTED = "***"
MIN_SCRUB_LEN = 6  # shorter secret values would blank out ordinary words in logs
# `KEY=VALUE`, `--env=KEY=VALUE` and argparse's unambiguous abbreviations of it (`--en=`, `--e=`).
_ENV_WORD = re.compile(r"^(?P<flag>--e(?:n(?:v)?)?=)?(?P<key>[^=]*)=(?P<value>.*)$", re.S)


def is_secret_name(name: str) -> bool:
    """True for environment variable names that may hold a secret (HF_TOKEN, AWS_SECRET_ACCESS_KEY, NGC_API_KEY).

    Judged by whole words, so that knobs such as MAX_NUM_TOKENS are not mistaken for secrets.
    """
    return any(word in SECRET_WORDS for word in re.split(r"[^A-Za-z0-9]+", name.upper()))


def redact_env(env: Mapping[str, str]) -> dict[str, str]:
    """A copy of ``env`` with values of secret-looking names replaced."""
    return {k: (REDACTED if is_secret_name(k) else v) for k, v in env.items()}


def _secrets_in(pairs: Iterable[tuple[str, str]]) -> list[str]:
    """The values of secret-named pairs worth scrubbing, longest first (so a value inside another goes after it)."""
    return sorted({v for k, v in pairs if is_secret_name(k) and v and len(v) >= MIN_SCRUB_LEN}, key=len, reverse=True)


def secret_values(env: Mapping[str, str]) -> list[str]:
    return _secrets_in(env.items())


def _scrubbed(text: str, values: Iterable[str]) -> str:
    for value in values:
        text = text.replace(value, REDACTED)
    return text


def scrub(text: str, env: Mapping[str, str]) -> str:
    """Remove any secret value of ``env`` that leaked into ``text`` (belt and braces for printed output)."""
    return _scrubbed(text, secret_values(env))


def scrub_known_secrets(text: str, argv: Sequence[str] = ()) -> str:
    """``text`` without the value of any secret this process was given: its environment's and those of
    ``KEY=VALUE`` words (``--env HF_TOKEN=...``) on its command line and in ``argv``. The last line of defence for
    what a command prints when it fails (an error may quote a value the user pasted into the wrong variable)."""
    import os
    import sys

    pairs = list(os.environ.items())
    for word in [*sys.argv[1:], *argv]:
        match = _ENV_WORD.match(word) if isinstance(word, str) else None
        if match:  # every value, even when a name repeats
            pairs.append((match["key"], match["value"]))
    return _scrubbed(text, _secrets_in(pairs))


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
