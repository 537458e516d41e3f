"""Setup steps "layout" (the install tree) and "datasets" (one synthetic dataset per use case)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from .model import SetupOptions, StepResult
from .util import human_bytes

INSTALL_SUBDIRS = ("images", "datasets", "venvs", "workloads")


def layout_dirs(opts: SetupOptions) -> list[Path]:
    """``$LLMB_INSTALL/{images,datasets,venvs,workloads}`` and ``$LLMB_WORKLOAD``, in creation order."""
    return [opts.install_dir / name for name in INSTALL_SUBDIRS] + [opts.workload_dir]


def venv_warning(env: Mapping[str, str], manual_install: bool) -> str | None:
    """With MANUAL_INSTALL true (setup run by hand, not by the installer) a virtual environment should be
    active, because compute nodes reuse the one the installer made; None when all is well."""
    if not manual_install:
        return None
    if sys.prefix != sys.base_prefix or env.get("CONDA_PREFIX"):
        return None
    return (f"MANUAL_INSTALL is true but no virtual environment is active (python is {sys.executable}); "
            "activate the workload's venv first (source $LLMB_INSTALL/venvs/<env>/bin/activate, or conda activate "
            "$LLMB_INSTALL/venvs/<env>) so that jobs find the same packages")


def layout_step(opts: SetupOptions, env: Mapping[str, str], log: Callable[[str], None]) -> StepResult:
    """Create the directories that are missing; an existing non-directory in the way is a failure."""
    t0 = time.monotonic()
    missing = [d for d in layout_dirs(opts) if not d.is_dir()]
    blocked = [d for d in missing if d.exists()]
    if blocked:
        return StepResult("layout", "failed", f"{blocked[0]} exists but is not a directory",
                          remedy=[f"move {blocked[0]} aside; setup needs a directory there"])
    if not missing:
        return StepResult("layout", "skipped", f"{opts.install_dir} already has images/, datasets/, venvs/, "
                          f"workloads/ and {opts.workload_dir.name}/", seconds=time.monotonic() - t0)
    names = ", ".join(str(d) for d in missing)
    if opts.dry_run:
        return StepResult("layout", "planned", f"would create {names}")
    try:
        for d in missing:
            d.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return StepResult("layout", "failed", f"cannot create {exc.filename or names}: {exc.strerror or exc}",
                          seconds=time.monotonic() - t0,
                          remedy=["choose an LLMB_INSTALL you can write to (shared storage the compute nodes see)"])
    log(f"created {names}")
    return StepResult("layout", "done", f"created {names}", seconds=time.monotonic() - t0)


def _vocab(opts: SetupOptions) -> tuple[int, int | tuple[int, ...], str]:
    """(vocab_size, eos_id, where from): the model's config.json, else DeepSeek-R1's known values, exactly as
    the job body falls back, so that jobs reuse what setup made."""
    from llmb_plugin_deepseek_r1.dataset.store import vocab_or_default

    vocab, eos, note = vocab_or_default(opts.model_dir)
    if note is None:
        return vocab, eos, f"{opts.model_dir.name}/config.json"
    return vocab, eos, f"DeepSeek-R1's known values (no readable {opts.model_dir.name}/config.json yet)"


def datasets_step(opts: SetupOptions, env: Mapping[str, str], log: Callable[[str], None]) -> StepResult:
    """Reuse every dataset whose sidecar matches its request; generate the others (atomically)."""
    from llmb_plugin_deepseek_r1.dataset.store import DatasetError, DatasetRequest, ensure_dataset, find_reusable

    t0 = time.monotonic()
    vocab, eos, vocab_from = _vocab(opts)
    items: list[dict[str, object]] = []
    counts = {"generated": 0, "reused": 0, "failed": 0}
    total = 0
    for uc in opts.use_cases:
        t1 = time.monotonic()
        item: dict[str, object] = {"use_case": uc.name, "path": str(uc.path), "isl": uc.isl, "osl": uc.osl,
                                   "num_requests": uc.num_requests}
        try:
            req = DatasetRequest(isl=uc.isl, osl=uc.osl, num_requests=uc.num_requests, vocab_size=vocab, eos_id=eos)
            if opts.dry_run:
                info, why = find_reusable(uc.path, req)
                action = "would reuse" if info is not None else f"would generate ({why})"
                item.update(action=action, text=f"{uc.name}: {action} {uc.path.name} ({req.describe()})")
            else:
                log(f"dataset {uc.path.name}: {req.describe()}")
                info, action = ensure_dataset(uc.path, req)
                counts[action] = counts.get(action, 0) + 1
                total += info.size
                item.update(action=action, bytes=info.size, seconds=round(time.monotonic() - t1, 3),
                            text=f"{uc.name}: {action} {uc.path.name} ({info.num_requests} requests, "
                                 f"{human_bytes(info.size)}, {time.monotonic() - t1:.1f} s)")
        except (DatasetError, OSError) as exc:
            counts["failed"] += 1
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            item.update(action="failed", error=reason, text=f"{uc.name}: FAILED: {reason}")
        items.append(item)
    seconds = time.monotonic() - t0
    where = f"{len(opts.use_cases)} dataset(s) in {opts.workload_dir}, requests from {opts.requests_source}, " \
            f"vocab from {vocab_from}"
    if counts["failed"]:
        return StepResult("datasets", "failed", f"{counts['failed']} of {where} failed", seconds=seconds,
                          items=items, remedy=["fix the reason shown, then rerun: llmb-run setup -w "
                                               f"{opts.workload} -- --steps datasets"])
    if opts.dry_run:
        return StepResult("datasets", "planned", where, seconds=seconds, items=items)
    status = "done" if counts["generated"] else "skipped"
    return StepResult("datasets", status, f"{counts['generated']} generated, {counts['reused']} reused: {where}",
                      seconds=seconds, bytes=total, items=items)
