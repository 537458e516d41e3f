"""The contract between llmb-run and workload plugins (pluggy hook specifications).

A plugin is a module named by an entry point in the ``llmb_run.workloads`` group; it implements any of these
hooks with ``@hookimpl``. Each hook says the contract version it appeared in.
"""

from __future__ import annotations

from typing import Any, Callable

import pluggy

PROJECT_NAME = "llmb_run"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def llmb_register_workloads(register: Callable[[Any], None]) -> None:
    """Call ``register(workload)`` once for each workload the plugin offers (contract 1.0).

    ``workload`` is an instance of a subclass of :class:`llmb_plugin_deepseek_r1.host.contract.Workload`, which
    declares every capability: ``key``, ``metadata``, ``plan(request)``, and the optional ones with defaults
    (``check_before_submit``, ``summarise_job``, and the host commands named in ``commands``). Objects of any
    other type are refused, and the plugin is listed as broken.
    """


@hookspec
def llmb_register_commands(subparsers: Any) -> None:
    """Add plugin-specific subcommands to llmb-run (contract 1.0).

    ``subparsers`` is argparse's sub-parser action; a command sets ``handler=callable(args) -> int`` with
    ``set_defaults``. Commands must import their heavy dependencies lazily: this hook runs on every start.
    """
