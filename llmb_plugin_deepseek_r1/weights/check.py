"""``check_weights``: quick mode always, then (opt-in) full mode's digests against a manifest."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from llmb_plugin_deepseek_r1.weights import layout
from .quant import validate_dtype
from .report import DEFAULT_REPO_ID, Problem, WeightReport

DEFAULT_REPO_BY_DTYPE = {"nvfp4": DEFAULT_REPO_ID, "fp8": "deepseek-ai/DeepSeek-R1", "bf16": "deepseek-ai/DeepSeek-R1"}


def _origin(model_dir: Path) -> tuple[str, str | None]:
    """How the folder was obtained and, where it says, from which repo: only to phrase the remedy."""
    from .manifest import ManifestError, hf_cache_repo_id, manifest_paths, read_manifest_file

    repo_id = None
    for candidate in manifest_paths(model_dir):
        if candidate.is_file():
            try:
                repo_id = read_manifest_file(candidate).repo_id
            except ManifestError:
                pass
            break
    if (model_dir / ".git").exists():
        return "git", repo_id
    if hf_repo := hf_cache_repo_id(model_dir):
        return "hf-cache", hf_repo
    if (model_dir / ".cache" / "huggingface").is_dir():
        return "local-dir", repo_id
    return "unknown", repo_id


def check_weights(
    model_dir: Path,
    *,
    dtype: str = "nvfp4",
    full: bool = False,
    manifest: Path | None = None,
    cache_path: Path | None = None,
    progress: bool | None = None,
    workers: int | None = None,
    use_cache: bool = True,
    expect_repo: str | None = None,
    expect_revision: str | None = None,
) -> WeightReport:
    """Check a checkpoint folder; raises ValueError only for an unknown ``dtype``.

    Quick mode reads metadata only; the repo and revision the folder holds are recorded, with a warning when they
    are not ``expect_repo``/``expect_revision``. ``full=True`` (implied by ``manifest``) also hashes every file the
    manifest lists, on ``workers`` threads, remembering digests in ``cache_path`` (default:
    ``default_cache_path()``; ``use_cache=False``: none). ``progress=None``: a bar only when stderr is a TTY.
    """
    t0 = time.perf_counter()
    dtype = validate_dtype(dtype)
    model_dir = Path(model_dir)
    full = full or manifest is not None
    report = WeightReport(
        ok=False,
        mode="full" if full else "quick",
        files_checked=0,
        total_bytes=0,
        model_dir=str(model_dir),
        dtype=dtype,
        repo_id=DEFAULT_REPO_BY_DTYPE[dtype],
    )
    if not model_dir.is_dir():
        what = "is not a directory" if model_dir.exists() else "does not exist"
        report.problems.append(Problem(".", "missing_dir", f"model folder {model_dir} {what}"))
        return _finish(report, t0)
    report.origin, repo_id = _origin(model_dir)
    report.repo_id = repo_id or report.repo_id
    from .identity import checkpoint_identity, identity_mismatch

    report.checkpoint = checkpoint_identity(model_dir)
    mismatch = identity_mismatch(report.checkpoint, expect_repo, expect_revision)
    if mismatch:
        report.warnings.append(mismatch)
    quick = layout.quick_check(model_dir, dtype)
    report.problems += quick.problems
    sizes = dict(quick.sizes)
    if full:
        from .hashing import default_cache_path

        cache = (cache_path or default_cache_path()) if use_cache else None
        _full_check(model_dir, quick, report, sizes, manifest, cache, progress, workers)
    report.files_checked = len(sizes)
    report.total_bytes = sum(sizes.values())
    return _finish(report, t0)


def _finish(report: WeightReport, t0: float) -> WeightReport:
    report.ok = not report.problems
    report.elapsed_s = time.perf_counter() - t0
    return report


def _full_check(
    model_dir: Path,
    quick: layout.QuickResult,
    report: WeightReport,
    sizes: dict[str, int],
    manifest_path: Path | None,
    cache_path: Path | None,
    progress: bool | None,
    workers: int | None,
) -> None:
    from .hashing import VerifyCache, hash_many
    from .manifest import ManifestError, find_manifest

    try:
        man = find_manifest(model_dir, manifest_path)
    except ManifestError as exc:
        report.problems.append(Problem(str(manifest_path or "."), "bad_manifest", str(exc)))
        return
    if man is None:
        report.problems.append(
            Problem(
                ".",
                "no_manifest",
                (
                    "full mode found no manifest: none passed, no .llmb-manifest.json from setup, not a git clone, "
                    "not a Hugging Face cache snapshot, no hf download metadata"
                ),
            )
        )
        return
    report.manifest_source = man.source
    if man.repo_id:
        report.repo_id = man.repo_id
    already_bad = {p.file for p in report.problems}
    jobs: dict[str, tuple[str, tuple[str, ...]]] = {}
    for rel, entry in sorted(man.files.items()):
        if rel in already_bad:
            continue
        path = model_dir / rel
        try:
            size = os.stat(path).st_size
        except OSError:
            report.problems.append(Problem(rel, "missing_file", f"listed in the manifest ({man.source}) but absent"))
            continue
        sizes[rel] = size
        if entry.size is not None and size != entry.size:
            kind = "truncated" if size < entry.size else "padded"
            report.problems.append(Problem(rel, kind, f"file is {size} bytes, the manifest says {entry.size}"))
            continue
        jobs[rel] = (str(path), (entry.algo,))
    if progress is None:
        progress = sys.stderr.isatty()
    cache = VerifyCache.load(cache_path)
    result = hash_many(jobs, cache=cache, workers=workers, progress=progress)
    report.files_hashed, report.files_from_cache = result.hashed, result.from_cache
    for rel, why in sorted(result.errors.items()):
        report.problems.append(Problem(rel, "unreadable", f"cannot hash: {why}"))
    for rel, digests in sorted(result.digests.items()):
        entry = man.files[rel]
        got = digests[entry.algo]
        if got != entry.digest:
            report.problems.append(
                Problem(
                    rel, "checksum_mismatch", f"{entry.algo} is {got}, the manifest ({man.source}) says {entry.digest}"
                )
            )
    checkpoint_files = set(quick.shards) | {n for n in quick.sizes if n.endswith(".json")}
    for rel in sorted(checkpoint_files - set(man.files) - already_bad):
        report.problems.append(
            Problem(
                rel,
                "not_in_manifest",
                f"the manifest ({man.source}) does not list it, so its content could not be verified",
            )
        )
