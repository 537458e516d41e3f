"""The job body's entry points, the one place that handles SIGTERM (and SIGINT, handled the same way), and
Slurm's time-limit warning (SIGUSR2, which submitit asks Slurm to send a minute before the limit).

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
TIME_LIMIT_SIGNAL = signal.SIGUSR2  # submitit's --signal=USR2@<signal_delay_s>: the time limit is that near


@contextlib.contextmanager
def sigterm_raises(exception: type[BaseException],
                   time_limit: type[BaseException] | None = None) -> Iterator[None]:
    """While inside, SIGTERM and SIGINT raise ``exception`` in the main thread (submitit only logs SIGTERM, and
    SIGINT's KeyboardInterrupt left no result; an orphaned benchmark in its own session would keep the GPUs busy
    on clusters without cgroups), and SIGUSR2 raises ``time_limit`` when given (submitit's own handler would
    raise "Job not requeued because: timed-out and not checkpointable" wherever the body is, and the result
    would read as a crash). Elsewhere than the main thread: nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, _frame: Any) -> None:
        raise (time_limit if signum == TIME_LIMIT_SIGNAL and time_limit else exception)(f"signal {signum}")

    signals = STOP_SIGNALS + ((TIME_LIMIT_SIGNAL,) if time_limit else ())
    previous = {signum: signal.signal(signum, handler) for signum in signals}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def run_job_body(specs: tuple[Any, ...], environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Run every use case of one job (preflight -> weights -> dataset -> benchmark -> collect)."""
    from llmb_plugin_deepseek_r1.tuning import keep_freed_memory
    from .benchmark import JobTerminated, TimeLimitReached  # here: planning imports this module for every dry run
    from .run import run_job

    keep_freed_memory()  # the dataset step's numpy temporaries (process-wide, so here at the entry point)
    with sigterm_raises(JobTerminated, TimeLimitReached):  # kills the benchmark's process group (run_benchmark)
        return run_job(specs, environ)
