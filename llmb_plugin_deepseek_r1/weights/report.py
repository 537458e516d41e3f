"""The verdict of a weight check: problems, the --json shape, and the text a user (or a job's .err) reads.

Kept free of I/O so that the job body, the CLI and the tests all render the same words.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field

# Kinds whose fix is "fetch this one file again" (after removing the bad copy).
REFETCH_KINDS = frozenset(
    {
        "missing_file",
        "missing_shard",
        "incomplete_shard_set",
        "lfs_pointer",
        "truncated",
        "padded",
        "bad_header",
        "bad_offsets",
        "tensor_size_mismatch",
        "tensor_mismatch",
        "checksum_mismatch",
        "bad_json",
        "bad_index",
    }
)
# Kinds whose fix is "move this file out of the folder": it is not part of the checkpoint.
STRAY_KINDS = frozenset({"unindexed_shard", "mixed_shard_set"})

DEFAULT_REPO_ID = "nvidia/DeepSeek-R1-FP4"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one file; ``file`` is relative to the model folder ("." for the folder itself)."""

    file: str
    kind: str
    detail: str

    def to_dict(self) -> dict[str, str]:
        return {"file": self.file, "kind": self.kind, "detail": self.detail}


@dataclass
class WeightReport:
    """What ``check_weights`` found; ``ok`` is true only when ``problems`` is empty."""

    ok: bool
    mode: str
    files_checked: int
    total_bytes: int
    problems: list[Problem] = field(default_factory=list)
    model_dir: str = ""
    dtype: str = "nvfp4"
    manifest_source: str | None = None
    files_hashed: int = 0
    files_from_cache: int = 0
    elapsed_s: float = 0.0
    # How the folder was obtained ("git", "hf-cache", "local-dir" or "unknown") and from which repo;
    # used only to phrase the remedy.
    origin: str = "unknown"
    repo_id: str = DEFAULT_REPO_ID
    # Which checkpoint the folder holds (weights.identity) and warnings that do not fail the check, such as
    # a folder holding another repo than the one expected.
    checkpoint: dict[str, object] | None = None
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        """The documented --json shape (plus model_dir and manifest_source, which help scripts)."""
        return {
            "ok": self.ok,
            "mode": self.mode,
            "files_checked": self.files_checked,
            "total_bytes": self.total_bytes,
            "problems": [p.to_dict() for p in self.problems],
            "model_dir": self.model_dir,
            "manifest_source": self.manifest_source,
            "checkpoint": self.checkpoint,
            "warnings": list(self.warnings),
        }

    def format_text(self) -> str:
        """Problem lines, a summary and the remedy (or one OK line)."""
        size = human_bytes(self.total_bytes)
        extra = ""
        if self.mode == "full":
            extra = f", {self.files_hashed} hashed, {self.files_from_cache} unchanged since last verified"
            if self.manifest_source:
                extra += f", manifest: {self.manifest_source}"
        notes = self._checkpoint_lines()
        if self.ok:
            return "\n".join([
                f"OK: {self.model_dir}: {self.files_checked} files, {size} ({self.mode} check{extra}, "
                f"{self.elapsed_s:.2f} s)", *notes])
        lines = [f"{p.file}: {p.kind}: {p.detail}" for p in self.problems]
        bad_files = len({p.file for p in self.problems})
        lines.append(
            f"FAILED: {self.model_dir}: {len(self.problems)} problem(s) in {bad_files} file(s); "
            f"{self.files_checked} files checked, {size} ({self.mode} check{extra})"
        )
        lines += remedy_lines(self)
        return "\n".join(lines + [f"WARNING: {w}" for w in self.warnings])

    def _checkpoint_lines(self) -> list[str]:
        held = self.checkpoint or {}
        lines = []
        if held.get("repo_id") or held.get("revision"):
            rev = f" at {held['revision']}" if held.get("revision") else ""
            lines.append(f"checkpoint: {held.get('repo_id') or 'unnamed'}{rev} ({held.get('source')})")
        return lines + [f"WARNING: {w}" for w in self.warnings]


def human_bytes(n: int) -> str:
    """Binary units, as ``ls -h`` and the seed's "395 GiB" speak."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def _quote_all(names: list[str]) -> str:
    return " ".join(shlex.quote(n) for n in names)


def remedy_lines(report: WeightReport) -> list[str]:
    """Tell the user which files to remove or fetch again, never to throw away the whole folder."""
    d = report.model_dir
    kinds = {p.kind for p in report.problems}
    out: list[str] = ["remedy:"]
    if "missing_dir" in kinds:
        out.append(
            f"  the folder does not exist: run the workload's setup, or pass the folder that holds {report.repo_id}"
        )
        return out
    refetch_set = {p.file for p in report.problems if p.kind in REFETCH_KINDS and p.file != "."}
    if "tensor_mismatch" in kinds:  # the index or the shard may be the stale one: fetch both
        refetch_set.add("model.safetensors.index.json")
    refetch = sorted(refetch_set)
    stray = sorted({p.file for p in report.problems if p.kind in STRAY_KINDS})
    pointers_only = refetch and all(p.kind == "lfs_pointer" for p in report.problems if p.file in refetch)
    if refetch:
        out.append(f"  fetch only these {len(refetch)} file(s) again (the rest of the folder is fine to keep):")
        if report.origin == "git":
            inc = shlex.quote(",".join(refetch))
            if not pointers_only:
                out.append(
                    f"    cd {shlex.quote(d)} && rm -f {_quote_all(refetch)} && git checkout -- {_quote_all(refetch)}"
                )
            out.append(f"    cd {shlex.quote(d)} && git lfs pull --include={inc}   (needs git-lfs)")
        elif report.origin == "hf-cache":
            out.append(f"    hf download {report.repo_id} {_quote_all(refetch)} --force-download")
        else:
            if pointers_only:
                out.append(
                    "    (these are Git LFS pointers: run `git lfs pull` in a git clone, or download them properly:)"
                )
            out.append(f"    cd {shlex.quote(d)} && rm -f {_quote_all(refetch)}")
            out.append(f"    hf download {report.repo_id} {_quote_all(refetch)} --local-dir {shlex.quote(d)}")
    if stray:
        out.append(f"  move these {len(stray)} file(s) out of the folder; they are not part of the checkpoint:")
        out.append(f"    {_quote_all(stray)}")
    if "quantization_mismatch" in kinds:
        out.append(
            f"  the folder holds a different quantization than --dtype {report.dtype}: point to the right "
            "checkpoint or pass the matching --dtype"
        )
    if "size_deviation" in kinds:
        out.append(
            f"  the total size is not that of the official checkpoint: check that the folder holds {report.repo_id}"
        )
    if "unknown_dtype" in kinds:
        out.append(
            "  a shard uses a tensor dtype this checker does not know: upgrade the plugin, or re-fetch the shard"
        )
    if "unreadable" in kinds:
        out.append("  some files cannot be read: fix their permissions (they need to be readable by the job's user)")
    if kinds & {"no_manifest", "bad_manifest", "not_in_manifest"}:
        out.append(
            "  full mode needs a manifest: pass --manifest FILE (JSON or `sha256sum` output), or re-run setup, "
            "which records one"
        )
    return out
