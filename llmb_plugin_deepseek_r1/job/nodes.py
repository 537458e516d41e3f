"""Preflight on every node of a multi-node allocation: what each node sees (GPUs, model folder, dataset), probed
with one srun task per node, then judged together so the job stops before the benchmark naming the bad node.

The probe (``python -m llmb_plugin_deepseek_r1 node-check``) prints one JSON line per node; judging is pure.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any, Mapping, Sequence

from .preflight import Check, Gpu, check_gpus, query_node_gpus, visible

PROBE_TIMEOUT_S = 120.0
_RANGE = re.compile(r"^(?P<prefix>[^\[\],]*)\[(?P<body>[^\]]+)\](?P<suffix>[^,]*)")


def expand_nodelist(text: str | None) -> list[str]:
    """Slurm's compact node list ('n[1-2,5]', 'gpu-a[01-02],gpu-b7') as names, in order (pure)."""
    names: list[str] = []
    rest = (text or "").strip()
    while rest:
        match = _RANGE.match(rest)
        if match:
            for part in match["body"].split(","):
                low, _, high = part.partition("-")
                if high:
                    width = len(low)
                    names += [f"{match['prefix']}{i:0{width}d}{match['suffix']}"
                              for i in range(int(low), int(high) + 1)]
                else:
                    names.append(f"{match['prefix']}{low}{match['suffix']}")
            rest = rest[match.end():]
        else:
            name, _, rest = rest.partition(",")
            if name:
                names.append(name)
            continue
        rest = rest.lstrip(",")
    return names


def folder_fingerprint(path: Path) -> dict[str, Any]:
    """What a node sees of a folder: whether it exists, how many top-level files, and a digest of their names
    and sizes (cheap: no file is read), so two nodes can tell they see the same shared folder."""
    if not path.is_dir():
        return {"exists": False}
    entries = []
    for entry in sorted(os.scandir(path), key=lambda e: e.name):
        try:
            entries.append(f"{entry.name}:{entry.stat().st_size if entry.is_file() else 'dir'}")
        except OSError:
            entries.append(f"{entry.name}:?")
    return {"exists": True, "files": len(entries), "digest": hashlib.sha1("\n".join(entries).encode()).hexdigest()}


def file_fingerprint(path: Path) -> dict[str, Any]:
    try:
        return {"exists": True, "bytes": path.stat().st_size}
    except OSError:
        return {"exists": False}


def probe_this_node(model_dir: Path, dataset: Path, environ: Mapping[str, str]) -> dict[str, Any]:
    """One node's view: its name, GPUs (nvidia-smi, else NVML), the model folder and the dataset."""
    gpus, how = query_node_gpus(search_path=environ.get("PATH"))
    if gpus is not None:
        gpus = visible(gpus, environ.get("CUDA_VISIBLE_DEVICES"))
    return {"node": environ.get("SLURMD_NODENAME") or socket.gethostname(),
            "gpus": [g.__dict__ for g in gpus] if gpus is not None else None, "gpus_how": how,
            "model_dir": folder_fingerprint(model_dir), "dataset": file_fingerprint(dataset)}


def main(argv: list[str]) -> int:
    """`python -m llmb_plugin_deepseek_r1 node-check --model-dir DIR --dataset FILE`: one JSON line."""
    import argparse

    parser = argparse.ArgumentParser(prog="node-check", description="what this node sees, as one JSON line")
    parser.add_argument("--model-dir", required=True, type=Path)
    parser.add_argument("--dataset", required=True, type=Path)
    args = parser.parse_args(argv)
    print(json.dumps(probe_this_node(args.model_dir, args.dataset, os.environ)), flush=True)
    return 0


def probe_argv(nodes: int, python: str, model_dir: Path, dataset: Path) -> list[str]:
    """One task per node, no MPI, and a node that fails its probe does not end the others' (pure)."""
    return ["srun", f"--nodes={nodes}", "--ntasks-per-node=1", "--mpi=none", "--kill-on-bad-exit=0",
            python, "-m", "llmb_plugin_deepseek_r1", "node-check", "--model-dir", str(model_dir),
            "--dataset", str(dataset)]


def probe_all_nodes(nodes: int, model_dir: Path, dataset: Path, env: Mapping[str, str],
                    timeout_s: float = PROBE_TIMEOUT_S) -> tuple[list[dict[str, Any]], str]:
    """Every node's view (parsed JSON lines) and srun's stderr (it names nodes whose probe failed)."""
    argv = probe_argv(nodes, sys.executable, model_dir, dataset)
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s, env=dict(env), check=False)
    except subprocess.TimeoutExpired:
        return [], f"the per-node preflight (srun) did not finish in {timeout_s:.0f} s"
    except OSError as exc:
        return [], f"the per-node preflight could not start srun: {exc}"
    reports = []
    for line in done.stdout.splitlines():
        try:
            item = json.loads(line)
        except ValueError:
            continue
        if isinstance(item, dict) and "node" in item:
            reports.append(item)
    return reports, done.stderr.strip()


