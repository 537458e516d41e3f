"""Helpers for job-body tests: a workspace with the stand-in trtllm-bench on PATH and resolved run specs.

The benchmark is the STAND-IN tests/fake_trtllm/trtllm-bench (TensorRT-LLM cannot run here): it honours the real
command line, reads the dataset and prints a report in the real format.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import FAKE_TRTLLM, REPO, python_env


def make_model_dir(path: Path, vocab_size: int = 5000, eos_id: int = 1) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps({"vocab_size": vocab_size, "eos_token_id": eos_id}))
    return path


def job_environ(install: Path, **extra: str) -> dict[str, str]:
    """A job's environment: stand-in on PATH, runtime none, small use case, weight check skipped unless asked."""
    env = python_env()
    for var in [k for k in env if k.startswith(("SLURM_", "FAKE_TRTLLM_", "SUBMITIT_")) and k != "SLURM_CONF"]:
        env.pop(var)
    env.update(LLMB_INSTALL=str(install), PATH=f"{FAKE_TRTLLM}{os.pathsep}{env.get('PATH', '')}",
               USE_CASES="chat:64/32", NUM_REQUESTS="20", CONTAINER_RUNTIME="none", WEIGHT_CHECK="skip",
               MODEL_PATH=str(make_model_dir(install / "models" / "DeepSeek-R1-FP4")), LLMB_JOB_ID="4242")
    env.update(extra)
    return env


def specs_for(environ: dict[str, str], cwd: Path | None = None):
    from llmb_plugin_deepseek_r1.job.launch import request_from_environment
    from llmb_plugin_deepseek_r1.recipe import load_metadata
    from llmb_plugin_deepseek_r1.planning.spec import resolve_run_specs

    request = request_from_environment(environ, cwd or Path(environ["LLMB_INSTALL"]), model_size="671b",
                                       dtype="nvfp4", scale=4)
    return resolve_run_specs(request, load_metadata())


def result_files(install: Path) -> list[Path]:
    return sorted((install / "workloads" / "inference_deepseek-r1" / "experiments").glob("*/*[0-9].json"))


def load(path: Path) -> dict:
    return json.loads(path.read_text())


def start_job_body(environ: dict[str, str], use_case: str = "chat") -> subprocess.Popen[str]:
    """The job body for ``environ``'s use cases in a child process, returned once it starts ``use_case``'s
    benchmark (the job prints "[llmb] running <use case>" just before), so a test can signal it mid-run."""
    code = ("import os, sys; sys.path.insert(0, %r); from jobkit import specs_for; "
            "from llmb_plugin_deepseek_r1.job.entry import run_job_body; "
            "run_job_body(tuple(specs_for(dict(os.environ))), dict(os.environ))") % str(REPO / "tests")
    proc = subprocess.Popen([sys.executable, "-c", code], env=environ, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith(f"[llmb] running {use_case}"):
            return proc
    proc.wait(timeout=60)
    raise AssertionError(f"the job body ended (exit {proc.returncode}) before running {use_case}")
