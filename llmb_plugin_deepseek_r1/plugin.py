"""The llmb-run plugin: the workload object and its hook implementation; everything else is imported when used."""

from __future__ import annotations

from functools import cached_property
from typing import Any, Callable, Mapping

from .host.contract import COMMANDS, HostContext, JobPlan, JobSummary, RunRequest, Workload
from .host.hookspecs import hookimpl
from .planning.knobs import ALL_KNOBS
from .recipe import WORKLOAD_KEY, load_metadata


class DeepSeekR1Workload(Workload):
    """inference_deepseek-r1: the recipe's metadata plus planning, setup, verification and results."""

    key = WORKLOAD_KEY
    commands = frozenset(COMMANDS)
    knobs = ALL_KNOBS

    @cached_property
    def metadata(self) -> Mapping[str, Any]:
        return load_metadata()

    def plan(self, request: RunRequest) -> list[JobPlan]:
        from .planning.plan import build_job_plans
        from .planning.spec import resolve_run_specs

        return build_job_plans(resolve_run_specs(request, self.metadata), request)

    def check_before_submit(self, request: RunRequest, plans: list[JobPlan]) -> list[str]:
        """What can be checked on the submitting node (shared storage) before four GPUs are allocated."""
        from .job.before_submit import problems_before_submit

        return problems_before_submit([spec for plan in plans for spec in plan.body_args[0]])

    def summarise_job(self, status: Mapping[str, Any]) -> list[JobSummary]:
        from .results.summary import job_summaries

        return job_summaries(status)

    def setup(self, argv: list[str], context: HostContext) -> int:
        """`llmb-run setup -w inference_deepseek-r1 [-- options]`: the installer's setup steps."""
        from .setup.steps import main as setup_main

        return setup_main(argv, context=context)

    def verify(self, argv: list[str], context: HostContext) -> int:
        """`llmb-run verify -w inference_deepseek-r1 [-- DIR --full ...]`: the weight check (default: the model
        folder jobs use, MODEL_PATH honoured, with the dtype and the checkpoint the GPU type's profile runs)."""
        from .setup.options import workload_checkpoint
        from .weights import main as verify_main

        if not argv or argv[0].startswith("-"):
            checkpoint, where, dtype = workload_checkpoint(context.env, self.metadata, context.gpu_type,
                                                           context.install_dir)
            argv = [str(where.model_dir), *argv] + ([] if "--dtype" in argv else ["--dtype", dtype])
            if "--expect-repo" not in argv:
                argv += ["--expect-repo", checkpoint.repo_id, "--expect-revision", checkpoint.revision]
        return verify_main(argv)

    def results(self, argv: list[str], context: HostContext) -> int:
        """`llmb-run results [-w inference_deepseek-r1] [-- options]`: the results table."""
        from .results.cli import main as results_main

        return results_main(argv, context=context)

    def archive(self, argv: list[str], context: HostContext) -> int:
        """`llmb-run archive [-w inference_deepseek-r1]`: pack experiments to share."""
        from .results.cli import main_archive

        return main_archive(argv, context=context)


@hookimpl
def llmb_register_workloads(register: Callable[[Workload], None]) -> None:
    register(DeepSeekR1Workload())
