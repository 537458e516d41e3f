"""Report parser, --report_json reader, failure classifier and `parse-log`, on report texts written from the
reference (tests/fixtures/reports) and on small texts built here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from llmb_plugin_deepseek_r1.report import METRIC_KEYS, OOM_REMEDY, parse_report_json, scan_logs
from llmb_plugin_deepseek_r1.report.failure import classify_failure
from llmb_plugin_deepseek_r1.report.json_report import report_from_statistics
from llmb_plugin_deepseek_r1.report.text import parse_all_reports, parse_report, parse_report_file
from llmb_plugin_deepseek_r1.report.cli import main_parse_log

FIXTURES = Path(__file__).parent / "fixtures" / "reports"
STREAMING_KEYS = ("avg_ttft_ms", "avg_tpot_ms", "per_user_output_speed_tok_s_user")


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


def printed_value(text: str, label: str) -> float:
    """The number printed after `label` in a fixture (the expected value comes from the text, not from here)."""
    line = next(line for line in text.splitlines() if line.startswith(label))
    return float(line[len(label):].split()[0].rstrip("%"))


# --- the printed report ---------------------------------------------------------------------------------------

def test_new_labels_streaming_full_report() -> None:
    text = fixture("new_streaming.txt")
    rep = parse_report(text)
    assert rep is not None and rep.complete and rep.missing == []
    assert rep.label_generation == "new" and rep.streaming and rep.source == "text"
    assert list(rep.metrics) == list(METRIC_KEYS)
    assert rep.metrics["per_gpu_output_throughput_tok_s_gpu"] == printed_value(
        text, "Per GPU Output Throughput (tps/gpu):")
    assert rep.metrics["per_user_output_throughput_tok_s_user"] == printed_value(
        text, "Per User Output Throughput [w/ ctx] (tps/user):")
    assert rep.metrics["avg_ttft_ms"] == printed_value(text, "Average time-to-first-token [TTFT] (ms):")
    assert rep.metrics["per_user_output_speed_tok_s_user"] == printed_value(text, "Per User Output Speed (tps/user):")
    assert rep.percentiles["ttft_ms"]["p99"] == printed_value(text, "[TTFT] P99    :")
    assert rep.percentiles["tpot_ms"]["min"] == printed_value(text, "[TPOT] MINIMUM:")
    assert rep.percentiles["gtps_tok_s_user"]["avg"] == printed_value(text, "[GTPS] AVERAGE:")
    assert rep.percentiles["latency_ms"]["p50"] == printed_value(text, "[Latency] P50    :")
    assert set(rep.percentiles["latency_ms"]) == {"min", "max", "avg", "p50", "p90", "p95", "p99"}
    assert rep.request_details == {
        "num_requests": 7680,
        "num_concurrent_requests": printed_value(text, "Number of concurrent requests:"),
        "avg_input_len": 1000.0,
        "avg_output_len": 1000.0,
    }
    assert isinstance(rep.request_details["num_requests"], int)
    assert rep.world == {"tp": 4, "pp": 1, "ep": 4, "max_batch_size": 384, "max_num_tokens": 6000,
                         "scheduling_policy": "GUARANTEED_NO_EVICT", "kv_cache_fraction": pytest.approx(0.85)}
    assert rep.engine == {"backend": "pytorch", "model": "DeepSeek-R1",
                          "model_path": "/lustre/llmb/workloads/inference_deepseek-r1/DeepSeek-R1-FP4",
                          "trtllm_version": "1.0.0rc1", "dtype": "bfloat16", "kv_cache_dtype": "FP8",
                          "quantization": "NVFP4"}
    assert rep.dataset["num_sequences"] == 7680
    assert rep.dataset["isl"]["avg"] == 1000.0 and rep.dataset["seq_len"]["p99"] == 2000.0
    assert rep.machine == {} and rep.decoding_mode is None


def test_new_labels_without_streaming_has_no_ttft_keys() -> None:
    rep = parse_report(fixture("new_nostreaming.txt"))
    assert rep is not None and rep.complete and not rep.streaming
    for key in STREAMING_KEYS:
        assert key not in rep.metrics
    assert set(rep.percentiles) == {"latency_ms"}
    assert rep.metrics["total_token_throughput_tok_s"] == 12800.0


@pytest.mark.parametrize("name, streaming", [("old_streaming_0.19.txt", True), ("old_nostreaming_0.19.txt", False)])
def test_old_labels(name: str, streaming: bool) -> None:
    text = fixture(name)
    rep = parse_report(text)
    assert rep is not None and rep.complete, rep.missing if rep else None
    assert rep.label_generation == "old" and rep.streaming is streaming
    assert rep.metrics["per_user_output_throughput_tok_s_user"] == printed_value(
        text, "Per User Output Throughput (tokens/sec/user):")
    assert rep.metrics["per_gpu_output_throughput_tok_s_gpu"] == printed_value(
        text, "Per GPU Output Throughput (tokens/sec/gpu):")
    assert "ep" not in rep.world  # printed as "EP Size: None"
    assert rep.world["kv_cache_fraction"] == pytest.approx(0.90)
    assert rep.engine["trtllm_version"] == "0.19.0"
    if streaming:
        assert rep.metrics["per_user_output_speed_tok_s_user"] == printed_value(
            text, "Per User Output Speed [1/TPOT] (tokens/sec/user):")
        assert set(rep.percentiles) == {"tpot_ms", "ttft_ms", "latency_ms"}
    else:
        assert not any(key in rep.metrics for key in STREAMING_KEYS)


def test_seed_old_sample_with_trailing_spaces() -> None:
    """The recipe's own sample: only an overview, old labels, no Total Token Throughput row, padded lines."""
    rep = parse_report(fixture("seed_old_sample.txt"))
    assert rep is not None and rep.complete and rep.label_generation == "old"
    assert rep.metrics == {
        "request_throughput_req_s": 0.1222,
        "total_output_throughput_tok_s": 250.0612,
        "per_user_output_throughput_tok_s_user": 71.5615,
        "per_gpu_output_throughput_tok_s_gpu": 31.2576,
        "total_latency_ms": 81839.9807,
        "avg_request_latency_ms": 45318.9080,
    }


