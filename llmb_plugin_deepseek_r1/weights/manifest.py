"""Where full mode gets the expected size and digest of every file, and how setup records them.

Sources, in order: a manifest the user passes; the one setup wrote beside the download; the Git LFS pointers
in git's own objects when the folder is a clone (read with plain git, no git-lfs); the blob names of a
Hugging Face cache snapshot; the ``.cache/huggingface/download/*.metadata`` files that ``hf download
--local-dir`` leaves. Non-LFS files are identified by git blob ids, so those are verified as git does.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field

from datetime import datetime, timezone
from pathlib import Path, PurePosixPath

from .safetensors_check import LFS_PREFIX, parse_lfs_pointer

from llmb_plugin_deepseek_r1.host.records import write_text_atomic

MANIFEST_NAME = ".llmb-manifest.json"
MANIFEST_FORMAT = "llmb-weights-manifest"
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_HEX40 = re.compile(r"^[0-9a-f]{40}$")
_SUMLINE = re.compile(r"^(?P<digest>[0-9a-fA-F]{64}) [ *](?P<name>.+)$")
GIT_TIMEOUT_S = 120


class ManifestError(ValueError):
    """A manifest that exists but cannot be used; the message names the file and what is wrong."""


@dataclass(frozen=True)
class Entry:
    """Expected content of one file: ``algo`` is sha256, git-sha1 or git-sha256; size None when unknown."""

    size: int | None
    algo: str
    digest: str


@dataclass
class Manifest:
    source: str
    files: dict[str, Entry] = field(default_factory=dict)
    repo_id: str | None = None


def _entry_for(digest: str, size: int | None) -> Entry:
    """A 64-hex digest is a sha256 of the content, a 40-hex one a git blob id (how HF names small files)."""
    d = digest.strip().lower()
    if _HEX64.match(d):
        return Entry(size, "sha256", d)
    if _HEX40.match(d):
        return Entry(size, "git-sha1", d)
    raise ManifestError(f"digest {digest!r} is neither a sha256 (64 hex) nor a git blob id (40 hex)")


def _clean_name(name: str) -> str:
    p = PurePosixPath(name.replace("\\", "/"))
    if p.is_absolute() or ".." in p.parts or not p.parts:
        raise ManifestError(f"file name {name!r} is not a path inside the model folder")
    return str(p)


def manifest_paths(model_dir: Path) -> list[Path]:
    """Where setup's manifest may lie: inside the folder, or beside it when the folder is read-only."""
    model_dir = Path(model_dir)
    return [model_dir / MANIFEST_NAME, model_dir.parent / (model_dir.name + MANIFEST_NAME)]


def write_manifest(
    model_dir: Path,
    entries: Mapping[str, tuple[int, str]],
    path: Path | None = None,
    *,
    repo_id: str | None = None,
    revision: str | None = None,
) -> Path:
    """Record ``{file: (size, digest)}`` (sha256 hex, or a 40-hex git blob id) atomically; returns the path.

    Without ``path`` it goes to ``<model_dir>/.llmb-manifest.json``, or beside the folder when that is
    read-only; full mode finds it in either place.
    """
    files: dict[str, dict[str, object]] = {}
    for name, (size, digest) in sorted(entries.items()):
        e = _entry_for(digest, int(size))
        files[_clean_name(name)] = {"size": e.size, e.algo.replace("-", "_"): e.digest}
    doc = {
        "format": MANIFEST_FORMAT,
        "version": 1,
        "repo_id": repo_id,
        "revision": revision,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "files": files,
    }
    text = json.dumps(doc, indent=1, sort_keys=False) + "\n"
    targets = [Path(path)] if path is not None else manifest_paths(Path(model_dir))
    last: OSError | None = None
    for target in targets:
        try:
            write_text_atomic(target, text)
            return target
        except OSError as exc:
            last = exc
    assert last is not None
    raise last


