"""The llmb-run host: hook specifications, plugin discovery, cluster settings and the command line.

Nothing in this subpackage knows about any particular workload; workloads arrive through the
``llmb_run.workloads`` entry-point group and the hooks in :mod:`.hookspecs`.

The names below are what a workload plugin needs: the base class, the types it exchanges with the host, the
errors, the marker. They are loaded on first use (PEP 562), so that a command importing only ``host.errors``
(``python -m llmb_plugin_deepseek_r1 prepare-dataset``, say) does not pay for pluggy and the contract's types.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover - for type checkers and readers
    from .contract import HostContext, JobPlan, JobSummary, RunRequest, SlurmParams, Workload
    from .errors import BenchmarkFailed, ConfigError, HostError, LlmbError, ValidationError
    from .hookspecs import hookimpl

_HOME = {
    "HostContext": "contract", "JobPlan": "contract", "JobSummary": "contract", "RunRequest": "contract",
    "SlurmParams": "contract", "Workload": "contract",
    "BenchmarkFailed": "errors", "ConfigError": "errors", "HostError": "errors", "LlmbError": "errors",
    "ValidationError": "errors",
    "hookimpl": "hookspecs",
}
__all__ = sorted(_HOME)


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_HOME[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOME])