def test_truncated_overview_is_incomplete() -> None:
    rep = parse_report(fixture("truncated_overview.txt"))
    assert rep is not None and not rep.complete
    assert "Average time-per-output-token row" in rep.missing
    assert rep.metrics["avg_ttft_ms"] == 1502.331  # what was printed before the cut is kept


def test_every_cut_inside_the_overview_is_incomplete() -> None:
    lines = fixture("new_streaming.txt").splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if "= PERFORMANCE OVERVIEW" in line)
    last_row = max(i for i, line in enumerate(lines) if line.startswith("[Latency]"))
    for cut in range(start - 2, last_row + 1):
        rep = parse_report("".join(lines[:cut]))
        assert rep is not None and not rep.complete, f"cut before line {cut + 1}: {lines[cut]!r}"
    assert parse_report("".join(lines[: last_row + 1])).complete


def test_decoding_statistics_block() -> None:
    text = fixture("decoding_stats_mtp.txt")
    rep = parse_report(text)
    assert rep is not None and rep.complete and rep.decoding_mode == "MTP"
    assert rep.percentiles["draft_acceptance_rate"]["avg"] == printed_value(text, "[DAR] AVERAGE:")
    assert rep.percentiles["acceptance_length"]["p99"] == printed_value(text, "[AL] P99    :")
    assert rep.percentiles["accepted_draft_tokens"]["max"] == printed_value(text, "[ADT] MAXIMUM:")
    assert rep.dataset["num_sequences"] == 7680  # the block after DECODING STATISTICS still lands


def test_machine_details_and_new_version_spelling() -> None:
    rep = parse_report(fixture("machine_details_1.2.txt"))
    assert rep is not None and rep.complete
    assert rep.engine["trtllm_version"] == "1.2.0rc2"  # "TensorRT LLM Version:"
    assert rep.machine == {"description": "NVIDIA GB200, memory 184.00 GB, 3.99 GHz", "name": "NVIDIA GB200",
                           "memory_gb": 184.0, "mem_clock_ghz": 3.99}
    assert rep.request_details["num_requests"] == 7680


