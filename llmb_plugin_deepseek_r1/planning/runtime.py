"""The container layer: turn the benchmark argv into the argv that runs it (pure functions).

``pyxis``  srun + pyxis flags, the recipe's way on a Slurm cluster (default);
``none``   run on the host (TensorRT-LLM installed natively, and the tests' stand-in), through srun under Slurm;
``docker`` a single machine without Slurm.
Where a shell is unavoidable (srun ... bash -c), every piece is quoted with shlex.
"""

from __future__ import annotations

import re
import shlex
from typing import TYPE_CHECKING, Mapping

from llmb_plugin_deepseek_r1.host.contract import is_secret_name

if TYPE_CHECKING:
    from .spec import RunSpec

# Variables a TensorRT-LLM container may need from the job's environment; anything else must be asked for by
# name (CONTAINER_ENV), and secrets never pass unless named there.
CONTAINER_ENV_PREFIXES = ("TRTLLM_", "TLLM_", "NCCL_", "CUDA_", "NVIDIA_", "UCX_", "OMPI_", "PMIX_", "LLMB_")
LAUNCHER = "trtllm-llmapi-launch"


def nodes(spec: RunSpec) -> int:
    return spec.nodes


def tasks_per_node(spec: RunSpec) -> int:
    return spec.ranks_per_node


def srun_argv(spec: RunSpec) -> list[str]:
    """One srun over every node of the allocation, one rank per GPU. --kill-on-bad-exit: a rank that dies on
    any node ends the step everywhere (Slurm's default lets the other ranks run on, hung in their collectives)."""
    return ["srun", f"--mpi={spec.mpi_type}", f"--nodes={nodes(spec)}", f"--ntasks-per-node={tasks_per_node(spec)}",
            "--kill-on-bad-exit=1"]


def world_layout(spec: RunSpec) -> list[str]:
    """Which ranks run where, one line per node: rank r is TP rank r % TP of pipeline stage r // TP."""
    lines = []
    per_node = tasks_per_node(spec)
    for node in range(nodes(spec)):
        first, last = node * per_node, (node + 1) * per_node - 1
        stages = sorted({r // spec.tp for r in range(first, last + 1)})
        stage_text = f"PP stage {stages[0]}" if len(stages) == 1 else f"PP stages {stages[0]}-{stages[-1]}"
        tp_first, tp_last = first % spec.tp, last % spec.tp
        tp_text = f"TP ranks {tp_first}-{tp_last}" if len(stages) == 1 else f"TP ranks 0-{spec.tp - 1}"
        report = "; rank 0 writes the report" if node == 0 else ""
        lines.append(f"node {node + 1}/{nodes(spec)}: ranks {first}-{last} ({stage_text}, {tp_text}; EP {spec.ep} "
                     f"across TP){report}")
    return lines


def mounts(specs: list[RunSpec]) -> list[str]:
    """The workload folder read-write, and the model folder read-only where it lies outside it."""
    result: list[str] = []
    for spec in specs:
        workload = f"{spec.workload_dir}:{spec.workload_dir}"
        if workload not in result:
            result.append(workload)
        try:
            spec.model_dir.relative_to(spec.workload_dir)
        except ValueError:
            model = f"{spec.model_dir}:{spec.model_dir}:ro"
            if model not in result:
                result.append(model)
    return result


def container_environment(env: Mapping[str, str], asked: tuple[str, ...] = ()) -> dict[str, str]:
    """The environment that may pass into the container: the allowed prefixes, plus the names asked for."""
    allowed = {}
    for name, value in env.items():
        if name in asked or (name.startswith(CONTAINER_ENV_PREFIXES) and not is_secret_name(name)):
            allowed[name] = value
    return allowed


PROFILE_DIR = "nsys_profile"


def profile_output(spec: RunSpec, job_token: str) -> str:
    """nsys report name per rank: <result dir>/nsys_profile/profile_<job>_<rank>_<local rank> (nsys expands %q)."""
    return str(spec.result_dir / PROFILE_DIR / f"profile_{job_token}_%q{{SLURM_PROCID}}_%q{{SLURM_LOCALID}}")


def nsys_argv(spec: RunSpec, job_token: str) -> list[str]:
    """NVIDIA's 25.12+ recipe profiling prefix: CUDA + NVTX, capture gated by the CUDA profiler API (TensorRT-LLM
    starts and stops it at PROFILE_START/PROFILE_END), CUDA graphs traced per node."""
    argv = ["nsys", "profile", "-s", "none", "-t", "cuda,nvtx", "-f", "true", "-c", "cudaProfilerApi",
            "--capture-range-end=repeat[]", "--cuda-graph-trace=node", "--cuda-event-trace=false",
            "--cpuctxsw=none", "--cuda-flush-interval=10000"]
    if spec.gpu_metrics:
        argv += ["--gpu-metrics-devices", "all"]
    return argv + ["-o", profile_output(spec, job_token)]


def profile_environment(spec: RunSpec) -> dict[str, str]:
    """TensorRT-LLM's profiling hooks (TLLM_ variables reach the container)."""
    if not spec.nsys_profile:
        return {}
    return {"TLLM_PROFILE_START_STOP": f"{spec.profile_start}-{spec.profile_end}", "TLLM_PROFILE_RECORD_GC": "1",
            "TLLM_LLMAPI_ENABLE_NVTX": "1"}


def launch_argv(spec: RunSpec, bench: list[str], *, under_slurm: bool, env_names: list[str] | None = None,
                job_token: str = "%j") -> list[str]:
    """The full argv the job body runs for one use case."""
    inner = list(bench)
    if not under_slurm and inner and inner[0] == LAUNCHER:
        inner = inner[1:]  # without Slurm, trtllm-bench starts its own MPI workers
    if spec.nsys_profile:
        inner = nsys_argv(spec, job_token) + inner
    command = shlex.join(inner)
    srun = srun_argv(spec)
    if spec.runtime == "pyxis":
        if not under_slurm:
            raise ValueError("the pyxis runtime needs a Slurm allocation; use CONTAINER_RUNTIME=docker or none")
        return srun + [
            f"--container-image={spec.image}",
            f"--container-mounts={','.join(mounts([spec]))}",
            "--container-writable",
            "--no-container-mount-home",
            "bash", "-c", command,
        ]
    if spec.runtime == "docker":
        argv = ["docker", "run", "--rm", "--gpus", "all", "--ipc=host", "--ulimit", "memlock=-1",
                "--ulimit", "stack=67108864"]
        for mount in mounts([spec]):
            argv += ["-v", mount]
        for name in sorted(env_names or []):
            argv += ["-e", name]
        return argv + [spec.image, "bash", "-c", command]
    if under_slurm:
        return srun + ["bash", "-c", command]
    return inner


def safe_job_id(job_id: str) -> str:
    """Job ids end up in file names: only digits, '_' (arrays) and letters from submitit's local ids."""
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", job_id):
        raise ValueError(f"unexpected job id {job_id!r}")
    return job_id