def read_manifest_file(path: Path) -> Manifest:
    """Our JSON manifest, a plain ``{file: {size, sha256}}`` map, or ``sha256sum`` output."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"cannot read manifest {path}: {exc}") from exc
    if text.lstrip().startswith("{"):
        try:
            doc = json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise ManifestError(f"manifest {path} is not valid JSON: {exc}") from exc
        files = doc.get("files", doc) if isinstance(doc, dict) else None
        if not isinstance(files, dict):
            raise ManifestError(f'manifest {path} has no "files" map')
        out = Manifest(source=str(path), repo_id=doc.get("repo_id") if isinstance(doc.get("repo_id"), str) else None)
        for name, spec in files.items():
            if name in ("format", "version", "repo_id", "revision", "created") and "files" not in doc:
                continue
            if not isinstance(spec, dict):
                raise ManifestError(f"manifest {path}: entry {name!r} is not an object with size and sha256")
            digest = spec.get("sha256") or spec.get("git_sha1")
            size = spec.get("size")
            if not isinstance(digest, str) or (size is not None and not isinstance(size, int)):
                raise ManifestError(f'manifest {path}: entry {name!r} needs "sha256" (hex) and an integer "size"')
            out.files[_clean_name(name)] = _entry_for(digest, size)
        return out
    out = Manifest(source=str(path))
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        m = _SUMLINE.match(line.rstrip("\n"))
        if not m:
            raise ManifestError(f"manifest {path} line {lineno} is neither JSON nor `sha256sum` output: {line[:80]!r}")
        out.files[_clean_name(m["name"])] = _entry_for(m["digest"], None)
    if not out.files:
        raise ManifestError(f"manifest {path} lists no files")
    return out


def _git(args: list[str], cwd: Path, stdin: bytes | None = None) -> bytes | None:
    git = shutil.which("git")
    if git is None:
        return None
    cmd = [git, "-c", f"safe.directory={cwd}", "-C", str(cwd), *args]
    try:
        proc = subprocess.run(cmd, input=stdin, capture_output=True, timeout=GIT_TIMEOUT_S, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout if proc.returncode == 0 else None


def _repo_id_from_url(url: str) -> str | None:
    m = re.search(r"huggingface\.co/(?:models/)?([^/\s]+/[^/\s]+?)(?:\.git)?/?$", url.strip())
    return m.group(1) if m else None


def from_git(model_dir: Path) -> Manifest | None:
    """Sizes and digests from the HEAD tree of a git clone: LFS pointer blobs give sha256, others a blob id."""
    real = Path(os.path.realpath(model_dir))
    if not (real / ".git").exists():
        return None
    top = _git(["rev-parse", "--show-toplevel"], real)
    if top is None or Path(os.path.realpath(top.decode().strip())) != real:
        return None
    listing = _git(["ls-tree", "-r", "-l", "-z", "HEAD"], real)
    if listing is None:
        return None
    out = Manifest(source=f"git HEAD of {real}")
    small: dict[str, tuple[str, int]] = {}
    for rec in listing.split(b"\0"):
        if not rec:
            continue
        meta, _, name_b = rec.partition(b"\t")
        mode, otype, oid, size_s = meta.decode().split()
        if otype != "blob" or mode == "120000":
            continue
        name = name_b.decode("utf-8", "surrogateescape")
        size = int(size_s)
        out.files[name] = Entry(size, "git-sha1" if len(oid) == 40 else "git-sha256", oid)
        if size < 1024:
            small[oid] = (name, size)
    if small:
        blob = _git(["cat-file", "--batch"], real, stdin="".join(o + "\n" for o in small).encode())
        pos = 0
        while blob is not None and pos < len(blob):
            nl = blob.index(b"\n", pos)
            fields = blob[pos:nl].decode().split()
            if len(fields) != 3:  # "<oid> missing": a shallow or damaged clone; keep the blob id
                pos = nl + 1
                continue
            oid, _, size_s = fields
            content = blob[nl + 1 : nl + 1 + int(size_s)]
            pos = nl + 1 + int(size_s) + 1
            if content.startswith(LFS_PREFIX) and oid in small:
                sha, lfs_size = parse_lfs_pointer(content)
                if sha and lfs_size is not None:
                    out.files[small[oid][0]] = Entry(lfs_size, "sha256", sha)
    url = _git(["config", "--get", "remote.origin.url"], real)
    out.repo_id = _repo_id_from_url(url.decode()) if url else None
    return out


def hf_cache_repo_id(model_dir: Path) -> str | None:
    """``.../models--org--name/snapshots/<rev>`` -> "org/name"; None when the folder is not such a snapshot."""
    for d in (Path(model_dir), Path(os.path.realpath(model_dir))):
        if d.parent.name == "snapshots" and (d.parent.parent / "blobs").is_dir():
            repo = d.parent.parent.name
            if repo.startswith("models--"):
                return repo[len("models--") :].replace("--", "/", 1)
    return None


def hf_cache_blobs(snapshot: Path) -> dict[str, str]:
    """``{file: digest}`` of a Hugging Face cache snapshot, whose files are links to ``blobs/<sha256>`` (LFS
    files) or ``blobs/<git blob id>``; links to anything else are left out."""
    blobs: dict[str, str] = {}
    for root, _dirs, names in os.walk(snapshot):
        for n in names:
            p = os.path.join(root, n)
            if not os.path.islink(p):
                continue
            blob = os.path.basename(os.readlink(p))
            if len(blob) in (40, 64) and all(c in "0123456789abcdef" for c in blob):
                blobs[os.path.relpath(p, snapshot).replace(os.sep, "/")] = blob
    return blobs


def from_hf_cache(model_dir: Path) -> Manifest | None:
    """The manifest a cache snapshot carries in its blob names (see hf_cache_blobs)."""
    repo_id = hf_cache_repo_id(model_dir)
    if repo_id is None:
        return None
    out = Manifest(source=f"Hugging Face cache blob names ({model_dir})", repo_id=repo_id)
    for rel, blob in hf_cache_blobs(model_dir).items():
        out.files[rel] = _entry_for(blob, None)
    return out if out.files else None


def from_local_dir_metadata(model_dir: Path) -> Manifest | None:
    """``hf download --local-dir`` records each file's etag (sha256 or blob id) under .cache/huggingface."""
    base = Path(model_dir) / ".cache" / "huggingface" / "download"
    if not base.is_dir():
        return None
    out = Manifest(source=f"hf download metadata ({base})")
    for meta in base.rglob("*.metadata"):
        try:
            lines = meta.read_text(encoding="utf-8").splitlines()
            rel = meta.relative_to(base).as_posix()[: -len(".metadata")]
            out.files[rel] = _entry_for(lines[1], None)
        except (OSError, UnicodeDecodeError, IndexError, ManifestError):
            continue
    return out if out.files else None


def find_manifest(model_dir: Path, explicit: Path | None = None) -> Manifest | None:
    """The first manifest available, in the documented order; ManifestError for an unusable one we must use."""
    if explicit is not None:
        return read_manifest_file(explicit)
    for candidate in manifest_paths(model_dir):
        if candidate.is_file():
            return read_manifest_file(candidate)
    for source in (from_git, from_hf_cache, from_local_dir_metadata):
        found = source(Path(model_dir))
        if found is not None:
            return found
    return None
