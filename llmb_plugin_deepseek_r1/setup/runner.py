"""Run setup steps here, in order, and report each one: shared by the command line and the setup job."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping

from .model import SetupOptions, StepResult


def stderr_log(message: str) -> None:
    """Progress lines go to stderr, so that stdout carries only the summary (``--json`` stays parseable)."""
    print(f"[setup] {message}", file=sys.stderr, flush=True)


def _step_functions() -> dict[str, Callable[[SetupOptions, Mapping[str, str], Callable[[str], None]], StepResult]]:
    from .data import datasets_step, layout_step
    from .image import image_step
    from .download import weights_step

    return {"layout": layout_step, "weights": weights_step, "image": image_step, "datasets": datasets_step}


def run_steps(opts: SetupOptions, env: Mapping[str, str], log: Callable[[str], None],
              steps: tuple[str, ...] | None = None) -> list[StepResult]:
    """Run ``steps`` (default ``opts.steps``) here, in order. A failed layout or an interruption marks the
    remaining steps incomplete; any other failure does not stop the independent steps after it."""
    functions = _step_functions()
    todo = list(steps if steps is not None else opts.steps)
    results: list[StepResult] = []
    while todo:
        step = todo.pop(0)
        log(f"{step}: {'checking (dry run)' if opts.dry_run else 'starting'}")
        try:
            result = functions[step](opts, env, log)
        except KeyboardInterrupt:
            results.append(StepResult(step, "interrupted", "interrupted; finished work is kept, rerun to resume"))
            results += [StepResult(s, "incomplete", "not run: setup was interrupted") for s in todo]
            break
        except Exception as exc:  # noqa: BLE001 - one broken step must not hide the others' outcome
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            result = StepResult(step, "failed", f"unexpected {type(exc).__name__}: {text}",
                                remedy=["rerun; if it persists, report it with the lines above"])
        results.append(result)
        log(f"{step}: {result.status}: {result.detail}")
        if step == "layout" and not result.ok:
            results += [StepResult(s, "incomplete", "not run: the layout step failed") for s in todo]
            break
    return results
