"""The recipe's identity and its metadata (``workload.yaml``): one definition of each name the recipe goes by."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

WORKLOAD_KEY = "inference_deepseek-r1"
MODEL_NAME = "DeepSeek-R1"


@lru_cache(maxsize=1)
def metadata_text() -> str:
    """workload.yaml as shipped in the package (archives carry it verbatim)."""
    from importlib.resources import files

    return files(__package__).joinpath("workload.yaml").read_text()


def load_metadata() -> dict[str, Any]:
    """workload.yaml, read from the installed package (so a wheel works, not only a checkout); a fresh copy."""
    from llmb_plugin_deepseek_r1.yaml_io import safe_load

    return safe_load(metadata_text())
