"""How a GPU count maps onto Slurm nodes (pure): nodes, tasks per node, and the NVLink segment.

Why here: every workload of the host shares the rule llmb-run users know. ``--scale N`` above one node must be a
whole number of nodes of the GPU type (``run.gpus_per_node`` in the recipe metadata): nodes = N / GPUs per node,
one task per GPU. On GB200/GB300 the ranks of one job should share an NVL72 rack (18 trays): like llmb-run
1.10.2, the segment size is the largest divisor of the node count up to 18, unless SBATCH_SEGMENT_SIZE says
otherwise (``0``/``none`` turns it off).
"""

from __future__ import annotations

from typing import Any, Mapping, NamedTuple

from .errors import ValidationError

NVLINK_DOMAIN_NODES = 18
SEGMENT_GPU_TYPES = frozenset({"gb200", "gb300"})
SEGMENT_OFF = frozenset({"0", "none", "off", "no"})
DEFAULT_GPUS_PER_NODE = 4


class NodeLayout(NamedTuple):
    """One job's shape in Slurm's terms (a NamedTuple: cheaper than a dataclass to create at import)."""

    scale: int
    gpus_per_node: int
    nodes: int
    tasks_per_node: int
    segment: int | None

    def to_dict(self) -> dict[str, Any]:
        return self._asdict()


def gpus_per_node(metadata: Mapping[str, Any], gpu_type: str) -> int:
    """GPUs in one node of the GPU type, from ``run.gpus_per_node`` (4 where the recipe does not say)."""
    table = (metadata.get("run") or {}).get("gpus_per_node") or {}
    return int(table.get(gpu_type, DEFAULT_GPUS_PER_NODE))


def segment_size(nodes: int) -> int:
    """The largest divisor of ``nodes`` that fits in one NVLink domain (llmb-run's _compute_segment_size)."""
    for size in range(min(nodes, NVLINK_DOMAIN_NODES), 0, -1):
        if nodes % size == 0:
            return size
    return 1


def _segment(gpu_type: str, nodes: int, override: str | None) -> int | None:
    if override is not None and override.strip() != "":
        text = override.strip().lower()
        if text in SEGMENT_OFF:
            return None
        if not text.isdigit() or int(text) < 1:
            raise ValidationError(f"SBATCH_SEGMENT_SIZE={override!r} is not valid: expected a positive node count "
                                  f"dividing the job's {nodes} node(s), or 0/none for no segment")
        size = int(text)
        if nodes % size:
            raise ValidationError(f"SBATCH_SEGMENT_SIZE={size} does not divide the job's {nodes} node(s): Slurm "
                                  f"builds the allocation from whole segments; use a divisor such as "
                                  f"{segment_size(nodes)}")
        return size
    return segment_size(nodes) if gpu_type in SEGMENT_GPU_TYPES else None


def node_layout(metadata: Mapping[str, Any], gpu_type: str, scale: int, segment_override: str | None = None,
                gpus_per_node_override: int | None = None) -> NodeLayout:
    """The layout of ``scale`` GPUs of ``gpu_type`` (GPUS_PER_NODE may override the type's count);
    ValidationError when it is not a whole number of nodes."""
    per_node = gpus_per_node_override or gpus_per_node(metadata, gpu_type)
    if scale <= 0:
        raise ValidationError(f"scale {scale} must be a positive GPU count")
    if scale <= per_node:
        nodes, tasks = 1, scale
    elif scale % per_node:
        lower, upper = scale // per_node * per_node, (scale // per_node + 1) * per_node
        raise ValidationError(f"scale {scale} is not a whole number of {gpu_type} nodes ({per_node} GPUs each): "
                              f"use a multiple of {per_node}, e.g. {lower} or {upper}")
    else:
        nodes, tasks = scale // per_node, per_node
    return NodeLayout(scale=scale, gpus_per_node=per_node, nodes=nodes, tasks_per_node=tasks,
                      segment=_segment(gpu_type, nodes, segment_override))


def sbatch_supports_segment(version: str | None) -> bool:
    """True when this sbatch knows ``--segment`` (Slurm 23.11 and later; 'slurm 22.05.8' does not)."""
    if not version:
        return False
    parts = version.strip().split()[-1].split(".")
    try:
        major, minor = int(parts[0]), int(parts[1]) if len(parts) > 1 else 0
    except ValueError:
        return False
    return (major, minor) >= (23, 11)
