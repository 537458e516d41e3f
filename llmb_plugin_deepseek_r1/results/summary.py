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
    head = item.get("headline") or {}
    if "output_tok_s_gpu" in head:
        text += f"  {head['output_tok_s_gpu']:.1f} output tok/s/GPU"
    if item.get("reasons"):
        text += f"  - {item['reasons'][0]}"
    if item.get("remedy"):
        text += f"\n    remedy: {item['remedy']}"
    return text


def job_summaries(status: Mapping[str, Any]) -> list[JobSummary]:
    """Benchmark jobs: each result's verdict; setup jobs: each step's status."""
    out = []
    for item in status.get("results", []):
        details = dict(item)
        try:
            doc = result_document.read(Path(item["result_file"]))
        except (OSError, KeyError, ValueError):
            details["headline"] = None
        else:
            details.update(headline=(doc.get("measured") or {}).get("headline"), reasons=doc["verdict"]["reasons"],
                           remedy=doc["verdict"].get("remedy"))
        out.append(JobSummary(_text(details), details))
    for name in status.get("not_run", []):
        out.append(JobSummary(f"{name}: NOT RUN", {"use_case": name, "verdict": "NOT RUN"}))
    if status.get("kind") == "setup":
        for step in status.get("steps", []):
            if isinstance(step, dict):
                out.append(JobSummary(f"{step.get('step')}: {step.get('status')}: {step.get('detail', '')}", step))
    return out
