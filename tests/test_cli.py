"""llmb-run's command line: validation order, exit codes, knob errors, dry-run content and secrets."""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml

from conftest import LLMB_RUN, PYTHON, RUN_ARGS, python_env


def test_dry_run_defaults_to_four_jobs_with_recipe_values(dry_run_json, install_dir):
    doc = dry_run_json()
    assert (doc["workload"], doc["model_size"], doc["dtype"], doc["scale"]) == ("inference_deepseek-r1", "671b",
                                                                                "nvfp4", 4)
    names = [job["use_cases"][0]["name"] for job in doc["jobs"]]
    assert names == ["reasoning", "chat", "summarization", "generation"]
    limits = {job["use_cases"][0]["name"]: job["slurm"]["time_min"] for job in doc["jobs"]}
    assert limits == {"reasoning": 30, "chat": 20, "summarization": 35, "generation": 105}  # derived, see test_profiles
    by_name = {job["use_cases"][0]["name"]: job["use_cases"][0] for job in doc["jobs"]}
    assert {n: by_name[n]["max_num_tokens"] for n in by_name} == {
        "reasoning": 6000, "chat": 7000, "summarization": 9000, "generation": 3000}
    assert {n: by_name[n]["kv_cache_free_gpu_mem_fraction"] for n in by_name} == {
        "reasoning": 0.85, "chat": 0.80, "summarization": 0.85, "generation": 0.85}
    chat = by_name["chat"]
    assert (chat["isl"], chat["osl"], chat["max_batch_size"], chat["concurrency"], chat["num_requests"]) == (
        128, 128, 384, -1, 7680)
    assert (chat["tp"], chat["ep"], chat["pp"], chat["streaming"], chat["mode"]) == (4, 4, 1, True, "max_throughput")
    job = doc["jobs"][0]
    assert job["slurm"] == {"job_name": "inference_deepseek-r1_671b_nvfp4_reasoning", "nodes": 1,
                            "ntasks_per_node": 4, "time_min": 30, "partition": None, "account": None,
                            "gpus_per_node": None, "exclusive": True, "segment": 1, "additional": {}}
    workload = install_dir / "workloads" / "inference_deepseek-r1"
    assert job["container"] == {"runtime": "pyxis",
                                "image": str(install_dir / "images" / "tensorrt-llm+release+1.0.0rc1.sqsh"),
                                "mounts": [f"{workload}:{workload}"]}


def test_dry_run_paths_and_exact_command(dry_run_json, install_dir):
    doc = dry_run_json(USE_CASES="reasoning:1000/1000")
    uc = doc["jobs"][0]["use_cases"][0]
    workload = install_dir / "workloads" / "inference_deepseek-r1"
    result_dir = workload / "experiments" / "DeepSeek-R1_TP4_EP4_PP1_CON-1_reasoning"
    stem = result_dir / "DeepSeek-R1_TP4_EP4_PP1_CON-1_reasoning_streaming-on_%j"
    assert uc["dataset"] == str(workload / "dataset_reasoning_1000_1000.txt")
    assert uc["result_dir"] == str(result_dir)
    assert uc["stdout"] == f"{stem}.out"
    assert uc["stderr"] == f"{stem}.err"
    assert uc["command"] == [
        "trtllm-llmapi-launch", "trtllm-bench", "-m", "DeepSeek-R1", "--model_path",
        str(workload / "DeepSeek-R1-FP4"), "throughput", "--tp", "4", "--ep", "4", "--pp", "1", "--warmup", "0",
        "--dataset", str(workload / "dataset_reasoning_1000_1000.txt"), "--backend", "pytorch",
        "--max_batch_size", "384", "--max_num_tokens", "6000", "--extra_llm_api_options", f"{stem}.config.yml",
        "--num_requests", "7680", "--kv_cache_free_gpu_mem_fraction", "0.85", "--concurrency", "-1",
        "--streaming", "--eos_id", "-1", "--report_json", f"{stem}.report.json"]
    assert uc["extra_llm_api_options"] == {
        "enable_attention_dp": True, "use_cuda_graph": True, "cuda_graph_padding_enabled": True,
        "cuda_graph_batch_sizes": [1, 2, 4, 8, 16, 32, 64, 128, 256, 384], "kv_cache_dtype": "fp8",
        "print_iter_log": True, "stream_interval": 4}
    launch = uc["launch_command"]
    assert launch[:4] == ["srun", "--mpi=pmix", "--nodes=1", "--ntasks-per-node=4"]
    assert f"--container-image={doc['jobs'][0]['container']['image']}" in launch
    assert "--container-writable" in launch and "--no-container-mount-home" in launch
    assert launch[-3:-1] == ["bash", "-c"] and shlex.split(launch[-1]) == uc["command"]


