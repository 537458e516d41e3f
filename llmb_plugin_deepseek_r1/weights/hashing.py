"""Parallel file hashing with a verification cache, for full mode.

hashlib releases the GIL while it hashes a large buffer and so does ``readinto``, so a thread per core with
big reads uses every core without the cost of processes. Digests are remembered per file, keyed by its
real path, size, mtime, ctime and inode: an unchanged file is not read again, and any write, truncation,
replacement or ``touch`` changes the key, so a changed file is never trusted.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from llmb_plugin_deepseek_r1.host.records import write_text_atomic
from .safetensors_check import usable_cores

BUFSIZE = 8 << 20
CACHE_VERSION = 1
MAX_CACHE_ENTRIES = 20_000
MAX_DEFAULT_WORKERS = 16  # each thread holds one 8 MiB buffer; beyond this the disk, not the cores, limits


def default_cache_path() -> Path:
    """``$LLMB_WEIGHTS_CACHE``, else ``$XDG_CACHE_HOME/llmb/weights-verified.json`` (``~/.cache`` by default).

    Kept outside the model folder so that read-only weights still get a cache; home is usually shared
    across a cluster's nodes, so a check on the login node also speeds up the next one elsewhere.
    """
    env = os.environ.get("LLMB_WEIGHTS_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "llmb" / "weights-verified.json"


def _new_hasher(algo: str, size: int) -> hashlib._Hash:
    if algo == "sha256":
        return hashlib.sha256()
    if algo in ("git-sha1", "git-sha256"):
        h = hashlib.new(algo[4:])
        h.update(b"blob %d\0" % size)
        return h
    raise ValueError(f"unknown digest algorithm {algo!r}; known: sha256, git-sha1, git-sha256")


def _fingerprint(st: os.stat_result) -> list[int]:
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


def hash_file(path: str, algos: Iterable[str], on_bytes: Callable[[int], None] | None = None) -> dict[str, str]:
    """Digest ``path`` with every algorithm in ``algos`` in a single read pass."""
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        hashers = {a: _new_hasher(a, size) for a in algos}
        if hasattr(os, "posix_fadvise"):
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
        buf = bytearray(BUFSIZE)
        view = memoryview(buf)
        with open(fd, "rb", buffering=0, closefd=False) as f:
            while n := f.readinto(buf):
                chunk = view[:n]
                for h in hashers.values():
                    h.update(chunk)
                if on_bytes is not None:
                    on_bytes(n)
    finally:
        os.close(fd)
    return {a: h.hexdigest() for a, h in hashers.items()}


@dataclass
class VerifyCache:
    """Digests of files already hashed; a missing or unwritable cache file just means no cache."""

    path: Path | None
    entries: dict[str, dict[str, object]] = field(default_factory=dict)
    dirty: dict[str, dict[str, object]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path | None) -> VerifyCache:
        cache = cls(path)
        if path is not None:
            cache.entries = _read_entries(path)
        return cache

    def lookup(self, real: str, st: os.stat_result, algo: str) -> str | None:
        e = self.entries.get(real)
        if e is None or e.get("stat") != _fingerprint(st):
            return None
        digest = e.get(algo)
        return digest if isinstance(digest, str) else None

    def store(self, real: str, st: os.stat_result, digests: dict[str, str]) -> None:
        e = self.entries.get(real)
        merged: dict[str, object] = dict(e) if e and e.get("stat") == _fingerprint(st) else {}
        merged.update(digests)
        merged["stat"] = _fingerprint(st)
        self.entries[real] = self.dirty[real] = merged

    def save(self) -> bool:
        """Merge our new entries into the file as it is now (other jobs may have written it); False if we cannot."""
        if self.path is None or not self.dirty:
            return False
        try:
            if self.path.exists() and not is_own_cache(self.path):
                return False  # never overwrite a file we did not write (a manifest, a config.json...)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            current = _read_entries(self.path)
            current.update(self.dirty)
            if len(current) > MAX_CACHE_ENTRIES:
                current = dict(list(current.items())[-MAX_CACHE_ENTRIES:])
            write_text_atomic(self.path, json.dumps({"version": CACHE_VERSION, "entries": current}) + "\n")
        except OSError:
            return False
        self.dirty.clear()
        return True


def is_own_cache(path: Path) -> bool:
    """True when ``path`` is a verification cache this module wrote (the only file it may overwrite)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(64)
        if not head.startswith(b'{"version": '):
            return False
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError, RecursionError):
        return False
    return isinstance(doc, dict) and set(doc) == {"version", "entries"} and isinstance(doc["entries"], dict)


def _read_entries(path: Path) -> dict[str, dict[str, object]]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError, RecursionError):
        return {}
    if not isinstance(doc, dict) or doc.get("version") != CACHE_VERSION or not isinstance(doc.get("entries"), dict):
        return {}
    return {k: v for k, v in doc["entries"].items() if isinstance(v, dict)}


@dataclass
class HashOutcome:
    digests: dict[str, dict[str, str]] = field(default_factory=dict)  # key -> {algo: hex}
    errors: dict[str, str] = field(default_factory=dict)  # key -> why it could not be hashed
    hashed: int = 0
    from_cache: int = 0
    hashed_bytes: int = 0


def hash_many(
    jobs: dict[str, tuple[str, tuple[str, ...]]],
    *,
    cache: VerifyCache,
    workers: int | None = None,
    progress: bool = False,
) -> HashOutcome:
    """Hash ``{key: (path, algos)}`` on ``workers`` threads (default: the usable cores), largest files first."""
    out = HashOutcome()
    todo: list[tuple[int, str, str, str, tuple[str, ...], os.stat_result]] = []
    for key, (path, algos) in jobs.items():
        try:
            real = os.path.realpath(path)
            st = os.stat(real)
        except OSError as exc:
            out.errors[key] = exc.strerror or str(exc)
            continue
        cached = {a: cache.lookup(real, st, a) for a in algos}
        if all(cached.values()):
            out.digests[key] = {a: d for a, d in cached.items() if d}
            out.from_cache += 1
            continue
        todo.append((st.st_size, key, real, path, algos, st))
    todo.sort(key=lambda t: -t[0])
    bar = _progress_bar(sum(t[0] for t in todo)) if progress and todo else None
    lock = threading.Lock()

    def tick(n: int) -> None:
        with lock:
            if bar is not None:
                bar.update(n)

    def work(item: tuple[int, str, str, str, tuple[str, ...], os.stat_result]) -> None:
        size, key, real, _path, algos, st = item
        try:
            digests = hash_file(real, algos, tick if bar is not None else None)
            after = os.stat(real)
        except OSError as exc:
            with lock:
                out.errors[key] = exc.strerror or str(exc)
            return
        with lock:
            out.digests[key] = digests
            out.hashed += 1
            out.hashed_bytes += size
            if _fingerprint(after) == _fingerprint(st):  # remember only what did not change while we read it
                cache.store(real, st, digests)

    n_workers = max(1, min(workers or min(usable_cores(), MAX_DEFAULT_WORKERS), len(todo) or 1))
    try:
        if n_workers == 1:
            for item in todo:
                work(item)
        else:
            with ThreadPoolExecutor(max_workers=n_workers, thread_name_prefix="llmb-hash") as pool:
                list(pool.map(work, todo))
    finally:
        if bar is not None:
            bar.close()
        cache.save()
    return out


def _progress_bar(total: int):  # type: ignore[no-untyped-def]
    """A tqdm byte counter on stderr; None (no bar) when tqdm is not installed."""
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(
        total=total,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc="sha256",
        file=sys.stderr,
        dynamic_ncols=True,
        mininterval=0.5,
    )
