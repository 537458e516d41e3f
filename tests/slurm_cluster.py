"""Test helpers for the project's local Slurm cluster (scripts/local-slurm.sh).

Why: tests that drive the real Slurm path must skip with a readable reason where no cluster runs, and must wait
on Slurm's own answers (squeue, sacct) with deadlines instead of sleeping. Use it from a test module with
``from slurm_cluster import slurm_cluster`` (the fixture) and mark the tests ``@pytest.mark.slurm``.
"""

from __future__ import annotations

import getpass
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "local-slurm.sh"
DEFAULT_STATE = Path("/var/lib/llmb-local-slurm")
ACCOUNT = "llmb"
GPU_PARTITION = "debug"
CPU_PARTITION = "cpu"
GPUS_PER_NODE = 4
START_HINT = "start it with: sudo bash scripts/local-slurm.sh install && sudo bash scripts/local-slurm.sh start"
# Node states in which jobs can run (sinfo %t); anything else (down, drain, inval...) is a broken cluster.
USABLE_STATES = frozenset({"idle", "mix", "alloc", "comp"})

T = TypeVar("T")


def state_dir(env: Mapping[str, str] | None = None) -> Path:
    """The script's state directory, as the script itself resolves it."""
    env = os.environ if env is None else env
    return Path(env.get("LLMB_SLURM_STATE") or DEFAULT_STATE)


def slurm_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for Slurm commands: adds SLURM_CONF for the local cluster when nothing else names one."""
    env = dict(os.environ if base is None else base)
    if "SLURM_CONF" not in env and not Path("/etc/slurm/slurm.conf").exists():
        conf = state_dir(env) / "etc" / "slurm.conf"
        if conf.is_file():
            env["SLURM_CONF"] = str(conf)
    return env


def run_slurm(*argv: str, timeout: float = 30, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run one Slurm command with slurm_env(); raise with its stderr when check and it fails."""
    proc = subprocess.run(list(argv), env=slurm_env(), capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr.strip()}")
    return proc


def _last_line(text: str) -> str:
    """The last non-empty line of a command's stderr: Slurm puts the cause there."""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else "(no output)"


def gpu_count(gres: str) -> int:
    """GPUs in a sinfo %G field such as 'gpu:4', 'gpu:a100:4(S:0)' or 'gpu:2,nic:1'; 0 when none."""
    total = 0
    for item in gres.split(","):
        parts = item.split("(")[0].split(":")
        if parts[0] == "gpu" and len(parts) >= 2 and parts[-1].isdigit():
            total += int(parts[-1])
    return total


def _local_daemons_down() -> list[str]:
    """Daemons of scripts/local-slurm.sh that are stopped, when its config is the one in use.

    Why: with the controller down, sinfo retries for MessageTimeout (10 s) before it fails; the script's
    status answers at once.
    """
    env = slurm_env()
    conf = Path(env.get("SLURM_CONF", "/etc/slurm/slurm.conf"))
    if conf.resolve() != (state_dir(env) / "etc" / "slurm.conf").resolve():
        return []
    proc = subprocess.run(["bash", str(SCRIPT), "status"], capture_output=True, text=True, timeout=30, env=env)
    return [line.split(":")[0] for line in proc.stdout.splitlines() if line.endswith(": stopped")]


def slurm_available() -> str | None:
    """None when a usable cluster answers (node with 4 GPUs, accounting, account llmb); else why not."""
    for cmd in ("sinfo", "sbatch", "squeue", "scontrol", "scancel", "sacct", "sacctmgr"):
        if shutil.which(cmd) is None:
            return f"Slurm command {cmd!r} not installed; {START_HINT}"
    try:
        down = _local_daemons_down()
        if down:
            return f"local Slurm cluster not running ({', '.join(down)} stopped); {START_HINT}"
        proc = run_slurm("sinfo", "-h", "-N", "-o", "%N|%t|%G", timeout=15, check=False)
        if proc.returncode != 0:
            return f"Slurm controller not reachable ({_last_line(proc.stderr)}); {START_HINT}"
        nodes = [line.split("|") for line in proc.stdout.split() if line.count("|") == 2]
        gpu_nodes = [n for n in nodes if gpu_count(n[2]) >= GPUS_PER_NODE]
        if not gpu_nodes:
            return f"no Slurm node with gres gpu:{GPUS_PER_NODE} (sinfo: {proc.stdout.strip() or 'empty'})"
        if not any(state.rstrip("*~#!%$@^-") in USABLE_STATES for _, state, _ in gpu_nodes):
            return f"Slurm GPU node(s) not usable: {', '.join(f'{n}={s}' for n, s, _ in gpu_nodes)}"
        user = getpass.getuser()
        proc = run_slurm("sacctmgr", "-n", "-P", "show", "assoc", "where", f"user={user}", f"account={ACCOUNT}",
                         "format=account", timeout=15, check=False)
        if proc.returncode != 0:
            return f"Slurm accounting (slurmdbd) not reachable ({_last_line(proc.stderr)}); {START_HINT}"
        if ACCOUNT not in proc.stdout.split():
            return f"user {user!r} has no association with Slurm account {ACCOUNT!r}"
    except subprocess.TimeoutExpired as exc:
        return f"Slurm command timed out: {' '.join(map(str, exc.cmd))}"
    return None


