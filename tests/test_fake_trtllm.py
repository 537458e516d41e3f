"""The stand-in trtllm-bench / trtllm-llmapi-launch, run as real subprocesses, read back with the real parser."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from llmb_plugin_deepseek_r1.report import parse_report_json
from llmb_plugin_deepseek_r1.report.failure import classify_failure
from llmb_plugin_deepseek_r1.report.text import parse_report
from slurm_cluster import SlurmCluster, slurm_cluster, slurm_env  # noqa: F401 (slurm_cluster is a fixture)

FAKE_DIR = Path(__file__).parent / "fake_trtllm"
BENCH = FAKE_DIR / "trtllm-bench"
LAUNCH = FAKE_DIR / "trtllm-llmapi-launch"
CRASH_LINE = "Child job 2 terminated normally, but 1 process returned a non-zero exit code"


def clean_env(**extra: str) -> dict[str, str]:
    """The test's environment without Slurm/MPI/stand-in knobs, with the stand-ins first on PATH."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("FAKE_TRTLLM_", "SLURM_", "OMPI_", "PMI_", "PMIX_", "TLLM_"))}
    env["PATH"] = f"{FAKE_DIR}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra)
    return env


def write_dataset(path: Path, lengths: list[tuple[int, int]]) -> Path:
    """JSON Lines in trtllm-bench's format, one request per (input length, output length)."""
    with path.open("w") as handle:
        for task_id, (isl, osl) in enumerate(lengths):
            handle.write(json.dumps({"task_id": task_id, "input_ids": [7] * isl, "output_tokens": osl}) + "\n")
    return path


@pytest.fixture()
def work(tmp_path: Path) -> Path:
    (tmp_path / "weights").mkdir()
    return tmp_path


def bench_argv(work: Path, dataset: Path, *extra: str, num_requests: int = 0, kv: float = 0.85) -> list[str]:
    return [str(BENCH), "-m", "DeepSeek-R1", "--model_path", str(work / "weights"), "throughput",
            "--dataset", str(dataset), "--backend", "pytorch", "--tp", "4", "--pp", "1", "--ep", "4",
            "--max_batch_size", "8", "--max_num_tokens", "3000", "--kv_cache_free_gpu_mem_fraction", str(kv),
            "--concurrency", "-1", "--num_requests", str(num_requests), "--warmup", "0", "--eos_id", "-1", *extra]


def run(argv: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, env=clean_env(**env), timeout=60)


def mean(values: list[int]) -> float:
    return sum(values) / len(values)


# --- round trips --------------------------------------------------------------------------------------------

def test_round_trip_new_labels_streaming_and_report_json(work: Path) -> None:
    lengths = [(100 + 3 * i, 40 + i) for i in range(12)]
    dataset = write_dataset(work / "ds.jsonl", lengths)
    done = run(bench_argv(work, dataset, "--streaming", "--report_json", str(work / "r.json"), num_requests=10))
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.index("= DATASET DETAILS") < out.index("Benchmark done. Reporting results...") < out.index(
        "= PERFORMANCE OVERVIEW")
    rep = parse_report(out)
    asked = lengths[:10]
    assert rep is not None and rep.complete and rep.label_generation == "new" and rep.streaming
    assert rep.request_details["num_requests"] == 10
    assert rep.request_details["avg_input_len"] == mean([a for a, _ in asked])
    assert rep.request_details["avg_output_len"] == mean([b for _, b in asked])
    assert rep.world == {"tp": 4, "pp": 1, "ep": 4, "max_batch_size": 8, "max_num_tokens": 3000,
                         "scheduling_policy": "GUARANTEED_NO_EVICT", "kv_cache_fraction": pytest.approx(0.85)}
    assert rep.engine["model"] == "DeepSeek-R1" and rep.engine["trtllm_version"] == "1.0.0rc1"
    assert rep.dataset["num_sequences"] == 10 and rep.dataset["path"] == str(dataset)
    m = rep.metrics
    assert m["per_gpu_output_throughput_tok_s_gpu"] == pytest.approx(m["total_output_throughput_tok_s"] / 4, abs=1e-3)
    assert m["total_output_throughput_tok_s"] == pytest.approx(
        sum(b for _, b in asked) / (m["total_latency_ms"] / 1000), rel=1e-4)
    assert m["request_throughput_req_s"] == pytest.approx(10 / (m["total_latency_ms"] / 1000), rel=1e-4)
    from_json = parse_report_json(work / "r.json")
    assert from_json.complete
    for key, value in m.items():
        assert from_json.metrics[key] == pytest.approx(value, abs=1e-4), key
    assert from_json.request_details["num_requests"] == 10 and from_json.world["kv_cache_fraction"] == 0.85


