"""Recipe profiles: named, versioned per-use-case defaults per GPU type and mode, read from workload.yaml.

The data (NVIDIA's 25.07, 25.08 and 26.05 tables, with their sources) lives in ``workload.yaml`` under
``profiles``; this module only chooses a profile, picks the table for a GPU type and mode, and returns each value
together with where it came from, so that the dry run and the result file can say so.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, NamedTuple

from packaging.version import Version

from llmb_plugin_deepseek_r1.host.errors import ValidationError

# The fields a profile row may set (RunSpec names); `max_num_tokens: isl` means the use case's ISL.
ROW_FIELDS = ("max_batch_size", "max_num_tokens", "kv_cache_fraction", "concurrency", "num_requests", "tp", "ep",
              "pp", "attention_dp", "enable_chunked_prefill")
STARTUP_MIN = 15          # model load, CUDA-graph capture and warm-up of a 400-650 GB checkpoint
PREFILL_WEIGHT = 8        # an input token costs about 1/8 of an output token in the estimate
USER_TOK_S = 50           # conservative per-request decode speed, for latency-bound runs
ROUND_TO_MIN = 5


# Small records of the planner are NamedTuples: a frozen dataclass costs 0.3-0.6 ms to create at import (six
# generated methods compiled one by one on Python < 3.13), a NamedTuple a tenth of that: a dry run imports these.
class Sourced(NamedTuple):
    """A value and where it came from (a profile row, a knob, or a rule)."""

    value: Any
    source: str


class ProfileChoice(NamedTuple):
    name: str
    reason: str
    data: Mapping[str, Any]


class TableChoice(NamedTuple):
    """The table a GPU type runs: its own, or the nearest tuned one (``note`` says so)."""

    gpu_type: str
    note: str | None
    table: Mapping[str, Any]
    source: str


class Checkpoint(NamedTuple):
    repo_id: str
    revision: str
    folder: str
    source: str


def profiles(metadata: Mapping[str, Any]) -> Mapping[str, Any]:
    return metadata.get("profiles") or {}


def choose_profile(metadata: Mapping[str, Any], version: str, requested: str | None) -> ProfileChoice:
    """PROFILE when set (must name a shipped profile), else the first `profile_by_version` rule that matches."""
    known = profiles(metadata)
    if requested:
        name = requested.strip()
        if name not in known:
            raise ValidationError(f"PROFILE={requested!r} is not valid: expected one of {', '.join(known)}")
        return ProfileChoice(name, "knob PROFILE", known[name])
    v = Version(Version(version).base_version)  # 1.1.0rc5 counts as 1.1
    for rule in metadata.get("profile_by_version") or []:
        below = rule.get("below")
        if below is None or v < Version(str(below)):
            name = str(rule["profile"])
            why = f"TensorRT-LLM {version} < {below}" if below else f"TensorRT-LLM {version}"
            return ProfileChoice(name, f"{why} (image) -> profile {name}", known[name])
    raise ValidationError(f"no profile matches TensorRT-LLM {version}: set PROFILE to one of {', '.join(known)}")


def default_profile_image(choice: ProfileChoice) -> str | None:
    """The image a profile was tuned on (used when PROFILE is set and RUN_CONF_IMAGE is not)."""
    image = choice.data.get("image")
    return str(image) if image else None


def choose_table(metadata: Mapping[str, Any], choice: ProfileChoice, gpu_type: str, mode: str) -> TableChoice:
    """The profile's table for (GPU type, mode), else that of the nearest GPU type that has one."""
    tables = choice.data.get("tables") or {}
    nearest = list(((metadata.get("gpu_types") or {}).get(gpu_type) or {}).get("nearest") or [])
    for candidate in [gpu_type, *nearest]:
        table = (tables.get(candidate) or {}).get(mode)
        if table:
            note = None if candidate == gpu_type else (
                f"profile {choice.name} has no {mode} table tuned for {gpu_type}: running the nearest, {candidate}'s")
            source = str(table.get("source") or choice.data.get("source") or f"profile {choice.name}")
            return TableChoice(candidate, note, _resolved_table(tables.get(candidate) or {}, mode), source)
    tuned = sorted(g for g, modes in tables.items() if mode in (modes or {}))
    others = [name for name, data in profiles(metadata).items() if name != choice.name and any(
        mode in ((data.get("tables") or {}).get(candidate) or {}) for candidate in [gpu_type, *nearest])]
    what = (f"profile {choice.name} has no {mode} settings for GPU type {gpu_type!r} "
            f"(tuned: {', '.join(tuned) or 'none'})")
    if others:
        raise ValidationError(f"{what}: set PROFILE={' or '.join(others)}, or choose another GPU type")
    raise ValidationError(f"{what}, nor has any other profile: choose another GPU type")