@dataclass(frozen=True)
class SlurmCluster:
    """What tests need to know about the running cluster. ``gpus_per_node`` is what GB200-shaped jobs ask for
    (4); ``node_gpus`` what each node has (8 on the project's cluster, so 8-GPU H100 nodes fit too)."""

    node: str
    account: str = ACCOUNT
    gpu_partition: str = GPU_PARTITION
    cpu_partition: str = CPU_PARTITION
    gpus_per_node: int = GPUS_PER_NODE
    nodes: tuple[str, ...] = ()
    node_gpus: int = GPUS_PER_NODE


@pytest.fixture(scope="session")
def slurm_cluster() -> SlurmCluster:
    """The local cluster, or a skip that says why it is not usable."""
    reason = slurm_available()
    if reason is not None:
        pytest.skip(reason)
    rows = [line.split("|") for line in
            run_slurm("sinfo", "-h", "-N", "-p", GPU_PARTITION, "-o", "%N|%G").stdout.split()]
    if not rows:
        pytest.skip(f"Slurm partition {GPU_PARTITION!r} has no node")
    return SlurmCluster(node=rows[0][0], nodes=tuple(n for n, _ in rows),
                        node_gpus=min(gpu_count(g) for _, g in rows))


@pytest.fixture(scope="session")
def two_node_cluster(slurm_cluster: SlurmCluster) -> SlurmCluster:
    """The local cluster when it has two nodes of 8 GPUs (scripts/local-slurm.sh's default), else a skip."""
    if len(slurm_cluster.nodes) < 2 or slurm_cluster.node_gpus < 8:
        pytest.skip(f"the multi-node tests need 2 nodes with 8 GPUs each; the cluster has {slurm_cluster.nodes} "
                    f"with {slurm_cluster.node_gpus}: restart it with LLMB_SLURM_NODES=2 LLMB_SLURM_GPUS=8")
    return slurm_cluster


def wait_until(probe: Callable[[], T | None], timeout: float, what: str, interval: float = 0.1) -> T:
    """Poll probe until it returns something other than None/False; fail naming `what` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value is not None and value is not False:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


def sbatch(*args: str, timeout: float = 60) -> str:
    """Submit with sbatch --parsable; return the job id."""
    out = run_slurm("sbatch", "--parsable", *args, timeout=timeout).stdout.strip()
    return out.splitlines()[-1].split(";")[0]


def squeue_state(job_id: str) -> str | None:
    """The job's state as squeue sees it (RUNNING, PENDING...), None once it left the queue."""
    out = run_slurm("squeue", "-h", "-j", job_id, "-o", "%T", check=False).stdout.strip()
    return out or None


def sacct_record(job_id: str) -> dict[str, str] | None:
    """The allocation's accounting record (State, ExitCode, Account, AllocTRES...), None until it exists."""
    fields = ("JobID", "State", "ExitCode", "Account", "Partition", "AllocTRES", "Timelimit")
    out = run_slurm("sacct", "-n", "-X", "-P", "-j", job_id, "-o", ",".join(fields), check=False).stdout
    for line in out.splitlines():
        values = line.split("|")
        if len(values) == len(fields) and values[0] == job_id:
            return dict(zip(fields, values))
    return None


def wait_sacct_state(job_id: str, state: str, timeout: float = 30) -> dict[str, str]:
    """Wait until sacct reports the job in `state` (a prefix: 'CANCELLED' matches 'CANCELLED by 0').

    The end record can reach slurmdbd before the start record of a short job: State is then final while
    Partition and AllocTRES are still empty for a moment, so wait for those too.
    """

    def probe() -> dict[str, str] | None:
        rec = sacct_record(job_id)
        if rec is None or not rec["State"].startswith(state):
            return None
        return rec if rec["Partition"] and rec["AllocTRES"] else None

    try:
        return wait_until(probe, timeout, f"sacct to report job {job_id} {state}")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; last record: {sacct_record(job_id)}") from None


def scontrol_job(job_id: str) -> dict[str, str]:
    """`scontrol show job -o` as a dict of its Key=Value fields."""
    out = run_slurm("scontrol", "show", "job", "-o", job_id).stdout
    return dict(item.split("=", 1) for item in out.split() if "=" in item)