def test_log_prefix_on_any_report_line_and_crlf() -> None:
    text = fixture("new_nostreaming.txt").replace("\n= PERFORMANCE OVERVIEW \n",
                                                  "\n[08/14/2025-09:12:44] [TRT-LLM] [I] = PERFORMANCE OVERVIEW \n")
    rep = parse_report(text.replace("\n", "\r\n"))
    assert rep is not None and rep.complete and rep.metrics["request_throughput_req_s"] == 6.4


def test_several_reports_in_one_log() -> None:
    first, second = fixture("old_nostreaming_0.19.txt"), fixture("new_streaming.txt")
    reports = parse_all_reports(first + second)
    assert [r.label_generation for r in reports] == ["old", "new"]
    assert all(r.complete for r in reports)
    assert reports[0].dataset["num_sequences"] == 5000  # the second run's pre-run block did not overwrite it
    assert parse_report(first + second).engine["trtllm_version"] == "1.0.0rc1"
    # A report without a backend header starts anew when its sections repeat.
    overview_only = fixture("seed_old_sample.txt")
    assert len(parse_all_reports(overview_only + "\n" + overview_only)) == 2


def test_no_report() -> None:
    assert parse_report("") is None
    assert parse_report("[TRT-LLM] [I] Preparing to run throughput benchmark...\nTotal Latency (ms):  5.0\n") is None
    pre_run_only = fixture("new_streaming.txt").split("Benchmark done.")[0]
    assert parse_report(pre_run_only) is None


def test_parse_report_file_streams_a_large_log(tmp_path: Path) -> None:
    noise = "".join(f"[TRT-LLM] [RANK 0] [I] iter = {i}, states = {{'num_ctx_requests': 0}}\n" for i in range(50000))
    log = tmp_path / "job.out"
    log.write_text(noise + fixture("new_streaming.txt") + noise)
    rep = parse_report_file(log)
    assert rep is not None and rep.complete and rep.metrics["total_latency_ms"] == 1200000.0


# --- --report_json ------------------------------------------------------------------------------------------

def statistics_json(streaming: bool) -> dict:
    """A --report_json document with the key names of TensorRT-LLM's ReportUtility.get_statistics_dict."""
    pct = {"p50": 10.0, "p90": 11.0, "p95": 12.0, "p99": 13.0, "minimum": 9.0, "maximum": 14.0, "average": 10.5}
    data = {
        "engine": {"model": "DeepSeek-R1", "model_path": "/w/DeepSeek-R1-FP4", "engine_dir": "None",
                   "version": "1.0.0rc1", "backend": "Pytorch", "dtype": "bfloat16", "kv_cache_dtype": "FP8",
                   "quantization": "NVFP4"},
        "machine": None,
        "world_info": {"tp_size": 4, "pp_size": 1, "ep_size": 4, "world_size": 4, "max_batch_size": 384,
                       "max_num_tokens": 6000, "scheduling_policy": "GUARANTEED_NO_EVICT",
                       "kv_cache_percentage": 0.85, "issue_rate": 1e13},
        "request_info": {"num_requests": 7680, "avg_num_concurrent_requests": 383.9, "avg_input_length": 1000.0,
                         "avg_output_length": 1000.0},
        "performance": {"total_latency_ms": 1200000.0, "avg_request_latency_ms": 60000.0,
                        "request_throughput_req_s": 6.4, "system_output_throughput_tok_s": 6400.0,
                        "system_total_throughput_tok_s": 12800.0, "output_throughput_per_user_tok_s": 16.6,
                        "output_throughput_per_gpu_tok_s": 1600.0, "request_latency_percentiles_ms": pct},
        "dataset": {"isl_stats": pct, "osl_stats": pct, "seq_len_stats": pct, "num_requests": 7680,
                    "dataset_path": "/d.txt", "max_isl": 1000, "max_osl": 1000, "avg_isl": 1000, "avg_osl": 1000},
    }
    if streaming:
        data["streaming_metrics"] = {"token_output_speed_tok_s": 17.0, "avg_ttft_ms": 1500.0, "avg_tpot_ms": 58.5,
                                     "tpot_percentiles": pct, "ttft_percentiles": pct, "gen_tps_percentiles": pct}
    return data