def test_knobs_apply_to_every_use_case(dry_run_json):
    doc = dry_run_json(USE_CASES="chat:128/128 custom_1:2048/256", MAX_NUM_TOKENS="8192", MAX_BATCH_SIZE="128",
                       KV_CACHE_FRACTION="0.7", NUM_REQUESTS="1000", CONCURRENCY="64", STREAMING="False",
                       SBATCH_TIMELIMIT="1:10:00", SBATCH_ACCOUNT="acct", SBATCH_PARTITION="batch",
                       SBATCH_GPUS_PER_NODE="4")
    assert len(doc["jobs"]) == 2
    for job in doc["jobs"]:
        uc = job["use_cases"][0]
        assert (uc["max_num_tokens"], uc["max_batch_size"], uc["kv_cache_free_gpu_mem_fraction"],
                uc["num_requests"], uc["concurrency"], uc["streaming"]) == (8192, 128, 0.7, 1000, 64, False)
        assert "--streaming" not in uc["command"] and uc["stdout"].endswith("_streaming-off_%j.out")
        assert uc["command"][uc["command"].index("--num_requests") + 1] == "1000"  # never overwritten
        assert (job["slurm"]["time_min"], job["slurm"]["account"], job["slurm"]["partition"],
                job["slurm"]["gpus_per_node"]) == (70, "acct", "batch", 4)
    custom = doc["jobs"][1]["use_cases"][0]
    assert (custom["name"], custom["isl"], custom["osl"]) == ("custom_1", 2048, 256)
    assert custom["result_dir"].endswith("DeepSeek-R1_TP4_EP4_PP1_CON64_custom_1")
    assert custom["extra_llm_api_options"]["cuda_graph_batch_sizes"] == [1, 2, 4, 8, 16, 32, 64, 128]


def test_new_use_case_names_take_reasoning_row(dry_run_json):
    uc = dry_run_json(USE_CASES="long:4000/4000")["jobs"][0]["use_cases"][0]
    assert (uc["max_num_tokens"], uc["kv_cache_free_gpu_mem_fraction"], uc["max_batch_size"]) == (6000, 0.85, 384)


def test_one_allocation_sums_time_limits(run_cli, monkeypatch):
    monkeypatch.setenv("USE_CASES", "reasoning:1000/1000 summarization:8000/512")
    code, out, err = run_cli(*RUN_ARGS, "--dry-run", "--json", "--one-allocation")
    assert code == 0, err
    jobs = json.loads(out)["jobs"]
    assert len(jobs) == 1
    assert jobs[0]["slurm"]["time_min"] == 30 + 35
    assert jobs[0]["slurm"]["job_name"] == "inference_deepseek-r1_671b_nvfp4"
    assert [uc["name"] for uc in jobs[0]["use_cases"]] == ["reasoning", "summarization"]


def test_min_latency_mode(dry_run_json):
    uc = dry_run_json(MODE="min_latency", USE_CASES="reasoning:1000/2000")["jobs"][0]["use_cases"][0]
    assert (uc["mode"], uc["max_batch_size"], uc["concurrency"], uc["num_requests"]) == ("min_latency", 1, 1, 10)
    assert uc["extra_llm_api_options"] == {
        "enable_attention_dp": False, "use_cuda_graph": True, "cuda_graph_padding_enabled": True,
        "cuda_graph_batch_sizes": [1], "moe_backend": "TRTLLM",
        "speculative_config": {"decoding_type": "MTP", "num_nextn_predict_layers": 3}}


def test_submit_accepts_later_spellings(run_cli):
    code, out, err = run_cli("submit", "-w", "inference_deepseek-r1", "--model-size", "671b", "-d", "nvfp4",
                             "--scale", "4", "--dry-run", "--json", "--env", "USE_CASES=chat:128/128")
    assert code == 0, err
    assert [j["use_cases"][0]["name"] for j in json.loads(out)["jobs"]] == ["chat"]


