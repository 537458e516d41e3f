"""Setup step "weights": ``nvidia/DeepSeek-R1-FP4`` into ``$LLMB_WORKLOAD/DeepSeek-R1-FP4``, plus a manifest.

Online: ``huggingface_hub.snapshot_download`` into the folder (parallel, resumable: it fetches only what is
missing or different), pinned to the commit whose file metadata the manifest records, retried with
exponential backoff on HTTP 429. Offline (``HF_HUB_OFFLINE=1``): the files come from the local Hugging Face
cache (hard links where the cache is on the same file system, else copies) and the manifest from the
cache's blob names. A folder that already passes the quick weight check is kept; a git clone is accepted as
it is (its LFS pointers are its manifest); a folder that fails is reported and the download resumes into it.
Nothing of the user's is ever deleted.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from .model import SetupOptions, StepResult
from .util import PARTIAL_TAG, LockTimeout, file_lock, partial_name

T = TypeVar("T")
TRUE_VALUES = frozenset({"1", "ON", "YES", "TRUE"})  # huggingface_hub's own reading of HF_HUB_OFFLINE
BACKOFF_ATTEMPTS = 6
BACKOFF_BASE_S = 2.0
BACKOFF_MAX_S = 120.0
OFFLINE_MANIFEST_SOURCE = "the local Hugging Face cache's blob names (offline: the hub's metadata is unreachable)"


def is_offline(env: Mapping[str, str]) -> bool:
    """HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) as huggingface_hub reads it."""
    value = env.get("HF_HUB_OFFLINE") or env.get("TRANSFORMERS_OFFLINE") or ""
    return value.strip().upper() in TRUE_VALUES


def hub_cache_dir(env: Mapping[str, str]) -> Path:
    """The Hugging Face cache, resolved from ``env`` as huggingface_hub does (it reads os.environ only once,
    at import; setup passes the folder explicitly so that the environment it was given is the one used)."""
    home = env.get("HF_HOME") or os.path.join(env.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"),
                                              "huggingface")
    cache = env.get("HF_HUB_CACHE") or env.get("HUGGINGFACE_HUB_CACHE") or os.path.join(home, "hub")
    return Path(os.path.expanduser(cache))


def _http_error_type() -> type[Exception]:
    try:
        from huggingface_hub.errors import HfHubHTTPError
    except ImportError:  # huggingface_hub < 0.24
        from huggingface_hub.utils import HfHubHTTPError
    return HfHubHTTPError


def http_status(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    return int(status) if isinstance(status, int) else None


def retry_delay(exc: BaseException, attempt: int, base_s: float = BACKOFF_BASE_S,
                max_s: float = BACKOFF_MAX_S) -> float:
    """Seconds to wait before attempt ``attempt + 1``: the server's Retry-After when it gives one (capped),
    else ``base_s * 2**(attempt-1)`` capped at ``max_s``."""
    headers = getattr(getattr(exc, "response", None), "headers", None) or {}
    try:
        retry_after = float(headers.get("Retry-After") or headers.get("retry-after") or "")
    except (TypeError, ValueError):
        retry_after = -1.0
    if retry_after >= 0:
        return min(retry_after, max_s)
    return min(base_s * 2 ** (attempt - 1), max_s)


def with_backoff(call: Callable[[], T], what: str, log: Callable[[str], None], *,
                 attempts: int = BACKOFF_ATTEMPTS, sleep: Callable[[float], None] = time.sleep,
                 base_s: float = BACKOFF_BASE_S, max_s: float = BACKOFF_MAX_S) -> T:
    """``call()``, retried up to ``attempts`` times in all while the hub answers HTTP 429 (rate limited);
    any other error, or the last 429, propagates."""
    error_type = _http_error_type()
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except error_type as exc:
            if http_status(exc) != 429 or attempt == attempts:
                raise
            delay = retry_delay(exc, attempt, base_s, max_s)
            log(f"{what}: the hub answered 429 (rate limited); retry {attempt}/{attempts - 1} in {delay:.0f} s")
            sleep(delay)
    raise AssertionError("unreachable")


def hub_manifest_entries(info: Any) -> dict[str, tuple[int, str]]:
    """``{file: (size, digest)}`` from ``model_info(..., files_metadata=True)``: LFS files by sha256 and size;
    small files by their git blob id (the hub has no sha256 for them; the checker verifies blob ids as git
    does, which is stronger than hashing what was just downloaded)."""
    entries: dict[str, tuple[int, str]] = {}
    for sib in getattr(info, "siblings", None) or ():
        lfs = getattr(sib, "lfs", None)
        sha = getattr(lfs, "sha256", None) if lfs is not None else None
        if lfs is not None and sha is None and isinstance(lfs, Mapping):
            sha = lfs.get("sha256")
        lfs_size = getattr(lfs, "size", None) if lfs is not None else None
        if sha and lfs_size is not None:
            entries[sib.rfilename] = (int(lfs_size), str(sha))
        elif getattr(sib, "blob_id", None) and getattr(sib, "size", None) is not None:
            entries[sib.rfilename] = (int(sib.size), str(sib.blob_id))
    return entries


def cache_manifest_entries(snapshot: Path) -> dict[str, tuple[int, str]]:
    """``{file: (size, digest)}`` of a cache snapshot: each file links to ``blobs/<sha256 or git blob id>``."""
    from llmb_plugin_deepseek_r1.weights.manifest import hf_cache_blobs

    return {rel: ((snapshot / rel).stat().st_size, blob) for rel, blob in hf_cache_blobs(snapshot).items()}


def materialise_snapshot(snapshot: Path, target: Path, log: Callable[[str], None]) -> dict[str, int]:
    """Place every file of a cache snapshot in ``target``: a hard link to the cached blob where possible (no
    second copy of 395 GiB), else a copy; each through a temporary name, so an interrupted run leaves no
    half file under a real name. Files already there with the right size are kept."""
    counts = {"linked": 0, "copied": 0, "kept": 0, "replaced": 0}
    for root, _dirs, files in os.walk(snapshot):
        for name in sorted(files):
            src = Path(os.path.realpath(os.path.join(root, name)))
            rel = Path(root, name).relative_to(snapshot)
            dst = target / rel
            size = src.stat().st_size  # FileNotFoundError: the cache lacks this blob
            if dst.is_file() and dst.stat().st_size == size:
                counts["kept"] += 1
                continue
            existed = dst.is_file()
            dst.parent.mkdir(parents=True, exist_ok=True)
            tmp = partial_name(dst)
            try:
                try:
                    os.link(src, tmp)
                    counts["linked"] += 1
                except OSError:
                    shutil.copyfile(src, tmp)
                    counts["copied"] += 1
                os.replace(tmp, dst)
            finally:
                tmp.unlink(missing_ok=True)
            if existed:
                counts["replaced"] += 1
                log(f"replaced {rel}: its size differed from the cached file")
    return counts


def _remove_partials(target: Path, log: Callable[[str], None]) -> None:
    """Our own temporary files from an interrupted run (caller holds the lock, so none is in use)."""
    if not target.is_dir():
        return
    for root, _dirs, files in os.walk(target):
        for name in files:
            if PARTIAL_TAG in name and name.startswith("."):
                log(f"removing {name}, left by an interrupted run")
                Path(root, name).unlink(missing_ok=True)


def _cached_snapshot(opts: SetupOptions) -> Path:
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(opts.repo_id, revision=opts.revision, cache_dir=str(opts.hub_cache),
                                  local_files_only=True))


def _fetch_offline(opts: SetupOptions, log: Callable[[str], None]) -> tuple[str, dict[str, tuple[int, str]], str]:
    snapshot = _cached_snapshot(opts)
    log(f"offline: placing {opts.repo_id} from the Hugging Face cache {snapshot} into {opts.model_dir}")
    counts = materialise_snapshot(snapshot, opts.model_dir, log)
    how = ", ".join(f"{n} {k}" for k, n in counts.items() if n)
    return snapshot.name, cache_manifest_entries(snapshot), f"from the local Hugging Face cache ({how})"


def _model_info(opts: SetupOptions, env: Mapping[str, str], log: Callable[[str], None]) -> Any:
    """The repo's file metadata (sizes, sha256, blob ids) at the pinned revision; HF_ENDPOINT (a mirror) and
    HF_TOKEN are read from ``env``, never from a cached global."""
    from huggingface_hub import HfApi

    api = HfApi(endpoint=env.get("HF_ENDPOINT") or None, token=env.get("HF_TOKEN") or None)
    return with_backoff(lambda: api.model_info(opts.repo_id, revision=opts.revision, files_metadata=True),
                        "model_info", log)


def _fetch_online(opts: SetupOptions, env: Mapping[str, str],
                  log: Callable[[str], None]) -> tuple[str, dict[str, tuple[int, str]], str]:
    from huggingface_hub import snapshot_download

    token, endpoint = env.get("HF_TOKEN") or None, env.get("HF_ENDPOINT") or None
    info = _model_info(opts, env, log)
    commit = str(info.sha or opts.revision or "main")
    log(f"downloading {opts.repo_id} at {commit} into {opts.model_dir} ({opts.workers} parallel)")
    with_backoff(lambda: snapshot_download(opts.repo_id, revision=commit, local_dir=str(opts.model_dir),
                                           cache_dir=str(opts.hub_cache), max_workers=opts.workers, token=token,
                                           endpoint=endpoint),
                 "snapshot_download", log)
    return commit, hub_manifest_entries(info), f"from the hub at {commit[:12]}"


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__


def _hub_failure(opts: SetupOptions, exc: Exception) -> StepResult:
    """A download error as a failed step with what to do about it."""
    name = type(exc).__name__
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else name
    status = http_status(exc)
    rerun = f"rerun: llmb-run setup -w {opts.workload} -- --steps weights (the download resumes)"
    pin = f" --revision {opts.revision}" if opts.revision else ""
    if name == "LocalEntryNotFoundError" or (opts.offline and name in ("IncompleteSnapshotError", "FileNotFoundError")):
        return StepResult("weights", "failed", f"offline (HF_HUB_OFFLINE) and {opts.repo_id} is not complete in the "
                          f"Hugging Face cache {opts.hub_cache}: {text}",
                          remedy=["unset HF_HUB_OFFLINE where the hub is reachable, or fill the cache first: "
                                  f"hf download {opts.repo_id}{pin}", rerun])
    if status in (401, 403) or name in ("GatedRepoError", "RepositoryNotFoundError"):
        return StepResult("weights", "failed", f"the hub refused {opts.repo_id} ({name}, HTTP {status})",
                          remedy=[f"export HF_TOKEN with read access and accept the licence on "
                                  f"https://huggingface.co/{opts.repo_id}", rerun])
    if name == "RevisionNotFoundError":
        return StepResult("weights", "failed", f"revision {opts.revision!r} does not exist in {opts.repo_id}",
                          remedy=["pass an existing branch, tag or commit with --revision (or HF_REVISION)"])
    if status == 429:
        return StepResult("weights", "failed", f"the hub kept rate-limiting (HTTP 429) after {BACKOFF_ATTEMPTS} "
                          "attempts", remedy=["wait a while, then " + rerun])
    return StepResult("weights", "failed", f"download failed: {name}: {text}", remedy=[rerun])


def _manifest_present(model_dir: Path) -> Path | None:
    from llmb_plugin_deepseek_r1.weights.manifest import manifest_paths

    return next((p for p in manifest_paths(model_dir) if p.is_file()), None)


def _record_manifest(opts: SetupOptions, entries: dict[str, tuple[int, str]], commit: str, source: str) -> str:
    from llmb_plugin_deepseek_r1.weights import write_manifest

    if not entries:
        return "no manifest recorded (the source gave no file metadata)"
    path = write_manifest(opts.model_dir, entries, repo_id=opts.repo_id, revision=commit)
    return f"manifest of {len(entries)} files from {source}: {path}"


def _ensure_manifest(opts: SetupOptions, env: Mapping[str, str], log: Callable[[str], None]) -> str:
    """For a folder that passed the check: record a manifest when none exists yet (the full check needs one)."""
    found = _manifest_present(opts.model_dir)
    if found is not None:
        return f"manifest: {found}"
    if opts.dry_run:
        return "would record a manifest for the full check"
    try:
        if opts.offline:
            snapshot = _cached_snapshot(opts)
            return _record_manifest(opts, cache_manifest_entries(snapshot), snapshot.name,
                                    "the local Hugging Face cache's blob names")
        info = _model_info(opts, env, log)
        return _record_manifest(opts, hub_manifest_entries(info), str(info.sha), "the hub's file metadata")
    except Exception as exc:  # noqa: BLE001 - the weights are fine; only the manifest is missing
        return f"no manifest recorded ({_one_line(exc)}); `verify --full` then needs --manifest"


def _check(opts: SetupOptions) -> Any:
    from llmb_plugin_deepseek_r1.weights import check_weights

    return check_weights(opts.model_dir, dtype=opts.dtype, full=False, progress=False)


def _identity_note(opts: SetupOptions) -> str:
    """A kept folder that holds another checkpoint than the profile's is said so (never overwritten)."""
    from llmb_plugin_deepseek_r1.weights.identity import checkpoint_identity, identity_mismatch

    why = identity_mismatch(checkpoint_identity(opts.model_dir), opts.repo_id, opts.revision)
    if why is None:
        return ""
    return (f"; WARNING: {why} (profile {opts.profile}); it is kept as it is: set MODEL_PATH to another folder "
            f"to fetch {opts.repo_id}, or MODEL_REPO to what this folder holds")


