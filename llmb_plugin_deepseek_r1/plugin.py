"""The llmb-run plugin: hook implementations only; everything else is imported when used."""

from __future__ import annotations

from functools import cached_property
from typing import Any, Callable, Mapping

from . import WORKLOAD_KEY
from .host.contract import JobPlan, RunRequest
from .host.hookspecs import hookimpl


def load_metadata() -> dict[str, Any]:
    """workload.yaml, read from the installed package (so a wheel works, not only a checkout)."""
    from importlib.resources import files

    import yaml

    return yaml.safe_load(files(__package__).joinpath("workload.yaml").read_text())


class DeepSeekR1Workload:
    """inference_deepseek-r1: the recipe's metadata plus planning, setup and verification."""

    key = WORKLOAD_KEY

    @cached_property
    def metadata(self) -> Mapping[str, Any]:
        return load_metadata()

    def plan(self, request: RunRequest) -> list[JobPlan]:
        from .plan import build_job_plans
        from .spec import resolve_run_specs

        return build_job_plans(resolve_run_specs(request, self.metadata), request)


@hookimpl
def llmb_register_workloads(register: Callable[[Any], None]) -> None:
    register(DeepSeekR1Workload())
