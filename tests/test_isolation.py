"""The suite does not depend on the caller's shell: every knob the workload declares (its registry,
planning/knobs.py, through Workload.knobs) and every variable the host reads is cleared for each test."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from conftest import REPO

from llmb_plugin_deepseek_r1.host.cluster import HOST_VARIABLES
from llmb_plugin_deepseek_r1.plugin import DeepSeekR1Workload
from llmb_plugin_deepseek_r1.planning import knobs

HOSTILE = {"SWEEP_FILE": "/nonexistent", "HANG_GRACE": "abc", "MAX_NUM_TOKENS": "1", "USE_CASES": "bad",
           "MODEL_PATH": "relative/path", "STAGE_PATH": "/old", "WEIGHT_CHECK": "maybe", "PROMPT_REQUESTS": "0"}


def test_the_registry_is_what_the_workload_declares_and_tests_start_without_it():
    assert DeepSeekR1Workload.knobs == knobs.ALL_KNOBS
    assert set(knobs.RUN_KNOBS) <= set(knobs.ALL_KNOBS) and "HANG_GRACE" in knobs.RUN_KNOBS
    leaked = [var for var in (*knobs.ALL_KNOBS, *HOST_VARIABLES) if var in os.environ]
    assert leaked in ([], ["LLMB_RESULTS_CACHE"])  # the session points the results cache at a temporary folder
    assert os.environ.get("LLMB_RESULTS_CACHE", "/") != "bad"


def test_a_part_of_the_suite_passes_in_a_hostile_shell():
    """Knobs exported with bad values, as a developer's shell may have them (the issue's four, and every knob
    of the registry): the tests pass as in a clean one."""
    every_knob_bad = {var: "bad" for var in (*knobs.ALL_KNOBS, *HOST_VARIABLES)}
    env = {**os.environ, **every_knob_bad, **HOSTILE, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x",
                           "tests/test_cli.py", "tests/test_trtllm.py",
                           "tests/test_setup.py::test_a_failing_layout_stops_the_other_steps"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert " passed" in done.stdout and "failed" not in done.stdout


def test_every_variable_the_workload_reads_by_name_is_registered():
    """A knob read somewhere in the package but missing from the registry would leak the caller's shell into
    the tests (the hub's, Slurm's and the job's own identity variables are not settings)."""
    not_settings = {"CONDA_PREFIX", "CUDA_VISIBLE_DEVICES", "HF_ENDPOINT", "HF_HOME", "HF_HUB_CACHE",
                    "HF_HUB_OFFLINE", "HF_TOKEN", "HUGGINGFACE_HUB_CACHE", "LLMB_JOB_ID", "PATH",
                    "LLMB_EXPERIMENT_DIR",  # set by the host for the job, not read from the user's shell
                    "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID", "SLURM_JOB_NODELIST", "SLURMD_NODENAME",
                    "SUBMITIT_LOCAL_JOB_ID",
                    "TRANSFORMERS_OFFLINE", "XDG_CACHE_HOME"}
    read = set()
    for path in (REPO / "llmb_plugin_deepseek_r1").rglob("*.py"):
        text = path.read_text()
        read |= set(re.findall(r'(?:env|environ|environment)(?:\.get\(|\[)\s*"([A-Z][A-Z0-9_]+)"', text))
        read |= set(re.findall(r'_set\(env, "([A-Z][A-Z0-9_]+)"\)', text))
    assert read - set(knobs.ALL_KNOBS) - set(HOST_VARIABLES) - not_settings == set()
