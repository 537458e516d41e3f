"""`llmb-run results --plot`: the data behind the plot (points, Pareto frontier, references) from real result
files, and the PNG read back (size, non-blank, frontier and reference colours present)."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from results_kit import by_job, rerun_copy, workload_dir

from llmb_plugin_deepseek_r1.results.cli import main
from llmb_plugin_deepseek_r1.results.plot import (
    INSTALL_HINT,
    pareto_frontier,
    plot_data,
)

pytest_plugins = ["results_fixtures"]  # the base_install / install fixtures

TAB_RED, TAB_GREEN = (0xD6, 0x27, 0x28), (0x2C, 0xA0, 0x2C)


def dominated(p: tuple[float, float], by: tuple[float, float]) -> bool:
    return by[0] >= p[0] and by[1] >= p[1] and by != p


def check_frontier(points: list[tuple[float, float]], frontier: list[int]) -> None:
    """Independent brute-force check: nothing beats a frontier point; everything else is beaten or duplicated."""
    on = set(frontier)
    for i in frontier:
        assert not any(dominated(points[i], q) for q in points), points[i]
    for i, p in enumerate(points):
        if i not in on:
            assert any(dominated(p, points[j]) or points[j] == p for j in on), p
    assert [points[i][0] for i in frontier] == sorted(points[i][0] for i in frontier)


def test_pareto_frontier_on_random_clouds():
    rng = random.Random(7)
    for size in (1, 2, 5, 40, 200):
        points = [(rng.randint(0, 30) * 1.0, rng.randint(0, 30) * 1.0) for _ in range(size)]
        frontier = pareto_frontier(points)
        check_frontier(points, frontier)
        assert len({points[i] for i in frontier}) == len(frontier)  # identical points appear once


def run_plot(install: Path, png: Path, *args: str, capsys) -> tuple[int, str, list[dict]]:
    code = main(["--dir", str(workload_dir(install)), "--plot", str(png), *args])
    err = capsys.readouterr().err
    assert main(["--dir", str(workload_dir(install)), "--json", *args]) == 0
    return code, err, json.loads(capsys.readouterr().out)


def test_plot_data_from_real_results(install, tmp_path, capsys):
    rerun_copy(install, "204", "214", factor=3.0)  # a repeat of concurrency 4: its mean is what is plotted
    _, _, rows = run_plot(install, tmp_path / "p.png", capsys=capsys)
    references = [{"id": r["reference_id"], "value": r["reference_value"], "source": r["reference_source"]}
                  for r in rows if r["reference_id"]]
    groups = plot_data(rows, references)
    assert [(g["use_case"], g["isl"], g["osl"]) for g in groups] == [("chat", 64, 32), ("reasoning", 1000, 1000)]
    chat, reasoning = groups
    valid_chat = [r for r in rows if r["use_case"] == "chat" and r["status"] == "VALID"]
    assert sorted((p["x"], p["y"]) for p in chat["points"]) == sorted(
        (r["output_tok_s_user"], r["output_tok_s_gpu"]) for r in valid_chat)
    assert {p["job_id"] for p in chat["points"]}.isdisjoint({"205", "206"})  # FAILED/INVALID are not drawn
    mean_point = next(p for p in chat["points"] if p["job_id"] == "214")
    docs = by_job(install)
    assert mean_point["n"] == 2 and mean_point["y"] == pytest.approx(
        docs["204"]["measured"]["headline"]["output_tok_s_gpu"] * 2)  # mean of x1 and x3
    points = [(p["x"], p["y"]) for p in chat["points"]]
    frontier = [i for i, p in enumerate(chat["points"]) if p["on_frontier"]]
    check_frontier(points, sorted(frontier, key=lambda i: points[i][0]))
    assert chat["frontier"] == [points[i] for i in sorted(frontier, key=lambda i: points[i][0])]
    assert "conc=4" in mean_point["label"] and chat["references"] == []
    assert [r["value"] for r in reasoning["references"]] == [6939.0]
    assert reasoning["frontier"] == [(reasoning["points"][0]["x"], reasoning["points"][0]["y"])]


def pixels_of(image: np.ndarray, rgb: tuple[int, int, int], tolerance: int = 12) -> int:
    rgb8 = (image[..., :3] * 255).round().astype(int)
    return int((np.abs(rgb8 - np.array(rgb)).max(axis=-1) <= tolerance).sum())


def test_png_is_written_and_reads_back(base_install, tmp_path, capsys):
    from matplotlib.image import imread

    png = tmp_path / "plots" / "pareto.png"
    code, err, _ = run_plot(base_install, png, capsys=capsys)
    assert code == 0 and f"wrote {png}" in err
    image = imread(png)
    assert image.shape[:2] == (480, 1280)  # two use cases side by side, 6.4 x 4.8 in at 100 dpi each
    assert (image[..., :3] < 0.95).any(axis=-1).mean() > 0.02  # not blank
    assert pixels_of(image, TAB_RED) > 50  # the frontier
    assert pixels_of(image, TAB_GREEN) > 50  # the reasoning reference line
    code, err, _ = run_plot(base_install, tmp_path / "one.png", "--use-case", "chat", capsys=capsys)
    one = imread(tmp_path / "one.png")
    assert code == 0 and one.shape[:2] == (480, 640) and pixels_of(one, TAB_GREEN) == 0  # chat has no reference
    assert sorted(p.name for p in png.parent.iterdir()) == ["pareto.png"]  # no temporary files left


def test_existing_png_is_not_replaced_without_force(base_install, tmp_path, capsys):
    png = tmp_path / "p.png"
    png.write_bytes(b"mine")
    code, err, _ = run_plot(base_install, png, capsys=capsys)
    assert code == 1 and "exists" in err and png.read_bytes() == b"mine"
    code, _, _ = run_plot(base_install, png, "--force", capsys=capsys)
    assert code == 0 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_nothing_to_plot_is_an_error(base_install, tmp_path, capsys):
    code, err, _ = run_plot(base_install, tmp_path / "p.png", "--since", "2999-01-01", capsys=capsys)
    assert code == 1 and "nothing to plot" in err and not (tmp_path / "p.png").exists()


def test_missing_matplotlib_names_the_extra(base_install, tmp_path):
    code = ("import sys\n"
            "sys.modules['matplotlib'] = None\n"  # what an environment without the [plot] extra looks like
            "from llmb_plugin_deepseek_r1.results.cli import main\n"
            f"sys.exit(main(['--dir', {str(workload_dir(base_install))!r}, '--plot', {str(tmp_path / 'p.png')!r}]))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)})
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == f"error: --plot needs matplotlib, which is not installed: " \
                                                   f"{INSTALL_HINT}"
    assert INSTALL_HINT == "pip install 'llmb-plugin-deepseek-r1[plot]'"
