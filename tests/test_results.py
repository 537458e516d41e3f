"""`llmb-run results`: the table built from result files that the real job body wrote with the STAND-IN
trtllm-bench (tests/fake_trtllm): reading, deltas against references and previous runs, repeats, filters, output."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest
from jobkit import result_files
from results_kit import by_job, rerun_copy, workload_dir

from llmb_plugin_deepseek_r1.recipe import load_metadata
from llmb_plugin_deepseek_r1.results.cli import main
from llmb_plugin_deepseek_r1.results.load import (
    METRICS,
    ResultsError,
    find_result_files,
    load_runs,
    match_reference,
    no_reference_note,
    parse_since,
    validate_references,
)

pytest_plugins = ["results_fixtures"]  # the base_install / install fixtures

REFERENCES = validate_references(load_metadata()["references"])


def results(install: Path, *args: str, capsys) -> tuple[int, str, str]:
    code = main(["--dir", str(workload_dir(install)), *args])
    out, err = capsys.readouterr()
    return code, out, err


def json_rows(install: Path, *args: str, capsys) -> list[dict]:
    code, out, err = results(install, "--json", *args, capsys=capsys)
    assert code == 0, err
    return json.loads(out)


def headline(doc: dict, key: str = "output_tok_s_gpu") -> float:
    return doc["measured"]["headline"][key]


def test_only_result_files_are_read(base_install):
    experiments = workload_dir(base_install) / "experiments"
    found = find_result_files(experiments)
    assert sorted(found) == sorted(result_files(base_install))
    assert len(found) == 9 and all(".report." not in p.name and "_try" not in p.name for p in found)
    assert any(p.name.endswith("_209_try2.out") for p in experiments.rglob("*"))  # an attempt file exists...
    assert (experiments / ".llmb" / "jobs" / "201.json").is_file()  # ...and job records, neither read as results


def test_every_run_is_a_row_with_the_files_numbers(base_install, capsys):
    rows = {r["job_id"]: r for r in json_rows(base_install, "--runs", capsys=capsys)}
    docs = by_job(base_install)
    assert set(rows) == set(docs)
    for job_id, doc in docs.items():
        row = rows[job_id]
        assert row["status"] == doc["verdict"]["status"] and row["use_case"] == doc["use_case"]
        assert (row["isl"], row["osl"], row["concurrency"]) == (doc["asked"]["isl"], doc["asked"]["osl"],
                                                               doc["asked"]["concurrency"])
        assert row["finished"] == pytest.approx(doc["provenance"]["finished"])
        if doc["measured"] is None:
            assert row["output_tok_s_gpu"] is None
        else:
            for key in ("output_tok_s_gpu", "total_tok_s_gpu", "output_tok_s_user", "request_throughput_req_s"):
                assert row[key] == pytest.approx(headline(doc, key))
    assert rows["205"]["classification"] == "nccl" and rows["205"]["vs_previous_pct"] is None
    assert rows["206"]["status"] == "INVALID" and rows["206"]["reasons"] == docs["206"]["verdict"]["reasons"]
    assert rows["206"]["vs_reference_pct"] is None and rows["206"]["vs_previous_pct"] is None
    assert rows["208"]["avg_ttft_ms"] is None and rows["201"]["avg_ttft_ms"] == pytest.approx(
        headline(docs["201"], "avg_ttft_ms"))
    assert rows["209"]["effective_changes"] == {"kv_cache_free_gpu_mem_fraction":
                                                docs["209"]["effective"]["kv_cache_free_gpu_mem_fraction"]}


def test_delta_against_the_previous_valid_run_of_the_same_settings(install, capsys):
    docs = by_job(install)
    faster = rerun_copy(install, "202", "210", factor=1.25)  # after the FAILED 205 of the same settings
    rows = {r["job_id"]: r for r in json_rows(install, "--runs", capsys=capsys)}
    assert rows["201"]["previous_job_id"] is None
    assert rows["202"]["previous_job_id"] == "201"
    assert rows["202"]["vs_previous_pct"] == pytest.approx(
        (headline(docs["202"]) - headline(docs["201"])) / headline(docs["201"]) * 100)
    assert rows["210"]["previous_job_id"] == "202"  # not 205: FAILED runs are skipped
    assert rows["210"]["vs_previous_pct"] == pytest.approx(
        (headline(faster) - headline(docs["202"])) / headline(docs["202"]) * 100)
    assert rows["210"]["vs_previous_pct"] > 0
    assert rows["203"]["previous_job_id"] is None  # other settings (concurrency 8) have no previous run


def test_previous_run_is_found_outside_the_since_window(install, capsys):
    rerun_copy(install, "202", "211", factor=0.5, finished_delta_s=3600)
    rows = json_rows(install, "--runs", "--since", datetime.fromtimestamp(time.time() + 1800).isoformat(),
                     capsys=capsys)
    assert [r["job_id"] for r in rows] == ["211"]
    assert rows[0]["previous_job_id"] == "202" and rows[0]["vs_previous_pct"] == pytest.approx(-50.0)


def test_reference_only_for_exactly_the_same_shape(base_install, capsys):
    rows = {r["job_id"]: r for r in json_rows(base_install, "--runs", capsys=capsys)}
    docs = by_job(base_install)
    expected_ref = next(r for r in REFERENCES if (r["gpu_type"], r["scale"], r["isl"], r["osl"]) == ("gb200", 4, 1000,
                                                                                                     1000))
    reasoning = rows["207"]
    assert reasoning["reference_id"] == expected_ref["id"] and reasoning["reference_note"] is None
    assert reasoning["vs_reference_pct"] == pytest.approx(
        (headline(docs["207"]) - expected_ref["value"]) / expected_ref["value"] * 100)
    assert reasoning["reference_source"] and reasoning["reference_trtllm_version"] and reasoning["reference_url"]
    chat = rows["201"]
    assert chat["reference_id"] is None and chat["vs_reference_pct"] is None
    assert chat["reference_note"] == "no published reference for ISL/OSL 64/32 on gb200 (4 GPUs, nvfp4)"


@pytest.mark.parametrize("isl, osl", [(512, 8000), (8000, 512), (128, 128), (1024, 2048)])
def test_recipe_shapes_without_published_numbers_are_not_compared(isl, osl):
    run = {"gpu_type": "gb200", "scale": 4, "dtype": "nvfp4", "isl": isl, "osl": osl, "mode": "max_throughput"}
    assert match_reference(run, REFERENCES) is None
    assert no_reference_note(run, REFERENCES) == (f"no published reference for ISL/OSL {isl}/{osl} on gb200 "
                                                  f"(4 GPUs, nvfp4)")


def test_reference_matching_needs_gpu_scale_dtype_shape_and_mode():
    for ref in REFERENCES:
        run = {k: ref[k] for k in ("gpu_type", "scale", "dtype", "isl", "osl")} | {"mode": "max_throughput"}
        assert match_reference(run, REFERENCES)["id"] == ref["id"]
        for key, other in (("gpu_type", "a100"), ("scale", ref["scale"] * 2), ("dtype", "bf16"),
                           ("isl", ref["isl"] + 1)):
            assert match_reference(run | {key: other}, REFERENCES) is None
        latency = run | {"mode": "min_latency"}
        assert match_reference(latency, REFERENCES) is None
        assert "in mode min_latency" in no_reference_note(latency, REFERENCES)
    metrics = {r["metric"] for r in REFERENCES}
    assert metrics == {"output_tok_s_gpu"} and all(r["definition"] and r["source"] for r in REFERENCES)


def test_malformed_reference_entries_are_rejected_by_name():
    broken = [dict(REFERENCES[0], id="x1", value=None)]
    with pytest.raises(ResultsError, match="reference x1: missing value"):
        validate_references(broken)
    with pytest.raises(ResultsError, match="metric 'tok_s' is not one of"):
        validate_references([dict(REFERENCES[0], metric="tok_s")])


def test_repeats_become_one_row_with_mean_and_spread(install, capsys):
    docs = by_job(install)
    rerun_copy(install, "202", "212", factor=1.1)
    rows = json_rows(install, capsys=capsys)
    [group] = [r for r in rows if r["n"] > 1]
    values = [headline(docs["201"]), headline(docs["202"]), headline(docs["202"]) * 1.1]
    assert group["job_ids"] == ["201", "202", "212"] and group["job_id"] == "212" and group["n"] == 3
    assert group["output_tok_s_gpu"] == pytest.approx(statistics.mean(values))
    assert group["output_tok_s_gpu_std"] == pytest.approx(statistics.stdev(values))
    assert (group["output_tok_s_gpu_min"], group["output_tok_s_gpu_max"]) == pytest.approx((min(values), max(values)))
    assert group["vs_previous_pct"] == pytest.approx(10.0)  # the newest run against the one before it
    assert len(group["files"]) == 3
    failed = [r for r in rows if r["job_id"] == "205"]
    assert failed and failed[0]["n"] == 1 and failed[0]["status"] == "FAILED"  # listed, not averaged
    assert len(rows) == len(docs) + 1 - 2  # three runs became one row
    assert len(json_rows(install, "--runs", capsys=capsys)) == len(docs) + 1


def test_valid_only_and_use_case_filters(base_install, capsys):
    rows = json_rows(base_install, "--valid-only", "--runs", capsys=capsys)
    assert {r["status"] for r in rows} == {"VALID"} and {"205", "206"}.isdisjoint(r["job_id"] for r in rows)
    rows = json_rows(base_install, "--use-case", "reasoning", capsys=capsys)
    assert [r["job_id"] for r in rows] == ["207"]


def test_since_accepts_iso_dates_and_relative_ages():
    now = 1_800_000_000.0
    assert parse_since("7d", now) == now - 7 * 86400
    assert parse_since("12h", now) == now - 12 * 3600
    assert parse_since("30m", now) == now - 1800
    assert parse_since("2w", now) == now - 14 * 86400
    assert parse_since("2026-11-20", now) == datetime(2026, 11, 20).timestamp()
    assert parse_since("2026-11-20T08:30", now) == datetime(2026, 11, 20, 8, 30).timestamp()
    for bad in ("yesterday", "7", "-3d", "2026-13-01"):
        with pytest.raises(ResultsError, match=f"--since '{bad}': use an ISO date"):
            parse_since(bad, now)


def test_since_filters_by_finish_time(install, capsys):
    old = rerun_copy(install, "203", "213", factor=1.0, finished_delta_s=-3 * 86400)
    assert {r["job_id"] for r in json_rows(install, "--runs", capsys=capsys)} >= {"213", "203"}
    recent = {r["job_id"] for r in json_rows(install, "--runs", "--since", "2d", capsys=capsys)}
    assert "213" not in recent and "203" in recent
    day_before = datetime.fromtimestamp(old["provenance"]["finished"] - 86400).date().isoformat()
    assert "213" in {r["job_id"] for r in json_rows(install, "--runs", "--since", day_before, capsys=capsys)}


def test_terminal_table_shows_only_settings_that_differ(base_install, capsys):
    docs = by_job(base_install)
    code, out, _ = results(base_install, "--runs", capsys=capsys)
    assert code == 0
    table, _, notes = out.partition("\n\n")
    header = table.splitlines()[0].split()
    assert header[:2] == ["use", "case"] and "ISL/OSL" in header
    assert {"conc", "stream", "kv", "max_tokens"} <= set(header)  # these differ between the runs
    assert not {"tp", "ep", "pp", "mbs", "gpu", "dtype", "requests"} & set(header)  # these do not
    assert len(table.splitlines()) == 1 + len(docs)
    line_207 = next(line for line in table.splitlines() if " 207 " in line)
    assert f"{headline(docs['207']):,.1f}" in line_207 and "1000/1000" in line_207 and "[1]" in line_207
    assert "FAILED (nccl)" in table and "INVALID" in table
    assert "[1] perf-gb200-dep4-1000-1000: 6,939 output_tok_s_gpu" in notes
    assert "no published reference for ISL/OSL 64/32 on gb200" in notes
    assert "job 206 (chat): INVALID: completed requests" in notes

    code, out, _ = results(base_install, "--use-case", "chat", "--valid-only", "--since", "1h", "--runs",
                           capsys=capsys)
    header = out.splitlines()[0].split()
    assert "conc" in header and "max_tokens" not in header  # one use case: its token budget no longer differs


def test_csv_is_written_and_never_silently_replaced(base_install, tmp_path, capsys):
    target = tmp_path / "out" / "results.csv"
    code, _, err = results(base_install, "--runs", "--csv", str(target), capsys=capsys)
    assert code == 0 and f"wrote 9 rows to {target}" in err
    frame = pd.read_csv(target)
    assert len(frame) == 9 and set(frame["job_id"].astype(str)) == set(by_job(base_install))
    first = target.read_bytes()
    code, _, err = results(base_install, "--csv", str(target), capsys=capsys)
    assert code == 1 and "exists" in err and "--force" in err and target.read_bytes() == first
    code, _, _ = results(base_install, "--csv", str(target), "--force", "--valid-only", capsys=capsys)
    assert code == 0 and len(pd.read_csv(target)) < 9
    assert sorted(p.name for p in target.parent.iterdir()) == ["results.csv"]  # no temporary files left


def test_bad_input_is_one_clear_line_and_exit_1(base_install, capsys):
    code, _, err = results(base_install, "--since", "yesterday", capsys=capsys)
    assert code == 1 and err.startswith("error: --since 'yesterday'")
    code, _, err = results(base_install, "--bogus", capsys=capsys)
    assert code == 2 and "unrecognized arguments: --bogus" in err  # a usage error, as argparse has it
    code = main(["--dir", str(base_install / "nowhere")])
    assert code == 1 and "--dir" in capsys.readouterr().err


def test_unreadable_result_file_is_reported_and_the_rest_shown(install, capsys):
    folder = next(p.parent for p in result_files(install))
    broken = folder / f"{folder.name}_streaming-on_999.json"
    broken.write_text('{"schema": 1, "asked": ')
    other = folder / f"{folder.name}_streaming-on_998.json"
    other.write_text(json.dumps({"schema": 7}))
    code, out, err = results(install, "--runs", "--json", capsys=capsys)
    assert code == 0 and len(json.loads(out)) == 9
    assert f"skipped {broken}" in err and "unsupported schema 7" in err
    loaded = load_runs(workload_dir(install) / "experiments")
    assert {p.name for p, _ in loaded.skipped} == {broken.name, other.name}


def test_no_results_is_said_plainly(tmp_path, capsys):
    code = main(["--dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0 and out.startswith(f"No results under {tmp_path}")
    assert main(["--dir", str(tmp_path), "--json"]) == 0 and json.loads(capsys.readouterr().out) == []


def test_llmb_run_results_through_the_host(run_cli, llmb_env, base_install):
    import shutil

    shutil.copytree(base_install / "workloads", llmb_env / "workloads")
    code, out, err = run_cli("results", "--json", "--valid-only")
    assert code == 0, err
    rows = json.loads(out)
    assert rows and {r["status"] for r in rows} == {"VALID"}
    code, out, err = run_cli("results", "-w", "inference_deepseek-r1", "--runs")
    assert code == 0 and "FAILED (nccl)" in out


def test_pandas_and_matplotlib_are_not_imported_until_used():
    code = ("import sys\n"
            "import llmb_plugin_deepseek_r1.results.cli, llmb_plugin_deepseek_r1.results.load\n"
            "import llmb_plugin_deepseek_r1.results.plot, llmb_plugin_deepseek_r1.results.archive\n"
            "import llmb_plugin_deepseek_r1.results.table, llmb_plugin_deepseek_r1.plugin\n"
            "print(sorted(m for m in ('pandas', 'matplotlib') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)})
    assert done.stdout.strip() == "[]"


def test_llmb_run_results_passes_option_values_through_in_order(run_cli, llmb_env, base_install):
    """`llmb-run results --since 7d --use-case chat`: values must stay with their options (host passthrough)."""
    import shutil

    shutil.copytree(base_install / "workloads", llmb_env / "workloads")
    code, out, err = run_cli("results", "--since", "7d", "--use-case", "chat", "--json")
    assert code == 0, err
    assert {r["use_case"] for r in json.loads(out)} == {"chat"}


def test_record_cache_is_used_for_unchanged_files_and_refreshed_for_changed_ones(install, tmp_path):
    experiments = workload_dir(install) / "experiments"
    cache = tmp_path / "cache.json"
    uncached = load_runs(experiments, cache=False)
    first = load_runs(experiments, cache=cache)
    assert cache.is_file() and first.runs == uncached.runs and len(first.runs) == 9
    # Same size, inode and mtime but other bytes: only a cache hit can still give the old record.
    path = result_files(install)[0]
    stat = path.stat()
    with open(path, "r+b") as handle:
        handle.write(b"X")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert load_runs(experiments, cache=cache).runs == uncached.runs
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # now it looks changed: parsed again
    again = load_runs(experiments, cache=cache)
    assert len(again.runs) == 8 and [p for p, _ in again.skipped] == [path]
    path.unlink()
    assert len(load_runs(experiments, cache=cache).runs) == 8 and not load_runs(experiments, cache=cache).skipped


def test_record_cache_of_another_loader_version_is_ignored(install, tmp_path):
    experiments = workload_dir(install) / "experiments"
    cache = tmp_path / "cache.json"
    load_runs(experiments, cache=cache)
    data = json.loads(cache.read_text())
    for row in data["rows"]:
        status = data["keys"][row[4]].index("status")
        row[5][status] = "FORGED"
    cache.write_text(json.dumps(data))
    assert {r["status"] for r in load_runs(experiments, cache=cache).runs} == {"FORGED"}  # the cache is read
    data["code"][0] -= 1
    cache.write_text(json.dumps(data))
    assert {r["status"] for r in load_runs(experiments, cache=cache).runs} != {"FORGED"}
    cache.write_text("not json")
    assert len(load_runs(experiments, cache=cache).runs) == 9


def _aggregate_with_dataframe_agg(group) -> dict:
    """The aggregation as first written (DataFrame.apply + agg): the faster one must give the same row."""
    row = group.to_dict(orient="records")[-1]
    stats = group[list(METRICS)].apply(pd.to_numeric, errors="coerce").agg(["mean", "std", "min", "max"])
    for metric in METRICS:
        for stat in ("mean", "std", "min", "max"):
            value = float(stats.at[stat, metric])
            row[metric if stat == "mean" else f"{metric}_{stat}"] = None if value != value else value
    return row


@pytest.mark.parametrize("size", [1, 2, 7, 150])
def test_aggregate_equals_the_dataframe_agg_it_replaced(size):
    import random

    from llmb_plugin_deepseek_r1.results.table import _aggregate

    rng = random.Random(size)
    rows = []
    for i in range(size):
        row = {"job_id": str(i), "finished": 1.7e9 + i, "files": [f"f{i}"], "status": "VALID", "use_case": "chat",
               "concurrency": 8, "streaming": True, "reference_value": None, "reference_metric": None}
        for metric in METRICS:
            row[metric] = None if rng.random() < 0.2 else rng.uniform(0.1, 1e4) * (1 + 1e-12 * i)
        rows.append(row)
    group = pd.DataFrame(rows)
    new, old = _aggregate(group), _aggregate_with_dataframe_agg(group)
    for key in [*METRICS, *(f"{m}_{s}" for m in METRICS for s in ("std", "min", "max")), "job_id", "concurrency",
                "streaming", "finished"]:
        assert new[key] == old[key] or (new[key] is None and old[key] is None), key
        assert type(new[key]) is type(old[key]), key
