"""YAML reading for every file the launcher parses on its hot path (workload.yaml, cluster_config.yaml, sweep
files): PyYAML's libyaml loader when PyYAML was built with it (same documents, about 5x faster: it is most of a
dry run's parsing time), else the pure-Python safe loader."""

from __future__ import annotations

from typing import Any


def safe_load(text: str) -> Any:
    """``yaml.safe_load(text)``, through ``CSafeLoader`` when available."""
    import yaml

    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506 - a safe loader
