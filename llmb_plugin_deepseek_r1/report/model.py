"""Result types of the trtllm-bench report parser and failure classifier.

Kept apart from the parsers so that job, results and validation code can import the types (and the stable metric
key names) without pulling in any parsing code.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

# Stable snake_case metric keys, in the order the report prints them (0.20+ order).
METRIC_KEYS: tuple[str, ...] = (
    "request_throughput_req_s",
    "total_output_throughput_tok_s",
    "total_token_throughput_tok_s",
    "total_latency_ms",
    "avg_request_latency_ms",
    "per_user_output_throughput_tok_s_user",
    "per_gpu_output_throughput_tok_s_gpu",
    "avg_ttft_ms",
    "avg_tpot_ms",
    "per_user_output_speed_tok_s_user",
)
# Printed by every label generation (the 0.19-era seed sample lacks Total Token Throughput).
REQUIRED_METRICS: tuple[str, ...] = (
    "request_throughput_req_s",
    "total_output_throughput_tok_s",
    "total_latency_ms",
    "avg_request_latency_ms",
    "per_user_output_throughput_tok_s_user",
    "per_gpu_output_throughput_tok_s_gpu",
)
# Printed only with --streaming; either all three or none.
STREAMING_METRICS: tuple[str, ...] = ("avg_ttft_ms", "avg_tpot_ms", "per_user_output_speed_tok_s_user")
# Percentile keys every printed breakdown block carries (p90 is absent from some older builds).
REQUIRED_PERCENTILES: tuple[str, ...] = ("min", "max", "avg", "p50", "p95", "p99")

# Failure categories, root cause first: when several signatures appear, the earliest in this tuple wins (an OOM
# explains the NCCL abort, the MPI_ABORT, the worker error and the time limit reached by the hang after it).
FAILURE_CATEGORIES: tuple[str, ...] = (
    "oom",
    "host_oom",  # the node's memory, not the GPU's: lowering the KV cache fraction does not help (no OOM retry)
    "cuda_error",
    "nccl",
    "mpi_error",
    "dataset_error",
    "weights_error",
    "launch_error",
    "benchmark_error",
    "rank_crash",
    "timeout",
    "cancelled",
    "unknown",
)

OOM_REMEDY = (
    "GPU out of memory: lower KV_CACHE_FRACTION first (for example 0.85 -> 0.80), then MAX_NUM_TOKENS, "
    "then MAX_BATCH_SIZE, and run again."
)


@dataclass
class ParsedReport:
    """One trtllm-bench report. Absent rows are absent keys, never zeros (TTFT/TPOT without --streaming)."""

    metrics: dict[str, float] = field(default_factory=dict)
    percentiles: dict[str, dict[str, float]] = field(default_factory=dict)
    request_details: dict[str, float] = field(default_factory=dict)
    world: dict[str, Any] = field(default_factory=dict)
    engine: dict[str, str] = field(default_factory=dict)
    machine: dict[str, Any] = field(default_factory=dict)
    dataset: dict[str, Any] = field(default_factory=dict)
    decoding_mode: str | None = None
    decoding: dict[str, float] = field(default_factory=dict)  # scalar decoding figures (old latency report)
    generation: str | None = None  # generations.GENERATIONS name ("0.20+", "0.16", "latency-0.16", ...)
    subcommand: str | None = None  # "throughput", "latency", or "throughput or latency" (0.20+ prints one form)
    label_generation: str | None = None  # "new" (0.20+), "old" (0.19 era), None (other / not decidable / JSON)
    metric_labels: dict[str, str] = field(default_factory=dict)  # metric key -> "SECTION: label" it was read from
    selection: str | None = None  # how this report was chosen when a log held several
    source: str = "text"  # "text" (printed report) or "report_json" (--report_json file)
    complete: bool = False
    missing: list[str] = field(default_factory=list)  # why complete is False, in words

    @property
    def streaming(self) -> bool:
        """True when the report carries the streaming-only rows."""
        return any(key in self.metrics for key in STREAMING_METRICS) or "ttft_ms" in self.percentiles

    def decoding_summary(self) -> dict[str, Any]:
        """Speculative decoding at a glance: mode, average draft acceptance rate and acceptance length."""
        out: dict[str, Any] = {}
        if self.decoding_mode:
            out["mode"] = self.decoding_mode
        for key in ("draft_acceptance_rate", "acceptance_length"):
            value = self.percentiles.get(key, {}).get("avg", self.decoding.get(key))
            if value is not None:
                out[key] = value
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the field names above, plus streaming and decoding_summary)."""
        data = asdict(self)
        data["streaming"] = self.streaming
        data["decoding_summary"] = self.decoding_summary()
        return data


@dataclass(frozen=True)
class Failure:
    """A failure signature found in trtllm-bench output; line is the matching line, lineno 1-based."""

    category: str
    line: str
    lineno: int | None = None
    detail: str | None = None  # e.g. "startup" / "runtime" for oom, the assertion text for benchmark_error
    remedy: str | None = None
    rank: int | None = None  # when the line names it
    node: str | None = None  # when the line names it

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
