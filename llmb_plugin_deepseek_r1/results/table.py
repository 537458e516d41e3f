"""Run records -> the results table (pandas): deltas, repeats aggregated, the columns that differ, formatting.

Deltas are computed over the whole history before any filter, so `--since` never changes what "the previous
run" of a setting was. FAILED and INVALID runs stay in the table with their verdict but take no part in means,
spreads or deltas.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

from .load import (
    MATCH_KEYS,
    METRICS,
    NOT_A_SETTING,
    SETTING_KEYS,
    match_reference,
    no_reference_note,
)

ALWAYS_SHOWN = ("use_case", "isl", "osl")
HEADLINE = "output_tok_s_gpu"
SHORT = {"max_batch_size": "mbs", "max_num_tokens": "max_tokens", "kv_cache_free_gpu_mem_fraction": "kv",
         "concurrency": "conc", "num_requests": "requests", "streaming": "stream", "attention_dp": "attn_dp",
         "model_size": "size", "gpu_type": "gpu"}
METRIC_LABELS = {"output_tok_s_gpu": "out tok/s/GPU", "total_tok_s_gpu": "total tok/s/GPU",
                 "output_tok_s_user": "tok/s/user", "avg_ttft_ms": "TTFT ms", "avg_tpot_ms": "TPOT ms",
                 "request_throughput_req_s": "req/s"}
METRIC_DECIMALS = {"request_throughput_req_s": 3}
REFERENCE_FIELDS = ("id", "value", "metric", "definition", "source", "hardware", "trtllm_version", "url")
MAX_NOTES = 10


def _pct(value: float | None, base: float | None) -> float | None:
    if value is None or base is None or base == 0 or _missing(value) or _missing(base):
        return None
    return (value - base) / base * 100.0


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def annotate(runs: Sequence[Mapping[str, Any]], references: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Each run with its reference and the previous VALID run of identical settings (deltas in %)."""
    ordered = sorted((dict(r) for r in runs), key=lambda r: (r["finished"], r["job_id"]))
    latest_valid: dict[str, dict[str, Any]] = {}
    # The reference and the note depend on the run's shape and mode only: decided once per shape, not per run.
    by_shape: dict[tuple[Any, ...], tuple[dict[str, Any] | None, str | None]] = {}
    for run in ordered:
        valid = run["status"] == "VALID" and run.get(HEADLINE) is not None
        shape = (*(run.get(k) for k in MATCH_KEYS), run.get("mode"))
        if shape not in by_shape:
            found = match_reference(run, references)
            by_shape[shape] = (found, None if found else no_reference_note(run, references))
        ref, note = by_shape[shape]
        for name in REFERENCE_FIELDS:
            run[f"reference_{name}"] = ref.get(name) if ref else None
        run["reference_note"] = note
        run["vs_reference_pct"] = _pct(run.get(ref["metric"]), float(ref["value"])) if ref and valid else None
        before = latest_valid.get(run["settings_key"])
        if valid and before is not None and before["finished"] < run["finished"]:
            run["previous_job_id"] = before["job_id"]
            run["vs_previous_pct"] = _pct(run[HEADLINE], before[HEADLINE])
        else:
            run["previous_job_id"], run["vs_previous_pct"] = None, None
        if valid:
            latest_valid[run["settings_key"]] = run
    return ordered


def select(runs: Sequence[Mapping[str, Any]], *, since: float | None = None, valid_only: bool = False,
           use_cases: Sequence[str] = ()) -> list[dict[str, Any]]:
    """The runs a user asked to see."""
    return [dict(r) for r in runs if (since is None or r["finished"] >= since)
            and (not valid_only or r["status"] == "VALID") and (not use_cases or r["use_case"] in use_cases)]


def build_table(runs: Sequence[Mapping[str, Any]], *, individual: bool = False) -> Any:
    """One row per run, or per setting with several VALID runs (n, mean, std, min, max); sorted for reading."""
    import pandas as pd

    frame = pd.DataFrame(list(runs))  # DataFrame copies the values; the dicts are left as they are
    if frame.empty:
        return frame
    frame["n"] = 1
    frame["job_ids"] = [[j] for j in frame["job_id"]]
    for metric in METRICS:
        for stat in ("std", "min", "max"):
            frame[f"{metric}_{stat}"] = None
    valid = frame["status"] == "VALID"
    sizes = frame[valid].groupby("settings_key")["job_id"].transform("size")
    repeated = pd.Series(False, index=frame.index)
    if not individual:
        repeated.loc[sizes.index] = sizes > 1
    rows = frame[~repeated].to_dict(orient="records")
    together = frame[repeated]
    groups = [group.sort_values("finished") for _, group in together.groupby("settings_key", sort=False)]
    # The newest run of every group in one conversion (DataFrame.to_dict costs per column, whatever the rows).
    newest = together.loc[[group.index[-1] for group in groups]].to_dict(orient="records") if groups else []
    rows += [_aggregate(group, row) for group, row in zip(groups, newest)]
    return _sorted(pd.DataFrame(rows))


