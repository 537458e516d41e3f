"""The recipe's environment knobs: the one registry of their names and defaults, and their parsers (each
returns a typed value or raises a one-line ValidationError naming the variable, the bad value and what is
accepted)."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Mapping

from llmb_plugin_deepseek_r1.host.errors import ValidationError

# Every knob a run reads from the environment (README's knob table); what is set of these is recorded with each run.
RUN_KNOBS = (
    "USE_CASES", "MAX_NUM_TOKENS", "MAX_BATCH_SIZE", "KV_CACHE_FRACTION", "NUM_REQUESTS", "CONCURRENCY",
    "TP", "EP", "PP", "STREAMING", "MODE", "SBATCH_TIMELIMIT", "SBATCH_ACCOUNT", "SBATCH_PARTITION",
    "SBATCH_GPUS_PER_NODE", "RUN_CONF_IMAGE", "TRTLLM_VERSION", "MODEL_PATH", "CONTAINER_RUNTIME",
    "SLURM_MPI_TYPE", "WEIGHT_CHECK", "OOM_RETRIES", "CONTAINER_ENV", "BENCH_TIMEOUT", "HANG_GRACE", "SWEEP_FILE",
    "SBATCH_SEGMENT_SIZE",
    "USE_CASE", "PROFILE", "CONCURRENCY_MULTIPLIER", "ENABLE_CHUNKED_PREFILL", "CUDA_GRAPH_BATCH_SIZES",
    "EXTRA_LLM_API_OPTIONS", "MODEL_REPO", "MODEL_REVISION",
    "GPUS_PER_NODE", "ENABLE_PROFILE", "PROFILE_START", "PROFILE_END", "ENABLE_GPU_METRICS", "LLMB_CONTAINER_ENV",
    "LLMB_DUMP_ENV",
)
# Read by setup (requests per dataset, the weights' revision, the installer's flag).
SETUP_KNOBS = ("PROMPT_REQUESTS", "PROMT_REQUESTS", "HF_REVISION", "MANUAL_INSTALL")
# Read by `launch` (launch.sh) in place of llmb-run's options.
LAUNCH_KNOBS = ("MODEL_SIZE", "DTYPE", "JOB_TOTAL_GPUS")
# Where the weight check and the results table keep their caches.
CACHE_KNOBS = ("LLMB_WEIGHTS_CACHE", "LLMB_RESULTS_CACHE")
ALL_KNOBS = RUN_KNOBS + SETUP_KNOBS + LAUNCH_KNOBS + CACHE_KNOBS

DEFAULT_HANG_GRACE_S = 60

NAME_RE = re.compile(r"^[A-Za-z0-9_-]+$")
TRUE_WORDS = frozenset({"1", "true", "yes", "on", "y", "t"})
FALSE_WORDS = frozenset({"0", "false", "no", "off", "n", "f"})
MODES = ("max_throughput", "min_latency")
RUNTIMES = ("pyxis", "none", "docker")
CUDA_GRAPH_SCHEMES = ("powers-of-two", "step-64")


def _bad(var: str, value: str, accepted: str) -> ValidationError:
    return ValidationError(f"{var}={value!r} is not valid: expected {accepted}")


MAX_DIGITS = 30  # longer numbers are typos (and Python refuses to parse more than 4300 digits)


def _shown(value: str) -> str:
    return value if len(value) <= 60 else value[:57] + "..."


def positive_int(var: str, value: str) -> int:
    text = value.strip().replace("_", "")
    if not re.fullmatch(r"\+?\d{1,%d}" % MAX_DIGITS, text) or int(text) <= 0:
        raise _bad(var, _shown(value), "a positive whole number")
    return int(text)


def concurrency(var: str, value: str) -> int:
    text = value.strip()
    if text == "-1":
        return -1
    if not re.fullmatch(r"\+?\d{1,%d}" % MAX_DIGITS, text) or int(text) <= 0:
        raise _bad(var, _shown(value), "a positive whole number, or -1 for unlimited")
    return int(text)


def fraction(var: str, value: str) -> float:
    try:
        number = float(value.strip())
    except ValueError:
        raise _bad(var, value, "a number in (0, 1], e.g. 0.85") from None
    if not math.isfinite(number) or not 0.0 < number <= 1.0:
        raise _bad(var, value, "a number in (0, 1], e.g. 0.85")
    return number


def boolean(var: str, value: str) -> bool:
    word = value.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise _bad(var, value, "true or false (also 1/0, yes/no, on/off)")


def choice(var: str, value: str, choices: tuple[str, ...]) -> str:
    word = value.strip().lower().replace("-", "_")
    normalised = {c.replace("-", "_"): c for c in choices}
    if word not in normalised:
        raise _bad(var, value, "one of " + ", ".join(choices))
    return normalised[word]


MAX_NAME_LEN = 64  # names end up in file names (255 bytes at most) beside the model, parallelism and job id


def name(var: str, value: str) -> str:
    """A name that becomes part of file and job names: letters, digits, '_' and '-' only, at most 64 of them."""
    if not NAME_RE.fullmatch(value) or value in (".", ".."):
        raise _bad(var, _shown(value), "a name made of letters, digits, '_' and '-'")
    if len(value) > MAX_NAME_LEN:
        raise _bad(var, _shown(value), f"a name of at most {MAX_NAME_LEN} characters (it becomes part of file "
                                       f"names), got {len(value)}")
    return value


# Patterns as text: compiled (and cached by re) the first time a time limit is given, not at every dry run.
_TIME_FORMATS = (
    (r"^(\d+)$", lambda m: int(m[1]) * 60),
    (r"^(\d+):(\d{1,2})$", lambda m: int(m[1]) * 60 + int(m[2])),
    (r"^(\d+):(\d{1,2}):(\d{1,2})$", lambda m: int(m[1]) * 3600 + int(m[2]) * 60 + int(m[3])),
    (r"^(\d+)-(\d+)$", lambda m: int(m[1]) * 86400 + int(m[2]) * 3600),
    (r"^(\d+)-(\d+):(\d{1,2})$", lambda m: int(m[1]) * 86400 + int(m[2]) * 3600 + int(m[3]) * 60),
    (r"^(\d+)-(\d+):(\d{1,2}):(\d{1,2})$",
     lambda m: int(m[1]) * 86400 + int(m[2]) * 3600 + int(m[3]) * 60 + int(m[4])),
)


MAX_TIME_LIMIT_MIN = 30 * 24 * 60  # 30 days: beyond it a time limit is a typo, and the job would wait forever


def time_limit_minutes(var: str, value: str) -> int:
    """Slurm's time formats (minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS) -> whole minutes, rounded up,
    at most MAX_TIME_LIMIT_MIN."""
    text = value.strip()
    if len(text) > MAX_DIGITS:
        raise _bad(var, _shown(value), "a Slurm time limit such as 30, 45:00, 1:40:00 or 1-00:00:00")
    for pattern, seconds_of in _TIME_FORMATS:
        match = re.match(pattern, text)
        if match:
            seconds = seconds_of(match)
            if seconds <= 0:
                break
            minutes = max(1, math.ceil(seconds / 60))
            if minutes > MAX_TIME_LIMIT_MIN:
                raise _bad(var, value, f"a Slurm time limit of at most {MAX_TIME_LIMIT_MIN // 1440} days "
                                       f"({MAX_TIME_LIMIT_MIN} minutes)")
            return minutes
    raise _bad(var, value, "a Slurm time limit such as 30, 45:00, 1:40:00 or 1-00:00:00 (greater than zero)")


def env_name(var: str, value: str) -> str:
    """An environment variable name (for CONTAINER_ENV's list of variables passed into the container)."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
        raise _bad(var, value, "space-separated environment variable names")
    return value


def _set(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name)
    return None if value is None or value.strip() == "" else value


def _bounded_int(var: str, env: Mapping[str, str]) -> int:
    from .bounds import bounded

    return bounded(var, positive_int(var, env[var]))


def job_settings(env: Mapping[str, str]) -> dict[str, Any]:
    """The knobs that are not tuning values: Slurm, container, checks, limits."""
    oom_retries = 0
    if _set(env, "OOM_RETRIES"):
        oom_retries = 0 if env["OOM_RETRIES"].strip() == "0" else _bounded_int("OOM_RETRIES", env)
    return {
        "streaming": boolean("STREAMING", env["STREAMING"]) if _set(env, "STREAMING") else True,
        "time_limit_min": time_limit_minutes("SBATCH_TIMELIMIT", env["SBATCH_TIMELIMIT"])
        if _set(env, "SBATCH_TIMELIMIT") else None,
        "gpus_per_node": _bounded_int("SBATCH_GPUS_PER_NODE", env) if _set(env, "SBATCH_GPUS_PER_NODE") else None,
        "account": name("SBATCH_ACCOUNT", env["SBATCH_ACCOUNT"]) if _set(env, "SBATCH_ACCOUNT") else None,
        "partition": partition(env),
        "runtime": choice("CONTAINER_RUNTIME", env["CONTAINER_RUNTIME"], RUNTIMES)
        if _set(env, "CONTAINER_RUNTIME") else "pyxis",
        "mpi_type": name("SLURM_MPI_TYPE", env["SLURM_MPI_TYPE"]) if _set(env, "SLURM_MPI_TYPE") else "pmix",
        "weight_check": choice("WEIGHT_CHECK", env["WEIGHT_CHECK"], ("quick", "full", "skip"))
        if _set(env, "WEIGHT_CHECK") else "quick",
        "oom_retries": oom_retries,
        "bench_timeout": _bounded_int("BENCH_TIMEOUT", env) if _set(env, "BENCH_TIMEOUT") else None,
        "hang_grace": _bounded_int("HANG_GRACE", env) if _set(env, "HANG_GRACE") else DEFAULT_HANG_GRACE_S,
        "container_env": tuple(env_name("CONTAINER_ENV", n) for n in (env.get("CONTAINER_ENV") or "").split()),
        "extra_yaml": extra_options(env["EXTRA_LLM_API_OPTIONS"]) if _set(env, "EXTRA_LLM_API_OPTIONS") else {},
    }


def extra_options(path_text: str) -> dict[str, Any]:
    """EXTRA_LLM_API_OPTIONS: a YAML mapping merged over the generated options (keys checked per version)."""
    import yaml

    try:
        data = yaml.safe_load(Path(path_text).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ValidationError(f"EXTRA_LLM_API_OPTIONS={path_text!r} cannot be read: {str(exc).splitlines()[0]}") \
            from None
    if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
        raise ValidationError(f"EXTRA_LLM_API_OPTIONS={path_text!r} must hold a YAML mapping of option names")
    return data


def partition(env: Mapping[str, str]) -> str | None:
    value = _set(env, "SBATCH_PARTITION")
    if value is None:
        return None
    for part in value.split(","):  # sbatch accepts a comma-separated list of partitions
        name("SBATCH_PARTITION", part)
    return value
