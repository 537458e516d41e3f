"""RunSpecs -> JobPlans: Slurm parameters, container, argv, YAML and paths (pure; the dry run prints this)."""

from __future__ import annotations

from typing import Any

from llmb_plugin_deepseek_r1.planning import runtime
from llmb_plugin_deepseek_r1.host.contract import JobPlan, RunRequest, SlurmParams
from .spec import RunSpec
from .describe import profile_document
from .trtllm import bench_argv, extra_llm_api_options


def use_case_document(spec: RunSpec) -> dict[str, Any]:
    """One use case as the dry-run JSON documents it (keys are a published interface)."""
    command = bench_argv(spec)
    return {
        "name": spec.use_case,
        "isl": spec.isl,
        "osl": spec.osl,
        "max_batch_size": spec.max_batch_size,
        "max_num_tokens": spec.max_num_tokens,
        "kv_cache_free_gpu_mem_fraction": spec.kv_cache_fraction,
        "concurrency": spec.concurrency,
        "num_requests": spec.num_requests,
        "tp": spec.tp,
        "ep": spec.ep,
        "pp": spec.pp,
        "streaming": spec.streaming,
        "mode": spec.mode,
        "dataset": str(spec.dataset),
        "result_dir": str(spec.result_dir),
        "stdout": str(spec.job_file(".out")),
        "stderr": str(spec.job_file(".err")),
        "trtllm_version": spec.trtllm_version,
        "world": {"size": spec.world_size, "nodes": spec.nodes, "ranks_per_node": spec.ranks_per_node,
                  "layout": runtime.world_layout(spec)},
        "command": command,
        "launch_command": runtime.launch_argv(spec, command, under_slurm=spec.runtime != "docker"),
        "extra_llm_api_options": extra_llm_api_options(spec),
        **profile_document(spec),
    }


def job_name(spec: RunSpec, use_case: str | None) -> str:
    base = f"{spec.workload}_{spec.model_size}_{spec.dtype}"
    return f"{base}_{use_case}" if use_case else base


def slurm_params(specs: list[RunSpec], request: RunRequest, name: str) -> SlurmParams:
    first = specs[0]
    return SlurmParams(
        job_name=name,
        nodes=runtime.nodes(first),
        ntasks_per_node=runtime.tasks_per_node(first),
        time_min=sum(s.time_limit_min for s in specs),
        partition=first.partition,
        account=first.account,
        gpus_per_node=first.gpus_per_node,
        exclusive=True,
        segment=None if "segment" in request.slurm_args else first.segment,  # --segment N wins (in additional)
        additional=dict(request.slurm_args),
    )


def container_document(specs: list[RunSpec]) -> dict[str, Any]:
    return {"runtime": specs[0].runtime, "image": specs[0].image, "mounts": runtime.mounts(specs)}


def build_job_plans(specs: list[RunSpec], request: RunRequest) -> list[JobPlan]:
    """One job per use case (the recipe's advice), or one allocation for all of them when asked."""
    from llmb_plugin_deepseek_r1.job.entry import run_job_body

    groups = [specs] if request.one_allocation and len(specs) > 1 else [[s] for s in specs]
    several_use_cases = len({s.use_case for s in specs}) > 1
    plans: list[JobPlan] = []
    for group in groups:
        # NVIDIA's job name (<workload>_<size>_<dtype>); the use case is added only where it tells jobs apart.
        name = job_name(group[0], group[0].use_case if len(group) == 1 and several_use_cases else None)
        plan = JobPlan(
            name=name,
            slurm=slurm_params(group, request, name),
            container=container_document(group),
            use_cases=[use_case_document(s) for s in group],
            env=dict(request.env),
            body=run_job_body,
            body_args=(tuple(group),),
            record={"knobs": dict(group[0].knobs)},
        )
        plans.extend([plan] * request.repeats)
    return plans