def _aggregate(group: Any, newest: dict[str, Any] | None = None) -> dict[str, Any]:
    """A group of VALID runs of identical settings -> one row (the newest run's identity, mean metrics).

    ``newest``: the group's last row as ``to_dict(orient="records")`` gives it, when the caller has it."""
    import pandas as pd

    row = newest if newest is not None else group.tail(1).to_dict(orient="records")[0]
    row["n"] = len(group)
    row["job_ids"] = list(group["job_id"])
    row["files"] = [f for files in group["files"] for f in files]
    for metric in METRICS:  # Series reductions, as DataFrame.agg makes them, without building its frames
        values = pd.to_numeric(group[metric], errors="coerce")
        for stat in ("mean", "std", "min", "max"):
            value = float(getattr(values, stat)())
            row[metric if stat == "mean" else f"{metric}_{stat}"] = None if _missing(value) else value
    ref_value = row.get("reference_value")
    row["vs_reference_pct"] = _pct(row[row["reference_metric"]], float(ref_value)) if not _missing(ref_value) else None
    return row


def _sorted(table: Any) -> Any:
    """Use case, shape, then every setting, then time: repeats and sweeps read top to bottom."""
    by = [c for c in SETTING_KEYS if c in table.columns] + ["finished", "job_id"]

    def key(series: Any) -> Any:
        if series.dtype == object or str(series.dtype) in ("str", "string"):
            return series.map(lambda v: (0, float(v), "") if isinstance(v, (int, float)) and not _missing(v)
                              else (1, 0.0, str(v)))
        return series

    return table.sort_values(by, key=key, kind="stable", na_position="last").reset_index(drop=True)


def differing_settings(table: Any) -> list[str]:
    """Asked columns whose values differ across the rows shown (use case and ISL/OSL are always shown)."""
    out = []
    for column in SETTING_KEYS:
        if column in ALWAYS_SHOWN or column in NOT_A_SETTING or column not in table.columns:
            continue
        if table[column].map(repr).nunique() > 1:
            out.append(column)
    return out


def _fmt(value: Any, decimals: int = 1) -> str:
    if _missing(value):
        return "-"
    return f"{float(value):,.{decimals}f}"


def _fmt_pct(value: Any) -> str:
    return "-" if _missing(value) else f"{float(value):+.1f}%"


def _date(ts: Any) -> str:
    return "-" if _missing(ts) else time.strftime("%Y-%m-%d %H:%M", time.localtime(float(ts)))


def _verdict(row: Mapping[str, Any]) -> str:
    classification = row.get("classification")
    return f"{row['status']} ({classification})" if not _missing(classification) else str(row["status"])


def _job(row: Mapping[str, Any]) -> str:
    return str(row["job_id"]) if row["n"] == 1 else f"{row['job_id']} +{row['n'] - 1}"


