"""The job body end to end on this machine (runtime `none`, no Slurm), with the STAND-IN trtllm-bench
(tests/fake_trtllm): TensorRT-LLM cannot run here. Every step: preflight, weights, dataset, YAML, run, collect,
verdict, OOM retry, hang and timeout handling, never overwriting."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
import yaml

from jobkit import job_environ, load, result_files, specs_for, start_job_body
from llmb_plugin_deepseek_r1.job.run import JobFailed, benchmark_environment, run_job

FIXTURES = Path(__file__).parent / "fixtures"


def run(install: Path, expect_failure: bool = False, **extra: str) -> tuple[dict, dict]:
    environ = job_environ(install, **extra)
    specs = specs_for(environ)
    if expect_failure:
        with pytest.raises(JobFailed):
            run_job(specs, environ)
    else:
        run_job(specs, environ)
    [path] = result_files(install)
    return load(path), environ


def test_valid_run_writes_result_logs_yaml_and_status(tmp_path):
    doc, env = run(tmp_path)
    assert doc["verdict"] == {"status": "VALID", "reasons": [], "classification": None, "remedy": None,
                              "failure_line": None, "failure_lineno": None, "rank": None, "node": None,
                              "caveats": []}
    assert doc["job_id"] == "4242" and doc["use_case"] == "chat"
    assert doc["asked"]["isl"] == 64 and doc["asked"]["num_requests"] == 20
    measured = doc["measured"]
    assert measured["request_details"]["num_requests"] == 20
    assert measured["request_details"]["avg_input_len"] == pytest.approx(64)
    assert measured["request_details"]["avg_output_len"] == pytest.approx(32)
    metrics = measured["metrics"]
    assert measured["headline"]["output_tok_s_gpu"] == pytest.approx(metrics["total_output_throughput_tok_s"] / 4,
                                                                     rel=1e-3)
    assert measured["headline"]["total_tok_s_gpu"] == pytest.approx(metrics["total_token_throughput_tok_s"] / 4)
    assert "avg_ttft_ms" in metrics and "Per GPU" in measured["definitions"]["output_tok_s_gpu"]
    result_dir = tmp_path / "workloads/inference_deepseek-r1/experiments/DeepSeek-R1_TP4_EP4_PP1_CON-1_chat"
    stem = result_dir / "DeepSeek-R1_TP4_EP4_PP1_CON-1_chat_streaming-on_4242"
    assert "PERFORMANCE OVERVIEW" in Path(f"{stem}.out").read_text()
    written_yaml = yaml.safe_load(Path(f"{stem}.config.yml").read_text())
    assert written_yaml == doc["attempts"][0]["extra_llm_api_options"]
    assert written_yaml["cuda_graph_batch_sizes"] == [1, 2, 4, 8, 16, 32, 64, 128, 256, 384]
    prov = doc["provenance"]
    assert prov["knobs"]["USE_CASES"] == "chat:64/32" and prov["knobs"]["NUM_REQUESTS"] == "20"
    assert prov["trtllm_version_reported"] == "1.0.0rc1" and prov["dataset"]["digest"].startswith("xxh3_128:")
    assert [c["status"] for c in prov["preflight"] if c["name"] == "gpus"] == ["skipped"]
    status = load(tmp_path / "workloads/inference_deepseek-r1/experiments/.llmb/jobs/4242.json")
    assert status["state"] == "COMPLETED" and status["results"][0]["verdict"] == "VALID"
    dataset = tmp_path / "workloads/inference_deepseek-r1/dataset_chat_64_32.txt"
    assert len(dataset.read_text().splitlines()) == 20


def test_streaming_off_has_no_ttft(tmp_path):
    doc, _ = run(tmp_path, STREAMING="false")
    assert doc["verdict"]["status"] == "VALID"
    assert "avg_ttft_ms" not in doc["measured"]["metrics"] and "avg_tpot_ms" not in doc["measured"]["metrics"]
    assert result_files(tmp_path)[0].name.endswith("_streaming-off_4242.json")


def test_old_label_generation_is_parsed(tmp_path):
    doc, _ = run(tmp_path, FAKE_TRTLLM_LABELS="old", STREAMING="false")
    assert doc["verdict"]["status"] == "VALID"
    assert doc["measured"]["headline"]["output_tok_s_gpu"] > 0


@pytest.mark.parametrize("fail, classification", [("startup_oom", "oom"), ("runtime_oom", "oom"),
                                                  ("nccl", "nccl"), ("no_report", "unknown")])
def test_failures_are_classified_and_logs_kept(tmp_path, fail, classification):
    doc, _ = run(tmp_path, expect_failure=True, FAKE_TRTLLM_FAIL=fail)
    assert doc["verdict"]["status"] == "FAILED" and doc["verdict"]["classification"] == classification
    assert doc["measured"] is None
    if classification == "oom":
        assert "KV_CACHE_FRACTION" in doc["verdict"]["remedy"]
    assert Path(doc["files"]["stdout"]).exists() and Path(doc["files"]["stderr"]).exists()
    status = load(tmp_path / "workloads/inference_deepseek-r1/experiments/.llmb/jobs/4242.json")
    assert status["state"] == "FAILED"


def test_short_run_is_invalid(tmp_path):
    doc, _ = run(tmp_path, FAKE_TRTLLM_FAIL="short")
    assert doc["verdict"]["status"] == "INVALID"
    assert any("completed requests" in r and "!= asked 20" in r for r in doc["verdict"]["reasons"])


def test_oom_retry_lowers_kv_fraction_in_the_same_job(tmp_path):
    doc, _ = run(tmp_path, OOM_RETRIES="3", FAKE_TRTLLM_OOM_ABOVE_KV="0.72")
    fractions = [a["kv_cache_free_gpu_mem_fraction"] for a in doc["attempts"]]
    assert fractions == [0.8, 0.75, 0.7]
    assert [a["verdict"]["classification"] for a in doc["attempts"]] == ["oom", "oom", None]
    assert doc["verdict"]["status"] == "VALID" and doc["effective"]["kv_cache_free_gpu_mem_fraction"] == 0.7
    assert doc["attempts"][2]["stdout"].endswith("_4242_try3.out")
    assert doc["attempts"][2]["command"][doc["attempts"][2]["command"].index("--kv_cache_free_gpu_mem_fraction")
                                         + 1] == "0.7"


def test_oom_retries_exhausted_fails(tmp_path):
    doc, _ = run(tmp_path, expect_failure=True, OOM_RETRIES="1", FAKE_TRTLLM_OOM_ABOVE_KV="0.5")
    assert len(doc["attempts"]) == 2 and doc["verdict"]["classification"] == "oom"


def test_rank_crash_hang_is_killed(tmp_path):
    doc, _ = run(tmp_path, expect_failure=True, FAKE_TRTLLM_FAIL="rank_crash_hang", HANG_GRACE="1")
    outcome = doc["attempts"][0]["outcome"]
    assert outcome["killed_after_rank_died"] is True and outcome["seconds"] < 30
    assert doc["verdict"]["classification"] == "rank_crash"


def test_wall_clock_limit_kills_the_group(tmp_path):
    doc, _ = run(tmp_path, expect_failure=True, FAKE_TRTLLM_DELAY="60", BENCH_TIMEOUT="2")
    assert doc["verdict"]["classification"] == "timeout"
    assert doc["attempts"][0]["outcome"]["timed_out"] is True and doc["attempts"][0]["outcome"]["seconds"] < 30


def test_gpu_preflight_failure_stops_before_the_benchmark(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    smi = bin_dir / "nvidia-smi"
    smi.write_text(f"#!/bin/sh\ntail -n +2 {FIXTURES / 'gpu' / 'h100-query-gpu.csv'}\n")
    smi.chmod(smi.stat().st_mode | stat.S_IEXEC)
    environ = job_environ(tmp_path)
    environ["PATH"] = f"{bin_dir}:{environ['PATH']}"
    with pytest.raises(JobFailed):
        run_job(specs_for(environ), environ)
    [path] = result_files(tmp_path)
    doc = load(path)
    assert doc["verdict"]["classification"] == "preflight_error"
    assert "found NVIDIA H100 80GB HBM3 (compute capability 9.0)" in json.dumps(doc["provenance"]["preflight"])
    assert doc["attempts"] == [] and not list(path.parent.glob("*.config.yml"))
    assert "compute capability 9.0" in Path(doc["files"]["stderr"]).read_text()


def test_existing_results_are_never_overwritten(tmp_path):
    first, env = run(tmp_path)
    before = {p: p.read_bytes() for p in result_files(tmp_path)[0].parent.iterdir()}
    with pytest.raises(JobFailed):
        run_job(specs_for(env), env)
    after = {p: p.read_bytes() for p in before}
    assert after == before
    status = load(tmp_path / "workloads/inference_deepseek-r1/experiments/.llmb/jobs/4242.json")
    assert status["results"][0]["classification"] == "launch_error"


def test_one_allocation_runs_each_use_case_and_stops_at_first_failure(tmp_path):
    environ = job_environ(tmp_path, USE_CASES="chat:64/32 reasoning:48/16")
    summary = run_job(specs_for(environ), environ)
    assert [r["use_case"] for r in summary["results"]] == ["chat", "reasoning"]
    assert all(r["verdict"] == "VALID" for r in summary["results"])
    environ = job_environ(tmp_path, USE_CASES="chat:64/32 reasoning:48/16", LLMB_JOB_ID="4343",
                          FAKE_TRTLLM_FAIL="nccl")
    with pytest.raises(JobFailed):
        run_job(specs_for(environ), environ)
    status = load(tmp_path / "workloads/inference_deepseek-r1/experiments/.llmb/jobs/4343.json")
    assert status["not_run"] == ["reasoning"]


def test_secrets_stay_out_of_the_benchmark_and_results(tmp_path):
    env = {"HF_TOKEN": "hf_secret_value_123", "PATH": "/bin", "NGC_API_KEY": "k" * 12, "MAX_NUM_TOKENS": "5"}
    assert benchmark_environment(env, ()) == {"PATH": "/bin", "MAX_NUM_TOKENS": "5"}
    assert benchmark_environment(env, ("HF_TOKEN",))["HF_TOKEN"] == "hf_secret_value_123"
    doc, _ = run(tmp_path, HF_TOKEN="hf_secret_value_123")
    text = "".join(p.read_text() for p in result_files(tmp_path)[0].parent.iterdir())
    assert "hf_secret_value_123" not in text and doc["verdict"]["status"] == "VALID"


def test_weight_check_passes_real_checkpoint_then_a_truncated_shard_stops_the_job(tmp_path):
    from weights_fixtures import make_checkpoint

    model = make_checkpoint(tmp_path / "model", shards=2)
    doc, _ = run(tmp_path / "ok", WEIGHT_CHECK="quick", MODEL_PATH=str(model))
    assert doc["verdict"]["status"] == "VALID" and doc["provenance"]["weights"]["ok"] is True
    shard = model / "model-00002-of-00002.safetensors"
    with open(shard, "r+b") as handle:
        handle.truncate(shard.stat().st_size - 3)
    doc, _ = run(tmp_path / "bad", expect_failure=True, WEIGHT_CHECK="quick", MODEL_PATH=str(model))
    assert doc["verdict"]["classification"] == "weights_error" and doc["attempts"] == []
    err = Path(doc["files"]["stderr"]).read_text()
    assert "model-00002-of-00002.safetensors" in err and "truncated" in err


def _pids_with(marker: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


@pytest.mark.parametrize(("signame", "classification", "state"), [("SIGTERM", "cancelled", "CANCELLED"),
                                                                   ("SIGUSR2", "timeout", "TIMEOUT")])
def test_a_signal_kills_the_benchmark_and_the_result_says_why(tmp_path, signame, classification, state):
    # SIGTERM: scancel or a killed allocation. SIGUSR2: the time-limit warning submitit asks Slurm for
    # (--signal=USR2@60); left to submitit it would raise "Job not requeued" wherever the body is, and the
    # result would read as a crash.
    import signal

    from slurm_cluster import wait_until

    environ = job_environ(tmp_path, FAKE_TRTLLM_DELAY="120")
    proc = start_job_body(environ)
    out = next((tmp_path / "workloads/inference_deepseek-r1/experiments").glob("*/*_4242.out"))
    wait_until(lambda: "DATASET DETAILS" in out.read_text() or None, 30, "the stand-in benchmark running")
    marker = str(tmp_path / "workloads/inference_deepseek-r1/dataset_chat_64_32.txt")
    assert _pids_with(marker), "the stand-in benchmark should be running"
    proc.send_signal(getattr(signal, signame))
    proc.communicate(timeout=60)
    assert proc.returncode != 0
    [path] = result_files(tmp_path)
    verdict = load(path)["verdict"]
    assert verdict["classification"] == classification and "DATASET DETAILS" in out.read_text()
    if signame == "SIGUSR2":
        assert "SBATCH_TIMELIMIT" in " ".join(verdict["reasons"])
    status = load(tmp_path / "workloads/inference_deepseek-r1/experiments/.llmb/jobs/4242.json")
    assert status["state"] == state and status["results"][0]["classification"] == classification
    assert _pids_with(marker) == []  # the benchmark's whole process group is gone


FAKE_NSYS = Path(__file__).parent / "fake_nsys"


def test_profiled_run_goes_through_nsys_and_records_the_reports(tmp_path):
    """ENABLE_PROFILE (llmb-run -p) runs trtllm-bench under the STAND-IN nsys (tests/fake_nsys), which checks
    NVIDIA's profiling command line and the TLLM_PROFILE_START_STOP window and writes a report per rank."""
    environ = job_environ(tmp_path, ENABLE_PROFILE="true", PROFILE_START="2", PROFILE_END="5",
                          ENABLE_GPU_METRICS="true")
    environ["PATH"] = f"{FAKE_NSYS}:{environ['PATH']}"
    run_job(specs_for(environ), environ)
    [path] = result_files(tmp_path)
    doc = load(path)
    assert doc["verdict"]["status"] == "VALID", doc["verdict"]
    folder = tmp_path / "workloads/inference_deepseek-r1/experiments/DeepSeek-R1_TP4_EP4_PP1_CON-1_chat/nsys_profile"
    assert doc["nsys_profile"]["directory"] == str(folder) and doc["nsys_profile"]["iterations"] == "2-5"
    [report] = doc["nsys_profile"]["reports"]
    assert Path(report).name == "profile_4242__.nsys-rep"  # no SLURM_PROCID/SLURM_LOCALID outside Slurm
    assert "window: 2-5" in Path(report).read_text() and "gpu_metrics: all" in Path(report).read_text()
    launch = doc["attempts"][0]["launch_command"]
    assert launch[:2] == ["nsys", "profile"] and "cudaProfilerApi" in launch and "trtllm-bench" in launch


def test_unprofiled_run_records_no_profile(tmp_path):
    doc, _ = run(tmp_path)
    assert doc["nsys_profile"] is None and "nsys" not in doc["attempts"][0]["launch_command"]


def test_dump_env_writes_a_redacted_snapshot(tmp_path):
    doc, _ = run(tmp_path, LLMB_DUMP_ENV="true", HF_TOKEN="hf_verysecret_value")
    snapshot = Path(doc["files"]["stdout"]).with_suffix(".env").read_text()
    assert "USE_CASES=chat:64/32" in snapshot and "HF_TOKEN=***" in snapshot
    assert "hf_verysecret_value" not in snapshot
