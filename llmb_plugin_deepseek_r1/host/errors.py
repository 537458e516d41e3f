"""One error tree and one exit-code policy for every command (``llmb-run ...`` and ``python -m
llmb_plugin_deepseek_r1 ...``).

Exception hierarchy (the message of each is one line meant for the user)::

    LlmbError                     exit 3 unless a subclass says otherwise
    ├── InvalidInput              exit 1: the user asked for something not valid
    │   ├── ValidationError         a bad value, an unknown workload, a bad option value
    │   └── ConfigError             the environment or a configuration file is wrong (LLMB_INSTALL, STAGE_PATH...)
    ├── SystemFailure             exit 3: something outside the request failed
    │   ├── HostError               a plugin that cannot load, a wait past its deadline, a failed submission
    │   └── SlurmError              a Slurm client command failed or timed out
    └── BenchmarkFailed           exit 4: the command ran, but the benchmark (or check) it ran FAILED or is INVALID

Exit codes (README "Exit codes"): 0 ok, 1 invalid input or configuration, 2 usage error (argparse's own exit,
as llmb-run 1.15's click-based CLI), 3 system error (also any unexpected exception), 4 ran but the benchmark
failed or was INVALID, 130 interrupted. :func:`exit_code` is the one place that maps an exception to a code,
and :func:`command` the one wrapper every command's ``main`` goes through.
"""

from __future__ import annotations

import functools
import sys
from typing import Callable, TypeVar

EXIT_OK = 0
EXIT_INVALID = 1
EXIT_USAGE = 2
EXIT_SYSTEM = 3
EXIT_BENCHMARK_FAILED = 4
EXIT_INTERRUPTED = 130


class LlmbError(Exception):
    """Base class: the message is one line meant for the user."""

    exit_code = EXIT_SYSTEM


class InvalidInput(LlmbError):
    """The user's input (options, environment, files named by the user) is not valid."""

    exit_code = EXIT_INVALID


class ValidationError(InvalidInput):
    """The user asked for something that is not valid (bad value, unknown workload...)."""


class ConfigError(InvalidInput):
    """The environment or configuration files are wrong (LLMB_INSTALL missing, STAGE_PATH set...)."""


class SystemFailure(LlmbError):
    """Something outside the user's request failed."""

    exit_code = EXIT_SYSTEM


class HostError(SystemFailure):
    """Slurm unreachable, a plugin that cannot load, a wait past its deadline..."""


class SlurmError(SystemFailure):
    """A Slurm client command (sbatch, squeue, sacct, scontrol, scancel) failed or timed out."""


class BenchmarkFailed(LlmbError):
    """The command ran to its end, but what it ran failed (a FAILED or INVALID benchmark, a failed check)."""

    exit_code = EXIT_BENCHMARK_FAILED


def exit_code(exc: BaseException) -> int:
    """The exit code of a command that ended with ``exc`` (the only mapping of exceptions to codes)."""
    if isinstance(exc, LlmbError):
        return exc.exit_code
    if isinstance(exc, SystemExit):  # argparse: --help (0) or a usage error (2)
        code = exc.code
        return code if isinstance(code, int) else (EXIT_OK if code is None else EXIT_INVALID)  # as Python
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    if isinstance(exc, BrokenPipeError):
        return EXIT_OK
    return EXIT_SYSTEM


F = TypeVar("F", bound=Callable[..., int])


def command(main: F) -> F:
    """Wrap a command's ``main``: exceptions become one ``error:`` line on stderr and the policy's exit code.

    An unexpected exception is a system error (3), with its traceback, never mistaken for bad input (1).
    """

    @functools.wraps(main)
    def wrapper(*args, **kwargs) -> int:
        def say(text: str) -> None:  # never a secret the process was given, even quoted by a message
            from .redaction import scrub_known_secrets

            argv = args[0] if args and isinstance(args[0], (list, tuple)) else ()
            print(scrub_known_secrets(text, argv), file=sys.stderr)

        try:
            return int(main(*args, **kwargs) or 0)
        except LlmbError as exc:
            say(f"error: {exc}")
            return exit_code(exc)
        except SystemExit as exc:
            if isinstance(exc.code, str):  # sys.exit("message"): say it, as Python would
                say(f"error: {exc.code}")
            return exit_code(exc)
        except KeyboardInterrupt as exc:
            print("interrupted", file=sys.stderr)
            return exit_code(exc)
        except BrokenPipeError as exc:
            return exit_code(exc)
        except OSError as exc:  # a file that cannot be read or written: one line, a system error
            say(f"error: {exc}")
            return exit_code(exc)
        except Exception as exc:  # noqa: BLE001 - the policy's last line
            import traceback

            say(traceback.format_exc().rstrip("\n"))
            return exit_code(exc)

    return wrapper  # type: ignore[return-value]