def test_round_trip_old_labels_without_streaming(work: Path) -> None:
    dataset = write_dataset(work / "ds.jsonl", [(64, 16)] * 5)
    done = run(bench_argv(work, dataset), FAKE_TRTLLM_LABELS="old", FAKE_TRTLLM_VERSION="0.19.0")
    assert done.returncode == 0, done.stderr
    rep = parse_report(done.stdout)
    assert rep is not None and rep.complete and rep.label_generation == "old" and not rep.streaming
    assert not any(k in rep.metrics for k in ("avg_ttft_ms", "avg_tpot_ms", "per_user_output_speed_tok_s_user"))
    assert rep.request_details["num_requests"] == 5 and rep.engine["trtllm_version"] == "0.19.0"
    assert "Per User Output Throughput (tokens/sec/user):" in done.stdout


def test_num_requests_zero_means_all_and_more_than_dataset_runs_what_exists(work: Path) -> None:
    dataset = write_dataset(work / "ds.jsonl", [(10, 5)] * 7)
    for asked in (0, 50):
        done = run(bench_argv(work, dataset, num_requests=asked))
        assert parse_report(done.stdout).request_details["num_requests"] == 7


def test_version_gates_and_1_2_format(work: Path) -> None:
    dataset = write_dataset(work / "ds.jsonl", [(10, 5)] * 3)
    done = run(bench_argv(work, dataset, "--streaming"), FAKE_TRTLLM_VERSION="1.2.0rc2")
    rep = parse_report(done.stdout)
    assert rep.complete and rep.engine["trtllm_version"] == "1.2.0rc2" and rep.machine["name"] == "NVIDIA GB200"
    assert "TensorRT LLM Version:" in done.stdout
    old = run(bench_argv(work, dataset, "--report_json", str(work / "r.json")), FAKE_TRTLLM_VERSION="0.19.0")
    assert old.returncode == 2 and "No such option: --report_json" in old.stderr
    rc1 = run(bench_argv(work, dataset, "--request_json", str(work / "q.json")))
    assert rc1.returncode == 2 and "--request_json" in rc1.stderr
    bad = run(bench_argv(work, dataset), FAKE_TRTLLM_FAIL="explode")
    assert bad.returncode == 2 and "FAKE_TRTLLM_FAIL='explode'" in bad.stderr


def test_extra_options_yaml(work: Path) -> None:
    dataset = write_dataset(work / "ds.jsonl", [(10, 6)] * 4)
    config = work / "extra.yml"
    config.write_text("kv_cache_config:\n  dtype: fp8\n  free_gpu_memory_fraction: 0.7\n"
                      "speculative_config:\n  decoding_type: MTP\n  num_nextn_predict_layers: 3\n")
    done = run(bench_argv(work, dataset, "--extra_llm_api_options", str(config)))
    rep = parse_report(done.stdout)
    assert rep.complete and rep.world["kv_cache_fraction"] == pytest.approx(0.7) and rep.decoding_mode == "MTP"
    config.write_text("- just\n- a list\n")
    done = run(bench_argv(work, dataset, "--extra_llm_api_options", str(config)))
    assert done.returncode == 1 and "YAML mapping" in done.stderr