def test_report_json_mapping(tmp_path: Path) -> None:
    path = tmp_path / "report.json"
    path.write_text(json.dumps(statistics_json(streaming=True)))
    rep = parse_report_json(path)
    assert rep.complete and rep.source == "report_json" and rep.label_generation is None
    assert rep.metrics == {
        "request_throughput_req_s": 6.4, "total_output_throughput_tok_s": 6400.0,
        "total_token_throughput_tok_s": 12800.0, "total_latency_ms": 1200000.0, "avg_request_latency_ms": 60000.0,
        "per_user_output_throughput_tok_s_user": 16.6, "per_gpu_output_throughput_tok_s_gpu": 1600.0,
        "avg_ttft_ms": 1500.0, "avg_tpot_ms": 58.5, "per_user_output_speed_tok_s_user": 17.0,
    }
    assert rep.percentiles["ttft_ms"] == {"p50": 10.0, "p90": 11.0, "p95": 12.0, "p99": 13.0, "min": 9.0,
                                          "max": 14.0, "avg": 10.5}
    assert rep.world == {"tp": 4, "pp": 1, "ep": 4, "world_size": 4, "max_batch_size": 384, "max_num_tokens": 6000,
                         "scheduling_policy": "GUARANTEED_NO_EVICT", "kv_cache_fraction": 0.85}
    assert rep.request_details["num_requests"] == 7680 and rep.engine["trtllm_version"] == "1.0.0rc1"
    assert rep.dataset["num_sequences"] == 7680 and rep.dataset["isl"]["avg"] == 10.5


def test_report_json_without_streaming_and_broken_files(tmp_path: Path) -> None:
    rep = report_from_statistics(statistics_json(streaming=False))
    assert rep.complete and not any(key in rep.metrics for key in STREAMING_KEYS)
    data = statistics_json(streaming=False)
    del data["performance"]["output_throughput_per_gpu_tok_s"]
    assert not report_from_statistics(data).complete
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="bad.json"):
        parse_report_json(bad)
    bad.write_text("[1, 2]")
    with pytest.raises(ValueError, match="JSON object"):
        parse_report_json(bad)


# --- failure classification ---------------------------------------------------------------------------------

@pytest.mark.parametrize("line, category, detail", [
    ("[TRT-LLM] [E] Executor creation failed due to insufficient GPU memory.", "oom", "startup"),
    ("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB.", "oom", "runtime"),
    ("RuntimeError: CUDA error: out of memory", "oom", "runtime"),
    ("RuntimeError: Executor creation failed with NCCL error: unhandled cuda error", "nccl", None),
    ("All nodes which are allocated for this job are already filled.", "launch_error", None),
    ("ValueError: Model is a file or directory, please provide a model name.", "launch_error", "model name"),
    ("KeyError: 'task_id'", "dataset_error", None),
    ("KeyError: 'output_tokens'", "dataset_error", None),
    ("json.decoder.JSONDecodeError: Expecting value: line 1 column 1 (char 0)", "dataset_error", None),
    ("Child job 2 terminated normally, but 1 process returned a non-zero exit code", "rank_crash", None),
    ("[TRT-LLM] [E] Error during benchmarking: something broke", "benchmark_error", None),
    ("RuntimeError: Executor worker returned error", "unknown", "worker"),
])
def test_each_signature(line: str, category: str, detail: str | None) -> None:
    failure = classify_failure(["[TRT-LLM] [I] Setting up throughput benchmark.", line, "exiting"])
    assert failure is not None
    assert (failure.category, failure.detail, failure.line, failure.lineno) == (category, detail, line, 2)
    assert (failure.remedy == OOM_REMEDY) is (category == "oom")