def test_text_dry_run_shows_slurm_container_command_and_yaml(run_cli, monkeypatch):
    monkeypatch.setenv("USE_CASES", "chat:128/128")
    code, out, err = run_cli(*RUN_ARGS, "--dryrun")
    assert code == 0, err
    assert "job_name: inference_deepseek-r1_671b_nvfp4\n" in out  # NVIDIA's name: one use case
    assert "time_min: 20" in out and "runtime: pyxis" in out
    assert "command: trtllm-llmapi-launch trtllm-bench -m DeepSeek-R1" in out
    yaml_start = out.index("extra_llm_api_options:")
    body = out[yaml_start:].split("\n", 1)[1].split("\n    attention_dp:")[0]
    assert yaml.safe_load(body.replace("\n      ", "\n").strip())["stream_interval"] == 4


@pytest.mark.parametrize("args, message", [
    (["-w", "inference_deepseek-r2"], "unknown workload 'inference_deepseek-r2'; did you mean inference_deepseek-r1"),
    (["-s", "70b"], "model size '70b' is not available"),
    (["--dtype", "fp8"], "dtype 'fp8' is not available"),
    (["--scale", "6"], "scale 6 is not available"),
])
def test_validation_errors_exit_1(run_cli, args, message):
    argv = list(RUN_ARGS)
    for flag, value in zip(args[::2], args[1::2]):
        argv[argv.index(flag) + 1] = value
    code, out, err = run_cli(*argv, "--dry-run")
    assert code == 1
    assert message in err and err.count("\n") == 1 and out == ""


def test_usage_errors_exit_2_as_llmb_run_does(run_cli):
    """argparse's own usage errors keep their exit 2 (NVIDIA's llmb-run 1.15 is click-based: also 2)."""
    argv = list(RUN_ARGS)
    argv[argv.index("--scale") + 1] = "four"
    code, out, err = run_cli(*argv, "--dry-run")
    assert code == 2 and "invalid int value: 'four'" in err and err.startswith("usage: llmb-run single")
    code, out, err = run_cli("no-such-command")
    assert code == 2 and "invalid choice: 'no-such-command'" in err


def test_validation_order_gpu_type_before_model_size(run_cli, monkeypatch):
    monkeypatch.setenv("GPU_TYPE", "a100")
    argv = list(RUN_ARGS)
    argv[argv.index("-s") + 1] = "70b"
    code, _, err = run_cli(*argv, "--dry-run")
    assert code == 1 and "GPU type 'a100' is not supported" in err
    assert "supported GPU types: b200, gb200, gb300, h100" in err


@pytest.mark.parametrize("var, value, fragment", [
    ("USE_CASES", "thinking", "USE_CASES entry 'thinking' is not valid: expected name:ISL/OSL"),
    ("USE_CASES", "reasoning:1000", "expected name:ISL/OSL"),
    ("USE_CASES", "rea/son:1/1", "USE_CASES='rea/son' is not valid"),
    ("USE_CASES", "..:1/1", "USE_CASES='..' is not valid"),
    ("USE_CASES", "a;rm:1/1", "USE_CASES='a;rm' is not valid"),
    ("USE_CASES", "chat:0/128", "USE_CASES ISL of chat='0' is not valid"),
    ("USE_CASES", "chat:128/-5", "USE_CASES OSL of chat='-5'"),
    ("USE_CASES", "chat:128/128 chat:64/64", "names 'chat' twice"),
    ("MAX_NUM_TOKENS", "0", "MAX_NUM_TOKENS='0' is not valid: expected a positive whole number"),
    ("MAX_BATCH_SIZE", "-3", "MAX_BATCH_SIZE='-3'"),
    ("NUM_REQUESTS", "lots", "NUM_REQUESTS='lots'"),
    ("KV_CACHE_FRACTION", "1.5", "KV_CACHE_FRACTION='1.5' is not valid: expected a number in (0, 1]"),
    ("KV_CACHE_FRACTION", "0", "KV_CACHE_FRACTION='0'"),
    ("KV_CACHE_FRACTION", "nan", "KV_CACHE_FRACTION='nan'"),
    ("CONCURRENCY", "-2", "CONCURRENCY='-2' is not valid: expected a positive whole number, or -1"),
    ("STREAMING", "maybe", "STREAMING='maybe' is not valid: expected true or false"),
    ("MODE", "fastest", "MODE='fastest' is not valid: expected one of max_throughput, min_latency"),
    ("SBATCH_TIMELIMIT", "soon", "SBATCH_TIMELIMIT='soon'"),
    ("SBATCH_TIMELIMIT", "0", "SBATCH_TIMELIMIT='0'"),
    ("SBATCH_ACCOUNT", "a b", "SBATCH_ACCOUNT='a b'"),
    ("SBATCH_PARTITION", "p;x", "SBATCH_PARTITION='p;x'"),
    ("TP", "2", "TP=2 x PP=1 = 2 ranks does not match --scale 4"),
    ("EP", "3", "EP=3 is not valid with TP=4"),
    ("MAX_NUM_TOKENS", "500", "MAX_NUM_TOKENS=500 is smaller than the ISL 1000"),
    ("RUN_CONF_IMAGE", "/images/custom.sqsh", "set TRTLLM_VERSION"),
    ("TRTLLM_VERSION", "banana", "TRTLLM_VERSION='banana' is not valid"),
    ("CONTAINER_RUNTIME", "podman", "CONTAINER_RUNTIME='podman' is not valid: expected one of pyxis, none, docker"),
    ("MODEL_PATH", "relative/dir", "MODEL_PATH='relative/dir' is not valid: expected an absolute path"),
])
def test_bad_knobs_are_one_line_errors(run_cli, monkeypatch, var, value, fragment):
    monkeypatch.setenv(var, value)
    code, out, err = run_cli(*RUN_ARGS, "--dry-run")
    assert code == 1
    assert fragment in err and err.startswith("error: ") and err.count("\n") == 1
    assert out == ""