def _resolved_table(modes: Mapping[str, Any], mode: str) -> dict[str, Any]:
    """A mode's table with `based_on` applied (rows of the base mode, then this mode's common values on top)."""
    table = dict(modes[mode])
    base_name = table.get("based_on")
    if not base_name:
        return table
    base = _resolved_table(modes, base_name)
    merged: dict[str, Any] = {k: v for k, v in base.items() if k not in ("source", "based_on")}
    own_common = table.get("common") or {}
    for key, row in list(merged.items()):
        if key != "common" and isinstance(row, Mapping):
            merged[key] = {**row, **own_common}
    merged["common"] = {**(base.get("common") or {}), **own_common}
    for key, row in table.items():
        if key not in ("common", "based_on"):
            merged[key] = row
    return merged


def known_use_cases(table: Mapping[str, Any]) -> dict[str, tuple[int, int]]:
    """{name: (ISL, OSL)} of a table's rows, in table order."""
    return {name: (int(row["isl"]), int(row["osl"])) for name, row in table.items()
            if name not in ("common", "source", "based_on") and isinstance(row, Mapping)}


def row_values(choice: ProfileChoice, table: TableChoice, mode: str, use_case: str, isl: int) -> dict[str, Sourced]:
    """Every value the profile sets for one use case, each with its source."""
    rows = known_use_cases(table.table)
    fallback = str(choice.data.get("fallback_row") or next(iter(rows)))
    row_name = use_case if use_case in rows else fallback
    where = f"profile {choice.name} {table.gpu_type} {mode} {row_name}"
    if row_name != use_case:
        where += f" (no row for {use_case})"
    merged = {**(table.table.get("common") or {}), **table.table[row_name]}
    values: dict[str, Sourced] = {}
    for key in ROW_FIELDS:
        if key not in merged:
            continue
        value = merged[key]
        if key == "max_num_tokens" and value == "isl":
            values[key] = Sourced(isl, f"{where}: = ISL")
        else:
            values[key] = Sourced(value, where)
    return values


def derive_load(choice: ProfileChoice, values: dict[str, Sourced], knob_set: set[str],
                multiplier: Sourced) -> None:
    """25.08+ semantics, in place: concurrency = MBS x TP with attention DP (else MBS) unless the row or a knob
    names it, or MBS/TP were changed by a knob; requests = concurrency x multiplier unless NUM_REQUESTS is set."""
    if not choice.data.get("derive_load"):
        return
    mbs, tp = values["max_batch_size"].value, values["tp"].value
    row_concurrency = "concurrency" in values and "CONCURRENCY" not in knob_set
    if "CONCURRENCY" not in knob_set and (not row_concurrency or knob_set & {"MAX_BATCH_SIZE", "TP"}):
        if values["attention_dp"].value:
            values["concurrency"] = Sourced(mbs * tp, f"derived: max_batch_size {mbs} x tp {tp} (attention DP)")
        else:
            values["concurrency"] = Sourced(mbs, f"derived: max_batch_size {mbs} (attention DP off)")
    if "NUM_REQUESTS" in knob_set:
        return
    concurrency = values["concurrency"].value
    if concurrency == -1:
        if "num_requests" not in values:
            raise ValidationError("CONCURRENCY=-1 (unlimited) leaves the request count undefined under profile "
                                  f"{choice.name}: set NUM_REQUESTS")
        return
    values["num_requests"] = Sourced(concurrency * multiplier.value,
                                     f"derived: concurrency {concurrency} x CONCURRENCY_MULTIPLIER {multiplier.value}"
                                     f" ({multiplier.source})")


