"""The job body's entry points, the one place that handles SIGTERM (and SIGINT, handled the same way).

``run_job_body`` is what submitit pickles and runs in the batch step (it imports the heavy job module only
inside the job); ``python -m llmb_plugin_deepseek_r1 launch`` (``launch.sh``) and ``setup``'s job go through
:func:`sigterm_raises` too. Library code never installs signal handlers.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Any, Iterator, Mapping

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)  # scancel / a killed allocation; Ctrl-C or kill -INT


@contextlib.contextmanager
def sigterm_raises(exception: type[BaseException]) -> Iterator[None]:
    """While inside, SIGTERM and SIGINT raise ``exception`` in the main thread (submitit only logs SIGTERM, and
    SIGINT's KeyboardInterrupt left no result; an orphaned benchmark in its own session would keep the GPUs busy
    on clusters without cgroups). Elsewhere than the main thread: nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, _frame: Any) -> None:
        raise exception(f"signal {signum}")

    previous = {signum: signal.signal(signum, handler) for signum in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def run_job_body(specs: tuple[Any, ...], environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Run every use case of one job (preflight -> weights -> dataset -> benchmark -> collect)."""
    from llmb_plugin_deepseek_r1.tuning import keep_freed_memory
    from .benchmark import JobTerminated  # here, not at the top: planning imports this module for every dry run
    from .run import run_job

    keep_freed_memory()  # the dataset step's numpy temporaries (process-wide, so here at the entry point)
    with sigterm_raises(JobTerminated):  # kills the benchmark's process group, see benchmark.run_benchmark
        return run_job(specs, environ)