def test_version_rules_flags_eos_default_and_yaml_keys(work: Path) -> None:
    """The stand-in's VERSION RULES section: what each version accepts, so a plugin mistake shows in tests."""
    dataset = write_dataset(work / "ds.jsonl", [(10, 30)] * 6)
    nested, flat = work / "nested.yml", work / "flat.yml"
    nested.write_text("cuda_graph_config: {enable_padding: true, batch_sizes: [1, 2]}\n"
                      "attention_dp_config: {enable_balance: true}\n")
    flat.write_text("use_cuda_graph: true\ncuda_graph_batch_sizes: [1, 2]\n")
    assert run(bench_argv(work, dataset, "--config", str(flat)), FAKE_TRTLLM_VERSION="1.1.0rc5").returncode == 1
    refused = run(bench_argv(work, dataset, "--config", str(flat)), FAKE_TRTLLM_VERSION="1.1.0rc5")
    assert "Extra inputs are not permitted" in refused.stderr and "use_cuda_graph" in refused.stderr
    assert run(bench_argv(work, dataset, "--config", str(nested)), FAKE_TRTLLM_VERSION="1.3.0rc27").returncode == 0
    ignored = run(bench_argv(work, dataset, "--extra_llm_api_options", str(nested)))  # 1.0.0rc1: warns
    assert ignored.returncode == 0 and "ignored by TensorRT-LLM 1.0.0rc1: cuda_graph_config, attention_dp_config" \
        in ignored.stdout
    no_config = run(bench_argv(work, dataset, "--config", str(flat)))
    assert no_config.returncode == 2 and "No such option: --config" in no_config.stderr
    argv = bench_argv(work, dataset)
    del argv[argv.index("--eos_id"):argv.index("--eos_id") + 2]
    assert mean_osl(run(argv, FAKE_TRTLLM_VERSION="1.1.0rc5")) == 30  # default -1 up to 1.1
    assert mean_osl(run(argv, FAKE_TRTLLM_VERSION="1.2.0")) < 30  # 1.2+: EOS resolved, outputs end early
    trt = bench_argv(work, dataset)
    trt[trt.index("--backend") + 1] = "tensorrt"
    assert "Invalid value for '--backend'" in run(trt, FAKE_TRTLLM_VERSION="1.3.0rc27").stderr


def mean_osl(done: subprocess.CompletedProcess[str]) -> float:
    return parse_report(done.stdout).request_details["avg_output_len"]


# --- bad input fails as the real one does ---------------------------------------------------------------------

@pytest.mark.parametrize("line, expected", [
    ('{"input_ids": [1, 2], "output_tokens": 4}', "KeyError: 'task_id'"),
    ('{"task_id": 1, "input_ids": [1, 2]}', "KeyError: 'output_tokens'"),
    ('{"task_id": 1, "input_ids": [1, 2], "output_tokens": 4', "JSONDecodeError"),
    ("", "JSONDecodeError"),  # a blank line inside the file
])
def test_bad_dataset(work: Path, line: str, expected: str) -> None:
    dataset = work / "ds.jsonl"
    good = json.dumps({"task_id": 0, "input_ids": [1, 2, 3], "output_tokens": 4})
    dataset.write_text(f"{good}\n{line}\n{good}\n")
    done = run(bench_argv(work, dataset))
    assert done.returncode == 1 and expected in done.stderr
    failure = classify_failure([done.stdout, done.stderr])
    assert failure is not None and failure.category == "dataset_error" and expected in failure.line
    assert parse_report(done.stdout) is None


def test_model_path_given_to_m_and_missing_backend(work: Path) -> None:
    dataset = write_dataset(work / "ds.jsonl", [(10, 5)])
    argv = bench_argv(work, dataset)
    argv[2] = str(work / "weights")  # -m given a directory
    done = run(argv)
    assert done.returncode == 1
    assert classify_failure([done.stderr]).category == "launch_error"
    argv = bench_argv(work, dataset)
    argv.remove("--backend"), argv.remove("pytorch")
    done = run(argv)
    assert done.returncode == 1 and "config.json" in done.stderr


# --- failure modes ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode, category, detail", [
    ("startup_oom", "oom", "startup"), ("runtime_oom", "oom", "runtime"), ("nccl", "nccl", None)])
def test_failure_modes(work: Path, mode: str, category: str, detail: str | None) -> None:
    dataset = write_dataset(work / "ds.jsonl", [(10, 5)] * 3)
    done = run(bench_argv(work, dataset), FAKE_TRTLLM_FAIL=mode)
    assert done.returncode == 1 and parse_report(done.stdout) is None
    failure = classify_failure([done.stdout, done.stderr])
    assert failure is not None and (failure.category, failure.detail) == (category, detail)


def test_oom_only_above_kv_fraction(work: Path) -> None:
    dataset = write_dataset(work / "ds.jsonl", [(10, 5)] * 3)
    high = run(bench_argv(work, dataset, kv=0.85), FAKE_TRTLLM_OOM_ABOVE_KV="0.8")
    assert high.returncode == 1 and classify_failure([high.stdout, high.stderr]).category == "oom"
    low = run(bench_argv(work, dataset, kv=0.80), FAKE_TRTLLM_OOM_ABOVE_KV="0.8")
    assert low.returncode == 0 and parse_report(low.stdout).complete


