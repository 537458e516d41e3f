"""`llmb-run archive`: pack a workload's experiments (logs, result JSON, YAML, job records) into one .tar.gz.

Left out, and listed: submitit pickles, datasets, weight folders and files, links, files over the size limit and
half-written temporary files. The archive is written under a temporary name and linked into place, so an
existing file is never replaced and a reader never sees half an archive.
"""

from __future__ import annotations

import io
import json
import os
import re
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmb_plugin_deepseek_r1 import WORKLOAD_KEY, __version__
from llmb_plugin_deepseek_r1.host.records import write_atomic
from llmb_plugin_deepseek_r1.host.safety import redact_json_bytes
from llmb_plugin_deepseek_r1.recipe import metadata_text
from llmb_plugin_deepseek_r1.document import is_result_file
from .load import ResultsError

DEFAULT_MAX_FILE_BYTES = 100 * 1024 ** 2
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf", ".ckpt")
SUBMITIT = Path(".llmb") / "submitit"
MAX_LISTED = 20
_SIZE = re.compile(r"^(?P<n>\d+(?:\.\d+)?)\s*(?P<unit>[kmgt]?)(?:i?b)?$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1024, "m": 1024 ** 2, "g": 1024 ** 3, "t": 1024 ** 4}


@dataclass
class Member:
    path: Path
    arcname: str
    size: int
    kind: str


@dataclass
class Plan:
    members: list[Member] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for m in self.members:
            out[m.kind] = out.get(m.kind, 0) + 1
        return out


def parse_size(text: str) -> int:
    """``--max-file-size``: bytes, or a number with K, M, G or T (binary units: 100M = 100 MiB)."""
    match = _SIZE.match(text.strip())
    if not match:
        raise ResultsError(f"--max-file-size {text!r}: use a size such as 500K, 100M or 2G (binary units)")
    return int(float(match.group("n")) * _UNITS[match.group("unit").lower()])


def human_size(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


def _kind(rel: Path) -> str:
    if rel.parts and rel.parts[0] == ".llmb":
        return "job records"
    if is_result_file(rel):
        return "result JSON"
    if rel.suffix in (".out", ".err", ".log"):
        return "logs"
    if rel.suffix in (".yml", ".yaml"):
        return "YAML"
    if rel.name.endswith(".report.json"):
        return "report JSON"
    return "other"


def _is_weights_dir(names: list[str]) -> bool:
    return any(n.endswith(".safetensors") for n in names) or "model.safetensors.index.json" in names


def plan_archive(experiments: Path, max_file_bytes: int = DEFAULT_MAX_FILE_BYTES, prefix: str = "") -> Plan:
    """What goes into the archive and what is left out (with why), without reading any file's contents."""
    plan = Plan()
    for root, dirs, files in os.walk(experiments, followlinks=False):
        here = Path(root)
        rel_dir = here.relative_to(experiments)
        for name in sorted(dirs):
            rel = rel_dir / name
            if rel == SUBMITIT:
                plan.skipped.append((f"{rel}/", "submitit pickles"))
                dirs.remove(name)
            elif (here / name).is_symlink():
                plan.skipped.append((f"{rel}/", "a link"))
                dirs.remove(name)
        if _is_weights_dir(files):
            plan.skipped.append((f"{rel_dir}/", "a weights folder"))
            dirs[:] = []
            continue
        dirs.sort()
        for name in sorted(files):
            path, rel = here / name, rel_dir / name
            why = None
            if path.is_symlink():
                why = "a link"
            elif name.startswith("dataset_") and name.endswith(".txt"):
                why = "a dataset"
            elif name.endswith(WEIGHT_SUFFIXES):
                why = "model weights"
            elif name.startswith(".") and name.endswith(".tmp"):
                why = "a file still being written"
            if why is None:
                try:
                    size = path.stat().st_size
                except OSError as exc:
                    plan.skipped.append((str(rel), f"unreadable: {exc.strerror}"))
                    continue
                if size > max_file_bytes:
                    why = f"{human_size(size)}, over the {human_size(max_file_bytes)} limit"
            if why:
                plan.skipped.append((str(rel), why))
            else:
                plan.members.append(Member(path, f"{prefix}experiments/{rel.as_posix()}", size, _kind(rel)))
    return plan


def _add_bytes(tar: tarfile.TarFile, arcname: str, data: bytes, mtime: float, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(arcname)
    info.size, info.mtime, info.mode = len(data), int(mtime), mode
    tar.addfile(info, io.BytesIO(data))


def write_archive(plan: Plan, output: Path, prefix: str, extra: dict[str, bytes]) -> list[tuple[str, str]]:
    """Write the planned files (read whole, so a log still growing is captured consistently) and ``extra``."""
    late: list[tuple[str, str]] = []

    def fill(handle: Any) -> None:
        with tarfile.open(fileobj=handle, mode="w:gz") as tar:
            for member in plan.members:
                try:
                    data = member.path.read_bytes()
                    stat = member.path.stat()
                    if member.kind == "job records" and member.path.suffix == ".json":
                        data = redact_json_bytes(data)  # records written before redaction: no secret leaves
                except OSError as exc:
                    late.append((member.arcname, f"unreadable: {exc.strerror}"))
                    continue
                _add_bytes(tar, member.arcname, data, stat.st_mtime, stat.st_mode & 0o777)
            for name, data in extra.items():
                _add_bytes(tar, prefix + name, data, time.time())

    write_atomic(output, fill, overwrite=False)
    return late


def default_output(workload_dir: Path, now: float) -> Path:
    return workload_dir / f"llmb-results-{time.strftime('%Y-%m-%d', time.localtime(now))}.tar.gz"


def _numbered(path: Path, number: int) -> Path:
    name = path.name[:-len(".tar.gz")] if path.name.endswith(".tar.gz") else path.stem
    return path.with_name(f"{name}-{number}.tar.gz")


def create_archive(workload_dir: Path, output: Path | None = None, *,
                   max_file_bytes: int = DEFAULT_MAX_FILE_BYTES, now: float | None = None) -> dict[str, Any]:
    """Pack ``workload_dir/experiments``; returns what was packed and skipped.

    With no ``output`` the name is llmb-results-<date>.tar.gz in the workload folder, numbered -2, -3... when
    taken; an ``output`` that exists is an error.
    """
    now = time.time() if now is None else now
    experiments = workload_dir / "experiments"
    if not experiments.is_dir():
        raise ResultsError(f"nothing to archive: {experiments} does not exist (no runs yet?)")
    target = output or default_output(workload_dir, now)
    if output is not None and output.exists():
        raise ResultsError(f"--output {output}: the file exists; choose another name (archives are never "
                           f"overwritten)")
    if not target.parent.is_dir():
        raise ResultsError(f"--output {target}: the folder {target.parent} does not exist")
    prefix = target.name[:-len(".tar.gz")] if target.name.endswith(".tar.gz") else target.stem
    prefix += "/"
    plan = plan_archive(experiments, max_file_bytes, prefix)
    if not plan.members:
        raise ResultsError(f"nothing to archive under {experiments}"
                           + (f" ({len(plan.skipped)} item(s) left out)" if plan.skipped else ""))
    manifest = {"workload": WORKLOAD_KEY, "plugin_version": __version__, "created": now,
                "source": str(experiments), "max_file_bytes": max_file_bytes,
                "files": [{"name": m.arcname[len(prefix):], "bytes": m.size, "kind": m.kind} for m in plan.members],
                "skipped": [{"path": p, "why": why} for p, why in plan.skipped]}
    extra = {"MANIFEST.json": (json.dumps(manifest, indent=1) + "\n").encode(),
             "workload.yaml": metadata_text().encode()}
    number = 1
    while True:
        try:
            late = write_archive(plan, target, prefix, extra)
            break
        except FileExistsError:
            if output is not None:
                raise ResultsError(f"--output {output}: the file appeared while packing; nothing was replaced, "
                                   f"choose another name") from None
            number += 1
            target = _numbered(default_output(workload_dir, now), number)
    return {"output": str(target), "files": len(plan.members) - len(late), "counts": plan.counts(),
            "bytes": sum(m.size for m in plan.members), "archive_bytes": target.stat().st_size,
            "skipped": plan.skipped + late}


def format_summary(summary: dict[str, Any]) -> str:
    counts = ", ".join(f"{n} {kind}" for kind, n in sorted(summary["counts"].items()))
    lines = [(f"packed {summary['files']} files ({counts}; {human_size(summary['bytes'])}) into {summary['output']} "
              f"({human_size(summary['archive_bytes'])})")]
    if summary["skipped"]:
        lines.append(f"left out {len(summary['skipped'])}:")
        lines += [f"  {path}: {why}" for path, why in summary["skipped"][:MAX_LISTED]]
        if len(summary["skipped"]) > MAX_LISTED:
            lines.append(f"  ... and {len(summary['skipped']) - MAX_LISTED} more (listed in MANIFEST.json)")
    return "\n".join(lines)
