"""`llmb-run results --plot FILE.png`: output tok/s/GPU against tok/s/user per use case, Pareto frontier marked,
published reference points as horizontal lines (they have no tok/s/user).

``plot_data`` is pure and returns exactly what is drawn, so tests check the data and the image separately.
matplotlib is imported only here, only when drawing (the optional ``[plot]`` extra).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from llmb_plugin_deepseek_r1.host.records import write_atomic
from .load import ResultsError

X_METRIC, Y_METRIC = "output_tok_s_user", "output_tok_s_gpu"
INSTALL_HINT = "pip install 'llmb-plugin-deepseek-r1[plot]'"
POINT_SETTINGS = ("concurrency", "max_batch_size", "max_num_tokens", "kv_cache_free_gpu_mem_fraction", "tp", "ep",
                  "pp", "streaming", "mode", "attention_dp", "num_requests")
SHORT = {"concurrency": "conc", "max_batch_size": "mbs", "max_num_tokens": "tokens",
         "kv_cache_free_gpu_mem_fraction": "kv", "attention_dp": "adp", "num_requests": "req"}


def pareto_frontier(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats on both axes (maximise x and y), by increasing x.

    Of identical points only the first is kept on the frontier.
    """
    order = sorted(range(len(points)), key=lambda i: (-points[i][0], -points[i][1], i))
    frontier, best_y = [], -math.inf
    for i in order:
        if points[i][1] > best_y:
            frontier.append(i)
            best_y = points[i][1]
    return sorted(frontier, key=lambda i: points[i][0])


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def _label(row: Mapping[str, Any], varying: Sequence[str]) -> str:
    settings = ", ".join(f"{SHORT.get(k, k)}={row.get(k)}" for k in varying)
    job = f"{row['job_id']}" + (f" (n={row['n']})" if row.get("n", 1) > 1 else "")
    return f"{settings} [{job}]" if settings else job


def plot_data(rows: Sequence[Mapping[str, Any]], references: Sequence[Mapping[str, Any]] = ()) -> list[dict[str, Any]]:
    """Per use case and ISL/OSL: the VALID points, which of them form the frontier and the matching references.

    ``rows`` are table rows (aggregated rows give their mean); ``references`` the reference entries the rows
    matched, found by each row's ``reference_id``.
    """
    by_id = {r["id"]: r for r in references}
    groups: dict[tuple[str, Any, Any], dict[str, Any]] = {}
    for row in rows:
        if row.get("status") != "VALID":
            continue
        key = (str(row["use_case"]), row["isl"], row["osl"])
        group = groups.setdefault(key, {"use_case": key[0], "isl": key[1], "osl": key[2],
                                        "title": f"{key[0]} {key[1]}/{key[2]}", "points": [], "references": [],
                                        "skipped": 0, "_rows": []})
        x, y = _number(row.get(X_METRIC)), _number(row.get(Y_METRIC))
        if x is None or y is None:
            group["skipped"] += 1
            continue
        group["_rows"].append((row, x, y))
        ref = by_id.get(row.get("reference_id"))
        if ref is not None and ref["id"] not in [r["id"] for r in group["references"]]:
            group["references"].append({"id": ref["id"], "value": float(ref["value"]), "source": ref["source"],
                                        "url": ref.get("url")})
    out = []
    for group in groups.values():
        members = group.pop("_rows")
        varying = [k for k in POINT_SETTINGS if len({repr(m[0].get(k)) for m in members}) > 1]
        points = [{"x": x, "y": y, "job_id": row["job_id"], "n": int(row.get("n", 1)), "label": _label(row, varying),
                   "on_frontier": False} for row, x, y in members]
        frontier = pareto_frontier([(p["x"], p["y"]) for p in points])
        for i in frontier:
            points[i]["on_frontier"] = True
        group["points"] = points
        group["frontier"] = [(points[i]["x"], points[i]["y"]) for i in frontier]
        out.append(group)
    return sorted(out, key=lambda g: (g["use_case"], str(g["isl"]), str(g["osl"])))


def _matplotlib() -> tuple[Any, Any]:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ResultsError(f"--plot needs matplotlib, which is not installed: {INSTALL_HINT}") from None
    return Figure, FigureCanvasAgg


def draw_plot(groups: Sequence[Mapping[str, Any]], path: Path, *, overwrite: bool = False) -> Path:
    """Draw ``plot_data`` groups into a PNG at ``path`` (written atomically; never replaces a file unless asked)."""
    drawable = [g for g in groups if g["points"]]
    if not drawable:
        raise ResultsError("nothing to plot: no VALID run has both output tok/s/GPU and tok/s/user")
    Figure, FigureCanvasAgg = _matplotlib()  # Agg canvas directly: no pyplot state, no display needed
    cols = 1 if len(drawable) == 1 else 2
    rows = math.ceil(len(drawable) / cols)
    figure = Figure(figsize=(6.4 * cols, 4.8 * rows), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    for index, group in enumerate(drawable):
        axes = figure.add_subplot(rows, cols, index + 1)
        points = group["points"]
        axes.scatter([p["x"] for p in points], [p["y"] for p in points], color="tab:blue", alpha=0.6,
                     label="runs", zorder=3)
        fx, fy = zip(*group["frontier"])
        axes.plot(fx, fy, color="tab:red", marker="o", linewidth=1.5, label="Pareto frontier", zorder=4)
        for p in points:
            if p["on_frontier"]:
                axes.annotate(p["label"], (p["x"], p["y"]), textcoords="offset points", xytext=(4, 4), fontsize=7)
        for ref, style in zip(group["references"], ("--", ":", "-.")):
            axes.axhline(ref["value"], color="tab:green", linestyle=style, linewidth=2.0,
                         label=f"reference {ref['value']:,.0f} ({ref['id']})")
            axes.annotate(ref["source"], (0.01, ref["value"]), xycoords=("axes fraction", "data"),
                          textcoords="offset points", xytext=(0, 3), fontsize=7, color="tab:green")
        if not group["references"]:
            axes.text(0.01, 0.01, f"no published reference for ISL/OSL {group['isl']}/{group['osl']}",
                      transform=axes.transAxes, fontsize=7, color="dimgray")
        axes.set_title(group["title"])
        axes.set_xlabel("output tok/s/user")
        axes.set_ylabel("output tok/s/GPU")
        axes.grid(True, alpha=0.3)
        axes.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.15), ncols=2)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_atomic(path, lambda handle: figure.savefig(handle, format="png"), overwrite=overwrite)