def _gpus(report: Mapping[str, Any]) -> list[Gpu] | None:
    if report.get("gpus") is None:
        return None
    out = []
    for g in report["gpus"]:
        cc = g.get("compute_capability")
        out.append(Gpu(**{**g, "compute_capability": tuple(cc) if cc else None}))
    return out


def judge_nodes(reports: Sequence[Mapping[str, Any]], expected: Sequence[str], *, ranks_per_node: int, dtype: str,
                model_dir: Path, dataset: Path, reference: Mapping[str, Any], srun_stderr: str = "") -> list[Check]:
    """Checks per node, each naming its node; ``reference`` is the batch node's view of the model folder and
    dataset (what every node must see too). Pure."""
    checks: list[Check] = []
    by_node = {str(r["node"]): r for r in reports}
    for node in expected:
        if node not in by_node:
            why = srun_stderr.splitlines()[-1] if srun_stderr else "no answer"
            checks.append(Check(f"node {node}", "failed", f"node {node} did not answer the preflight ({why})"))
    readings = {n: _gpus(r) for n, r in by_node.items()}
    known = {n: g for n, g in readings.items() if g is not None}
    first_gpu = next((g[0] for g in known.values() if g), None)
    for node, report in by_node.items():
        gpus = readings[node]
        if gpus is None and known:
            checks.append(Check(f"node {node} gpus", "failed", f"node {node}: no GPUs found "
                                                               f"({report.get('gpus_how')}); the other nodes see "
                                                               f"{len(next(iter(known.values())))}"))
            continue
        for check in check_gpus(gpus, str(report.get("gpus_how")), scale=ranks_per_node, dtype=dtype,
                                model_bytes=None):
            checks.append(Check(f"node {node} {check.name}", check.status, f"node {node}: {check.detail}"))
        if gpus and first_gpu is not None:
            odd = [g for g in gpus if (g.name, g.driver, g.memory_total_mib) !=
                   (first_gpu.name, first_gpu.driver, first_gpu.memory_total_mib)]
            if odd:
                g = odd[0]
                checks.append(Check(f"node {node} gpu_match", "failed",
                                    f"node {node}: GPU {g.index} is {g.name} ({g.memory_total_mib} MiB, driver "
                                    f"{g.driver}); other nodes have {first_gpu.name} ({first_gpu.memory_total_mib} "
                                    f"MiB, driver {first_gpu.driver})"))
        for key, path in (("model_dir", model_dir), ("dataset", dataset)):
            seen = report.get(key) or {}
            if not seen.get("exists"):
                checks.append(Check(f"node {node} {key}", "failed", f"node {node} cannot see {path}: is it on a "
                                                                    f"filesystem every node mounts?"))
            elif seen != reference.get(key):
                checks.append(Check(f"node {node} {key}", "failed", f"node {node} sees a different {path} "
                                                                    f"({seen}) than the batch node "
                                                                    f"({reference.get(key)})"))
            else:
                checks.append(Check(f"node {node} {key}", "ok", f"node {node} sees {path}"))
    return checks


def preflight_all_nodes(nodes: int, ranks_per_node: int, dtype: str, model_dir: Path, dataset: Path,
                        environ: Mapping[str, str]) -> list[Check]:
    """Probe every node of this allocation and judge what they see against this (the batch) node's view."""
    reports, stderr = probe_all_nodes(nodes, model_dir, dataset, environ)
    expected = expand_nodelist(environ.get("SLURM_JOB_NODELIST"))[:nodes] or [str(r["node"]) for r in reports]
    reference = {"model_dir": folder_fingerprint(model_dir), "dataset": file_fingerprint(dataset)}
    return judge_nodes(reports, expected, ranks_per_node=ranks_per_node, dtype=dtype, model_dir=model_dir,
                       dataset=dataset, reference=reference, srun_stderr=stderr)


def world_document(nodes: int, ranks_per_node: int, tp: int, pp: int, ep: int,
                   environ: Mapping[str, str]) -> dict[str, Any]:
    """Where the world ran, for the result file: node names, GPUs (ranks) per node, world size."""
    return {"nodes": expand_nodelist(environ.get("SLURM_JOB_NODELIST")) or [socket.gethostname()],
            "node_count": nodes, "gpus_per_node": ranks_per_node, "world_size": tp * pp, "tp": tp, "pp": pp,
            "ep": ep}
