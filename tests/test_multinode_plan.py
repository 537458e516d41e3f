"""Multi-node planning without Slurm: scales as whole nodes, the NVLink segment, TP x PP x EP against the world,
the dry run's layout and srun line, sbatch parameters, the per-node preflight verdicts and srun's failure lines.
Exact expected values; the real two-node runs are in test_multinode.py."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from llmb_plugin_deepseek_r1.host.contract import JobPlan, SlurmParams
from llmb_plugin_deepseek_r1.host.errors import ValidationError
from llmb_plugin_deepseek_r1.host.layout import node_layout, sbatch_supports_segment, segment_size
from llmb_plugin_deepseek_r1.host.submit import group_for_arrays, slurm_parameters
from llmb_plugin_deepseek_r1.host.validate import validate_request
from llmb_plugin_deepseek_r1.job.nodes import expand_nodelist, judge_nodes, probe_argv
from llmb_plugin_deepseek_r1.planning.runtime import launch_argv, world_layout
from llmb_plugin_deepseek_r1.recipe import load_metadata
from llmb_plugin_deepseek_r1.report.failure import classify_failure, failed_rank

META = load_metadata()
RUN = ["single", "-w", "inference_deepseek-r1", "-s", "671b"]


@pytest.mark.parametrize("nodes, size", [(1, 1), (2, 2), (8, 8), (16, 16), (18, 18), (20, 10), (32, 16),
                                         (36, 18), (54, 18), (19, 1)])
def test_segment_is_the_largest_divisor_up_to_18_as_llmb_run(nodes, size):
    assert segment_size(nodes) == size


def test_node_layout_per_gpu_type():
    assert node_layout(META, "gb200", 8).to_dict() == {"scale": 8, "gpus_per_node": 4, "nodes": 2,
                                                       "tasks_per_node": 4, "segment": 2}
    assert node_layout(META, "h100", 16).to_dict() == {"scale": 16, "gpus_per_node": 8, "nodes": 2,
                                                       "tasks_per_node": 8, "segment": None}
    assert node_layout(META, "gb200", 2).nodes == 1 and node_layout(META, "gb200", 2).tasks_per_node == 2
    assert node_layout(META, "gb300", 72).segment == 18
    assert node_layout(META, "gb200", 16, "0").segment is None
    assert node_layout(META, "gb200", 16, "2").segment == 2


@pytest.mark.parametrize("gpu_type, scale, override, fragment", [
    ("gb200", 6, None, "scale 6 is not a whole number of gb200 nodes (4 GPUs each): use a multiple of 4, e.g. 4 or 8"),
    ("h100", 12, None, "scale 12 is not a whole number of h100 nodes (8 GPUs each)"),
    ("gb200", 16, "3", "SBATCH_SEGMENT_SIZE=3 does not divide the job's 4 node(s)"),
    ("gb200", 16, "x", "SBATCH_SEGMENT_SIZE='x' is not valid"),
])
def test_bad_layouts_are_one_line_errors(gpu_type, scale, override, fragment):
    with pytest.raises(ValidationError, match=None) as info:
        node_layout(META, gpu_type, scale, override)
    assert fragment in str(info.value) and "\n" not in str(info.value)


def test_metadata_lists_scales_per_gpu_type_and_dtype():
    validate_request(META, "inference_deepseek-r1", "gb200", "671b", "nvfp4", 32)
    validate_request(META, "inference_deepseek-r1", "h100", "671b", "fp8", 16)
    with pytest.raises(ValidationError, match="exact scales only: 16"):
        validate_request(META, "inference_deepseek-r1", "h100", "671b", "fp8", 8)
    with pytest.raises(ValidationError, match="dtype 'nvfp4' is not available .* on h100; available: fp8"):
        validate_request(META, "inference_deepseek-r1", "h100", "671b", "nvfp4", 16)
    toy = {"run": {"gpus_per_node": {"gb200": 4}, "gpu_configs": {"gb200": {"model_configs": [
        {"model_size": "1b", "dtypes": ["bf16"], "scales": [1], "exact_scales": False}]}}}}
    with pytest.raises(ValidationError, match="scale 10 is not a whole number of gb200 nodes"):
        validate_request(toy, "toy", "gb200", "1b", "bf16", 10)


@pytest.mark.parametrize("version, ok", [("slurm 22.05.8", False), ("slurm 23.02.7", False),
                                         ("slurm 23.11.1", True), ("slurm 24.05.3", True), (None, False)])
def test_segment_needs_slurm_23_11(version, ok):
    assert sbatch_supports_segment(version) is ok


def plan(segment: int | None, nodes: int = 2) -> JobPlan:
    return JobPlan(name="j", slurm=SlurmParams(job_name="j", nodes=nodes, ntasks_per_node=4, time_min=30,
                                               gpus_per_node=4, segment=segment), container={}, use_cases=[])


def test_sbatch_parameters_carry_nodes_gres_exclusive_and_segment():
    assert slurm_parameters([plan(2)]) == {
        "job_name": "j", "nodes": 2, "ntasks_per_node": 4, "time": 30, "use_srun": False, "signal_delay_s": 60,
        "exclusive": True, "gpus_per_node": 4, "additional_parameters": {"segment": 2}}
    assert "additional_parameters" not in slurm_parameters([plan(2)], segment_supported=False)
    assert group_for_arrays([plan(2), plan(2), plan(1), plan(2, nodes=4)]) == [[0, 1], [2], [3]]


def dry_run(run_cli, monkeypatch, gpu_type: str, *args: str, **knobs: str) -> dict:
    monkeypatch.setenv("GPU_TYPE", gpu_type)
    for key, value in knobs.items():
        monkeypatch.setenv(key, value)
    code, out, err = run_cli(*RUN, *args, "--dry-run", "--json")
    assert code == 0, err
    return json.loads(out)


def test_h100_fp8_16_is_two_nodes_of_eight_tp8_pp2_ep8(run_cli, monkeypatch):
    doc = dry_run(run_cli, monkeypatch, "h100", "--dtype", "fp8", "--scale", "16", USE_CASES="chat:128/128",
                  PROFILE="26.05")  # NVIDIA's only H100 table
    [job] = doc["jobs"]
    assert (job["slurm"]["nodes"], job["slurm"]["ntasks_per_node"], job["slurm"]["segment"]) == (2, 8, None)
    [uc] = job["use_cases"]
    assert (uc["tp"], uc["pp"], uc["ep"]) == (8, 2, 8)
    assert uc["world"] == {"size": 16, "nodes": 2, "ranks_per_node": 8, "layout": [
        "node 1/2: ranks 0-7 (PP stage 0, TP ranks 0-7; EP 8 across TP); rank 0 writes the report",
        "node 2/2: ranks 8-15 (PP stage 1, TP ranks 0-7; EP 8 across TP)"]}
    assert uc["launch_command"][:7] == ["srun", "--mpi=pmix", "--nodes=2", "--ntasks-per-node=8",
                                        "--kill-on-bad-exit=1", f"--container-image={job['container']['image']}",
                                        f"--container-mounts={','.join(job['container']['mounts'])}"]
    assert shlex.split(uc["launch_command"][-1]) == uc["command"]


def test_gb200_8_is_dep8_on_two_trays_with_segment(run_cli, monkeypatch):
    doc = dry_run(run_cli, monkeypatch, "gb200", "--dtype", "nvfp4", "--scale", "8", USE_CASES="chat:128/128")
    [job] = doc["jobs"]
    assert (job["slurm"]["nodes"], job["slurm"]["ntasks_per_node"], job["slurm"]["segment"]) == (2, 4, 2)
    uc = job["use_cases"][0]
    assert (uc["tp"], uc["pp"], uc["ep"]) == (8, 1, 8) and uc["world"]["layout"][1].startswith(
        "node 2/2: ranks 4-7 (PP stage 0, TP ranks 4-7")
    assert "--ntasks-per-node=4" in uc["launch_command"] and "--nodes=2" in uc["launch_command"]


def test_text_dry_run_shows_nodes_tasks_segment_srun_and_layout(run_cli, monkeypatch):
    monkeypatch.setenv("GPU_TYPE", "gb200")
    monkeypatch.setenv("USE_CASES", "chat:128/128")
    code, out, err = run_cli(*RUN, "--dtype", "nvfp4", "--scale", "16", "--dry-run")
    assert code == 0, err
    for line in ("    nodes: 4", "    ntasks_per_node: 4", "    segment: 4", "      size: 16",
                 "        - node 4/4: ranks 12-15 (PP stage 0, TP ranks 12-15; EP 16 across TP)",
                 "    launch_command: srun --mpi=pmix --nodes=4 --ntasks-per-node=4 --kill-on-bad-exit=1 "):
        assert line in out, line


@pytest.mark.parametrize("knobs, fragment", [
    ({"TP": "4"}, "TP=4 x PP=1 = 4 ranks does not match --scale 8 on 2 nodes x 4"),
    ({"EP": "3"}, "EP=3 is not valid with TP=8: the expert-parallel size must divide TP, and so the world of 8"),
])
def test_parallelism_is_checked_against_the_world_before_submission(run_cli, monkeypatch, knobs, fragment):
    monkeypatch.setenv("GPU_TYPE", "gb200")
    for key, value in knobs.items():
        monkeypatch.setenv(key, value)
    code, out, err = run_cli(*RUN, "--dtype", "nvfp4", "--scale", "8", "--dry-run")
    assert code == 1 and fragment in err and out == ""


def test_world_layout_of_a_pipeline_split_inside_a_node():
    from test_trtllm import make_spec

    spec = make_spec(scale=8, tp=2, pp=4, ep=2, nodes=2, tasks_per_node=4)
    assert world_layout(spec) == [
        "node 1/2: ranks 0-3 (PP stages 0-1, TP ranks 0-1; EP 2 across TP); rank 0 writes the report",
        "node 2/2: ranks 4-7 (PP stages 2-3, TP ranks 0-1; EP 2 across TP)"]
    assert launch_argv(make_spec(runtime="none", nodes=2, tasks_per_node=4, scale=8, tp=8, ep=8), ["x"],
                       under_slurm=True)[:5] == ["srun", "--mpi=pmix", "--nodes=2", "--ntasks-per-node=4",
                                                 "--kill-on-bad-exit=1"]


@pytest.mark.parametrize("text, nodes", [("n[1-2]", ["n1", "n2"]), ("gpu-a[01-03,07],gpu-b7",
                                          ["gpu-a01", "gpu-a02", "gpu-a03", "gpu-a07", "gpu-b7"]),
                                         ("vm", ["vm"]), ("", [])])
def test_node_lists_expand(text, nodes):
    assert expand_nodelist(text) == nodes


def gpu(index: int, name: str = "NVIDIA GB200", cc=(10, 0), driver: str = "570.133.20") -> dict:
    return {"index": index, "name": name, "uuid": f"GPU-{index}", "compute_capability": list(cc),
            "memory_total_mib": 189471, "memory_used_mib": 0, "memory_free_mib": 189471, "driver": driver}


SEEN = {"model_dir": {"exists": True, "files": 3, "digest": "d"}, "dataset": {"exists": True, "bytes": 100}}


def node(name: str, gpus=4, **changes) -> dict:
    report = {"node": name, "gpus": [gpu(i) for i in range(gpus)] if gpus else None,
              "gpus_how": "nvidia-smi failed (exit 6): No devices were found" if not gpus else "nvidia-smi", **SEEN}
    report.update(changes)
    return report


def judged(reports, expected=("n1", "n2")):
    checks = judge_nodes(reports, list(expected), ranks_per_node=4, dtype="nvfp4", model_dir=Path("/m"),
                         dataset=Path("/d"), reference=SEEN, srun_stderr="srun: error: n2: task 1: Exited with exit code 1")
    return [(c.name, c.detail) for c in checks if c.status == "failed"]


def test_every_node_passes_when_all_see_the_same():
    assert judged([node("n1"), node("n2")]) == []


def test_failing_nodes_are_named():
    assert judged([node("n1"), node("n2", gpus=0)]) == [
        ("node n2 gpus", "node n2: no GPUs found (nvidia-smi failed (exit 6): No devices were found); the other "
                         "nodes see 4")]
    assert judged([node("n1"), node("n2", gpus=2)])[0][1] == "node n2: found 2 GPU(s) (NVIDIA GB200); this job needs 4"
    assert judged([node("n1")]) == [("node n2", "node n2 did not answer the preflight (srun: error: n2: task 1: "
                                                "Exited with exit code 1)")]
    assert judged([node("n1"), node("n2", dataset={"exists": False})]) == [
        ("node n2 dataset", "node n2 cannot see /d: is it on a filesystem every node mounts?")]
    assert judged([node("n1"), node("n2", model_dir={"exists": True, "files": 2, "digest": "x"})])[0][0] == \
        "node n2 model_dir"
    odd = node("n2")
    odd["gpus"][3] = gpu(3, driver="550.1")
    assert judged([node("n1"), odd])[0][1].startswith("node n2: GPU 3 is NVIDIA GB200 (189471 MiB, driver 550.1)")


def test_probe_is_one_task_per_node_without_mpi():
    assert probe_argv(2, "/venv/bin/python", Path("/m"), Path("/d")) == [
        "srun", "--nodes=2", "--ntasks-per-node=1", "--mpi=none", "--kill-on-bad-exit=0", "/venv/bin/python", "-m",
        "llmb_plugin_deepseek_r1", "node-check", "--model-dir", "/m", "--dataset", "/d"]


SRUN_CRASH = """mpi_rank: 5
RuntimeError: boom
srun: error: n2: task 5: Exited with exit code 1
srun: launch/slurm: _step_signal: Terminating StepId=16.1
srun: error: n1: tasks 0-3: Killed
srun: error: n2: tasks 4,6-7: Killed
"""


def test_srun_names_the_rank_that_failed_first_not_the_ones_it_killed():
    assert failed_rank([SRUN_CRASH]) == {"node": "n2", "rank": 5, "ranks": "5", "how": "Exited with exit code 1",
                                         "line": "srun: error: n2: task 5: Exited with exit code 1"}
    assert failed_rank(["srun: error: n1: tasks 0-3: Killed\nsrun: error: n2: tasks 4-7: Killed\n"]) is None
    assert failed_rank(["srun: error: n2: tasks 4-7: Segmentation fault\n"])["rank"] == 4


def test_world_size_mismatch_is_a_launch_error():
    failure = classify_failure(["ValueError: world_size must equal to pp_size * cp_size * tp_size, but got 8 != "
                                "2 * 1 * 8"])
    assert failure is not None and failure.category == "launch_error" and failure.detail == "world size"
