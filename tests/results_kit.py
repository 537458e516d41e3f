"""Result files for the results/plot/archive tests, produced by the real job body with the STAND-IN trtllm-bench.

One set is built per test session (about a second) and copied into each test that changes files.
"""

from __future__ import annotations

import json
from pathlib import Path

from jobkit import job_environ, load, result_files, specs_for

from llmb_plugin_deepseek_r1.job.run import JobFailed, run_job

WORKLOAD = Path("workloads") / "inference_deepseek-r1"

# In this order, so "finished" increases down the list. 205 fails with settings identical to 201/202.
BASE_RUNS = (
    dict(LLMB_JOB_ID="201"),
    dict(LLMB_JOB_ID="202"),
    dict(LLMB_JOB_ID="203", CONCURRENCY="8"),
    dict(LLMB_JOB_ID="204", CONCURRENCY="4"),
    dict(LLMB_JOB_ID="205", FAKE_TRTLLM_FAIL="nccl"),
    dict(LLMB_JOB_ID="206", FAKE_TRTLLM_FAIL="short"),
    dict(LLMB_JOB_ID="207", USE_CASES="reasoning:1000/1000"),
    dict(LLMB_JOB_ID="208", STREAMING="false"),
    dict(LLMB_JOB_ID="209", CONCURRENCY="2", OOM_RETRIES="1", FAKE_TRTLLM_OOM_ABOVE_KV="0.78"),
)


def make_runs(install: Path, *runs: dict[str, str]) -> None:
    """Run the job body once per knob set; FAILED jobs raise JobFailed after writing their result."""
    for knobs in runs:
        environ = job_environ(install, **knobs)
        try:
            run_job(specs_for(environ), environ)
        except JobFailed:
            pass


def by_job(install: Path) -> dict[str, dict]:
    """The result documents under ``install``, keyed by job id."""
    return {doc["job_id"]: doc for doc in map(load, result_files(install))}


def rerun_copy(install: Path, job_id: str, new_id: str, factor: float, finished_delta_s: float = 60.0) -> dict:
    """A later result of the same settings whose throughput differs by ``factor`` (the stand-in is deterministic,
    so two real runs of one setting always measure the same); written next to the original."""
    source = next(p for p in result_files(install) if p.name.endswith(f"_{job_id}.json"))
    doc = load(source)
    doc["job_id"] = doc["provenance"]["job_id"] = new_id
    doc["provenance"]["finished"] += finished_delta_s
    doc["provenance"]["started"] += finished_delta_s
    for key in ("output_tok_s_gpu", "total_tok_s_gpu", "output_tok_s_user", "request_throughput_req_s"):
        doc["measured"]["headline"][key] *= factor
    target = source.with_name(source.name.replace(f"_{job_id}.json", f"_{new_id}.json"))
    target.write_text(json.dumps(doc))
    return doc


def workload_dir(install: Path) -> Path:
    return install / WORKLOAD
