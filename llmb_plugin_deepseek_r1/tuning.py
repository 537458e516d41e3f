"""Process-wide settings that make bulk work fast, applied only by entry points (commands, the job body).

Library functions never change the garbage collector, the interpreter's switch interval or the allocator:
a caller embedding them keeps its own settings. The command that does the bulk work opts in with
:func:`bulk_work` for its duration (verify-weights, prepare-/validate-dataset); the long-running entry points
(the job body, setup) only call :func:`keep_freed_memory`, since pausing the GC for hours is not safe.
"""

from __future__ import annotations

import gc
import sys
from contextlib import contextmanager
from typing import Iterator

SWITCH_INTERVAL_S = 2e-4


def keep_freed_memory() -> None:
    """Let glibc keep freed numpy temporaries for reuse instead of returning them to the system.

    By default glibc serves blocks above 128 KiB with fresh mappings and trims the heap top above 128 KiB, so a
    loop of 1-4 MB numpy temporaries takes a page fault for every 4 KiB it touches (2 million faults, seconds of
    system time, when validating a 378 MB dataset). Freeing one 24 MiB block raises glibc's dynamic thresholds
    (mmap 24 MiB, trim 48 MiB) for the rest of the process, as any program that once used such a buffer does;
    with other allocators this is a no-op.
    """
    import numpy as np

    block = np.empty(24 << 20, dtype=np.uint8)
    del block


@contextmanager
def bulk_work(*, numpy: bool = False) -> Iterator[None]:
    """For the duration: no cyclic GC (parsing ~200k small JSON objects of shard headers triggers it hundreds of
    times for nothing) and a short switch interval (threads that finished GIL-free work — draws, sha256,
    writes — resume soon instead of after 5 ms); with ``numpy``, freed numpy temporaries are kept for reuse."""
    if numpy:
        keep_freed_memory()
    was_enabled, interval = gc.isenabled(), sys.getswitchinterval()
    gc.disable()
    sys.setswitchinterval(min(interval, SWITCH_INTERVAL_S))
    try:
        yield
    finally:
        sys.setswitchinterval(interval)
        if was_enabled:
            gc.enable()
