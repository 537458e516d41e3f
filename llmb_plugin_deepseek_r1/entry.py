"""Alias kept for jobs queued before the stage layout: their pickles name ``llmb_plugin_deepseek_r1.entry``.

New jobs pickle :func:`llmb_plugin_deepseek_r1.job.entry.run_job_body`. Remove once no 0.1 job can be queued.
"""

from .job.entry import run_job_body

__all__ = ["run_job_body"]
