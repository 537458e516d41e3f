"""What each TensorRT-LLM version reads: version parsing, the image-name convention and the YAML generations.

The YAML keys moved between releases (see shared/reference/trtllm-bench.md):
``legacy`` (<= 0.20) nests settings under ``pytorch_backend_config``; ``flat`` (0.21 and 1.0.0rc*) puts them at
the top level; ``nested`` (1.0 GA on) groups them in ``cuda_graph_config``, ``kv_cache_config`` and
``moe_config``.
"""

from __future__ import annotations

import re

from packaging.version import InvalidVersion, Version

from llmb_plugin_deepseek_r1.host.errors import ValidationError

FIRST_FLAT = (0, 21)
FIRST_NESTED = Version("1.0.0")
FIRST_REPORT_JSON = (0, 20)
MTP_LAYERS = 3
STREAM_INTERVAL = 4


def parse_trtllm_version(var: str, text: str) -> Version:
    try:
        return Version(text.strip())
    except InvalidVersion:
        raise ValidationError(f"{var}={text!r} is not valid: expected a TensorRT-LLM version such as 1.0.0rc1 "
                              f"or 1.1.0") from None


def trtllm_version_from_image(image: str) -> Version | None:
    """The version in an image name: `tensorrt-llm+release+1.0.0rc1.sqsh`, `...release:1.1.0rc5` -> Version."""
    base = image.rstrip("/").rsplit("/", 1)[-1]
    base = re.sub(r"\.(sqsh|squashfs)$", "", base)
    tag = re.split(r"[:+]", base)[-1]
    tag = re.sub(r"^(release-|v)", "", tag)
    try:
        return Version(tag)
    except InvalidVersion:
        return None


def yaml_generation(version: str | Version) -> str:
    """'legacy', 'flat' or 'nested': which YAML key layout this TensorRT-LLM version reads."""
    v = Version(str(version))
    if v >= FIRST_NESTED:
        return "nested"
    if v.release[:2] >= FIRST_FLAT:
        return "flat"
    return "legacy"


