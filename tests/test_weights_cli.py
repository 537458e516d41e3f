"""`verify-weights` on the command line, its --json shape, its remedy text, and the job-body preflight."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from weights_fixtures import lfs_pointer_text, make_checkpoint, sha256_file

from llmb_plugin_deepseek_r1.weights import main, write_manifest

SHARD1 = "model-00001-of-00003.safetensors"
SHARD2 = "model-00002-of-00003.safetensors"


@pytest.fixture()
def ckpt(tmp_path: Path) -> Path:
    return make_checkpoint(tmp_path / "DeepSeek-R1-FP4", shards=3)


def break_two_shards(d: Path) -> None:
    data = (d / SHARD1).read_bytes()
    (d / SHARD1).write_bytes(data[:-64])
    (d / SHARD2).write_bytes(lfs_pointer_text((d / SHARD2).read_bytes()))
    (d / "stray.safetensors").write_bytes(data)


def test_module_dispatch_ok_and_failure(ckpt: Path) -> None:
    cmd = [sys.executable, "-m", "llmb_plugin_deepseek_r1", "verify-weights"]
    ok = subprocess.run([*cmd, str(ckpt)], capture_output=True, text=True, check=False)
    assert ok.returncode == 0 and ok.stdout.startswith("OK: "), ok.stderr
    break_two_shards(ckpt)
    bad = subprocess.run([*cmd, str(ckpt), "--json"], capture_output=True, text=True, check=False)
    assert bad.returncode == 4  # the check ran and found problems
    doc = json.loads(bad.stdout)
    assert doc["ok"] is False and doc["mode"] == "quick"
    assert {(p["file"], p["kind"]) for p in doc["problems"]} == {
        (SHARD1, "truncated"),
        (SHARD2, "lfs_pointer"),
        ("stray.safetensors", "unindexed_shard"),
    }


def test_json_shape(ckpt: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(ckpt), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert {"ok", "mode", "files_checked", "total_bytes", "problems"} <= set(doc)
    files = [p for p in ckpt.iterdir() if p.is_file()]
    assert doc["ok"] is True and doc["problems"] == [] and doc["files_checked"] == len(files)
    assert doc["total_bytes"] == sum(p.stat().st_size for p in files)


def test_text_report_lines_summary_and_remedy(ckpt: Path, capsys: pytest.CaptureFixture[str]) -> None:
    break_two_shards(ckpt)
    assert main([str(ckpt)]) == 4
    out = capsys.readouterr().out.splitlines()
    problem_lines = [line for line in out if line.split(":")[0] in (SHARD1, SHARD2, "stray.safetensors")]
    assert len(problem_lines) == 3
    assert any(line.startswith(f"{SHARD1}: truncated: ") for line in problem_lines)
    summary = next(line for line in out if line.startswith("FAILED: "))
    assert "3 problem(s) in 3 file(s)" in summary
    remedy = "\n".join(out[out.index("remedy:") :])
    assert f"rm -f {SHARD1} {SHARD2}" in remedy  # only the bad files, never the folder
    assert f"hf download nvidia/DeepSeek-R1-FP4 {SHARD1} {SHARD2} --local-dir" in remedy
    assert "stray.safetensors" in remedy and "model-00003" not in remedy


def test_full_flag_and_manifest_flag(ckpt: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    entries = {p.name: (p.stat().st_size, sha256_file(p)) for p in ckpt.iterdir() if p.is_file()}
    manifest = write_manifest(ckpt, entries, path=tmp_path / "manifest.json")
    cache = str(tmp_path / "cache.json")
    assert main([str(ckpt), "--manifest", str(manifest), "--json", "--cache", cache]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["mode"] == "full" and doc["manifest_source"] == str(manifest)
    assert main([str(ckpt), "--full", "--no-cache"]) == 4  # no manifest beside this folder
    assert "no_manifest" in capsys.readouterr().out


def test_unknown_dtype_is_a_usage_error_exit_2(ckpt: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(ckpt), "--dtype", "int3"]) == 2
    err = capsys.readouterr().err
    assert "int3" in err and "nvfp4" in err


@pytest.mark.parametrize(
    ("args", "needle"), [(["--manifest", "/nonexistent/m.json"], "no such file"), (["--jobs", "0"], "positive")]
)
def test_bad_arguments_exit_1_with_one_clear_line(
    ckpt: Path, args: list[str], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([str(ckpt), *args]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0] and args[1] in err[0]


def test_missing_folder_fails_with_remedy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path / "absent")]) == 4
    out = capsys.readouterr().out
    assert "missing_dir" in out and "setup" in out


def test_remedy_names_the_repo_setup_recorded(ckpt: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_manifest(ckpt, {"config.json": (1, "0" * 64)}, repo_id="someone/DeepSeek-R1-FP4-mirror")
    (ckpt / SHARD1).unlink()
    assert main([str(ckpt)]) == 4
    assert f"hf download someone/DeepSeek-R1-FP4-mirror {SHARD1} --local-dir" in capsys.readouterr().out
