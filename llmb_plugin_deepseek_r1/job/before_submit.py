"""Checks run on the submitting node before anything is submitted: a truncated shard or a missing image found
here costs a second, found inside the allocation it costs four GPUs and a queue slot. The job body runs the same
checks again on the compute node."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from .preflight import check_image
from llmb_plugin_deepseek_r1.planning.spec import RunSpec

MAX_LISTED = 5


def problems_before_submit(specs: Sequence[RunSpec]) -> list[str]:
    """One line per problem: weights (per WEIGHT_CHECK, quick unless asked) and the container image file."""
    problems: list[str] = []
    checked: set[tuple[Path, str, str]] = set()
    for spec in specs:
        key = (spec.model_dir, spec.dtype, spec.weight_check)
        if spec.weight_check == "skip" or key in checked:
            continue
        checked.add(key)
        from llmb_plugin_deepseek_r1.weights import check_weights

        report = check_weights(spec.model_dir, dtype=spec.dtype, full=spec.weight_check == "full")
        for problem in report.problems[:MAX_LISTED]:
            problems.append(f"weights {spec.model_dir}: {problem.file}: {problem.kind}: {problem.detail}")
        if len(report.problems) > MAX_LISTED:
            problems.append(f"weights {spec.model_dir}: {len(report.problems) - MAX_LISTED} more problem(s); "
                            f"run `llmb-run verify -w {spec.workload} {spec.model_dir}` for the full report")
    images = {(spec.image, spec.runtime) for spec in specs}
    for image, runtime in sorted(images):
        result = check_image(image, runtime)
        if result.status == "failed":
            problems.append(result.detail)
    return problems
