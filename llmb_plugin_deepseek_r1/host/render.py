"""Human-readable and JSON renderings of job plans (the dry run). Secrets are never printed."""

from __future__ import annotations

import json
import shlex
from typing import Any, Iterable, Mapping

from .contract import JobPlan, RunRequest
from .safety import REDACTED, redact_env, scrub  # noqa: F401 - the one redaction rule, re-exported


def plans_document(request: RunRequest, plans: Iterable[JobPlan]) -> dict[str, Any]:
    """The dry-run JSON document (keys documented in the README; other tools read them)."""
    return {
        "workload": request.workload,
        "model_size": request.model_size,
        "dtype": request.dtype,
        "scale": request.scale,
        "gpu_type": request.gpu_type,
        "jobs": [plan.to_dict() for plan in plans],
    }


def plans_json(request: RunRequest, plans: list[JobPlan]) -> str:
    return scrub(json.dumps(plans_document(request, plans), indent=2), request.env)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "-"
    return str(value)


def _from(sources: Mapping[str, Any], key: str) -> str:
    """A plan may say where each value came from (`sources`: key -> source); the text shows it beside the value."""
    source = sources.get(key)
    return f"    <- {source}" if source else ""


def _is_sentences(item: Any) -> bool:
    return isinstance(item, list) and bool(item) and all(isinstance(i, str) and " " in i for i in item)


def _mapping_lines(value: Mapping[str, Any], indent: str) -> list[str]:
    """YAML lines of a mapping (one dump: the C emitter where PyYAML has it); lists of sentences (a world layout)
    one item a line after the rest, and a mapping of plain values in block style, not as one inline {...}."""
    from llmb_plugin_deepseek_r1.yaml_io import safe_dump

    plain = {k: v for k, v in value.items() if not _is_sentences(v)}
    lines: list[str] = []
    if plain:
        text = safe_dump(plain, sort_keys=False, default_flow_style=None, width=110)
        if text.startswith("{"):
            text = safe_dump(plain, sort_keys=False, default_flow_style=False, width=110)
        lines += text.rstrip().splitlines()
    for key, item in value.items():
        if _is_sentences(item):
            lines.append(f"{key}:")
            lines += [f"  - {i}" for i in item]
    return [indent + line for line in lines]


def plans_text(request: RunRequest, plans: list[JobPlan]) -> str:
    """What `--dry-run` prints: per job its Slurm parameters, container and every use case in full."""
    out = [f"Dry run: {request.workload} {request.model_size} {request.dtype} scale {request.scale} "
           f"on {request.gpu_type}: {len(plans)} job(s); nothing is submitted."]
    for number, plan in enumerate(plans, 1):
        out.append("")
        out.append(f"== job {number}/{len(plans)}: {plan.name}")
        out.append("  slurm:")
        for key, value in plan.slurm.to_dict().items():
            if key == "additional":
                for extra_key, extra_value in value.items():
                    out.append(f"    {extra_key}: {_value(extra_value)}")
                continue
            out.append(f"    {key}: {_value(value)}")
        out.append("  container:")
        for key, value in plan.container.items():
            if isinstance(value, (list, tuple)):
                out.append(f"    {key}:")
                out.extend(f"      - {item}" for item in value)
            else:
                out.append(f"    {key}: {_value(value)}")
        for uc in plan.use_cases:
            sources = uc.get("sources") if isinstance(uc.get("sources"), Mapping) else {}
            out.append(f"  use case {uc.get('name', '?')}:" + _from(sources, "name"))
            for key, value in uc.items():
                if key in ("name", "sources"):
                    continue
                if isinstance(value, (list, tuple)):
                    out.append(f"    {key}: {shlex.join(str(v) for v in value)}")
                elif isinstance(value, Mapping):
                    out.append(f"    {key}:" + _from(sources, key))
                    out.extend(_mapping_lines(value, "      "))
                else:
                    out.append(f"    {key}: {_value(value)}" + _from(sources, key))
    return scrub("\n".join(out), request.env)
