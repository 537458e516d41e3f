"""Sweeps: comma-separated values in sweepable knobs, or a SWEEP_FILE, expand to one environment per point."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from llmb_plugin_deepseek_r1.host import safety
from llmb_plugin_deepseek_r1.host.errors import ValidationError
from llmb_plugin_deepseek_r1.planning import bounds, knobs


def _set(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name)
    return None if value is None or value.strip() == "" else value


SWEEPABLE = ("MAX_NUM_TOKENS", "MAX_BATCH_SIZE", "KV_CACHE_FRACTION", "NUM_REQUESTS", "CONCURRENCY", "TP", "EP",
             "PP", "STREAMING")


MAX_SWEEP_FILE_BYTES = 1 << 20


def _where(path: Path) -> str:
    return f"SWEEP_FILE={str(path)!r}"


def _sweep_value(path: Path, key: str, value: Any) -> str:
    """One value of a SWEEP_FILE list as the knob's text; a mapping, list or null names file, key and type."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        return str(value)
    raise ValidationError(f"{_where(path)}: key {key}: expected a number, string or true/false (or a list of "
                          f"them), got {'null' if value is None else type(value).__name__}")


def _sweep_file_values(path_text: str) -> dict[str, list[str]]:
    """SWEEP_FILE: a YAML mapping of sweepable knob names to a value or a list of values, read strictly."""
    import yaml

    from llmb_plugin_deepseek_r1.yaml_io import safe_load

    path = Path(path_text)
    try:
        raw = path.read_bytes()[:MAX_SWEEP_FILE_BYTES + 1]
        if len(raw) > MAX_SWEEP_FILE_BYTES:
            raise ValidationError(f"{_where(path)}: larger than {MAX_SWEEP_FILE_BYTES} bytes; expected a small "
                                  f"YAML mapping")
        data = safe_load(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ValidationError(f"{_where(path)}: not UTF-8 text (byte {exc.start}); expected a YAML "
                              f"mapping") from None
    except (OSError, yaml.YAMLError, RecursionError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ValidationError(f"{_where(path)} cannot be read: {reason}") from None
    if not isinstance(data, dict):
        raise ValidationError(f"{_where(path)}: expected a mapping of knob names to lists of values, got "
                              f"{'null' if data is None else type(data).__name__}")
    values: dict[str, list[str]] = {}
    for key, items in data.items():
        if key not in SWEEPABLE:
            raise ValidationError(f"{_where(path)}: key {str(key)[:60]!r} is not valid: expected one of "
                                  f"{', '.join(SWEEPABLE)}")
        items = items if isinstance(items, list) else [items]
        if not items:
            raise ValidationError(f"{_where(path)}: key {key} has no values")
        if len(items) > bounds.MAX_SWEEP_POINTS:
            raise ValidationError(f"{_where(path)}: key {key} has {len(items)} values; at most "
                                  f"{bounds.MAX_SWEEP_POINTS} sweep points are allowed")
        values[key] = [safety.no_control(f"{_where(path)}: key {key}", _sweep_value(path, key, v))
                       for v in items]
    return values


def expand_sweep(env: Mapping[str, str]) -> list[dict[str, str]]:
    """Comma-separated values in sweepable knobs (MAX_BATCH_SIZE=128,256) and SWEEP_FILE -> one environment per
    point of the Cartesian product (a knob in the environment wins over the same knob in the file)."""
    import itertools

    safety.env_values(env, knobs.RUN_KNOBS)
    axes: dict[str, list[str]] = _sweep_file_values(env["SWEEP_FILE"]) if _set(env, "SWEEP_FILE") else {}
    for var in SWEEPABLE:
        if _set(env, var):
            values = [v.strip() for v in env[var].split(",", bounds.MAX_SWEEP_POINTS)]
            if any(v == "" for v in values):
                raise ValidationError(f"{var}={env[var][:60]!r} is not valid: an empty value in the "
                                      f"comma-separated list")
            axes[var] = values
    bounds.sweep_size({var: len(values) for var, values in axes.items()}, 1)
    names = list(axes)
    points = []
    for combo in itertools.product(*(axes[n] for n in names)):
        point = dict(env)
        point.update(zip(names, combo))
        points.append(point)
    return points