def checkpoint_for(metadata: Mapping[str, Any], choice: ProfileChoice, dtype: str,
                   env: Mapping[str, str]) -> Checkpoint:
    """The checkpoint the profile was tuned for at this dtype; MODEL_REPO / MODEL_REVISION override."""
    catalogue = metadata.get("checkpoints") or {}
    repo = (env.get("MODEL_REPO") or "").strip()
    revision = (env.get("MODEL_REVISION") or "").strip()
    if repo:
        if not _repo_id_ok(repo):
            raise ValidationError(f"MODEL_REPO={repo!r} is not valid: expected a Hugging Face repo id such as "
                                  f"nvidia/DeepSeek-R1-0528-FP4")
        source = "knob MODEL_REPO"
    else:
        repo = str((choice.data.get("checkpoints") or {}).get(dtype.lower()) or "")
        if not repo:
            raise ValidationError(f"profile {choice.name} names no checkpoint for dtype {dtype}: set MODEL_REPO")
        source = f"profile {choice.name} ({dtype})"
    if revision and not all(c.isalnum() or c in "._/-" for c in revision):
        raise ValidationError(f"MODEL_REVISION={revision!r} is not valid: expected a branch, tag or commit id")
    entry = catalogue.get(repo) or {}
    folder = str(entry.get("folder") or repo.rsplit("/", 1)[-1])
    return Checkpoint(repo, revision or str(entry.get("revision") or "main"), folder,
                      source + ("; revision from knob MODEL_REVISION" if revision else ""))


def _repo_id_ok(repo: str) -> bool:
    parts = repo.split("/")
    return len(parts) == 2 and all(p and all(c.isalnum() or c in "._-" for c in p) and p not in (".", "..")
                                   for p in parts)


def time_limit(metadata: Mapping[str, Any], gpu_type: str, *, gpus: int, num_requests: int, concurrency: int,
               isl: int, osl: int) -> tuple[int, str]:
    """Minutes for one use case, scaled from the request count and ISL/OSL, and how they were derived."""
    rate = int(((metadata.get("gpu_types") or {}).get(gpu_type) or {}).get("time_tok_s_per_gpu") or 1000)
    tokens = num_requests * (osl + isl / PREFILL_WEIGHT)
    throughput_s = tokens / (rate * gpus)
    waves = 1 if concurrency <= 0 else math.ceil(num_requests / concurrency)
    latency_s = waves * osl / USER_TOK_S
    run_s = max(throughput_s, latency_s)
    minutes = math.ceil((STARTUP_MIN + run_s / 60) / ROUND_TO_MIN) * ROUND_TO_MIN
    bound = (f"{num_requests} requests x ({osl} OSL + {isl} ISL/{PREFILL_WEIGHT}) tokens at {rate} tok/s/GPU x "
             f"{gpus} GPUs = {throughput_s / 60:.1f} min" if throughput_s >= latency_s else
             f"{waves} wave(s) of {osl} output tokens at {USER_TOK_S} tok/s per request = {latency_s / 60:.1f} min")
    return minutes, (f"{STARTUP_MIN} min start-up + {bound}, rounded up to {ROUND_TO_MIN} min "
                     f"(SBATCH_TIMELIMIT overrides)")


def gpu_type_info(metadata: Mapping[str, Any], gpu_type: str) -> Mapping[str, Any]:
    return (metadata.get("gpu_types") or {}).get(gpu_type) or {}
