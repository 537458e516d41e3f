"""The result document: schema 2 written by the job body, and result files of 0.1 (schema 1, a fixture in the
old shape) still read by `llmb-run results` and by the `jobs show` summary."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from results_kit import by_job

from llmb_plugin_deepseek_r1 import document
from llmb_plugin_deepseek_r1.results.cli import main as results_main
from llmb_plugin_deepseek_r1.results.summary import job_summaries

pytest_plugins = ["results_fixtures"]

SCHEMA1 = Path(__file__).parent / "fixtures" / "results" / "schema1"
OLD_FILE = next(SCHEMA1.glob("*/*.json"))


def test_the_job_body_writes_schema_2(base_install):
    docs = by_job(base_install)
    assert docs and all(doc["schema_version"] == document.SCHEMA_VERSION == 2 for doc in docs.values())
    assert all("schema" not in doc for doc in docs.values())


def test_a_schema_1_file_still_loads(tmp_path, capsys):
    assert json.loads(OLD_FILE.read_text())["schema"] == 1
    doc = document.read(OLD_FILE)
    assert doc["schema_version"] == 2 and "schema" not in doc and doc["verdict"]["status"] == "VALID"
    experiments = tmp_path / "experiments"
    shutil.copytree(SCHEMA1, experiments)
    assert results_main(["--dir", str(experiments), "--json", "--runs"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert row["job_id"] == "101" and row["status"] == "VALID" and row["use_case"] == "chat"
    assert row["output_tok_s_gpu"] == pytest.approx(541.858574911948)


def test_the_jobs_show_summary_reads_both_schemas(base_install):
    status = {"results": [{"use_case": "chat", "verdict": "VALID", "classification": None,
                           "result_file": str(OLD_FILE)}], "not_run": ["generation"]}
    [old, not_run] = job_summaries(status)
    assert old.text == "chat: VALID  541.9 output tok/s/GPU" and old.details["headline"]["output_tok_s_gpu"] > 0
    assert not_run.text == "generation: NOT RUN"
    new_file = next(p for p in base_install.rglob("*_201.json"))
    [new] = job_summaries({"results": [{"use_case": "chat", "verdict": "VALID", "result_file": str(new_file)}]})
    assert new.text.startswith("chat: VALID  ") and "output tok/s/GPU" in new.text


@pytest.mark.parametrize("content, message", [
    ({"schema_version": 7}, "unsupported schema 7"),
    ({"schema": 1, "verdict": {"status": "VALID"}}, "no asked"),
    ([1, 2], "not a JSON object"),
])
def test_what_is_not_a_result_document_is_named(tmp_path, content, message):
    path = tmp_path / "x.json"
    path.write_text(json.dumps(content))
    with pytest.raises(document.DocumentError, match=message):
        document.read(path)
