"""The workload's summary of a finished job for `llmb-run jobs show` and `--wait`: one line per use case with
its verdict and headline, read from the result documents the job's status file names."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from llmb_plugin_deepseek_r1 import document as result_document
from llmb_plugin_deepseek_r1.host.contract import JobSummary


def _text(item: Mapping[str, Any]) -> str:
    text = f"{item['use_case']}: {item['verdict']}"
    if item.get("classification"):
        text += f" ({item['classification']})"
    head = item.get("headline") if isinstance(item.get("headline"), dict) else {}
    value = head.get("output_tok_s_gpu")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        text += f"  {value:.1f} output tok/s/GPU"
    if item.get("reasons"):
        text += f"  - {item['reasons'][0]}"
    if item.get("remedy"):
        text += f"\n    remedy: {item['remedy']}"
    return text


def job_summaries(status: Mapping[str, Any]) -> list[JobSummary]:
    """Benchmark jobs: each result's verdict; setup jobs: each step's status."""
    out = []
    for item in _list(status, "results"):  # a corrupt status or result file costs its lines, never the listing
        if not isinstance(item, dict) or not isinstance(item.get("use_case"), str):
            continue
        details = dict(item)
        try:
            doc = result_document.read(Path(str(item.get("result_file"))))
            verdict = doc["verdict"]
            reasons = [str(r) for r in verdict.get("reasons") or []]
            details.update(headline=(doc.get("measured") or {}).get("headline"), reasons=reasons,
                           remedy=verdict.get("remedy"))
        except (OSError, KeyError, ValueError, TypeError, AttributeError, RecursionError):
            details["headline"] = None
        out.append(JobSummary(_text(details), details))
    for name in _list(status, "not_run"):
        out.append(JobSummary(f"{name}: NOT RUN", {"use_case": str(name), "verdict": "NOT RUN"}))
    if status.get("kind") == "setup":
        for step in _list(status, "steps"):
            if isinstance(step, dict):
                out.append(JobSummary(f"{step.get('step')}: {step.get('status')}: {step.get('detail', '')}", step))
    return out


def _list(status: Mapping[str, Any], key: str) -> list[Any]:
    value = status.get(key)
    return value if isinstance(value, list) else []
