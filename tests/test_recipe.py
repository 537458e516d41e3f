"""workload.json is workload.yaml compiled (the dry run reads it instead of parsing 18 KB of YAML), and only
while it matches the YAML byte for byte."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from llmb_plugin_deepseek_r1 import recipe

PACKAGE = Path(recipe.__file__).parent


def test_the_shipped_json_is_current() -> None:
    text = (PACKAGE / "workload.yaml").read_text(encoding="utf-8")
    assert (PACKAGE / "workload.json").read_text(encoding="utf-8") == recipe.compile_metadata(text), \
        "workload.json is stale: run `python scripts/compile_workload.py`"


def test_load_metadata_reads_the_json_and_equals_the_yaml(monkeypatch: pytest.MonkeyPatch) -> None:
    text = recipe.metadata_text()
    parsed = []
    monkeypatch.setattr("llmb_plugin_deepseek_r1.yaml_io.safe_load", lambda t: parsed.append(t) or {})
    metadata = recipe.load_metadata()
    assert parsed == [] and metadata == yaml.safe_load(text)
    assert recipe.load_metadata() is not metadata  # a fresh copy each time: callers may change theirs


def test_an_edited_yaml_wins_over_a_stale_json(monkeypatch: pytest.MonkeyPatch) -> None:
    edited = recipe.metadata_text().replace("DeepSeek-R1", "DeepSeek-R1-edited", 1)
    monkeypatch.setattr(recipe, "metadata_text", lambda: edited)
    assert recipe._compiled(edited) is None
    assert recipe.load_metadata() == yaml.safe_load(edited)


@pytest.mark.parametrize("content", ["not json", json.dumps({"source": "1:0", "metadata": {}}), "[]",
                                     json.dumps({"source": None})])
def test_a_broken_or_foreign_json_is_ignored(monkeypatch: pytest.MonkeyPatch, content: str) -> None:
    monkeypatch.setattr(recipe, "_compiled_text", lambda: content)
    assert recipe.load_metadata() == yaml.safe_load(recipe.metadata_text())


def test_a_document_json_cannot_hold_is_refused() -> None:
    with pytest.raises(ValueError, match="JSON cannot represent"):
        recipe.compile_metadata("scales: {4: [1, 2]}\n")
    with pytest.raises(ValueError, match="JSON cannot represent"):
        recipe.compile_metadata("released: 2025-07-01\n")