def test_root_cause_above_wrapper_errors_wins() -> None:
    log = "\n".join([
        "Traceback (most recent call last):",
        "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB.",
        "RuntimeError: Executor worker returned error",
        "[TRT-LLM] [E] Error during benchmarking: Executor worker returned error",
        "Primary job  terminated normally, but 1 process returned",
        "a non-zero exit code. Per user-direction, the job has been aborted.",
    ])
    failure = classify_failure([log])
    assert failure is not None and failure.category == "oom" and failure.lineno == 2
    assert classify_failure([log.replace("torch.OutOfMemoryError: CUDA out of memory.", "ok.")]).category == (
        "benchmark_error")
    assert classify_failure(["RuntimeError: Executor worker returned error", "KeyError: 'task_id'"]).category == (
        "dataset_error")
    only_crash = classify_failure(["Primary job  terminated normally, but 1 process returned", "a non-zero exit code."])
    assert only_crash is not None and only_crash.category == "rank_crash"


def test_no_failure_and_remedy_text() -> None:
    assert classify_failure(fixture("new_streaming.txt").splitlines()) is None
    assert classify_failure([]) is None
    assert "KV_CACHE_FRACTION" in OOM_REMEDY and "0.85 -> 0.80" in OOM_REMEDY
    assert OOM_REMEDY.index("KV_CACHE_FRACTION") < OOM_REMEDY.index("MAX_NUM_TOKENS") < OOM_REMEDY.index(
        "MAX_BATCH_SIZE")


# --- parse-log ----------------------------------------------------------------------------------------------

def test_parse_log_complete_report(capsys: pytest.CaptureFixture[str]) -> None:
    assert main_parse_log([str(FIXTURES / "new_streaming.txt")]) == 0
    out = capsys.readouterr().out
    assert "report complete" in out and "per_gpu_output_throughput_tok_s_gpu" in out and "1600.0000" in out


def test_parse_log_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main_parse_log([str(FIXTURES / "new_nostreaming.txt"), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["complete"] is True and data["failure"] is None
    assert data["report"]["metrics"]["request_throughput_req_s"] == 6.4
    assert data["report"]["streaming"] is False and "avg_ttft_ms" not in data["report"]["metrics"]


def test_parse_log_incomplete_and_failure(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main_parse_log([str(FIXTURES / "truncated_overview.txt")]) == 4  # parsed, but no complete report
    captured = capsys.readouterr()
    assert "INCOMPLETE" in captured.out and "Average time-per-output-token row" in captured.err
    out, err = tmp_path / "job.out", tmp_path / "job.err"
    out.write_text("[TRT-LLM] [I] Setting up throughput benchmark.\n")
    err.write_text("RuntimeError: Executor creation failed due to insufficient GPU memory.\n")
    assert main_parse_log([str(out), str(err), "--json"]) == 4
    data = json.loads(capsys.readouterr().out)
    assert data["report"] is None and data["failure"]["category"] == "oom"
    assert data["failure"]["detail"] == "startup" and data["failure"]["remedy"] == OOM_REMEDY


def test_parse_log_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.out"
    assert main_parse_log([str(missing)]) == 1
    assert f"log file not found: {missing}" in capsys.readouterr().err
    assert main_parse_log([str(tmp_path)]) == 1
    assert "is a directory" in capsys.readouterr().err


def test_scan_logs_reads_report_json(tmp_path: Path) -> None:
    path = tmp_path / "report.json"
    path.write_text(json.dumps(statistics_json(streaming=True), indent=4))
    scan = scan_logs(path)
    assert scan.report is not None and scan.report.complete and scan.report.source == "report_json"


def test_dispatcher_runs_parse_log() -> None:
    done = subprocess.run([sys.executable, "-m", "llmb_plugin_deepseek_r1", "parse-log",
                           str(FIXTURES / "old_streaming_0.19.txt"), "--json"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["report"]["label_generation"] == "old"
