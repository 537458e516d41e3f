"""Plain data types shared by the host and its workload plugins."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol, Sequence, runtime_checkable

SECRET_WORDS = frozenset({"TOKEN", "SECRET", "PASSWORD", "PASSWD", "PASS", "KEY", "APIKEY", "CREDENTIAL",
                          "CREDENTIALS", "AUTH", "PAT", "COOKIE", "PRIVATE"})


def is_secret_name(name: str) -> bool:
    """True for environment variable names that may hold a secret (HF_TOKEN, AWS_SECRET_ACCESS_KEY, NGC_API_KEY).

    Judged by whole words, so that knobs such as MAX_NUM_TOKENS are not mistaken for secrets.
    """
    return any(word in SECRET_WORDS for word in re.split(r"[^A-Za-z0-9]+", name.upper()))


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
    the job runs with (it may hold secrets: never print it unredacted).
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


@runtime_checkable
class Workload(Protocol):
    """What a plugin registers. ``setup`` and ``verify`` are optional methods."""

    key: str
    metadata: Mapping[str, Any]

    def plan(self, request: RunRequest) -> list[JobPlan]: ...
