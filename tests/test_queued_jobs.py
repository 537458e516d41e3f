"""Jobs queued before the stage layout still run: benchmark jobs' pickles name ``llmb_plugin_deepseek_r1.entry`` and
``llmb_plugin_deepseek_r1.spec`` (the aliases kept at the package root) and hold a RunSpec with only the fields
of that version; setup jobs' name ``setup_slurm`` and ``setup_model``. The benchmark is the STAND-IN trtllm-bench
(TensorRT-LLM cannot run here)."""

from __future__ import annotations

import ast
import pickle
import subprocess
import sys
from dataclasses import fields

from conftest import REPO
from jobkit import job_environ, load, result_files, specs_for

from llmb_plugin_deepseek_r1.job.entry import run_job_body
from llmb_plugin_deepseek_r1.planning.spec import RunSpec

# RunSpec's fields in 0.1 (llmb_plugin_deepseek_r1/spec.py at the last commit before the layout).
FIELDS_0_1 = ("use_case", "isl", "osl", "max_batch_size", "max_num_tokens", "kv_cache_fraction", "concurrency",
              "num_requests", "tp", "ep", "pp", "streaming", "mode", "attention_dp", "time_limit_min", "workload",
              "model_size", "dtype", "scale", "gpu_type", "gpus_per_node_hw", "install_dir", "workload_dir",
              "model_dir", "image", "trtllm_version", "runtime", "mpi_type", "weight_check", "oom_retries",
              "account", "partition", "gpus_per_node", "container_env", "bench_timeout_s", "hang_grace_s", "knobs")


def old_pickle(spec: RunSpec) -> bytes:
    """What submitit wrote for a 0.1 job: (run_job_body, (specs,)) under the 0.1 module names, the spec's state
    holding only 0.1's fields."""
    old = object.__new__(RunSpec)
    for name in FIELDS_0_1:
        object.__setattr__(old, name, getattr(spec, name))
    data = pickle.dumps((run_job_body, ((old,),)), protocol=2)  # protocol 2: module names as plain text
    data = data.replace(b"llmb_plugin_deepseek_r1.job.entry\n", b"llmb_plugin_deepseek_r1.entry\n")
    data = data.replace(b"llmb_plugin_deepseek_r1.planning.spec\n", b"llmb_plugin_deepseek_r1.spec\n")
    assert b"llmb_plugin_deepseek_r1.entry\n" in data and b"llmb_plugin_deepseek_r1.spec\n" in data
    return data


def test_fields_0_1_are_still_fields_and_every_new_one_has_a_default() -> None:
    names = {f.name: f for f in fields(RunSpec)}
    old_source = subprocess.run(["git", "show", "3882ae6:llmb_plugin_deepseek_r1/spec.py"], cwd=REPO,
                                capture_output=True, text=True)
    if old_source.returncode == 0:  # a clone with history: FIELDS_0_1 is what 0.1 had
        tree = ast.parse(old_source.stdout)
        [cls] = [n for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.name == "RunSpec"]
        assert tuple(s.target.id for s in cls.body if isinstance(s, ast.AnnAssign)) == FIELDS_0_1
    assert set(FIELDS_0_1) <= set(names)
    missing = [n for n, f in names.items() if n not in FIELDS_0_1 and f.default is f.default_factory]
    assert missing == []  # (both MISSING): an old pickle would leave these unset


def test_a_job_pickled_by_0_1_runs_to_a_valid_result(tmp_path) -> None:
    environ = job_environ(tmp_path)
    [spec] = specs_for(environ)
    job = tmp_path / "job.pkl"
    job.write_bytes(old_pickle(spec))
    code = "import pickle, sys; function, args = pickle.load(open(sys.argv[1], 'rb')); function(*args)"
    done = subprocess.run([sys.executable, "-c", code, str(job)], env=environ, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    [path] = result_files(tmp_path)
    assert load(path)["verdict"]["status"] == "VALID"


# SetupOptions' fields in 0.1 (llmb_plugin_deepseek_r1/setup_model.py before the layout); later ones have defaults.
SETUP_FIELDS_0_1 = ("steps", "dry_run", "install_dir", "workload_dir", "model_dir", "repo_id", "revision",
                    "image_uri", "image_file", "arch", "gpu_type", "workers", "use_cases", "requests_source",
                    "offline", "hub_cache", "lock_timeout_s", "manual_install", "slurm")


def test_a_setup_job_pickled_by_0_1_still_makes_its_datasets(tmp_path) -> None:
    from llmb_plugin_deepseek_r1.setup.model import SetupOptions, UseCaseData
    from llmb_plugin_deepseek_r1.setup.slurm import run_heavy_steps

    wdir = tmp_path / "install" / "workloads" / "inference_deepseek-r1"
    dataset = wdir / "dataset_chat_16_8.txt"
    old = object.__new__(SetupOptions)  # what 0.1 pickled: only its own fields in the state
    values = {"steps": ("datasets",), "dry_run": False, "install_dir": tmp_path / "install", "workload_dir": wdir,
              "model_dir": wdir / "DeepSeek-R1-FP4", "repo_id": "nvidia/DeepSeek-R1-FP4", "revision": None,
              "image_uri": "nvcr.io/nvidia/tensorrt-llm/release:1.0.0rc1", "image_file": tmp_path / "i.sqsh",
              "arch": "aarch64", "gpu_type": "gb200", "workers": 1,
              "use_cases": (UseCaseData("chat", 16, 8, 12, dataset),), "requests_source": "test",
              "offline": True, "hub_cache": tmp_path / "hub", "lock_timeout_s": 5.0, "manual_install": False,
              "slurm": None}
    assert tuple(values) == SETUP_FIELDS_0_1
    for name, value in values.items():
        object.__setattr__(old, name, value)
    data = pickle.dumps((run_heavy_steps, (old,)), protocol=2)
    data = data.replace(b"llmb_plugin_deepseek_r1.setup.slurm\n", b"llmb_plugin_deepseek_r1.setup_slurm\n")
    data = data.replace(b"llmb_plugin_deepseek_r1.setup.model\n", b"llmb_plugin_deepseek_r1.setup_model\n")
    assert b"llmb_plugin_deepseek_r1.setup_slurm\n" in data and b"llmb_plugin_deepseek_r1.setup_model\n" in data
    job = tmp_path / "setup.pkl"
    job.write_bytes(data)
    code = ("import json, pickle, sys; function, args = pickle.load(open(sys.argv[1], 'rb')); "
            "print(json.dumps(function(*args)['steps']))")
    done = subprocess.run([sys.executable, "-c", code, str(job)], capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert done.returncode == 0, done.stderr[-2000:]
    assert dataset.is_file() and len(dataset.read_text().splitlines()) == 12
