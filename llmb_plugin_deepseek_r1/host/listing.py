"""`llmb-run list`: installed workloads and the configurations they support."""

from __future__ import annotations

import json
from typing import Any

from .plugins import Registry


def print_workloads(registry: Registry, workload: str | None, as_json: bool) -> int:
    keys = [workload] if workload else sorted(registry.workloads)
    if workload:
        registry.get(workload)
    rows: list[dict[str, Any]] = []
    for key in keys:
        meta = registry.workloads[key].metadata
        configs = []
        for gpu, gpu_config in ((meta.get("run") or {}).get("gpu_configs") or {}).items():
            for mc in gpu_config.get("model_configs") or []:
                configs.append({"gpu_type": gpu, "model_size": mc.get("model_size"), "dtypes": mc.get("dtypes"),
                                "scales": mc.get("scales"), "exact_scales": bool(mc.get("exact_scales"))})
        rows.append({"workload": key, "plugin": registry.origins[key],
                     "description": (meta.get("general") or {}).get("description", ""), "configs": configs})
    broken = [{"plugin": b.name, "target": b.target, "error": b.error} for b in registry.broken]
    if as_json:
        print(json.dumps({"workloads": rows, "broken_plugins": broken}, indent=2))
        return 0
    if not rows:
        print("No workloads installed.")
    for row in rows:
        print(f"{row['workload']}  (plugin {row['plugin']})")
        if row["description"]:
            print(f"  {row['description']}")
        for c in row["configs"]:
            scales = ",".join(map(str, c["scales"] or []))
            print(f"  {c['gpu_type']}: model size {c['model_size']}, dtypes {','.join(c['dtypes'] or [])}, "
                  f"scales {scales}{' (exact)' if c['exact_scales'] else ''}")
    for b in broken:
        print(f"BROKEN plugin {b['plugin']} ({b['target']}): {b['error']}")
    return 0
