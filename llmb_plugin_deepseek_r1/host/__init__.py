"""The llmb-run host: hook specifications, plugin discovery, cluster settings and the command line.

Nothing in this subpackage knows about any particular workload; workloads arrive through the
``llmb_run.workloads`` entry-point group and the hooks in :mod:`.hookspecs`.
"""

from .contract import HostContext, JobPlan, JobSummary, RunRequest, SlurmParams, Workload
from .errors import BenchmarkFailed, ConfigError, HostError, LlmbError, ValidationError
from .hookspecs import hookimpl

# What a workload plugin needs: the base class, the types it exchanges with the host, the errors, the marker.
__all__ = [
    "BenchmarkFailed",
    "ConfigError",
    "HostContext",
    "HostError",
    "JobPlan",
    "JobSummary",
    "LlmbError",
    "RunRequest",
    "SlurmParams",
    "ValidationError",
    "Workload",
    "hookimpl",
]