@pytest.mark.parametrize("value, expected", [("1", True), ("0", False), ("yes", True), ("no", False),
                                             ("True", True), ("false", False), ("ON", True)])
def test_streaming_spellings(dry_run_json, value, expected):
    assert dry_run_json(STREAMING=value, USE_CASES="chat:128/128")["jobs"][0]["use_cases"][0]["streaming"] is expected


@pytest.mark.parametrize("value, minutes", [("45", 45), ("45:00", 45), ("1:40:00", 100), ("0:30", 1),
                                            ("1-00:00:00", 1440), ("2-1", 2940)])
def test_time_limit_formats(dry_run_json, value, minutes):
    assert dry_run_json(SBATCH_TIMELIMIT=value, USE_CASES="chat:128/128")["jobs"][0]["slurm"]["time_min"] == minutes


def test_llmb_install_required(run_cli, monkeypatch):
    monkeypatch.delenv("LLMB_INSTALL")
    code, _, err = run_cli(*RUN_ARGS, "--dry-run")
    assert code == 1 and "LLMB_INSTALL is not set" in err


def test_stage_path_is_a_migration_error(run_cli, monkeypatch):
    monkeypatch.setenv("STAGE_PATH", "/old")
    code, _, err = run_cli(*RUN_ARGS, "--dry-run")
    assert code == 1 and "STAGE_PATH is set but is no longer used: set LLMB_INSTALL" in err


def test_cluster_config_supplies_gpu_type_slurm_and_environment(run_cli, monkeypatch, tmp_path):
    Path("cluster_config.yaml").write_text(yaml.safe_dump({
        "launcher": {"gpu_type": "gb200"},
        "environment": {"HF_TOKEN": "hf_supersecretvalue123", "STREAMING": False},
        "slurm": {"account": "site_acct", "gpu_partition": "gpu", "gpu_gres": 4, "cpu_partition": "cpu"},
    }))
    monkeypatch.setenv("SBATCH_PARTITION", "shell")  # NVIDIA's precedence: the site file wins over the shell
    monkeypatch.setenv("SBATCH_ACCOUNT", "shell_acct")
    code, out, err = run_cli(*RUN_ARGS, "--dry-run", "--json", "--env", "USE_CASES=chat:128/128",
                             "--env", "SBATCH_PARTITION=override")  # ... and the command line over both
    assert code == 0, err
    job = json.loads(out)["jobs"][0]
    assert (job["slurm"]["account"], job["slurm"]["partition"], job["slurm"]["gpus_per_node"]) == (
        "site_acct", "override", 4)
    assert job["use_cases"][0]["streaming"] is False  # YAML false became "false", not "False"-as-true


def test_cluster_config_gpu_type_wins_over_env(run_cli, monkeypatch):
    Path("cluster_config.yaml").write_text("launcher:\n  gpu_type: a100\n")
    monkeypatch.setenv("GPU_TYPE", "gb200")
    code, _, err = run_cli(*RUN_ARGS, "--dry-run")
    assert code == 1 and "GPU type 'a100' is not supported" in err


