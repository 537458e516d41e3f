"""The records NVIDIA's llmb-run leaves beside a job, so its tools and users find ours: `llmb-config_<jobid>.yaml`
in the job's experiment folder (LLMB_EXPERIMENT_DIR) and the Slurm log where NVIDIA puts it
(`$LLMB_INSTALL/workloads/<workload>/slurm-<jobid>.out`, a link to the batch step's log). Never overwrites."""

from __future__ import annotations

import datetime
import os
from pathlib import Path
from typing import Any, Mapping

from . import records
from .cluster import ClusterConfig
from .contract import JobPlan, RunRequest
from .render import redact_env


def llmb_config(job_id: str, plan: JobPlan, request: RunRequest, metadata: Mapping[str, Any],
                cluster: ClusterConfig, *, profile: bool, env_overrides: Mapping[str, str]) -> dict[str, Any]:
    """NVIDIA's sections: job_info, workload_info, model_info, cluster_info, container_info, job_config."""
    general = metadata.get("general") or {}
    container = metadata.get("container") or {}
    use_case = plan.use_cases[0] if plan.use_cases else {}
    return {
        "job_info": {"job_id": str(job_id), "launch_time": datetime.datetime.now().isoformat()},
        "workload_info": {
            "framework": general.get("framework"), "gsw_version": str(general.get("gsw_version") or ""),
            "fw_version": use_case.get("trtllm_version"), "workload_type": general.get("workload_type"),
            "synthetic_dataset": True,
        },
        "model_info": {"model_name": general.get("workload"), "model_size": request.model_size,
                       "dtype": request.dtype, "scale": request.scale, "gpu_type": request.gpu_type},
        "cluster_info": {
            "cluster_name": cluster.cluster_name, "gpus_per_node": plan.slurm.ntasks_per_node,
            "llmb_install": str(request.install_dir), "llmb_repo": cluster.llmb_repo,
            "slurm_account": plan.slurm.account, "slurm_gpu_partition": plan.slurm.partition,
        },
        "container_info": {"images": [str(i) for i in container.get("images") or []]},
        "job_config": {"profile_enabled": profile, "proxy": False,
                       "env_overrides": redact_env(dict(env_overrides)), "model_overrides": {}},
    }


def write_job_records(job_id: str, plan: JobPlan, stdout: Path | None, document: Mapping[str, Any],
                      workload_dir: Path) -> Path | None:
    """Write llmb-config_<jobid>.yaml into LLMB_EXPERIMENT_DIR and link slurm-<jobid>.out; the config's path."""
    from llmb_plugin_deepseek_r1.yaml_io import safe_dump

    written = None
    experiment = plan.env.get("LLMB_EXPERIMENT_DIR")
    if experiment:
        path = Path(experiment) / f"llmb-config_{job_id}.yaml"
        try:
            records.write_text_atomic(path, safe_dump(dict(document), sort_keys=False), overwrite=False)
            written = path
        except FileExistsError:
            pass
    if stdout is not None:
        link = workload_dir / f"slurm-{job_id}.out"
        try:
            os.symlink(stdout, link)
        except FileExistsError:
            pass
    return written
