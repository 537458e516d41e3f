"""Error types that map onto llmb-run's exit codes (0 ok, 1 validation/configuration, 2 system)."""

from __future__ import annotations


class LlmbError(Exception):
    """Base class: the message is one line meant for the user."""

    exit_code = 2


class ValidationError(LlmbError):
    """The user asked for something that is not valid (bad value, unknown workload...)."""

    exit_code = 1


class ConfigError(LlmbError):
    """The environment or configuration files are wrong (LLMB_INSTALL missing, STAGE_PATH set...)."""

    exit_code = 1


class HostError(LlmbError):
    """Something outside the user's request failed (Slurm unreachable, a plugin that cannot load...)."""

    exit_code = 2
