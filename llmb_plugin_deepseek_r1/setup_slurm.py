"""Alias kept for setup jobs queued before the stage layout: their pickles name
``llmb_plugin_deepseek_r1.setup_slurm.run_heavy_steps``.

New jobs pickle :func:`llmb_plugin_deepseek_r1.setup.slurm.run_heavy_steps`. Remove once no 0.1 job can be queued.
"""

from .setup.slurm import run_heavy_steps

__all__ = ["run_heavy_steps"]
