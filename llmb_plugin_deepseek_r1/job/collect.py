"""Turn a finished benchmark into a verdict: parse, validate against what was asked, classify failures.

VALID: a complete report that did what was asked. INVALID: a report, but not of what was asked (reasons listed).
FAILED: no usable report; classified as one of report.FAILURE_CATEGORIES (oom, cuda_error, nccl, mpi_error,
dataset_error, weights_error, launch_error, benchmark_error, rank_crash, timeout, cancelled, unknown) or
preflight_error, quoting the line that proves it (with its rank and node when the line names them) and a remedy.
Caveats mark VALID results that need a warning (speculative decoding measured on random tokens).
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


# Failures that are consequences (a hang, a killed rank, a cancelled step): a root cause found in the log explains them.
_ECHOES = frozenset({"rank_crash", "timeout", "cancelled", "unknown"})
RANDOM_TOKENS_CAVEAT = ("speculative decoding (MTP) measured on a synthetic random-token dataset: draft acceptance on "
                        "random tokens is not representative of real prompts, so this speed-up is not either")


@dataclass
class Verdict:
    status: str
    reasons: list[str] = field(default_factory=list)
    classification: str | None = None
    remedy: str | None = None
    failure_line: str | None = None
    failure_lineno: int | None = None
    rank: int | None = None
    node: str | None = None
    caveats: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "reasons": self.reasons, "classification": self.classification,
                "remedy": self.remedy, "failure_line": self.failure_line, "failure_lineno": self.failure_lineno,
                "rank": self.rank, "node": self.node, "caveats": self.caveats}


def failed(classification: str, reason: str, remedy: str | None = None) -> Verdict:
    return Verdict("FAILED", [reason], classification, remedy)


def failed_from(failure: Any) -> Verdict:
    """A FAILED verdict that quotes the line proving it, with its rank, node and remedy."""
    parts = ([f"rank {failure.rank}"] if failure.rank is not None else []) + (
        [f"node {failure.node}"] if failure.node else [])
    where = f" ({', '.join(parts)})" if parts else ""
    kind = f" [{failure.detail}]" if failure.detail else ""
    verdict = failed(failure.category, f"{failure.category}{kind}{where}: {failure.line.strip()}", failure.remedy)
    verdict.failure_line, verdict.failure_lineno = failure.line.strip(), failure.lineno
    verdict.rank, verdict.node = failure.rank, failure.node
    return verdict


def _evidence(verdict: Verdict, scan: Any) -> Verdict:
    """A FAILED verdict without a signature still quotes what the output ended with."""
    last = getattr(scan, "last_line", None)
    if verdict.failure_line is None and last:
        verdict.failure_line = last
        verdict.reasons.append(f"the output ends with: {last}")
    return verdict


def validate_report(spec: RunSpec, report: Any) -> list[str]:
    """Reasons the report does not describe what was asked (empty when it does)."""
    reasons = []
    details = report.request_details or {}
    done = details.get("num_requests")
    if done is None:
        reasons.append("the report does not say how many requests completed")
    elif int(done) != spec.num_requests:
        gap = int(done) - spec.num_requests
        reasons.append(f"completed requests {int(done)} != asked {spec.num_requests} "
                       f"({abs(gap)} {'more' if gap > 0 else 'fewer'})")
    if details.get("avg_output_len") == 0 or report.metrics.get("total_output_throughput_tok_s") == 0:
        reasons.append("the report counts zero output tokens")
    reasons += _world_differences(spec, report.world or {})
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


def _world_differences(spec: RunSpec, world: dict[str, Any]) -> list[str]:
    """The report's parallelism against what was asked; a key the report does not print is not compared."""
    reasons = []
    for key, asked in (("tp", spec.tp), ("ep", spec.ep), ("pp", spec.pp), ("world_size", spec.tp * spec.pp)):
        got = world.get(key)
        if got is not None and int(got) != asked:
            reasons.append(f"the report's {key.upper().replace('_', ' ')} {int(got)} != asked {asked}")
    return reasons


