"""Request validation against a workload's recipe metadata, in the order llmb-run users know:
GPU type, model size, dtype, scale (listed scales, then a whole number of nodes)."""

from __future__ import annotations

from typing import Any, Mapping

from .errors import ValidationError
from .layout import node_layout

MAX_REPEATS = 100  # `-r N`: each repeat is a job; beyond this a typo would flood the queue
MAX_JOBS = 1000  # jobs one invocation may submit (use cases x sweep points x repeats)


def _model_configs(metadata: Mapping[str, Any], key: str, gpu_type: str) -> list[Mapping[str, Any]]:
    gpu_configs = (metadata.get("run") or {}).get("gpu_configs") or {}
    if gpu_type not in gpu_configs:
        supported = ", ".join(sorted(gpu_configs)) or "none"
        raise ValidationError(f"GPU type {gpu_type!r} is not supported by {key}; supported GPU types: {supported}")
    return list(gpu_configs[gpu_type].get("model_configs") or [])


def validate_request(metadata: Mapping[str, Any], key: str, gpu_type: str, model_size: str, dtype: str,
                     scale: int, *, force: bool = False) -> None:
    """Raise ValidationError (one line naming the bad value and what is accepted) or return None.

    ``force`` (llmb-run's --force) still needs a known GPU type and model size, but skips the dtype and scale.
    """
    configs = _model_configs(metadata, key, gpu_type)
    sizes = list(dict.fromkeys(str(c.get("model_size")) for c in configs))
    matching = [c for c in configs if str(c.get("model_size")).lower() == model_size.lower()]
    if not matching:
        raise ValidationError(
            f"model size {model_size!r} is not available for {key} on {gpu_type}; available: {', '.join(sizes)}")
    config = matching[0]
    if force:
        if scale <= 0:
            raise ValidationError(f"scale {scale} must be a positive GPU count")
        return
    # Several entries of one model size may list different scales per dtype (e.g. fp8 at 16 only).
    dtypes = list(dict.fromkeys(str(d) for c in matching for d in c.get("dtypes") or []))
    with_dtype = [c for c in matching if dtype.lower() in [str(d).lower() for d in c.get("dtypes") or []]]
    if not with_dtype:
        raise ValidationError(
            f"dtype {dtype!r} is not available for {key} {model_size} on {gpu_type}; available: {', '.join(dtypes)}")
    config = with_dtype[0]
    scales = sorted(int(s) for s in config.get("scales") or [])
    if scale <= 0:
        raise ValidationError(f"scale {scale} must be a positive GPU count; available: {scales}")
    if config.get("exact_scales", False):
        if scale not in scales:
            raise ValidationError(
                f"scale {scale} is not available for {key} {model_size} {dtype} on {gpu_type}; "
                f"exact scales only: {', '.join(map(str, scales))}")
    elif scales and scale < scales[0]:
        raise ValidationError(
            f"scale {scale} is below the minimum {scales[0]} for {key} {model_size} {dtype} on {gpu_type}")
    node_layout(metadata, gpu_type, scale)  # above one node: a whole number of nodes
