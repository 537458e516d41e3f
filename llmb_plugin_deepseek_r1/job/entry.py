"""The picklable job-body entry point submitit runs; it imports the heavy job module only inside the job."""

from __future__ import annotations

from typing import Any


def run_job_body(specs: tuple[Any, ...]) -> dict[str, Any]:
    """Run every use case of one job (preflight -> weights -> dataset -> benchmark -> collect)."""
    from .run import run_job

    return run_job(specs)