def test_no_report_and_short(work: Path) -> None:
    dataset = write_dataset(work / "ds.jsonl", [(10, 8)] * 8)
    none = run(bench_argv(work, dataset), FAKE_TRTLLM_FAIL="no_report")
    assert none.returncode == 0 and parse_report(none.stdout) is None
    short = run(bench_argv(work, dataset), FAKE_TRTLLM_FAIL="short")
    rep = parse_report(short.stdout)
    assert short.returncode == 0 and rep.complete and rep.request_details["num_requests"] < 8
    single = write_dataset(work / "one.jsonl", [(10, 8)])
    rep = parse_report(run(bench_argv(work, single), FAKE_TRTLLM_FAIL="short").stdout)
    assert rep.request_details["num_requests"] == 1 and rep.request_details["avg_output_len"] < 8


def test_rank_crash_hang_needs_a_process_group_kill(work: Path) -> None:
    dataset = write_dataset(work / "ds.jsonl", [(10, 5)] * 3)
    proc = subprocess.Popen(bench_argv(work, dataset), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=clean_env(FAKE_TRTLLM_FAIL="rank_crash_hang"), start_new_session=True)
    try:
        seen = []
        for line in proc.stdout:
            seen.append(line)
            if CRASH_LINE in line:
                break
        assert any(CRASH_LINE in line for line in seen), "".join(seen)
        assert proc.poll() is None  # still hanging after the crash line
        assert classify_failure(seen).category == "rank_crash"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
    # EOF arrives only once every process holding the pipe (the stand-in and its worker) is gone.
    assert proc.stdout.read() == ""
    assert proc.wait(timeout=30) == -signal.SIGKILL


def test_delay_keeps_the_run_going(work: Path) -> None:
    dataset = write_dataset(work / "ds.jsonl", [(10, 5)])
    proc = subprocess.Popen(bench_argv(work, dataset), stdout=subprocess.PIPE, text=True,
                            env=clean_env(FAKE_TRTLLM_DELAY="120"), start_new_session=True)
    try:
        for line in proc.stdout:
            if "Starting benchmark" in line:
                break
        assert proc.poll() is None
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
    assert proc.wait(timeout=30) == -signal.SIGTERM


# --- trtllm-llmapi-launch -----------------------------------------------------------------------------------

def test_several_srun_tasks_need_the_launcher(work: Path) -> None:
    dataset = write_dataset(work / "ds.jsonl", [(10, 5)] * 2)
    bare = run(bench_argv(work, dataset), SLURM_STEP_NUM_TASKS="4", SLURM_PROCID="0")
    assert bare.returncode == 1 and classify_failure([bare.stderr]).category == "launch_error"
    rank0 = run([str(LAUNCH), "trtllm-bench", *bench_argv(work, dataset)[1:]],
                SLURM_STEP_NUM_TASKS="4", SLURM_PROCID="0", SLURM_NTASKS="4")
    assert rank0.returncode == 0, rank0.stderr
    assert parse_report(rank0.stdout).complete
    rank2 = run([str(LAUNCH), "trtllm-bench", *bench_argv(work, dataset)[1:]],
                SLURM_STEP_NUM_TASKS="4", SLURM_PROCID="2", SLURM_NTASKS="4")
    assert rank2.returncode == 0 and rank2.stdout == ""


def test_launcher_execs_with_a_clean_mpi_environment() -> None:
    probe = ("import json, os; print(json.dumps({'pid': os.getpid(), 'procid': os.environ.get('SLURM_PROCID'), "
             "'proxy': os.environ.get('TLLM_SPAWN_PROXY_PROCESS'), 'size': os.environ.get('tllm_mpi_size')}))")
    proc = subprocess.Popen([str(LAUNCH), sys.executable, "-c", probe], stdout=subprocess.PIPE, text=True,
                            stderr=subprocess.DEVNULL, env=clean_env(OMPI_COMM_WORLD_RANK="0",
                                                                     OMPI_COMM_WORLD_SIZE="4"))
    out, _ = proc.communicate(timeout=30)
    seen = json.loads(out)
    assert seen == {"pid": proc.pid, "procid": None, "proxy": "1", "size": "4"}  # same pid: exec, not a child
    other = run([str(LAUNCH), sys.executable, "-c", "print('ran')"], PMI_RANK="1")
    assert other.returncode == 0 and other.stdout == ""
    assert run([str(LAUNCH)]).returncode == 2
    assert run([str(LAUNCH), "no-such-command-here"]).returncode == 127
    assert run([str(LAUNCH), "true"], SLURM_PROCID="x").returncode != 0


