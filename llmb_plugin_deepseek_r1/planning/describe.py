"""What a use case runs with, described for people and records: profile, checkpoint, CUDA graphs, time limit
and the source of every value (the dry run prints it; the result file's provenance keeps it)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .trtllm import cuda_graph_plan

if TYPE_CHECKING:
    from .spec import RunSpec


def profile_document(spec: RunSpec) -> dict[str, Any]:
    """Which profile, checkpoint, CUDA graphs and time limit a use case runs with, and where every value came
    from (the dry run prints it; the result file's provenance records it)."""
    return {
        "attention_dp": spec.attention_dp,
        "enable_chunked_prefill": spec.enable_chunked_prefill,
        "profile": {"name": spec.profile, "gpu_table": spec.gpu_table, "notes": list(spec.notes)},
        "checkpoint": {"repo_id": spec.checkpoint_repo, "revision": spec.checkpoint_revision,
                       "model_dir": str(spec.model_dir)},
        "cuda_graphs": cuda_graph_plan(spec),
        "time_limit": {"minutes": spec.time_limit_min, "basis": spec.time_limit_basis},
        "sources": dict(spec.sources),
    }