def _remedy(report: Any) -> list[str]:
    from llmb_plugin_deepseek_r1.weights.report import remedy_lines

    return [line.strip() for line in remedy_lines(report)[1:]]


def weights_step(opts: SetupOptions, env: Mapping[str, str], log: Callable[[str], None]) -> StepResult:
    """Fetch (or keep) the checkpoint and record its manifest; see the module docstring."""
    t0 = time.monotonic()
    target = opts.model_dir
    if (target / ".git").exists():
        report = _check(opts)
        if report.ok:
            return StepResult("weights", "skipped", f"{target} is a git clone that passes the quick weight check "
                              f"({report.files_checked} files); kept as it is (the full check reads its LFS pointers)"
                              f"{_identity_note(opts)}",
                              seconds=time.monotonic() - t0, bytes=report.total_bytes)
        return StepResult("weights", "failed", f"{target} is a git clone that fails the weight check "
                          f"({len(report.problems)} problem(s), first: {report.problems[0].file}: "
                          f"{report.problems[0].kind}); setup does not download into a clone",
                          seconds=time.monotonic() - t0, remedy=_remedy(report))
    existing = target.is_dir() and any(target.iterdir())
    resuming = ""
    if existing:
        report = _check(opts)
        if report.ok:
            note = _ensure_manifest(opts, env, log) + _identity_note(opts)
            return StepResult("weights", "skipped", f"{target} passes the quick weight check "
                              f"({report.files_checked} files); {note}", seconds=time.monotonic() - t0,
                              bytes=report.total_bytes)
        first = report.problems[0]
        resuming = (f"the existing folder failed the weight check ({len(report.problems)} problem(s), first: "
                    f"{first.file}: {first.kind}); resumed into it. ")
        log(report.format_text())
    source = (f"the local Hugging Face cache {opts.hub_cache} (offline)" if opts.offline else
              f"the hub ({opts.workers} parallel, revision {opts.revision or 'main'})")
    if opts.dry_run:
        verb = "resume" if existing else "download"
        return StepResult("weights", "planned", f"would {verb} {opts.repo_id} from {source} into {target} "
                          "and record a manifest", seconds=time.monotonic() - t0)
    lock = target.parent / f".{target.name}.setup.lock"
    try:
        target.mkdir(parents=True, exist_ok=True)
        with file_lock(lock, opts.lock_timeout_s, log) as waited:
            if waited and (other := _check(opts)).ok:
                return StepResult("weights", "skipped", f"{target} passes the quick weight check "
                                  f"({other.files_checked} files): fetched by another setup while this one waited",
                                  seconds=time.monotonic() - t0, bytes=other.total_bytes)
            _remove_partials(target, log)
            if opts.offline:
                commit, entries, how = _fetch_offline(opts, log)
                manifest_source = OFFLINE_MANIFEST_SOURCE
            else:
                commit, entries, how = _fetch_online(opts, env, log)
                manifest_source = "the hub's file metadata"
            report = _check(opts)
            note = _record_manifest(opts, entries, commit, manifest_source)
    except LockTimeout as exc:
        return StepResult("weights", "failed", f"another setup is fetching these weights: {exc}",
                          seconds=time.monotonic() - t0, remedy=[f"wait for it, then rerun; the lock is {lock}"])
    except Exception as exc:  # noqa: BLE001 - hub, network and disk errors all end the step with a remedy
        result = _hub_failure(opts, exc)
        result.seconds = time.monotonic() - t0
        return result
    if not report.ok:
        return StepResult("weights", "failed", f"{resuming}fetched {how}, but {target} still fails the weight check "
                          f"({len(report.problems)} problem(s))", seconds=time.monotonic() - t0,
                          bytes=report.total_bytes, remedy=_remedy(report))
    return StepResult("weights", "done", f"{resuming}{opts.repo_id} {how} into {target} (passes the quick "
                      f"weight check, {report.files_checked} files); {note}", seconds=time.monotonic() - t0,
                      bytes=report.total_bytes)
