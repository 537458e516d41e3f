"""`llmb-run archive`: experiments packed from real job output; datasets, weights, submitit pickles, links and
oversized files left out and listed; an existing archive is never replaced."""

from __future__ import annotations

import json
import os
import tarfile
import time
from pathlib import Path

import pytest
from results_kit import workload_dir

from llmb_plugin_deepseek_r1.results.cli import main_archive
from llmb_plugin_deepseek_r1.results.archive import DEFAULT_MAX_FILE_BYTES, parse_size

pytest_plugins = ["results_fixtures"]  # the base_install / install fixtures


def archive(install: Path, *args: str, capsys) -> tuple[int, str, str]:
    code = main_archive(["--dir", str(workload_dir(install)), *args])
    out, err = capsys.readouterr()
    return code, out, err


def members(path: Path) -> dict[str, bytes]:
    with tarfile.open(path, "r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


def plant_unwanted(experiments: Path) -> dict[str, str]:
    """Things users leave in experiments/ that must not travel; returns path -> expected reason."""
    (experiments / ".llmb" / "submitit").mkdir(parents=True, exist_ok=True)
    (experiments / ".llmb" / "submitit" / "123_submitted.pkl").write_bytes(b"\x80\x04pickle")
    (experiments / "scratch").mkdir()
    (experiments / "scratch" / "dataset_chat_64_32.txt").write_text('{"task_id": 0}\n')
    weights = experiments / "scratch" / "DeepSeek-R1-FP4"
    weights.mkdir()
    (weights / "config.json").write_text("{}")
    (weights / "model-00001-of-00080.safetensors").write_bytes(b"\0" * 64)
    (experiments / "scratch" / "big.log").write_bytes(b"x" * 100_000)
    (experiments / "scratch" / "link.out").symlink_to(experiments / "scratch" / "big.log")
    (experiments / "scratch" / ".half.json.abc.tmp").write_text("{")
    return {".llmb/submitit/": "submitit pickles", "scratch/dataset_chat_64_32.txt": "a dataset",
            "scratch/DeepSeek-R1-FP4/": "a weights folder", "scratch/big.log": "97.7 KiB, over the 64.0 KiB limit",
            "scratch/link.out": "a link", "scratch/.half.json.abc.tmp": "a file still being written"}


def test_archive_packs_experiments_and_leaves_out_the_rest(install, tmp_path, capsys):
    experiments = workload_dir(install) / "experiments"
    unwanted = plant_unwanted(experiments)
    expected = {p.relative_to(experiments).as_posix(): p.read_bytes() for p in experiments.rglob("*")
                if p.is_file() and not p.is_symlink()
                and not any(p.relative_to(experiments).as_posix().startswith(u.rstrip("/")) for u in unwanted)}
    assert any(name.endswith("_201.json") for name in expected) and any(n.endswith(".config.yml") for n in expected)
    output = tmp_path / "share.tar.gz"
    code, out, err = archive(install, "--output", str(output), "--max-file-size", "64K", capsys=capsys)
    assert code == 0, err
    packed = members(output)
    inside = {name.removeprefix("share/experiments/"): data for name, data in packed.items()
              if name.startswith("share/experiments/")}
    assert inside == expected  # every byte of every log, result, YAML and job record; nothing else
    manifest = json.loads(packed["share/MANIFEST.json"])
    skipped = {entry["path"]: entry["why"] for entry in manifest["skipped"]}
    assert set(skipped) == set(unwanted)
    for path, why in unwanted.items():
        assert why in skipped[path] and f"  {path}: " in out
    assert "references:" in packed["share/workload.yaml"].decode()
    assert out.startswith(f"packed {len(expected)} files (")
    counts = {kind: sum(1 for f in manifest["files"] if f["kind"] == kind) for kind in ("result JSON", "logs")}
    assert f"{counts['result JSON']} result JSON" in out and f"{counts['logs']} logs" in out
    assert counts["result JSON"] == 9
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "llmb") == ["share.tar.gz"]  # no temp files


def test_default_name_is_dated_and_never_overwritten(install, capsys):
    workload = workload_dir(install)
    date = time.strftime("%Y-%m-%d")
    code, out, _ = archive(install, capsys=capsys)
    first = workload / f"llmb-results-{date}.tar.gz"
    assert code == 0 and str(first) in out
    before = first.read_bytes()
    code, out, _ = archive(install, capsys=capsys)
    second = workload / f"llmb-results-{date}-2.tar.gz"
    assert code == 0 and str(second) in out and first.read_bytes() == before
    assert members(first).keys() == members(second).keys()


def test_existing_output_is_an_error_and_untouched(install, tmp_path, capsys):
    output = tmp_path / "taken.tar.gz"
    output.write_bytes(b"precious")
    code, _, err = archive(install, "--output", str(output), capsys=capsys)
    assert code == 1 and "exists" in err and output.read_bytes() == b"precious"


@pytest.mark.parametrize("args, message", [(("--max-file-size", "lots"), "--max-file-size 'lots'"),
                                           (("--output", "/nonexistent/dir/a.tar.gz"), "does not exist")])
def test_bad_options_exit_1(install, capsys, args, message):
    code, _, err = archive(install, *args, capsys=capsys)
    assert code == 1 and message in err


def test_nothing_to_archive(tmp_path, capsys):
    assert main_archive(["--dir", str(tmp_path)]) == 1
    assert "nothing to archive" in capsys.readouterr().err


def test_size_parsing():
    assert parse_size("500K") == 500 * 1024 and parse_size("100M") == 100 * 1024 ** 2
    assert parse_size("2G") == 2 * 1024 ** 3 and parse_size("1234") == 1234 and parse_size("1.5MiB") == 1572864
    assert DEFAULT_MAX_FILE_BYTES == parse_size("100M")


def test_llmb_run_archive_through_the_host(run_cli, llmb_env, base_install, tmp_path):
    import shutil

    shutil.copytree(base_install / "workloads", llmb_env / "workloads")
    output = tmp_path / "via-host.tar.gz"
    code, out, err = run_cli("archive", f"--output={output}")
    assert code == 0, err
    names = members(output)
    assert sum(1 for n in names if n.endswith("_streaming-on_201.json")) == 1 and str(output) in out
    assert os.stat(output).st_size > 0
