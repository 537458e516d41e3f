"""Every trtllm-bench report generation (0.12 to 1.3, `throughput` and `latency`) and every failure signature.

The fixtures in tests/fixtures/reports are written by hand from the formats TensorRT-LLM's bench code prints at
each release (run.py 0.12, reporting.py 0.16-1.3, low_latency.py) and from outputs published in its docs and issues.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmb_plugin_deepseek_r1.report import OOM_REMEDY, scan_logs
from llmb_plugin_deepseek_r1.report.failure import SIGNATURES, classify_failure, match_line
from llmb_plugin_deepseek_r1.report.generations import GENERATIONS
from llmb_plugin_deepseek_r1.report.json_report import report_from_statistics
from llmb_plugin_deepseek_r1.report.model import FAILURE_CATEGORIES
from llmb_plugin_deepseek_r1.report.text import parse_all_reports, parse_report
from llmb_plugin_deepseek_r1.report.cli import main_parse_log

FIXTURES = Path(__file__).parent / "fixtures" / "reports"
README = Path(__file__).parent.parent / "README.md"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


def printed(text: str, label: str) -> float:
    """The number printed after `label` (expected values come from the fixture text, not from here)."""
    line = next(line for line in text.splitlines() if line.startswith(label))
    return float(line[len(label):].split()[0].rstrip("%"))


GENERATION_FIXTURES = [
    ("statistics_0.12.txt", "0.12", False),
    ("overview_0.16_streaming.txt", "0.16", True),
    ("overview_0.16_nostreaming.txt", "0.16", False),
    ("old_streaming_0.19.txt", "0.19", True),
    ("old_nostreaming_0.19.txt", "0.19", False),
    ("new_streaming.txt", "0.20+", True),
    ("new_nostreaming.txt", "0.20+", False),
    ("machine_details_1.2.txt", "0.20+", True),
    ("latency_0.17.txt", "latency-0.16", True),
    ("latency_mtp_1.0.txt", "0.20+", True),
]


@pytest.mark.parametrize("name, generation, streaming", GENERATION_FIXTURES)
def test_every_generation_is_complete_and_named(name: str, generation: str, streaming: bool,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    rep = parse_report(fixture(name))
    assert rep is not None and rep.complete, rep.missing if rep else None
    assert rep.generation == generation and rep.streaming is streaming
    assert main_parse_log([str(FIXTURES / name)]) == 0
    assert f"generation {generation} (TensorRT-LLM" in capsys.readouterr().out


def test_the_table_covers_every_generation_named_in_fixtures() -> None:
    assert {gen.name for gen in GENERATIONS} == {generation for _n, generation, _s in GENERATION_FIXTURES}


def test_0_12_statistics_block_keeps_metric_definitions() -> None:
    text = fixture("statistics_0.12.txt")
    rep = parse_report(text)
    assert rep.metrics["total_latency_ms"] == pytest.approx(printed(text, "Total Latency (seconds):") * 1000.0)
    assert rep.metrics["total_output_throughput_tok_s"] == printed(text, "Token Throughput (tokens/sec):")
    assert rep.metric_labels["total_latency_ms"] == "STATISTICS: Total Latency (seconds)"
    assert rep.request_details["num_requests"] == 3000 and rep.world["kv_cache_fraction"] == pytest.approx(0.99)
    assert rep.subcommand == "throughput" and rep.engine["backend"] == "tensorrt"


def test_0_16_overview_without_per_user_rows_is_a_finished_run() -> None:
    text = fixture("overview_0.16_streaming.txt")
    rep = parse_report(text)
    assert rep.metrics["total_output_throughput_tok_s"] == printed(text, "Token Throughput (tokens/sec):")
    assert rep.metric_labels["total_output_throughput_tok_s"] == "PERFORMANCE OVERVIEW: Token Throughput (tokens/sec)"
    assert rep.metrics["avg_tpot_ms"] == printed(text, "Average inter-token latency (ms):")
    assert rep.metrics["avg_request_latency_ms"] == printed(text, "Average request latency (ms):")
    assert "per_gpu_output_throughput_tok_s_gpu" not in rep.metrics  # absent, never made up
    assert rep.engine["backend"] == "pytorch" and rep.engine["trtllm_version"] == "0.17.0.post1"  # "= PyTorch backend"


def test_old_latency_report_maps_to_the_same_metrics() -> None:
    text = fixture("latency_0.17.txt")
    rep = parse_report(text)
    assert rep.subcommand == "latency"
    # low_latency.py divides OUTPUT tokens by the wall time for "Total Token Throughput": it is output throughput.
    assert rep.metrics["total_output_throughput_tok_s"] == printed(text, "Total Token Throughput (tokens/sec):")
    assert "total_token_throughput_tok_s" not in rep.metrics
    assert rep.metrics["per_user_output_speed_tok_s_user"] == printed(text, "Generation Token Throughput (tokens/sec):")
    assert rep.metrics["avg_ttft_ms"] == printed(text, "Average time-to-first-token (ms):")
    assert rep.metrics["avg_tpot_ms"] == printed(text, "Average inter-token latency (ms):")
    assert rep.metrics["avg_request_latency_ms"] == printed(text, "Average request latency (ms):")
    # Its "P90" row prints the p50 value (a bug in low_latency.py), kept under its real name.
    assert rep.percentiles["generation_latency_ms"]["p50"] == printed(text, "P90 (ms):")
    assert "p90" not in rep.percentiles["generation_latency_ms"]
    assert rep.decoding_summary() == {"acceptance_length": 1.0}


@pytest.mark.parametrize("name, last_label", [
    ("statistics_0.12.txt", "Total Latency (seconds)"),
    ("overview_0.16_streaming.txt", "Average inter-token latency (ms)"),
    ("latency_0.17.txt", "P99 (ms)"),
])
def test_old_generations_cut_short_are_incomplete(name: str, last_label: str) -> None:
    lines = fixture(name).splitlines(keepends=True)
    cut = next(i for i, line in enumerate(lines) if line.startswith(last_label))
    rep = parse_report("".join(lines[:cut]))
    assert rep is not None and not rep.complete and rep.missing


def test_decoding_statistics_and_report_json_decoding_stats() -> None:
    rep = parse_report(fixture("decoding_stats_mtp.txt"))
    text = fixture("decoding_stats_mtp.txt")
    assert rep.decoding_summary() == {"mode": "MTP", "draft_acceptance_rate": printed(text, "[DAR] AVERAGE:"),
                                      "acceptance_length": printed(text, "[AL] AVERAGE:")}
    pct = {"p50": 0.3, "p90": 0.4, "p95": 0.45, "p99": 0.5, "minimum": 0.1, "maximum": 0.6, "average": 0.31}
    data = {"decoding_stats": {"mode": "MTP", "draft_acceptance_rate_percentiles": pct,
                               "acceptance_length_percentiles": dict(pct, average=1.93)},
            "machine": {"name": "NVIDIA GB200", "memory.total": 184.0, "clocks.mem": 3.99}}
    from_json = report_from_statistics(data)
    assert from_json.decoding_summary() == {"mode": "MTP", "draft_acceptance_rate": 0.31, "acceptance_length": 1.93}
    assert from_json.machine == {"name": "NVIDIA GB200", "memory_gb": 184.0, "mem_clock_ghz": 3.99}
    assert from_json.generation == "0.20+"


def test_last_complete_report_wins_and_says_so(tmp_path: Path) -> None:
    cut = fixture("new_streaming.txt").split("[Latency] P99")[0]
    log = tmp_path / "job.out"
    log.write_text(fixture("statistics_0.12.txt") + fixture("overview_0.16_nostreaming.txt") + cut)
    assert [r.generation for r in parse_all_reports(log.read_text())] == ["0.12", "0.16", "0.20+"]
    scan = scan_logs(log)
    assert scan.report.generation == "0.16" and scan.report.complete
    assert scan.report.selection == "report 2 of 3 in the log (the last complete one)"


# --- failures ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("sig", SIGNATURES, ids=lambda sig: f"{sig.category}-{sig.detail}")
def test_every_signature_matches_its_own_example(sig) -> None:
    found = match_line(sig.example, 7)
    assert found is not None and found.category == sig.category and found.remedy == sig.remedy
    assert found.line == sig.example and found.lineno == 7


@pytest.mark.parametrize("lines, category, detail, rank, node", [
    (["RuntimeError: Executor creation failed with an error which might indicate insufficient GPU memory."],
     "oom", "startup", None, None),
    (["[node07:81234] *** Process received signal ***", "[node07:81234] Signal: Aborted (6)",
      "[node07:81234] [ 3] /usr/lib/x86_64-linux-gnu/libnccl.so.2(+0x5b1f0)[0x7f3a9c5b1f0]",
      "[node07:81234] [ 4] /usr/lib/x86_64-linux-gnu/libnccl.so.2(ncclCommInitRank+0x2e)[0x7f3a9c5c12e]"],
     "nccl", "backtrace", None, "node07"),
    (["[b8e65b677a8f:219487] Signal: Aborted (6)",
      "[b8e65b677a8f:219487] [ 9] /usr/lib/x86_64-linux-gnu/libnccl.so.2(pncclCommInitRank+0x153)[0x7f16d1265513]"],
     "nccl", "backtrace", None, "b8e65b677a8f"),
    (["MPI_ABORT was invoked on rank 3 in communicator MPI_COMM_WORLD", "with errorcode 1."],
     "rank_crash", "mpi abort", 3, None),
    (["[worker:15806] PRTE ERROR: Bad parameter in file base/odls_base_default_fns.c at line 962"],
     "launch_error", "prte/orte", None, "worker"),
    (["There are not enough slots available in the system to satisfy the 8", "slots that were requested"],
     "launch_error", "not enough slots", None, None),
    (["slurmstepd: error: *** JOB 4242 ON gb200-n01 CANCELLED AT 2026-11-30T10:00:01 DUE TO TIME LIMIT ***"],
     "timeout", None, None, "gb200-n01"),
    (["terminate called after throwing an instance of 'tensorrt_llm::common::TllmException'",
      "  what():  [TensorRT-LLM][ERROR] Assertion failed: Failed: MPI error mpiUtils.cpp:211 '6'"],
     "mpi_error", None, None, None),
    (["[05/02/2025-10:00:00] [TRT-LLM] [E] Failed to initialize executor on rank 1: [TensorRT-LLM][ERROR] "
      "Assertion failed: max_num_tokens (64) must be >= max_batch_size (128) (/src/cpp/executor.cpp:92)"],
     "benchmark_error", "max_num_tokens (64) must be >= max_batch_size (128) (/src/cpp/executor.cpp:92)", 1, None),
    (["torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 7.00 GiB."], "oom", "runtime", None, None),
    (["[TRT-LLM] [RANK 2] [E] RuntimeError: CUDA error: an illegal memory access was encountered"],
     "cuda_error", "illegal memory access", 2, None),
    (["[gb200-n02:5512] *** Process received signal ***", "[gb200-n02:5512] Signal: Segmentation fault (11)"],
     "rank_crash", "segmentation fault", None, "gb200-n02"),
    (["srun: error: gb200-n03: task 5: Bus error"], "rank_crash", "bus error", 5, "gb200-n03"),
    (["[rank1]:[E1201 08:00:00.0 ProcessGroupNCCL.cpp:616] [Rank 1] Watchdog caught collective operation timeout: "
      "WorkNCCL(SeqNum=9, OpType=ALLREDUCE) ran for 600000 milliseconds before timing out."],
     "nccl", "watchdog timeout", 1, None),
    (["Error: Invalid value for '--dataset': Path '/w/dataset_chat_128_128.txt' does not exist."],
     "dataset_error", "missing file", None, None),
    (["OSError: Incorrect path_or_model_id: '/w/DeepSeek-R1-FP4'. Please provide either the path to a local folder"],
     "weights_error", "missing file", None, None),
    (["FileNotFoundError: [Errno 2] No such file or directory: '/w/DeepSeek-R1-FP4/model-00001-of-00163.safetensors'"],
     "weights_error", "missing file", None, None),
])
def test_issue_signatures(lines: list[str], category: str, detail: str | None, rank: int | None,
                          node: str | None) -> None:
    failure = classify_failure(["[TRT-LLM] [I] Setting up throughput benchmark."] + lines)
    assert failure is not None
    assert (failure.category, failure.detail, failure.rank, failure.node) == (category, detail, rank, node)
    assert failure.remedy and failure.line in [line.strip() for line in lines]


def test_a_real_shaped_failed_log(capsys: pytest.CaptureFixture[str]) -> None:
    """stdout + stderr of a DeepSeek-R1 run whose rank 2 ran out of memory at startup: NCCL, MPI and Slurm echo it."""
    out, err = FIXTURES / "failed_oom_rank2.out", FIXTURES / "failed_oom_rank2.err"
    scan = scan_logs(out, err)
    assert scan.report is None and scan.failure.category == "oom" and scan.failure.detail == "startup"
    assert scan.failure.rank == 2 and "might indicate insufficient GPU memory" in scan.failure.line
    assert main_parse_log([str(out), str(err)]) == 4  # parsed, but no complete report
    captured = capsys.readouterr()
    assert "failure: oom (startup), rank 2 at line" in captured.out and "KV_CACHE_FRACTION" in captured.out


def test_first_root_cause_not_the_last_echo() -> None:
    log = [
        "[TRT-LLM] [RANK 1] [E] torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB.",
        "[node01:4711] [ 4] /usr/lib/x86_64-linux-gnu/libnccl.so.2(ncclCommInitRank+0x2e)[0x7f3a9c5c12e]",
        "[TRT-LLM] [E] Error during benchmarking: Executor worker returned error",
        "MPI_ABORT was invoked on rank 1 in communicator MPI_COMM_WORLD",
        "slurmstepd: error: *** JOB 42 ON node01 CANCELLED AT 2026-11-30T10:00:01 DUE TO TIME LIMIT ***",
    ]
    failure = classify_failure(log)
    assert (failure.category, failure.lineno, failure.rank, failure.remedy) == ("oom", 1, 1, OOM_REMEDY)
    assert classify_failure(log[1:]).category == "nccl"
    assert classify_failure(log[3:]).category == "rank_crash"
    two_watchdogs = ["[Rank 3] Watchdog caught collective operation timeout: WorkNCCL(SeqNum=1)",
                     "[Rank 0] Watchdog caught collective operation timeout: WorkNCCL(SeqNum=1)"]
    assert classify_failure(two_watchdogs).rank == 3  # the first one


def test_readme_lists_every_generation_and_failure_class() -> None:
    readme = README.read_text()
    section = readme[readme.index("## Supported trtllm-bench outputs"):]
    for gen in GENERATIONS:
        assert f"| {gen.name} |" in section, gen.name
    for category in FAILURE_CATEGORIES:
        assert f"| {category} |" in section, category


def test_parse_log_json_names_generation_and_failure_location(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    err = tmp_path / "job.err"
    err.write_text("srun: error: gb200-n03: task 5: Bus error\n")
    assert main_parse_log([str(FIXTURES / "latency_0.17.txt"), str(err), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["report"]["generation"] == "latency-0.16" and data["report"]["subcommand"] == "latency"
    assert data["failure"]["rank"] == 5 and data["failure"]["node"] == "gb200-n03"
