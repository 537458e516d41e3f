"""Every flag of NVIDIA llmb-run 1.15's `submit` (plus the global -v/--version and `jobs` without an action):
accepted with its meaning, or refused with a one-line reason and exit 1. Dry runs only; nothing is submitted."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

W = "inference_deepseek-r1"
TASK = ["-w", W, "-s", "671b", "--dtype", "nvfp4", "--scale", "4"]


@pytest.fixture
def submit(run_cli, monkeypatch):
    """`llmb-run submit ... --dry-run --json` in a cwd with a schema-2 cluster_config.yaml."""
    monkeypatch.setenv("USE_CASES", "chat:128/128")
    Path("cluster_config.yaml").write_text(yaml.safe_dump({
        "schema_version": 2, "llmb_repo": "/repo", "llmb_install": str(Path.cwd().parent / "llmb"),
        "gpu_type": "gb200", "slurm": {"account": "acct", "gpu": {"partition": "gpu", "gres": 4}},
        "workloads": {"installed": [W]}}))

    def run(*args: str, dry: bool = True) -> tuple[int, str, str]:
        return run_cli(*((["submit"] if args[:1] != ("-v",) else []) + list(args)
                         + (["--dry-run", "--json"] if dry else [])))

    return run


def jobs_of(out: str) -> list[dict]:
    doc = json.loads(out)
    return [job for task in doc.get("tasks", [doc]) for job in task["jobs"]]


def tasks_of(out: str) -> list[dict]:
    doc = json.loads(out)
    return doc.get("tasks", [doc])


ACCEPTED = [
    ("explicit", TASK, lambda out: len(jobs_of(out)) == 1),
    ("size in the name", ["-w", f"{W}_671b", "--dtype", "nvfp4", "--scale", "4"], lambda out: len(jobs_of(out)) == 1),
    ("every size of a workload", ["-w", W, "-d", "nvfp4", "--scale", "4"], lambda out: len(jobs_of(out)) == 1),
    ("comma lists", ["-w", f"{W},{W}_671b", "-d", "nvfp4,fp8", "--scale", "4,8"],
     lambda out: [t["scale"] for t in tasks_of(out)] == [4, 8]),  # fp8 is not listed for gb200
    ("--max-scale", ["-w", W, "--max-scale", "8"], lambda out: [t["scale"] for t in tasks_of(out)] == [4, 8]),
    ("--min-scale", ["-w", W, "--min-scale"], lambda out: [t["scale"] for t in tasks_of(out)] == [4]),
    ("--exact-scales", ["-w", W, "--max-scale", "64", "--exact-scales"],
     lambda out: [t["scale"] for t in tasks_of(out)] == [4, 8, 16, 32]),
    ("-r/--repeats", [*TASK, "-r", "2"], lambda out: len(jobs_of(out)) == 2),
    ("-p/--profile", [*TASK, "-p"], lambda out: json.loads(out)["environment"]["ENABLE_PROFILE"]["value"] == "true"),
    ("--dump-env", [*TASK, "--dump-env"],
     lambda out: json.loads(out)["environment"]["LLMB_DUMP_ENV"]["value"] == "true"),
    ("--force", ["-w", W, "-s", "671b", "--dtype", "nvfp4", "--scale", "2", "--force", "--env", "TP=2",
                 "--env", "EP=2"], lambda out: json.loads(out)["scale"] == 2),  # 2 is not an exact scale
    ("--nice/--nodelist/--exclude/--reservation/--segment",
     [*TASK, "--nice", "10", "--nodelist", "n[1-2]", "--exclude", "n3", "--reservation", "bench", "--segment", "2"],
     lambda out: jobs_of(out)[0]["slurm"]["additional"] == {"nodelist": "n[1-2]", "exclude": "n3",
                                                            "reservation": "bench", "segment": "2", "nice": "10"}),
    ("--slurm-arg bare and key=value", [*TASK, "--slurm-arg", "exclusive", "--slurm-arg", "constraint=gpu"],
     lambda out: jobs_of(out)[0]["slurm"]["additional"] == {"exclusive": True, "constraint": "gpu"}),
    ("--env", [*TASK, "--env", "NCCL_DEBUG=INFO"],
     lambda out: json.loads(out)["environment"]["NCCL_DEBUG"] == {"value": "INFO", "source": "--env"}
     and json.loads(out)["environment"]["LLMB_CONTAINER_ENV"]["value"] == "NCCL_DEBUG"),
]


@pytest.mark.parametrize("name, args, check", ACCEPTED, ids=[a[0] for a in ACCEPTED])
def test_accepted_flags(submit, name, args, check):
    code, out, err = submit(*args)
    assert code == 0, err
    assert check(out)


def test_job_files_yaml_and_text(submit, tmp_path):
    yml = tmp_path / "jobs.yaml"
    yml.write_text(yaml.safe_dump({f"{W}_671b": {
        "defaults": {"env": {"NCCL_DEBUG": "WARN"}}, "dtypes": "nvfp4", "scales": [4], "repeats": 2,
        "tasks": [{"overrides": {"env": {"MAX_BATCH_SIZE": 64}}}, {"repeats": 1, "profile": True}]}}))
    code, out, err = submit("-f", str(yml))
    assert code == 0, err
    tasks = tasks_of(out)
    assert [len(t["jobs"]) for t in tasks] == [2, 1]
    assert tasks[0]["environment"]["MAX_BATCH_SIZE"]["value"] == "64"
    assert tasks[0]["environment"]["NCCL_DEBUG"]["value"] == "WARN"
    assert tasks[1]["environment"]["ENABLE_PROFILE"]["value"] == "true"
    txt = tmp_path / "jobs.txt"
    txt.write_text(f"{W}_671b:\n('nvfp4', [4], 2)\n# profiled\n('nvfp4', [4], 1, True)\n")
    code, out, err = submit("-f", str(txt))
    assert code == 0, err
    assert [len(t["jobs"]) for t in tasks_of(out)] == [2, 1]


REFUSED = [
    ("--proxy", [*TASK, "--proxy"], "--proxy needs proxy_scales"),
    ("dedicated flag via --slurm-arg", [*TASK, "--slurm-arg", "nodelist=n1"], "nodelist has its own flag: use --nodelist"),
    ("leading -- in --slurm-arg", [*TASK, "--slurm-arg=--exclusive"], "leave out the leading '--'"),
    ("--scale with --max-scale", ["-w", W, "--scale", "4", "--max-scale", "8"], "cannot use --scale with --max-scale"),
    ("-s without -w", ["-s", "671b", "--scale", "4"], "--model-size needs --workload"),
    ("-s with several workloads", ["-w", f"{W},x", "-s", "671b", "--scale", "4"], "cannot be used with several"),
    ("-f with -w", ["-f", "x.yaml", "-w", W], "cannot mix -f/--file with"),
    ("--force with a list", ["-w", W, "-s", "671b", "--dtype", "nvfp4", "--scale", "4,8", "--force"],
     "--scale must be single values"),
    ("no scale", ["-w", W, "-s", "671b", "--dtype", "nvfp4"], "a scale is needed"),
    ("bad --env", [*TASK, "--env", "1BAD=x"], "--env is not valid: expected KEY=VALUE with KEY made of letters"),
    ("repeated --env", [*TASK, "--env", "A=1", "--env", "A=2"], "--env A is given twice"),
    ("bad --segment", [*TASK, "--segment", "0"], "--segment '0' is not valid"),
    ("unknown dtype", ["-w", W, "-s", "671b", "--dtype", "fp8", "--scale", "4"], "dtype 'fp8' is not available"),
    ("nothing matches", ["-w", W, "--dtype", "fp8", "--scale", "4"], "no matching job configurations"),
]
USAGE = [  # argparse's usage errors: exit 2 with the usage line, as llmb-run 1.15 (click) exits 2
    ("bad --nice", [*TASK, "--nice", "low"], "argument --nice: invalid int value: 'low'"),
    ("unknown flag", [*TASK, "--bogus"], "unrecognized arguments: --bogus"),
    ("missing value", [*TASK, "--segment"], "argument --segment: expected one argument"),
]


@pytest.mark.parametrize("name, args, message", REFUSED, ids=[r[0] for r in REFUSED])
def test_refused_flags_say_why_in_one_line(submit, name, args, message):
    code, out, err = submit(*args)
    assert code == 1 and out == ""
    assert err.startswith("error: ") and err.strip().count("\n") == 0 and message in err, err


@pytest.mark.parametrize("name, args, message", USAGE, ids=[u[0] for u in USAGE])
def test_usage_errors_exit_2_with_the_reason_on_the_last_line(submit, name, args, message):
    code, out, err = submit(*args)
    assert code == 2 and out == "" and "usage:" in err
    assert message in err.strip().splitlines()[-1], err


def test_not_installed_is_refused_unless_forced(submit):
    data = yaml.safe_load(Path("cluster_config.yaml").read_text())
    data["workloads"]["installed"] = ["pretrain_other"]
    Path("cluster_config.yaml").write_text(yaml.safe_dump(data))
    code, _, err = submit(*TASK)
    assert code == 1 and "workload 'inference_deepseek-r1' is not installed on this cluster" in err
    assert "--force" in err
    code, out, err = submit(*TASK, "--force")
    assert code == 0, err


def test_global_verbose_before_the_command_says_where_settings_came_from(submit, monkeypatch):
    monkeypatch.setenv("SBATCH_PARTITION", "shell_partition")
    code, out, err = submit("-v", "submit", *TASK, "--env", "MAX_BATCH_SIZE=64")
    assert code == 0, err
    assert "SBATCH_PARTITION=gpu  <- cluster_config.yaml slurm" in err
    assert "MAX_BATCH_SIZE=64  <- --env" in err and "USE_CASES=chat:128/128  <- shell" in err
    assert "gpu type: gb200 (from cluster_config.yaml gpu_type)" in err


def test_the_workloads_venv_runs_the_job(submit, tmp_path):
    """workloads.config.<key>.venv_path (the installer's venv) is the job's Python; a venv without python3 is a
    one-line configuration error."""
    venv = tmp_path / "venv"
    data = yaml.safe_load(Path("cluster_config.yaml").read_text())
    data["workloads"]["config"] = {W: {"venv_path": str(venv), "venv_type": "uv"}}
    Path("cluster_config.yaml").write_text(yaml.safe_dump(data))
    code, out, err = submit(*TASK)
    assert code == 1 and f"workloads.config.{W}.venv_path {venv} has no bin/python3" in err
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python3").symlink_to(sys.executable)
    code, out, err = submit(*TASK)
    assert code == 0, err
    assert json.loads(out)["python"] == {"path": str(venv / "bin" / "python3"),
                                         "source": f"cluster_config.yaml workloads.config.{W}.venv_path"}


def test_version_and_jobs_without_action(run_cli):
    code, out, _ = run_cli("--version")
    assert code == 0 and out.startswith("llmb-run ") and "1.15" in out
    code, out, err = run_cli("jobs")
    assert code == 0 and "No submitted jobs." in out, err


def test_single_keeps_the_25_07_spelling(run_cli, monkeypatch):
    monkeypatch.setenv("USE_CASES", "chat:128/128")
    code, out, err = run_cli("single", *TASK[:6], "--scale", "4", "-p", "-d", "--json")
    assert code == 0, err
    assert json.loads(out)["environment"]["ENABLE_PROFILE"]["value"] == "true"


def test_gpus_per_node_is_honoured(submit, monkeypatch):
    """NVIDIA's launchers read GPUS_PER_NODE in place of the GPU type's count; so does the plan."""
    monkeypatch.setenv("GPUS_PER_NODE", "2")
    code, out, err = submit(*TASK)
    assert code == 0, err
    slurm = jobs_of(out)[0]["slurm"]
    assert (slurm["nodes"], slurm["ntasks_per_node"]) == (2, 2)  # two nodes of 2 GPUs
    monkeypatch.setenv("GPUS_PER_NODE", "8")
    code, out, err = submit(*TASK)
    assert code == 0, err
    slurm = jobs_of(out)[0]["slurm"]
    assert (slurm["nodes"], slurm["ntasks_per_node"]) == (1, 4)


def test_explicit_env_reaches_the_container(tmp_path):
    """--env keys are listed in LLMB_CONTAINER_ENV (NVIDIA's contract), and the job passes them into the container,
    a secret included: naming it on the command line is asking for it."""
    from jobkit import job_environ, specs_for
    from llmb_plugin_deepseek_r1.job.run import benchmark_environment
    from llmb_plugin_deepseek_r1.planning.runtime import container_environment

    environ = job_environ(tmp_path, HF_TOKEN="hf_abcdef123456", MY_SETTING="1", OTHER="x",
                         LLMB_CONTAINER_ENV="HF_TOKEN,MY_SETTING")
    [spec] = specs_for(environ)
    assert set(spec.container_env) >= {"HF_TOKEN", "MY_SETTING"}
    passed = container_environment(benchmark_environment(environ, spec.container_env), spec.container_env)
    assert passed["HF_TOKEN"] == "hf_abcdef123456" and passed["MY_SETTING"] == "1" and "OTHER" not in passed
