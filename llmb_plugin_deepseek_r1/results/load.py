"""Result files -> flat run records, `--since` parsing and published reference points (no pandas here).

A run record is one result JSON flattened into the keys the table needs: the asked settings, the verdict, the
headline metrics and when it finished. Unreadable files are reported, never fatal: one bad file must not hide
every other result.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from llmb_plugin_deepseek_r1 import document as result_document
from llmb_plugin_deepseek_r1.host.errors import InvalidInput
from llmb_plugin_deepseek_r1.host.records import write_text_atomic

METRICS = ("output_tok_s_gpu", "total_tok_s_gpu", "output_tok_s_user", "avg_ttft_ms", "avg_tpot_ms",
           "request_throughput_req_s")
# Asked settings in display order; use_case/isl/osl are always shown, time_limit_min never identifies a setting.
SETTING_KEYS = ("use_case", "isl", "osl", "max_batch_size", "max_num_tokens", "kv_cache_free_gpu_mem_fraction",
                "concurrency", "num_requests", "tp", "ep", "pp", "streaming", "mode", "attention_dp", "model_size",
                "dtype", "scale", "gpu_type")
NOT_A_SETTING = ("time_limit_min",)
REFERENCE_KEYS = ("id", "value", "metric", "definition", "gpu_type", "scale", "dtype", "isl", "osl", "hardware",
                  "trtllm_version", "source")
MATCH_KEYS = ("gpu_type", "scale", "dtype", "isl", "osl")

_RELATIVE = re.compile(r"^(?P<n>\d+(?:\.\d+)?)(?P<unit>[mhdw])$")
_UNIT_S = {"m": 60.0, "h": 3600.0, "d": 86400.0, "w": 7 * 86400.0}


class ResultsError(InvalidInput, ValueError):
    """Bad input to `llmb-run results`/`archive`: the message is one line naming the value and what is accepted."""


@dataclass
class LoadedRuns:
    runs: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)


def _result_entries(experiments: Path) -> list[tuple[str, os.stat_result]]:
    """(path, stat) of the result files one level below ``experiments``, in path order; one listing per folder
    and the stat that DirEntry already has, names matched and sorted as strings (building and comparing 10,000
    Path objects was a third of a warm `llmb-run results`)."""
    try:
        folders = [e for e in os.scandir(experiments) if not e.name.startswith(".") and e.is_dir()]
    except OSError:
        return []
    found = []
    for folder in folders:
        try:
            entries = list(os.scandir(folder.path))
        except OSError:
            continue
        for entry in entries:
            if result_document.is_result_name(entry.name):
                try:
                    if entry.is_file():
                        found.append((folder.name, entry.name, entry.path, entry.stat()))
                except OSError:
                    continue
    found.sort(key=lambda item: (item[0], item[1]))  # the order of the paths' parts, as sorted(paths) gives
    return [(path, stat) for _, _, path, stat in found]


def find_result_files(experiments: Path) -> list[Path]:
    """Result JSON files one level below ``experiments`` (hidden folders such as ``.llmb`` are skipped)."""
    return [Path(path) for path, _ in _result_entries(experiments)]


def settings_key(asked: Mapping[str, Any]) -> str:
    """Identity of "the same settings": every asked key except the time limit, canonically serialised."""
    return json.dumps({k: v for k, v in asked.items() if k not in NOT_A_SETTING}, sort_keys=True, default=str)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


STATUSES = ("VALID", "INVALID", "FAILED")
LATEST_TIME = 4102444800.0  # 2100-01-01: a later (or negative) timestamp is corrupt, not a date to print


def _mapping(document: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = document.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"{key!r} is a {type(value).__name__}, expected an object")
    return value


def _timestamp(provenance: Mapping[str, Any], key: str) -> float | None:
    value = provenance.get(key)
    if value is None:
        return None
    number = _number(value)
    if number is None or not 0 <= number <= LATEST_TIME:
        raise ValueError(f"provenance {key} {str(value)[:40]!r} is not a time (seconds since 1970)")
    return number


def _check_types(asked: Mapping[str, Any], verdict: Mapping[str, Any]) -> None:
    """The fields the table groups and prints must be plain values (a nested or mistyped field is corruption)."""
    for key, value in asked.items():
        if value is not None and not isinstance(value, (str, int, float, bool)):
            raise ValueError(f"asked {str(key)[:40]!r} is a {type(value).__name__}, expected a plain value")
    if verdict.get("status") not in STATUSES:
        raise ValueError(f"verdict status {str(verdict.get('status'))[:40]!r} is not one of {', '.join(STATUSES)}")
    if not isinstance(verdict.get("classification"), (str, type(None))):
        raise ValueError("verdict classification is not a string")
    reasons = verdict.get("reasons")
    if reasons is not None and (not isinstance(reasons, list) or not all(isinstance(r, str) for r in reasons)):
        raise ValueError("verdict reasons is not a list of strings")


def run_record(document: Mapping[str, Any], path: Path, mtime: float) -> dict[str, Any]:
    """Flatten one result document (any schema :mod:`document` reads); ValueError naming what is missing or
    mistyped."""
    document = result_document.upgrade(document)
    asked, verdict = document["asked"], document["verdict"]
    _check_types(asked, verdict)
    provenance = _mapping(document, "provenance")
    measured = _mapping(document, "measured")
    headline = _mapping(measured, "headline")
    effective = _mapping(document, "effective")
    match = result_document.FILE_NAME.match(path.name)
    job_id = document.get("job_id") or provenance.get("job_id")
    if match and job_id is not None and str(job_id) != match.group("job"):
        raise ValueError(f"job id {str(job_id)[:40]!r} does not match the file name (a copy of another run's "
                         f"result?)")
    if verdict["status"] == "VALID" and _number(headline.get("output_tok_s_gpu")) is None:
        raise ValueError("a VALID verdict without a numeric output_tok_s_gpu")
    started, finished_at = _timestamp(provenance, "started"), _timestamp(provenance, "finished")
    record: dict[str, Any] = {key: asked.get(key) for key in SETTING_KEYS}
    record.update({k: v for k, v in asked.items() if k not in record})
    finished = finished_at or started or mtime
    record.update(
        job_id=str(job_id or "?"),
        status=str(verdict["status"]), classification=verdict.get("classification"),
        reasons=list(verdict.get("reasons") or []), remedy=_text(verdict.get("remedy")),
        started=started, finished=finished,
        trtllm_version=_text(provenance.get("trtllm_version_reported") or provenance.get("trtllm_version_expected")),
        effective_changes={k: v for k, v in effective.items() if k in asked and asked[k] != v},
        settings_key=settings_key(asked), files=[str(path)],
    )
    for metric in METRICS:
        record[metric] = _number(headline.get(metric)) if record["status"] != "FAILED" else None
    return record


def _text(value: Any) -> str | None:
    return None if value is None else str(value)[:500]


def load_runs(experiments: Path, cache: Path | None | bool = True) -> LoadedRuns:
    """Every readable result file under ``experiments`` as a run record; the others with the reason (a file
    nested too deeply for the JSON parser, mistyped or with impossible times is skipped, never fatal).

    Records are remembered in a cache file (``cache``: True for :func:`default_cache_path`, a path, or False for
    none) keyed by each file's size, mtime and inode: an unchanged file is not parsed again, which is most of
    the time of `llmb-run results` over thousands of runs. The cache lives outside the results (archives and
    read-only result folders are unaffected) and is only a speed-up: a missing, stale or unreadable one is
    rebuilt, an unwritable one ignored.
    """
    cache_path = default_cache_path(experiments) if cache is True else (cache or None)
    known = _read_cache(cache_path) if cache_path else {}
    fresh: dict[str, list[Any]] = {}
    loaded = LoadedRuns()
    changed = False
    for key, stat in _result_entries(experiments):
        ident = [stat.st_size, stat.st_mtime_ns, stat.st_ino]
        hit = known.get(key)
        if hit is not None and hit[:3] == ident:
            record, why = hit[3], hit[4]
        else:
            record, why = _load_one(Path(key), stat.st_mtime)
            changed = True
        fresh[key] = [*ident, record, why]
        if record is not None:
            loaded.runs.append(record)
        else:
            loaded.skipped.append((Path(key), why))
    if cache_path and (changed or len(fresh) != len(known)):
        _write_cache(cache_path, fresh)
    return loaded


def _load_one(path: Path, mtime: float) -> tuple[dict[str, Any] | None, str | None]:
    try:
        return run_record(result_document.read(path), path, mtime), None
    except (OSError, ValueError, TypeError, AttributeError) as exc:
        return None, str(exc).splitlines()[0] if str(exc) else type(exc).__name__


#: Bump when run_record's output changes for the same document; the cache also keys on the size and mtime of
#: the code that makes records (this file and the document schema), so an edited or reinstalled loader never
#: reads records an older one wrote.
CACHE_VERSION = 1


def _code_stamp() -> list[Any]:
    try:
        stats = [os.stat(f) for f in (__file__, result_document.__file__)]
        return [CACHE_VERSION, result_document.SCHEMA_VERSION, *[[s.st_size, s.st_mtime_ns] for s in stats]]
    except (OSError, TypeError):  # pragma: no cover - code without files (zip import): never trust a cache
        return [CACHE_VERSION, None, time.time()]


def default_cache_path(experiments: Path) -> Path | None:
    """``$LLMB_RESULTS_CACHE/<hash>.json`` (``off`` disables it), else ``$XDG_CACHE_HOME/llmb/results/`` (or
    ``~/.cache/llmb/results/``); one file per experiments folder."""
    import hashlib

    base = os.environ.get("LLMB_RESULTS_CACHE")
    if base and base.lower() == "off":
        return None
    if not base:
        base = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"),
                            "llmb", "results")
    name = hashlib.sha256(str(Path(experiments).absolute()).encode()).hexdigest()[:24]
    return Path(base) / f"{name}.json"


def _read_cache(path: Path) -> dict[str, list[Any]]:
    """{file: [size, mtime_ns, inode, record or None, why skipped or None]} as :func:`_write_cache` stored it."""
    try:
        with open(path, "rb") as handle:
            data = json.loads(handle.read())
        if data.get("code") != _code_stamp():
            return {}
        key_sets = [tuple(keys) for keys in data["keys"]]
        files = {}
        for name, size, mtime_ns, ino, keys, values, why in data["rows"]:
            record = None if values is None else dict(zip(key_sets[keys], values))
            if record is not None:
                record["files"] = [name]
            files[name] = [size, mtime_ns, ino, record, why]
        return files
    except (OSError, ValueError, AttributeError, KeyError, TypeError, IndexError):
        return {}


def _write_cache(path: Path, files: dict[str, list[Any]]) -> None:
    """Columns, not objects: each record's key list is stored once per distinct list, its values as a row (and
    its ``files`` entry, which is the file itself, not at all), which makes the cache a third smaller and
    quicker to parse than a list of objects."""
    key_ids: dict[tuple[str, ...], int] = {}
    rows = []
    for name, (size, mtime_ns, ino, record, why) in files.items():
        keys = values = None
        if record is not None:
            fields = {k: v for k, v in record.items() if k != "files"}
            keys = key_ids.setdefault(tuple(fields), len(key_ids))
            values = list(fields.values())
        rows.append([name, size, mtime_ns, ino, keys, values, why])
    try:
        write_text_atomic(path, json.dumps({"code": _code_stamp(), "keys": [list(k) for k in key_ids], "rows": rows}))
    except OSError:
        pass  # only a speed-up


def parse_since(text: str, now: float | None = None) -> float:
    """``--since``: an ISO date or date-time (local time) or a relative age (30m, 12h, 7d, 2w) -> unix time."""
    now = time.time() if now is None else now
    value = text.strip()
    match = _RELATIVE.match(value.lower())
    if match:
        return now - float(match.group("n")) * _UNIT_S[match.group("unit")]
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        raise ResultsError(f"--since {text!r}: use an ISO date (2026-11-20), an ISO date-time (2026-11-20T08:00) "
                           f"or an age such as 30m, 12h, 7d or 2w") from None


def validate_references(entries: Any) -> list[dict[str, Any]]:
    """workload.yaml's ``references`` list, checked: a malformed entry is an error naming it and the key."""
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise ResultsError(f"workload.yaml references: expected a list, got {type(entries).__name__}")
    out = []
    for index, entry in enumerate(entries):
        name = entry.get("id", f"#{index + 1}") if isinstance(entry, dict) else f"#{index + 1}"
        if not isinstance(entry, dict):
            raise ResultsError(f"workload.yaml reference {name}: expected a mapping")
        missing = [k for k in REFERENCE_KEYS if entry.get(k) in (None, "")]
        if missing:
            raise ResultsError(f"workload.yaml reference {name}: missing {', '.join(missing)}")
        if entry["metric"] not in METRICS:
            raise ResultsError(f"workload.yaml reference {name}: metric {entry['metric']!r} is not one of "
                               f"{', '.join(METRICS)}")
        if _number(entry["value"]) is None or entry["value"] <= 0:
            raise ResultsError(f"workload.yaml reference {name}: value {entry['value']!r} is not a positive number")
        out.append(dict(entry))
    return out


def match_reference(run: Mapping[str, Any], references: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """The first reference of exactly the same GPU type, scale, dtype and ISL/OSL (and mode if it names one)."""
    for ref in references:
        if all(str(run.get(k)).lower() == str(ref[k]).lower() for k in MATCH_KEYS) and \
                (ref.get("mode") in (None, "") or ref.get("mode") == run.get("mode")):
            return dict(ref)
    return None


def no_reference_note(run: Mapping[str, Any], references: Iterable[Mapping[str, Any]]) -> str:
    """Why a run has no reference, in the words users search for."""
    shape = (f"no published reference for ISL/OSL {run.get('isl')}/{run.get('osl')} on {run.get('gpu_type')} "
             f"({run.get('scale')} GPUs, {run.get('dtype')})")
    same_shape = [r for r in references if all(str(run.get(k)).lower() == str(r[k]).lower() for k in MATCH_KEYS)]
    if same_shape:
        return f"{shape} in mode {run.get('mode')} (references are for {same_shape[0].get('mode')})"
    return shape
