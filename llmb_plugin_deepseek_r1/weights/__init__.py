"""Weight-integrity checker for the DeepSeek-R1 checkpoint folder (``verify-weights``).

Quick mode reads metadata only (file presence, index, every shard's safetensors header, quantization,
size) and is the first step of every benchmark job; full mode also hashes every file against a manifest.
"""

from __future__ import annotations

from .check import check_weights, preflight
from .cli import main
from .hashing import default_cache_path
from .manifest import MANIFEST_NAME, Manifest, ManifestError, find_manifest, read_manifest_file, write_manifest
from .quant import DTYPE_QUANT_ALGO, validate_dtype
from .report import Problem, WeightReport


__all__ = [
    "DTYPE_QUANT_ALGO",
    "MANIFEST_NAME",
    "Manifest",
    "ManifestError",
    "Problem",
    "WeightReport",
    "check_weights",
    "default_cache_path",
    "find_manifest",
    "main",
    "preflight",
    "read_manifest_file",
    "validate_dtype",
    "write_manifest",
]
