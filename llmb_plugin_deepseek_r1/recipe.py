"""The recipe's identity and its metadata (``workload.yaml``): one definition of each name the recipe goes by.

``workload.yaml`` is the source. Beside it ships ``workload.json``, the same document compiled to JSON with the
length and CRC-32 of the YAML text it came from: parsing 18 KB of YAML takes about 5 ms, a twentieth of a dry
run, JSON a tenth of a millisecond. The JSON is used only while it matches the YAML byte for byte, so an edited
``workload.yaml`` is always what counts. Regenerate it with ``python scripts/compile_workload.py`` (a test fails
while it is stale).
"""

from __future__ import annotations

import binascii
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

WORKLOAD_KEY = "inference_deepseek-r1"
MODEL_NAME = "DeepSeek-R1"
SOURCE_NAME, COMPILED_NAME = "workload.yaml", "workload.json"


def _read(name: str) -> str | None:
    """A file shipped in the package, or None when there is none."""
    path = Path(__file__).with_name(name)
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if Path(__file__).parent.is_dir():
            return None
    from importlib.resources import files  # installed in a zip archive

    resource = files(__package__).joinpath(name)
    return resource.read_text(encoding="utf-8") if resource.is_file() else None


@lru_cache(maxsize=1)
def metadata_text() -> str:
    """workload.yaml as shipped in the package (archives carry it verbatim)."""
    text = _read(SOURCE_NAME)
    if text is None:
        raise FileNotFoundError(f"{SOURCE_NAME} is missing from {Path(__file__).parent}")
    return text


def fingerprint(text: str) -> str:
    """``<bytes>:<crc32>`` of a text: what the compiled JSON records of the YAML it was made from."""
    data = text.encode("utf-8")
    return f"{len(data)}:{binascii.crc32(data):08x}"


@lru_cache(maxsize=1)
def _compiled_text() -> str | None:
    return _read(COMPILED_NAME)


def _compiled(text: str) -> dict[str, Any] | None:
    """The metadata from workload.json when it was compiled from exactly ``text``; else None."""
    compiled = _compiled_text()
    if compiled is None:
        return None
    try:
        document = json.loads(compiled)
    except ValueError:
        return None
    if not isinstance(document, dict) or document.get("source") != fingerprint(text):
        return None
    metadata = document.get("metadata")
    return metadata if isinstance(metadata, dict) else None


def load_metadata() -> dict[str, Any]:
    """workload.yaml, read from the installed package (so a wheel works, not only a checkout); a fresh copy."""
    text = metadata_text()
    compiled = _compiled(text)
    if compiled is not None:
        return compiled
    from llmb_plugin_deepseek_r1.yaml_io import safe_load

    return safe_load(text)


def compile_metadata(text: str) -> str:
    """workload.json's content for this workload.yaml text; ValueError if JSON cannot hold the document exactly
    (a non-string key, a date): then no JSON is shipped and the YAML is parsed."""
    from llmb_plugin_deepseek_r1.yaml_io import safe_load

    metadata = safe_load(text)
    try:
        exact = json.loads(json.dumps(metadata)) == metadata
    except TypeError:  # a date, a set: no JSON form at all
        exact = False
    if not exact:
        raise ValueError(f"{SOURCE_NAME} holds values JSON cannot represent exactly; keep it to strings, numbers, "
                         "booleans, lists and mappings with string keys")
    return json.dumps({"source": fingerprint(text), "metadata": metadata}, indent=1, sort_keys=True) + "\n"


def write_compiled() -> Path:
    """Write workload.json beside workload.yaml, atomically (the project's one writer); returns its path."""
    from llmb_plugin_deepseek_r1.host.records import write_text_atomic

    source = Path(__file__).with_name(SOURCE_NAME).read_text(encoding="utf-8")
    return write_text_atomic(Path(__file__).with_name(COMPILED_NAME), compile_metadata(source))