@pytest.mark.slurm
def test_under_real_srun_only_rank0_reports(work: Path, slurm_cluster: SlurmCluster) -> None:  # noqa: F811
    dataset = write_dataset(work / "ds.jsonl", [(10, 5)] * 4)
    srun = ["srun", "-A", slurm_cluster.account, "-p", slurm_cluster.cpu_partition, "--ntasks=4", "-c", "1",
            "--mem-per-cpu=200M", "-t", "2"]
    env = slurm_env(clean_env())
    launched = subprocess.run([*srun, str(LAUNCH), *bench_argv(work, dataset)], capture_output=True, text=True,
                              env=env, timeout=120)
    assert launched.returncode == 0, launched.stderr
    assert launched.stdout.count("= PERFORMANCE OVERVIEW") == 1
    assert parse_report(launched.stdout).request_details["num_requests"] == 4
    bare = subprocess.run([*srun, *bench_argv(work, dataset)], capture_output=True, text=True, env=env, timeout=120)
    assert bare.returncode != 0 and "= PERFORMANCE OVERVIEW" not in bare.stdout
    assert bare.stderr.count("All nodes which are allocated for this job are already filled.") == 4


def step_env(world: Path, rank: int, node: str, ntasks: int = 4, nodes: str = "n[1-2]", nnodes: int = 2) -> dict:
    """What srun gives one task of step 7.0 (no real Slurm needed to drive the stand-ins' world)."""
    return dict(SLURM_JOB_ID="7", SLURM_STEP_ID="0", SLURM_PROCID=str(rank), SLURM_NTASKS=str(ntasks),
                SLURM_STEP_NUM_TASKS=str(ntasks), SLURM_STEP_NODELIST=nodes, SLURM_STEP_NUM_NODES=str(nnodes),
                SLURMD_NODENAME=node, SLURM_MPI_TYPE="pmix", PMIX_RANK=str(rank), FAKE_TLLM_WORLD_DIR=str(world))


def test_world_of_two_nodes_forms_and_workers_wait_for_rank_0(work: Path) -> None:
    dataset = write_dataset(work / "ds.jsonl", [(10, 5)] * 2)
    workers = [subprocess.Popen([str(LAUNCH), "trtllm-bench"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=clean_env(**step_env(work, r, "n1" if r < 2 else "n2")))
               for r in (1, 2, 3)]
    rank0 = run([str(LAUNCH), *map(str, bench_argv(work, dataset))], **step_env(work, 0, "n1"))
    assert rank0.returncode == 0, rank0.stderr
    assert "MPI world: 4 ranks on 2 node(s) (n1, n2), 2 per node" in rank0.stdout
    assert [w.wait(timeout=30) for w in workers] == [0, 0, 0]  # released by rank 0's `done`


@pytest.mark.parametrize("tp, nodes, fragment", [
    (8, ("n1", "n1", "n2", "n2"), "world_size must equal to pp_size * cp_size * tp_size, but got 4 != 1 * 1 * 8"),
    (4, ("n1", "n1", "n1", "n2"), "do not cover the step's nodes ['n1', 'n2'] evenly"),
])
def test_a_world_that_is_not_what_slurm_started_fails_as_the_real_tool(work: Path, tp, nodes, fragment) -> None:
    dataset = write_dataset(work / "ds.jsonl", [(10, 5)] * 2)
    folder = work / "fake-tllm-world-7.0"
    folder.mkdir()
    for rank in (1, 2, 3):  # the other ranks as the stand-in launcher registers them
        (folder / f"rank{rank}.json").write_text(json.dumps({
            "rank": rank, "node": nodes[rank], "pmix_rank": str(rank), "step_nodelist": "n[1-2]", "step_nodes": "2",
            "step_tasks": "4", "mpi_type": "pmix"}))
    argv = [str(LAUNCH), *map(str, bench_argv(work, dataset))]
    argv[argv.index("--tp") + 1] = str(tp)
    rank0 = run(argv, **step_env(work, 0, nodes[0]))
    assert rank0.returncode == 1 and fragment in rank0.stderr
    assert (folder / "done").exists()  # the workers are released even when rank 0 fails
