"""Alias kept for setup jobs queued before the stage layout: their pickles name the option types of
``llmb_plugin_deepseek_r1.setup_model`` (now :mod:`llmb_plugin_deepseek_r1.setup.model`, whose added fields all
have defaults). Remove once no 0.1 job can be queued.
"""

from .setup.model import SetupOptions, SlurmOptions, StepResult, UseCaseData

__all__ = ["SetupOptions", "SlurmOptions", "StepResult", "UseCaseData"]