def display_table(table: Any) -> tuple[str, list[str]]:
    """The terminal table (pandas to_string) and the notes printed under it."""
    import pandas as pd

    ref_numbers: dict[str, int] = {}
    for ref_id in table["reference_id"]:
        if not _missing(ref_id) and ref_id not in ref_numbers:
            ref_numbers[ref_id] = len(ref_numbers) + 1
    aggregated = bool((table["n"] > 1).any())
    show: dict[str, list[str]] = {"use case": list(table["use_case"].astype(str)),
                                  "ISL/OSL": [f"{r['isl']}/{r['osl']}" for _, r in table.iterrows()]}
    for column in differing_settings(table):
        show[SHORT.get(column, column)] = [str(v).lower() if isinstance(v, bool) else str(v) for v in table[column]]
    rows = [r for _, r in table.iterrows()]
    show["job"] = [_job(r) for r in rows]
    show["finished"] = [_date(r["finished"]) for r in rows]
    if aggregated:
        show["n"] = [str(r["n"]) for r in rows]
    show["verdict"] = [_verdict(r) for r in rows]
    for metric in METRICS:
        show[METRIC_LABELS[metric]] = [_fmt(r[metric], METRIC_DECIMALS.get(metric, 1)) for r in rows]
        if metric == HEADLINE and aggregated:
            show["± std"] = [_fmt(r[f"{metric}_std"]) for r in rows]
            show["min–max"] = ["-" if r["n"] == 1 else f"{_fmt(r[metric + '_min'])}–{_fmt(r[metric + '_max'])}"
                               for r in rows]
    show["ref"] = ["-" if _missing(r["reference_id"]) else f"[{ref_numbers[r['reference_id']]}]" for r in rows]
    show["vs ref"] = [_fmt_pct(r["vs_reference_pct"]) for r in rows]
    show["vs prev"] = [_fmt_pct(r["vs_previous_pct"]) for r in rows]
    if any(r["effective_changes"] for r in rows if isinstance(r["effective_changes"], dict)):
        show["retried with"] = [", ".join(f"{SHORT.get(k, k)}={v}" for k, v in (r["effective_changes"] or {}).items())
                                or "-" for r in rows]
    text = pd.DataFrame(show).to_string(index=False)
    return text, _notes(table, ref_numbers, aggregated)


def _notes(table: Any, ref_numbers: Mapping[str, int], aggregated: bool) -> list[str]:
    notes = []
    by_id = {r["reference_id"]: r for _, r in table.iterrows() if not _missing(r["reference_id"])}
    for ref_id, number in ref_numbers.items():
        r = by_id[ref_id]
        notes.append(f"[{number}] {ref_id}: {float(r['reference_value']):,.0f} {r['reference_metric']} on "
                     f"{r['reference_hardware']}, TensorRT-LLM {r['reference_trtllm_version']}; "
                     f"{r['reference_source']} ({r['reference_url'] or 'no link'}); metric: "
                     f"{r['reference_definition']}")
    for note in dict.fromkeys(n for n in table["reference_note"] if not _missing(n)):
        notes.append(f"{note}: not compared")
    if aggregated:
        notes.append("n > 1: mean of that many VALID runs with identical settings, ± is the sample standard "
                     "deviation; 'vs prev' compares the newest of them with the run before it; --runs lists "
                     "every run")
    bad = [r for _, r in table.iterrows() if r["status"] != "VALID"]
    for r in bad[:MAX_NOTES]:
        reason = r["reasons"][0] if isinstance(r["reasons"], list) and r["reasons"] else "no reason recorded"
        remedy = f"; remedy: {r['remedy']}" if not _missing(r["remedy"]) else ""
        notes.append(f"job {r['job_id']} ({r['use_case']}): {_verdict(r)}: {reason}{remedy}")
    if len(bad) > MAX_NOTES:
        notes.append(f"... and {len(bad) - MAX_NOTES} more FAILED/INVALID runs (--json shows all)")
    if bad:
        notes.append("FAILED and INVALID runs are listed but excluded from means and deltas (--valid-only hides "
                     "them)")
    return notes


OUTPUT_DROP = ("settings_key",)


def records(table: Any) -> list[dict[str, Any]]:
    """The rows as plain JSON-ready dicts (NaN -> None, lists kept); dates added in ISO form."""
    out = []
    for raw in table.to_dict(orient="records"):
        row = {k: (None if not isinstance(v, (list, dict)) and _missing(v) else v)
               for k, v in raw.items() if k not in OUTPUT_DROP}
        for key, value in row.items():
            if value is not None and hasattr(value, "item") and not isinstance(value, (list, dict)):
                row[key] = value.item()  # numpy scalars -> Python numbers
        row["finished_iso"] = None if row.get("finished") is None else \
            time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(row["finished"]))
        out.append(row)
    return out


def csv_text(table: Any) -> str:
    """CSV of the same rows: lists joined with '; ', dicts as key=value."""
    import pandas as pd

    flat = []
    for row in records(table):
        flat.append({k: ("; ".join(map(str, v)) if isinstance(v, list) else
                         "; ".join(f"{a}={b}" for a, b in v.items()) if isinstance(v, dict) else v)
                     for k, v in row.items()})
    return pd.DataFrame(flat).to_csv(index=False)
