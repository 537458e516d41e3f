"""Process-wide settings that make bulk work fast, applied only by entry points (commands, the job body).

Library functions never change the garbage collector, the interpreter's switch interval or the allocator:
a caller embedding them keeps its own settings. The command that does the bulk work opts in with
:func:`bulk_work` for its duration (verify-weights, prepare-/validate-dataset); the long-running entry points
(the job body, setup) only call :func:`keep_freed_memory`, since pausing the GC for hours is not safe.
"""

from __future__ import annotations

import gc
import os
import sys
from contextlib import contextmanager
from typing import Iterator, NoReturn

SWITCH_INTERVAL_S = 2e-4


@contextmanager
def no_blas_threads() -> Iterator[None]:
    """Import numpy, inside this block, without OpenBLAS's worker threads.

    numpy's wheels load OpenBLAS, which starts one thread per core at import, and those threads spin for a while
    looking for work: about 0.1 CPU-second taken from the cores that generate a dataset or hash a checkpoint,
    which never multiply a matrix. ``OPENBLAS_NUM_THREADS`` is read once, when the library loads, so it is set
    for the import only (a value the user set is kept) and the environment is restored for child processes.
    """
    name = "OPENBLAS_NUM_THREADS"
    if "numpy" in sys.modules or name in os.environ:
        yield
        return
    os.environ[name] = "1"
    try:
        yield
    finally:
        os.environ.pop(name, None)


def exit_without_teardown(status: int) -> NoReturn:
    """End a finished command now, skipping the interpreter's teardown.

    After a dataset command the interpreter would spend about 20 ms (3% of generating a 378 MB dataset) on a
    final garbage collection over every module and on freeing numpy's buffers one by one, none of which the
    results need. Only for commands that have closed their files and joined their threads: logging and the
    standard streams are flushed, then ``os._exit``. A stream that cannot be flushed (a closed pipe) makes the
    status 1 unless it already says failure.
    """
    if "logging" in sys.modules:
        sys.modules["logging"].shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            status = status or 1
    os._exit(status)


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
