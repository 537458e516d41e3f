"""Value types of the setup: the resolved options, one result per step, and the summary a user reads.

Kept free of I/O so that the command line, the Slurm job and the tests share one definition of what a
setup will do and how its outcome is reported (text or ``--json``) and turned into an exit code.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from llmb_plugin_deepseek_r1.recipe import WORKLOAD_KEY
from llmb_plugin_deepseek_r1.host.errors import EXIT_BENCHMARK_FAILED, EXIT_OK
from llmb_plugin_deepseek_r1.weights.report import human_bytes

STEPS = ("layout", "weights", "image", "datasets")
HEAVY_STEPS = ("weights", "image", "datasets")
# done/skipped/planned/submitted are fine; failed/incomplete/interrupted make the setup incomplete (exit 4).
OK_STATUSES = frozenset({"done", "skipped", "planned", "submitted"})


@dataclass(frozen=True)
class UseCaseData:
    """One dataset setup prepares: ``$LLMB_WORKLOAD/dataset_<name>_<isl>_<osl>.txt``."""

    name: str
    isl: int
    osl: int
    num_requests: int
    path: Path


@dataclass(frozen=True)
class SlurmOptions:
    """Where and how the heavy steps run as one Slurm job (``--slurm``)."""

    partition: str
    account: str | None
    time_min: int
    cpus: int
    wait: bool
    wait_timeout_s: float


@dataclass(frozen=True)
class SetupOptions:
    """Everything the steps need, decided (and validated) before any of them runs. Holds no secrets, so it
    can be pickled into a Slurm job; the environment travels separately."""

    steps: tuple[str, ...]
    dry_run: bool
    install_dir: Path
    workload_dir: Path
    model_dir: Path
    repo_id: str
    revision: str | None
    image_uri: str
    image_file: Path
    arch: str
    gpu_type: str
    workers: int
    use_cases: tuple[UseCaseData, ...]
    requests_source: str
    offline: bool
    hub_cache: Path
    lock_timeout_s: float
    manual_install: bool
    slurm: SlurmOptions | None = None
    workload: str = WORKLOAD_KEY
    run_command: str = ""
    dtype: str = "nvfp4"
    profile: str = "25.07"


@dataclass
class StepResult:
    """The outcome of one step: ``status`` is done, skipped, planned (dry run), submitted (Slurm), failed,
    incomplete (could not run here, e.g. no enroot) or interrupted."""

    step: str
    status: str
    detail: str
    seconds: float = 0.0
    bytes: int | None = None
    remedy: list[str] = field(default_factory=list)
    items: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status in OK_STATUSES

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StepResult:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


def exit_code(results: list[StepResult]) -> int:
    """0 when every step is done, skipped, planned or submitted; 4 when any failed or is incomplete."""
    return EXIT_OK if all(r.ok for r in results) else EXIT_BENCHMARK_FAILED


def next_command(opts: SetupOptions, results: list[StepResult]) -> str:
    """What to run next: the benchmark when everything is in place, else setup again for the steps left."""
    pending = [r.step for r in results if not r.ok]
    if pending:
        steps = [s for s in STEPS if s in pending]
        return f"llmb-run setup -w {opts.workload} -- --steps {','.join(steps)}"
    if any(r.status == "submitted" for r in results):
        return "wait for the setup job (see above), then: " + opts.run_command
    if opts.dry_run:
        return f"llmb-run setup -w {opts.workload}   (the same without --dry-run)"
    return opts.run_command


def summary_dict(opts: SetupOptions, results: list[StepResult], warnings: list[str],
                 extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``--json`` document (also what a Slurm setup job returns)."""
    code = exit_code(results)
    return {
        "ok": code == EXIT_OK,
        "exit_code": code,
        "dry_run": opts.dry_run,
        "workload": opts.workload,
        "install_dir": str(opts.install_dir),
        "workload_dir": str(opts.workload_dir),
        "seconds": round(sum(r.seconds for r in results), 3),
        "steps": [r.to_dict() for r in results],
        "warnings": list(warnings),
        "next": next_command(opts, results),
        **(extra or {}),
    }


def _seconds(s: float) -> str:
    return f"{s:.1f} s" if s < 120 else f"{s / 60:.1f} min"


def format_summary(doc: dict[str, Any]) -> str:
    """The text summary: one line per step (status, what, size, time), its items and remedy, then next."""
    head = "Setup plan (dry run)" if doc["dry_run"] else "Setup summary"
    lines = [f"{head} for {doc['workload']} in {doc['install_dir']}:"]
    for step in doc["steps"]:
        size = f", {human_bytes(step['bytes'])}" if step.get("bytes") else ""
        lines.append(f"  {step['step']:<9} {step['status'].upper():<11} {step['detail']}{size} "
                     f"[{_seconds(step['seconds'])}]")
        for item in step.get("items") or ():
            lines.append(f"      {item.get('text', item)}")
        for remedy in step.get("remedy") or ():
            lines.append(f"      fix: {remedy}")
    for warning in doc.get("warnings") or ():
        lines.append(f"  warning: {warning}")
    if doc["dry_run"]:
        verdict = "Dry run: nothing was changed" + ("" if doc["ok"] else "; setup would be INCOMPLETE")
    else:
        verdict = ("Setup complete" if doc["ok"] else "Setup INCOMPLETE") + f" ({_seconds(doc['seconds'])})"
    lines.append(f"{verdict}. Next: {doc['next']}")
    return "\n".join(lines)