def test_secrets_never_printed(run_cli, monkeypatch):
    secret = "hf_abcdefghijklmnop"
    monkeypatch.setenv("HF_TOKEN", secret)
    monkeypatch.setenv("MY_API_KEY", "key-0123456789")
    monkeypatch.setenv("USE_CASES", "chat:128/128")
    for flags in (["--dry-run"], ["--dry-run", "--json"], ["--dry-run", "-v"]):
        code, out, err = run_cli(*RUN_ARGS, *flags)
        assert code == 0
        assert secret not in out + err and "key-0123456789" not in out + err


def test_zero_jobs_is_not_success(run_cli, monkeypatch):
    monkeypatch.setenv("USE_CASES", "   ")  # blank means the default set, never zero jobs
    code, out, _ = run_cli(*RUN_ARGS, "--dry-run", "--json")
    assert code == 0 and len(json.loads(out)["jobs"]) == 4


def test_console_script_and_module_entry(tmp_path):
    env = python_env(LLMB_INSTALL=str(tmp_path), USE_CASES="chat:128/128")
    done = subprocess.run([LLMB_RUN, *RUN_ARGS, "--dry-run", "--json"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["jobs"][0]["name"] == "inference_deepseek-r1_671b_nvfp4"
    done = subprocess.run([PYTHON, "-m", "llmb_plugin_deepseek_r1.host.cli", "list"], env=env, capture_output=True,
                          text=True)
    assert done.returncode == 0 and "inference_deepseek-r1" in done.stdout


def test_dry_run_does_not_import_heavy_modules(tmp_path):
    code = ("import sys; from llmb_plugin_deepseek_r1.host import cli; rc = cli.main(%r); "
            "heavy = [m for m in ('pandas', 'submitit', 'matplotlib', 'numpy') if m in sys.modules]; "
            "print(rc, heavy)") % (RUN_ARGS + ["--dry-run", "--json"],)
    done = subprocess.run([PYTHON, "-c", code], env=python_env(LLMB_INSTALL=str(tmp_path)), capture_output=True,
                          text=True)
    assert done.stdout.strip().splitlines()[-1] == "0 []", done.stderr


def test_sweep_expands_cartesian_product(dry_run_json):
    doc = dry_run_json(USE_CASES="chat:128/128", MAX_BATCH_SIZE="128,256,384", CONCURRENCY="64,-1")
    points = [(j["use_cases"][0]["max_batch_size"], j["use_cases"][0]["concurrency"]) for j in doc["jobs"]]
    assert points == [(128, 64), (128, -1), (256, 64), (256, -1), (384, 64), (384, -1)]


def test_sweep_file_and_env_axis(dry_run_json, tmp_path):
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text("KV_CACHE_FRACTION: [0.7, 0.8]\nSTREAMING: [true, false]\n")
    doc = dry_run_json(USE_CASES="chat:128/128", SWEEP_FILE=str(sweep), NUM_REQUESTS="100,200")
    seen = {(uc["kv_cache_free_gpu_mem_fraction"], uc["streaming"], uc["num_requests"])
            for job in doc["jobs"] for uc in job["use_cases"]}
    assert len(doc["jobs"]) == 8 and len(seen) == 8


@pytest.mark.parametrize("knobs, fragment", [
    ({"USE_CASES": "summarization:8000/512", "MAX_NUM_TOKENS": "9000,4000"}, "MAX_NUM_TOKENS=4000 is smaller"),
    ({"MAX_BATCH_SIZE": "128,,256"}, "an empty value in the comma-separated list"),
    ({"SWEEP_FILE": "/nonexistent/sweep.yaml"}, "SWEEP_FILE='/nonexistent/sweep.yaml' cannot be read"),
])
def test_sweep_is_validated_as_a_whole(run_cli, monkeypatch, knobs, fragment):
    for key, value in knobs.items():
        monkeypatch.setenv(key, value)
    code, out, err = run_cli(*RUN_ARGS, "--dry-run", "--json")
    assert code == 1 and fragment in err and out == ""


def test_repeats_duplicate_each_job(run_cli, monkeypatch):
    monkeypatch.setenv("USE_CASES", "chat:128/128 reasoning:1000/1000")
    code, out, err = run_cli(*RUN_ARGS, "--dry-run", "--json", "-r", "3")
    assert code == 0, err
    assert [j["use_cases"][0]["name"] for j in json.loads(out)["jobs"]] == ["chat"] * 3 + ["reasoning"] * 3
    code, _, err = run_cli(*RUN_ARGS, "--dry-run", "-r", "0")
    assert code == 1 and "--repeats 0 is not valid: expected 1 to 100" in err