def decoding_document(spec: RunSpec, report: Any, synthetic_dataset: bool) -> dict[str, Any] | None:
    """Draft acceptance of speculative decoding, flagged when measured on random tokens."""
    summary = report.decoding_summary() if hasattr(report, "decoding_summary") else {}
    speculative = bool(summary.get("mode")) or spec.mode == "min_latency" or (
        summary.get("acceptance_length", 1.0) not in (None, 1.0))
    if not speculative:
        return None
    return {**summary, "synthetic_dataset": synthetic_dataset,
            "representative": not synthetic_dataset, **({"note": RANDOM_TOKENS_CAVEAT} if synthetic_dataset else {})}


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


def judge(spec: RunSpec, outcome: BenchOutcome, scan: Any, synthetic_dataset: bool = True) -> Verdict:
    """The verdict of one benchmark attempt from its exit, its report and the failure signatures in its logs.

    The plugin's datasets are synthetic random tokens (dataset/format.py), hence synthetic_dataset=True.
    """
    failure = scan.failure
    report = scan.report
    unusable = report is None or not report.complete
    root = failure if failure is not None and failure.category not in _ECHOES else None
    if outcome.timed_out:
        if root is not None:  # the root cause above the hang wins over the wall clock
            verdict = failed_from(root)
            verdict.reasons.append(f"then it hung until the wall-clock limit ({outcome.seconds:.0f} s) killed it")
            return verdict
        verdict = failed("timeout", f"the benchmark ran past its wall-clock limit ({outcome.seconds:.0f} s) and was "
                                    f"killed", "raise SBATCH_TIMELIMIT or lower NUM_REQUESTS")
        if failure is not None:
            verdict.failure_line, verdict.failure_lineno = failure.line.strip(), failure.lineno
            verdict.rank, verdict.node = failure.rank, failure.node
            verdict.reasons.append(f"{failure.category}: {failure.line.strip()}")
        return _evidence(verdict, scan)
    if failure is not None and (outcome.returncode != 0 or outcome.killed_after_rank_died or unusable):
        verdict = failed_from(failure)
        if outcome.killed_after_rank_died:
            verdict.reasons.append("a rank died and the others hung; the process group was killed")
        return verdict
    if outcome.killed_after_rank_died:
        return _evidence(failed("rank_crash", "a rank died and the others hung; the process group was killed"), scan)
    if report is None:
        return _evidence(failed("unknown", f"no trtllm-bench report in the output (exit code {outcome.returncode})"),
                         scan)
    if not report.complete:
        missing = "; ".join(report.missing) or "rows missing"
        return _evidence(failed("unknown", f"the report is truncated: {missing}"), scan)
    if outcome.returncode not in (0, None):
        return _evidence(failed("unknown", f"trtllm-bench printed a report but exited with code "
                                           f"{outcome.returncode}"), scan)
    reasons = validate_report(spec, report)
    if failure is not None:
        reasons.append(f"a failure signature appeared in the logs: {failure.line.strip()}")
    verdict = Verdict("INVALID", reasons) if reasons else Verdict("VALID")
    decoding = decoding_document(spec, report, synthetic_dataset)
    if decoding is not None and not decoding["representative"]:
        rates = ", ".join(f"{k.replace('_', ' ')} {decoding[k]:g}" for k in ("draft_acceptance_rate",
                                                                             "acceptance_length") if k in decoding)
        verdict.caveats.append(RANDOM_TOKENS_CAVEAT + (f" ({rates})" if rates else ""))
    return verdict


def name_failed_rank(verdict: Verdict, stderr: Path) -> None:
    """Name the node and rank that failed first when srun's lines in the benchmark's stderr say (srun knows which
    task ended on its own; ranks it killed afterwards are consequences and never named)."""
    from llmb_plugin_deepseek_r1.report.failure import SRUN_TASK_FAILED, failed_rank

    try:
        text = stderr.read_text(errors="replace")
    except OSError:
        return
    found = failed_rank([text])
    if found is None:
        if verdict.failure_line and SRUN_TASK_FAILED.search(verdict.failure_line):
            verdict.node = verdict.rank = None  # srun killed that task after the fact: not where it failed
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
        "machine": dict(report.machine),
        "source": report.source,
        "complete": report.complete,
        "generation": report.generation,
        "subcommand": report.subcommand,
        "metric_labels": dict(report.metric_labels),
        "report_selection": report.selection,
        "decoding": decoding_document(spec, report, synthetic_dataset=True),
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
    if verdict.caveats:
        head += f"; caveat: {verdict.caveats[0]}"
    return f"{head} -> {result_file}"
