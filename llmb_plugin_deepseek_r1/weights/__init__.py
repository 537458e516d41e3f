"""Weight-integrity checker for the DeepSeek-R1 checkpoint folder (``verify-weights``).

Quick mode reads metadata only (file presence, index, every shard's safetensors header, quantization,
size) and is the first step of every benchmark job; full mode also hashes every file against a manifest.
"""

from __future__ import annotations

from typing import Any

from .check import check_weights
from .cli import main

__all__ = ["check_weights", "main", "write_manifest"]


def __getattr__(name: str) -> Any:
    """``write_manifest`` on first use: quick mode (every job's first step, and `verify-weights` by default)
    does not pay for the manifest module's imports."""
    if name == "write_manifest":
        from .manifest import write_manifest

        return write_manifest
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
