"""Alias kept for jobs queued before the stage layout: their pickled arguments name ``llmb_plugin_deepseek_r1.spec``.

The run spec lives in :mod:`llmb_plugin_deepseek_r1.planning.spec`. Remove once no 0.1 job can be queued.
"""

from .planning.spec import RunSpec

__all__ = ["RunSpec"]
