"""The contract between the host and its workload plugins: the data types they exchange and the
:class:`Workload` base class every registered workload derives from (every capability declared, the optional
ones with a default, so the host never probes with getattr)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Mapping, Sequence

from .cluster import ClusterConfig, HostContext
from .errors import ValidationError
from .redaction import SECRET_WORDS, is_secret_name  # noqa: F401 - part of the contract: workloads redact with it

@dataclass(frozen=True)
class RunRequest:
    """What the user asked for on the command line, plus the resolved environment and cluster settings."""

    workload: str
    model_size: str
    dtype: str
    scale: int
    gpu_type: str
    install_dir: Path
    env: Mapping[str, str]
    one_allocation: bool = False
    repeats: int = 1
    slurm_args: Mapping[str, str] = field(default_factory=dict)
    cpu_partition: str | None = None


@dataclass(frozen=True)
class SlurmParams:
    """Slurm parameters of one job, in sbatch's vocabulary."""

    job_name: str
    nodes: int
    ntasks_per_node: int
    time_min: int
    partition: str | None = None
    account: str | None = None
    gpus_per_node: int | None = None
    exclusive: bool = True
    segment: int | None = None  # nodes per NVLink segment (sbatch --segment), GB200/GB300 only
    additional: Mapping[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class JobPlan:
    """One Slurm job: its parameters, its container, the use cases it runs and the body that runs them.

    ``body`` is a picklable callable run once in the batch step (``body(*body_args)``); ``env`` is the environment
    the job runs with (it may hold secrets: never print it unredacted).  ``record`` is what the workload wants kept in
    the job's record (e.g. the knobs set); the host stores it as it is and never reads its fields.
    """

    name: str
    slurm: SlurmParams
    container: Mapping[str, Any]
    use_cases: Sequence[Mapping[str, Any]]
    env: Mapping[str, str] = field(default_factory=dict)
    body: Callable[..., Any] | None = None
    body_args: tuple[Any, ...] = ()
    record: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The dry-run JSON shape of a job (documented keys; no secrets, no callables)."""
        return {
            "name": self.name,
            "slurm": self.slurm.to_dict(),
            "container": dict(self.container),
            "use_cases": [dict(uc) for uc in self.use_cases],
        }


@dataclass(frozen=True)
class JobSummary:
    """One line of a job's outcome as the workload tells it (``llmb-run jobs show``, ``--wait``).

    ``text`` is printed as it is; ``details`` goes into ``--json`` output. The host reads neither.
    """

    text: str
    details: Mapping[str, Any] = field(default_factory=dict)


COMMANDS = ("setup", "verify", "results", "archive")


class Workload:
    """What a plugin registers: a ``key``, ``metadata`` in the recipe-metadata shape (``general``,
    ``container``, ``setup``, ``run.gpu_configs``) and ``plan``; the rest is optional, each with a default.

    ``knobs`` lists the environment variables it reads as settings (tests clear them; records keep them).
    ``commands`` names the host commands (``setup``, ``verify``, ``results``, ``archive``) the workload
    provides; the host calls them as ``method(argv, context) -> exit code`` only when named there.
    """

    key: ClassVar[str] = ""
    commands: ClassVar[frozenset[str]] = frozenset()
    knobs: ClassVar[tuple[str, ...]] = ()  # every environment variable the workload reads as a setting

    @property
    def metadata(self) -> Mapping[str, Any]:
        raise NotImplementedError

    def plan(self, request: RunRequest) -> list[JobPlan]:
        """The jobs that run ``request`` (pure: the dry run prints them)."""
        raise NotImplementedError

    def check_before_submit(self, request: RunRequest, plans: list[JobPlan]) -> list[str]:
        """Problems found on the submitting node, one line each (nothing broken reaches the GPUs)."""
        return []

    def summarise_job(self, status: Mapping[str, Any]) -> list[JobSummary]:
        """The outcome of a finished job from its status file (``.llmb/jobs/<id>.json``), one line per result."""
        return []

    def setup(self, argv: list[str], context: HostContext) -> int:
        """Prepare the workload (weights, image, datasets): `llmb-run setup -w KEY -- ARGS`."""
        return self._not_provided("setup")

    def verify(self, argv: list[str], context: HostContext) -> int:
        """Check the workload's prerequisites (e.g. weight integrity): `llmb-run verify`."""
        return self._not_provided("verify")

    def results(self, argv: list[str], context: HostContext) -> int:
        """The workload's results table: `llmb-run results`."""
        return self._not_provided("results")

    def archive(self, argv: list[str], context: HostContext) -> int:
        """Pack the workload's experiments to share: `llmb-run archive`."""
        return self._not_provided("archive")

    def run_command(self, name: str, argv: list[str], context: HostContext) -> int:
        """Run host command ``name`` (one of :data:`COMMANDS`) of this workload."""
        handlers = {"setup": self.setup, "verify": self.verify, "results": self.results, "archive": self.archive}
        if name not in self.commands or name not in handlers:
            return self._not_provided(name)
        return int(handlers[name](argv, context) or 0)

    def missing(self) -> list[str]:
        """The required capabilities this workload does not implement (the registry refuses it then)."""
        cls = type(self)
        return [name for name, same in (("metadata", cls.metadata is Workload.metadata),
                                        ("plan", cls.plan is Workload.plan)) if same]

    def _not_provided(self, name: str) -> int:
        raise ValidationError(f"workload {self.key} does not provide `{name}`")


__all__ = ["COMMANDS", "ClusterConfig", "HostContext", "JobPlan", "JobSummary", "RunRequest", "SlurmParams",
           "Workload", "is_secret_name"]
