"""Weight-integrity checker for the DeepSeek-R1 checkpoint folder (``verify-weights``).

Quick mode reads metadata only (file presence, index, every shard's safetensors header, quantization,
size) and is the first step of every benchmark job; full mode also hashes every file against a manifest.
"""

from __future__ import annotations

from .check import check_weights
from .cli import main
from .manifest import write_manifest

__all__ = ["check_weights", "main", "write_manifest"]
