"""Small helpers the setup steps share: a cross-process file lock, temporary names, sizes.

Why a lock file with ``flock``: the kernel releases it when its holder dies (even by SIGKILL), so an
interrupted setup never leaves a stale lock behind, and a second setup waits instead of importing or
downloading the same file at the same time.
"""

from __future__ import annotations

import fcntl
import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from llmb_plugin_deepseek_r1.weights.report import human_bytes

__all__ = ["LockTimeout", "file_lock", "human_bytes", "lock_holder", "partial_name", "stale_partials"]

PARTIAL_TAG = ".llmb-partial-"
LOCK_POLL_S = 0.5
WAIT_NOTE_EVERY_S = 60.0


class LockTimeout(TimeoutError):
    """Another setup held the lock for longer than we were willing to wait."""


def lock_holder(path: Path) -> str:
    """Who holds (or last held) a lock, as its holder wrote it; "" when unknown."""
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError:
        return ""


@contextmanager
def file_lock(path: Path, timeout_s: float, log: Callable[[str], None] | None = None) -> Iterator[bool]:
    """Hold an exclusive ``flock`` on ``path`` (created if needed); yields True when we had to wait for it.

    Polls without blocking so that the wait has a deadline (LockTimeout) and says whom it waits for.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o664)
    waited = False
    try:
        deadline = time.monotonic() + timeout_s
        next_note = 0.0
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                now = time.monotonic()
                if now >= deadline:
                    raise LockTimeout(f"{path} is still held by {lock_holder(path) or 'another process'} after "
                                      f"{timeout_s:.0f} s") from None
                if log is not None and now >= next_note:
                    log(f"waiting for {path} (held by {lock_holder(path) or 'another setup'})")
                    next_note = now + WAIT_NOTE_EVERY_S
                waited = True
                time.sleep(LOCK_POLL_S)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{socket.gethostname()} pid {os.getpid()} since {time.strftime('%Y-%m-%d %H:%M:%S')}\n"
                  .encode(), 0)
        yield waited
    finally:
        os.close(fd)  # closing the only descriptor releases the flock


def partial_name(final: Path) -> Path:
    """A hidden temporary name beside ``final``: same folder (so os.replace is atomic), unique per process,
    and never ending like the real file (a half-written shard must not look like a shard)."""
    return final.parent / f".{final.name}{PARTIAL_TAG}{os.getpid()}"


def stale_partials(final: Path) -> list[Path]:
    """Temporary files an interrupted run left for ``final``; only call while holding its lock."""
    try:
        return sorted(final.parent.glob(f".{final.name}{PARTIAL_TAG}*"))
    except OSError:
        return []
