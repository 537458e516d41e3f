"""Upper bounds on every count and size a user gives this recipe, checked at submit time with the same limits
the job uses (the dataset step's ISL/OSL/request limits come from dataset.limits), so a value that would fail
inside the job, after the GPUs are allocated, is refused by the dry run."""

from __future__ import annotations

from llmb_plugin_deepseek_r1.dataset.limits import MAX_REQUESTS, MAX_TOKENS
from llmb_plugin_deepseek_r1.host.errors import ValidationError

# The job's dataset step refuses beyond these (dataset.model.DatasetRequest).
MAX_ISL = MAX_OSL = MAX_TOKENS
MAX_NUM_REQUESTS = MAX_REQUESTS
MAX_NUM_TOKENS_LIMIT = MAX_TOKENS  # a batch's token budget never needs more than the longest request
MAX_BATCH = 1_000_000
MAX_PARALLEL = 4096  # TP, EP, PP
MAX_CONCURRENCY = MAX_REQUESTS
MAX_GPUS_PER_NODE = 64  # SBATCH_GPUS_PER_NODE: no node has more GPUs
MAX_OOM_RETRIES = 20  # each retry lowers KV_CACHE_FRACTION by 0.05: at most 20 steps from 1.0
MAX_SECONDS = 30 * 24 * 3600  # BENCH_TIMEOUT, HANG_GRACE
MAX_SWEEP_POINTS = 1000  # points of the Cartesian product (before use cases and repeats)
MAX_USE_CASES = 64
MAX_RUNS = 1000  # sweep points x use cases (the host also caps jobs x repeats at 1000)
# SBATCH_TIMELIMIT (knobs.MAX_TIME_LIMIT_MIN), name lengths (knobs.MAX_NAME_LEN) and digit counts are checked
# by the parsers in knobs.py.

INT_LIMITS = {
    "MAX_NUM_TOKENS": MAX_NUM_TOKENS_LIMIT, "MAX_BATCH_SIZE": MAX_BATCH, "NUM_REQUESTS": MAX_NUM_REQUESTS,
    "TP": MAX_PARALLEL, "EP": MAX_PARALLEL, "PP": MAX_PARALLEL, "SBATCH_GPUS_PER_NODE": MAX_GPUS_PER_NODE,
    "OOM_RETRIES": MAX_OOM_RETRIES, "BENCH_TIMEOUT": MAX_SECONDS, "HANG_GRACE": MAX_SECONDS,
    "CONCURRENCY": MAX_CONCURRENCY,
}


def at_most(var: str, value: int, limit: int) -> int:
    if value > limit:
        raise ValidationError(f"{var}={value} is not valid: expected at most {limit}")
    return value


def bounded(var: str, value: int) -> int:
    """``value`` of knob ``var`` within its upper bound (vars without one pass)."""
    limit = INT_LIMITS.get(var)
    return value if limit is None else at_most(var, value, limit)


def sweep_size(var_counts: dict[str, int], use_cases: int) -> None:
    """Refuse a sweep before its Cartesian product is built (1000 x 1000 points would take minutes and GBs)."""
    points = 1
    for count in var_counts.values():
        points *= count
        if points > MAX_SWEEP_POINTS:
            axes = " x ".join(f"{n} {v}" for v, n in var_counts.items())
            raise ValidationError(f"the sweep has more than {MAX_SWEEP_POINTS} points ({axes}): split it into "
                                  f"smaller sweeps")
    if use_cases > MAX_USE_CASES:
        raise ValidationError(f"USE_CASES names {use_cases} use cases: at most {MAX_USE_CASES} per invocation")
