"""YAML on the launcher's hot paths (reading workload.yaml, cluster_config.yaml and sweep files; the dry run's
printed extra options) through PyYAML's libyaml classes when PyYAML was built with them: the same documents and
text, several times faster (the pure-Python loader and emitter were most of a dry run's own time); else the
pure-Python safe ones."""

from __future__ import annotations

from typing import Any


def safe_load(text: str) -> Any:
    """``yaml.safe_load(text)``, through ``CSafeLoader`` when available."""
    import yaml

    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506 - a safe loader


def safe_dump(data: Any, **options: Any) -> str:
    """``yaml.safe_dump(data, **options)``, through ``CSafeDumper`` when available (the dry run prints every use
    case's extra options as YAML: the pure-Python emitter was most of its run time)."""
    import yaml

    return yaml.dump_all([data], None, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper), **options)
