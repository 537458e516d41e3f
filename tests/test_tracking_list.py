"""`llmb-run jobs list` asks Slurm about all jobs at once; each state must equal what the per-job probe says.

Real local Slurm: a held array (two PENDING tasks), a cancelled job, plus ids Slurm never saw (with and without the
job's own status file) and a local-executor record.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from slurm_cluster import SlurmCluster, run_slurm, sbatch, wait_until

from llmb_plugin_deepseek_r1.host import slurm, tracking
from llmb_plugin_deepseek_r1.host.commands import _json_rows
from llmb_plugin_deepseek_r1.host.local_jobs import local_job_id

WORKLOAD = "inference_deepseek-r1"


def _record(install: Path, job_id: str, executor: str = "slurm") -> None:
    folder = install / "workloads" / WORKLOAD / "experiments" / ".llmb" / "submitted"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{job_id}.json").write_text(json.dumps({
        "workload": WORKLOAD, "job_id": job_id, "executor": executor, "submitted": 1.8e9, "pid": 4194303,
        "submitit_folder": str(install / "nowhere"), "plan": {"name": f"job-{job_id}"}}))


def _status(install: Path, job_id: str, state: str, **details: str) -> None:
    folder = install / "workloads" / WORKLOAD / "experiments" / ".llmb" / "jobs"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{job_id}.json").write_text(json.dumps({"state": state, **details}))


@pytest.mark.slurm
def test_bulk_states_equal_per_job_states(slurm_cluster: SlurmCluster, tmp_path: Path) -> None:
    common = (f"--account={slurm_cluster.account}", f"--partition={slurm_cluster.cpu_partition}", "--ntasks=1",
              "--output=/dev/null")
    held = sbatch(*common, "--hold", "--array=0-1", "--wrap=true")
    done = sbatch(*common, "--hold", "--wrap=true")
    run_slurm("scancel", done)  # finished without ever running: no wait for a free node
    try:
        wait_until(lambda: slurm.sacct_state(done) == "CANCELLED", 30, f"job {done} CANCELLED in sacct")
        ids = [f"{held}_0", f"{held}_1", done, "987654321", "987654322"]
        for job_id in ids:
            _record(tmp_path, job_id)
        _status(tmp_path, "987654321", "COMPLETED", nodes="gpu-[1-2]")  # a node list only the status file knows
        local = local_job_id("0123abcd0123", 4194303)  # above pid_max: no such process, no result pickle
        _record(tmp_path, local, executor="local")  # not a Slurm id: must not spoil the bulk queries
        listed = tracking.list_jobs(tmp_path)
        by_id = {record["job_id"]: (state, source) for record, state, source in listed}
        assert [record["job_id"] for record, _, _ in listed] == sorted([*ids, local])
        for record, state, source in listed:
            assert (state, source) == tracking.job_state(tmp_path, record), record["job_id"]
        with_nodes = tracking.list_jobs_with_nodes(tmp_path)
        assert [row[:3] for row in with_nodes] == listed
        per_job_nodes = tracking.node_lists(tmp_path, [record for record, _, _ in listed])
        assert {row[0]["job_id"]: row[3] for row in with_nodes} == \
            {record["job_id"]: per_job_nodes.get(record["job_id"]) for record, _, _ in listed}
        assert by_id[f"{held}_0"][0] == by_id[f"{held}_1"][0] == "PENDING"
        assert by_id[done] == ("CANCELLED", "sacct")
        assert by_id["987654321"] == ("COMPLETED", "status file")
        assert {row[0]["job_id"]: row[3] for row in with_nodes}["987654321"] == "gpu-[1-2]"
        assert by_id["987654322"] == by_id[local] == ("UNKNOWN", "none")
    finally:
        run_slurm("scancel", held, check=False)


def test_no_records_lists_nothing_without_asking_slurm(tmp_path: Path) -> None:
    assert tracking.list_jobs(tmp_path) == []


def test_json_rows_equal_json_dumps_indent_2() -> None:
    rows = [{"job_id": "1_2", "name": "a \"quoted\" name\\n\u00e9", "executor": None},
            {"job_id": "", "name": "\t", "executor": "slurm"}]
    assert _json_rows(rows) == json.dumps(rows, indent=2)
    assert _json_rows([]) == json.dumps([], indent=2)
    mixed = [{"job_id": "1", "scale": 4}]
    assert _json_rows(mixed) == json.dumps(mixed, indent=2)
