"""Turn a finished benchmark into a verdict: parse, validate against what was asked, classify failures.

VALID: a complete report that did what was asked. INVALID: a report, but not of what was asked (reasons listed).
FAILED: no usable report; classified as oom, nccl, launch_error, timeout, dataset_error, weights_error, cancelled,
preflight_error, rank_crash, benchmark_error or unknown.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .benchmark import BenchOutcome
from llmb_plugin_deepseek_r1.planning.spec import RunSpec

LENGTH_TOLERANCE_TOKENS = 0.5
PER_GPU_TOLERANCE = 0.01

METRIC_DEFINITIONS = {
    "output_tok_s_gpu": "output tokens per second per GPU: total output tokens / wall time / (TP x PP) "
                        "(trtllm-bench 'Per GPU Output Throughput')",
    "total_tok_s_gpu": "input + output tokens per second per GPU: 'Total Token Throughput' / (TP x PP) "
                       "(computed by this plugin)",
    "output_tok_s_user": "output tokens per second per user ('Per User Output Speed' with streaming, else "
                         "'Per User Output Throughput')",
}


@dataclass
class Verdict:
    status: str
    reasons: list[str] = field(default_factory=list)
    classification: str | None = None
    remedy: str | None = None
    failure_line: str | None = None
    node: str | None = None  # where it failed, when the log (or the per-node preflight) says
    rank: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "reasons": self.reasons, "classification": self.classification,
                "remedy": self.remedy, "failure_line": self.failure_line, "node": self.node, "rank": self.rank}


def failed(classification: str, reason: str, remedy: str | None = None) -> Verdict:
    return Verdict("FAILED", [reason], classification, remedy)


def validate_report(spec: RunSpec, report: Any) -> list[str]:
    """Reasons the report does not describe what was asked (empty when it does)."""
    reasons = []
    details = report.request_details or {}
    done = details.get("num_requests")
    if done is None:
        reasons.append("the report does not say how many requests completed")
    elif int(done) != spec.num_requests:
        reasons.append(f"completed requests {int(done)} != asked {spec.num_requests}")
    for key, asked, what in (("avg_input_len", spec.isl, "ISL"), ("avg_output_len", spec.osl, "OSL")):
        value = details.get(key)
        if value is None:
            reasons.append(f"the report does not give the average {what}")
        elif abs(float(value) - asked) > LENGTH_TOLERANCE_TOKENS:
            reasons.append(f"average {what} {float(value):g} != asked {asked}")
    metrics = report.metrics
    if spec.streaming and "avg_ttft_ms" not in metrics:
        reasons.append("streaming was asked but the report has no TTFT/TPOT")
    if not spec.streaming and "avg_ttft_ms" in metrics:
        reasons.append("streaming was off but the report has TTFT/TPOT")
    total, per_gpu = metrics.get("total_output_throughput_tok_s"), metrics.get("per_gpu_output_throughput_tok_s_gpu")
    if total is not None and per_gpu is not None and total > 0:
        expected = total / (spec.tp * spec.pp)
        if abs(per_gpu - expected) > PER_GPU_TOLERANCE * expected:
            reasons.append(f"per-GPU output throughput {per_gpu:g} != total {total:g} / {spec.tp * spec.pp} GPUs")
    return reasons


def headline_metrics(spec: RunSpec, report: Any) -> dict[str, float]:
    """The numbers people compare, with names that say what they are (definitions in METRIC_DEFINITIONS)."""
    m = report.metrics
    gpus = spec.tp * spec.pp
    out: dict[str, float] = {}
    if "per_gpu_output_throughput_tok_s_gpu" in m:
        out["output_tok_s_gpu"] = m["per_gpu_output_throughput_tok_s_gpu"]
    elif "total_output_throughput_tok_s" in m:
        out["output_tok_s_gpu"] = m["total_output_throughput_tok_s"] / gpus
    if "total_token_throughput_tok_s" in m:
        out["total_tok_s_gpu"] = m["total_token_throughput_tok_s"] / gpus
    user = m.get("per_user_output_speed_tok_s_user", m.get("per_user_output_throughput_tok_s_user"))
    if user is not None:
        out["output_tok_s_user"] = user
    for key in ("avg_ttft_ms", "avg_tpot_ms", "request_throughput_req_s", "total_output_throughput_tok_s"):
        if key in m:
            out[key] = m[key]
    return out


def judge(spec: RunSpec, outcome: BenchOutcome, scan: Any) -> Verdict:
    """The verdict of one benchmark attempt from its exit, its report and the failure signatures in its logs."""
    failure = scan.failure
    report = scan.report
    if outcome.timed_out:
        return failed("timeout", f"the benchmark ran past its wall-clock limit ({outcome.seconds:.0f} s) and was "
                                 f"killed", "raise SBATCH_TIMELIMIT or lower NUM_REQUESTS")
    if failure is not None and (outcome.returncode != 0 or outcome.killed_after_rank_died
                                or report is None or not report.complete):
        verdict = failed(failure.category, f"{failure.category}: {failure.line.strip()}", failure.remedy)
        verdict.failure_line = failure.line.strip()
        if outcome.killed_after_rank_died:
            verdict.reasons.append("a rank died and the others hung; the process group was killed")
        return verdict
    if outcome.killed_after_rank_died:
        return failed("rank_crash", "a rank died and the others hung; the process group was killed")
    if report is None:
        return failed("unknown", f"no PERFORMANCE OVERVIEW in the output (exit code {outcome.returncode})")
    if not report.complete:
        missing = "; ".join(report.missing) or "rows missing"
        return failed("unknown", f"the report is truncated: {missing}")
    if outcome.returncode not in (0, None):
        return failed("unknown", f"trtllm-bench printed a report but exited with code {outcome.returncode}")
    reasons = validate_report(spec, report)
    if failure is not None:
        reasons.append(f"a failure signature appeared in the logs: {failure.line.strip()}")
    return Verdict("INVALID", reasons) if reasons else Verdict("VALID")


def name_failed_rank(verdict: Verdict, stderr: Path) -> None:
    """Name the node and rank that failed first when srun's lines in the benchmark's stderr say."""
    from llmb_plugin_deepseek_r1.report.failure import failed_rank

    try:
        text = stderr.read_text(errors="replace")
    except OSError:
        return
    found = failed_rank([text])
    if found is None:
        return
    verdict.node, verdict.rank = str(found["node"]), int(found["rank"])  # type: ignore[call-overload]
    verdict.reasons.insert(0, f"rank {found['rank']} on node {found['node']} failed first: {found['how']}")
    if verdict.classification in ("unknown", None):
        verdict.classification = "rank_crash"


def asked_document(spec: RunSpec) -> dict[str, Any]:
    return {
        "use_case": spec.use_case, "isl": spec.isl, "osl": spec.osl, "max_batch_size": spec.max_batch_size,
        "max_num_tokens": spec.max_num_tokens, "kv_cache_free_gpu_mem_fraction": spec.kv_cache_fraction,
        "concurrency": spec.concurrency, "num_requests": spec.num_requests, "tp": spec.tp, "ep": spec.ep,
        "pp": spec.pp, "streaming": spec.streaming, "mode": spec.mode, "attention_dp": spec.attention_dp,
        "model_size": spec.model_size, "dtype": spec.dtype, "scale": spec.scale, "gpu_type": spec.gpu_type,
        "time_limit_min": spec.time_limit_min, "nodes": spec.nodes, "gpus_per_node": spec.ranks_per_node,
        "world_size": spec.world_size,
    }


def measured_document(spec: RunSpec, report: Any | None) -> dict[str, Any] | None:
    if report is None:
        return None
    return {
        "headline": headline_metrics(spec, report),
        "definitions": METRIC_DEFINITIONS,
        "metrics": dict(report.metrics),
        "percentiles": dict(report.percentiles),
        "request_details": dict(report.request_details),
        "world": dict(report.world),
        "engine": dict(report.engine),
        "source": report.source,
        "complete": report.complete,
    }


def summary_line(spec: RunSpec, job_id: str, verdict: Verdict, report: Any | None, result_file: Path) -> str:
    """The one line that goes to the job's own log."""
    head = f"[llmb] {spec.use_case} job {job_id}: {verdict.status}"
    if verdict.classification:
        head += f" ({verdict.classification})"
    if report is not None and verdict.status != "FAILED":
        h = headline_metrics(spec, report)
        if "output_tok_s_gpu" in h:
            head += f", {h['output_tok_s_gpu']:.1f} output tok/s/GPU"
        if "output_tok_s_user" in h:
            head += f", {h['output_tok_s_user']:.1f} tok/s/user"
    if verdict.node:
        head += f" on node {verdict.node}" + (f" rank {verdict.rank}" if verdict.rank is not None else "")
    if verdict.reasons:
        head += f"; {verdict.reasons[0]}"
    return f"{head} -> {result_file}"
