"""Weight-integrity checker for the DeepSeek-R1 checkpoint folder (``verify-weights``).

Quick mode reads metadata only (file presence, index, every shard's safetensors header, quantization,
size) and is the first step of every benchmark job; full mode also hashes every file against a manifest.
"""

from __future__ import annotations

from typing import Any

from .check import check_weights, preflight
from .cli import main
from .quant import DTYPE_QUANT_ALGO, validate_dtype
from .report import Problem, WeightReport

main_verify_weights = main

#: Names of full mode's modules, imported on first use: quick mode (every job's first step, and
#: `verify-weights` by default) does not pay for hashing's and the manifest's imports.
_LAZY = {"default_cache_path": "hashing", "MANIFEST_NAME": "manifest", "Manifest": "manifest",
         "ManifestError": "manifest", "find_manifest": "manifest", "read_manifest_file": "manifest",
         "write_manifest": "manifest"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

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
    "main_verify_weights",
    "preflight",
    "read_manifest_file",
    "validate_dtype",
    "write_manifest",
]
