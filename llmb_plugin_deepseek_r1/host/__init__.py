"""The llmb-run host: hook specifications, plugin discovery, cluster settings and the command line.

Nothing in this subpackage knows about any particular workload; workloads arrive through the
``llmb_run.workloads`` entry-point group and the hooks in :mod:`.hookspecs`.
"""

from .contract import JobPlan, RunRequest, SlurmParams, Workload
from .errors import ConfigError, HostError, LlmbError, ValidationError
from .hookspecs import hookimpl

__all__ = [
    "ConfigError",
    "HostError",
    "JobPlan",
    "LlmbError",
    "RunRequest",
    "SlurmParams",
    "ValidationError",
    "Workload",
    "hookimpl",
]
