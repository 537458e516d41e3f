"""Sweeps: comma-separated values in sweepable knobs, or a SWEEP_FILE, expand to one environment per point."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

from llmb_plugin_deepseek_r1.host.errors import ValidationError


def _set(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name)
    return None if value is None or value.strip() == "" else value


SWEEPABLE = ("MAX_NUM_TOKENS", "MAX_BATCH_SIZE", "KV_CACHE_FRACTION", "NUM_REQUESTS", "CONCURRENCY", "TP", "EP",
             "PP", "STREAMING")


def _sweep_file_values(path_text: str) -> dict[str, list[str]]:
    import yaml

    path = Path(path_text)
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ValidationError(f"SWEEP_FILE={path_text!r} cannot be read: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise ValidationError(f"SWEEP_FILE={path_text!r} must map knob names to lists of values")
    values: dict[str, list[str]] = {}
    for key, items in data.items():
        if key not in SWEEPABLE:
            raise ValidationError(f"SWEEP_FILE key {key!r} is not valid: expected one of {', '.join(SWEEPABLE)}")
        items = items if isinstance(items, list) else [items]
        if not items:
            raise ValidationError(f"SWEEP_FILE key {key!r} has no values")
        values[key] = [str(v).lower() if isinstance(v, bool) else str(v) for v in items]
    return values


def expand_sweep(env: Mapping[str, str]) -> list[dict[str, str]]:
    """Comma-separated values in sweepable knobs (MAX_BATCH_SIZE=128,256) and SWEEP_FILE -> one environment per
    point of the Cartesian product (a knob in the environment wins over the same knob in the file)."""
    import itertools

    axes: dict[str, list[str]] = _sweep_file_values(env["SWEEP_FILE"]) if _set(env, "SWEEP_FILE") else {}
    for var in SWEEPABLE:
        if _set(env, var):
            values = [v.strip() for v in env[var].split(",")]
            if any(v == "" for v in values):
                raise ValidationError(f"{var}={env[var]!r} is not valid: an empty value in the comma-separated list")
            axes[var] = values
    names = list(axes)
    points = []
    for combo in itertools.product(*(axes[n] for n in names)):
        point = dict(env)
        point.update(zip(names, combo))
        points.append(point)
    return points
