"""``prepare-dataset`` and ``validate-dataset`` command lines."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from llmb_plugin_deepseek_r1.dataset.cli import main_prepare_dataset, main_validate_dataset
from llmb_plugin_deepseek_r1.dataset.store import read_sidecar


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    model = tmp_path / "DeepSeek-R1-FP4"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"vocab_size": 129280, "eos_token_id": 1, "bos_token_id": 0}))
    return model


def test_dispatcher_prepares_then_reuses_then_validates(tmp_path: Path, model_dir: Path) -> None:
    out = tmp_path / "datasets" / "dataset_chat_128_128.txt"
    argv = [sys.executable, "-m", "llmb_plugin_deepseek_r1", "prepare-dataset", "--isl", "128", "--osl", "128",
            "--num-requests", "50", "--model-dir", str(model_dir), "--output", str(out)]
    first = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith(f"generated {out}: 50 requests, ISL 128, OSL 128, vocab 129280, EOS 1, seed 420")
    second = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert second.returncode == 0 and second.stdout.startswith(f"reused {out}:")
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 50 and all(len(r["input_ids"]) == 128 and r["output_tokens"] == 128 for r in rows)
    check = subprocess.run([sys.executable, "-m", "llmb_plugin_deepseek_r1", "validate-dataset", str(out)],
                           capture_output=True, text=True, check=False)
    assert check.returncode == 0
    assert check.stdout.strip() == f"{out}: 50 requests OK (ISL 128, OSL 128, ids in [0, 129280), no EOS 1)"


def test_explicit_vocabulary_seed_stdev_and_force(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "d.txt"
    base = ["--isl", "20", "--osl", "4", "--num-requests", "30", "--vocab-size", "300", "--eos-id", "2,9",
            "--seed", "5", "--stdev-in", "3", "--output", str(out)]
    assert main_prepare_dataset(base) == 0
    info = read_sidecar(out)
    assert (info.vocab_size, info.eos_id, info.seed, info.stdev_in, info.stdev_out) == (300, (2, 9), 5, 3.0, 0.0)
    assert main_prepare_dataset(base + ["--force"]) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith(f"generated {out}")
    # The sidecar supplies the checks that apply: exact OSL, vocabulary, EOS; not ISL (it varies).
    assert main_validate_dataset([str(out)]) == 0
    assert "(OSL 4, ids in [0, 300), no EOS 2,9)" in capsys.readouterr().out


def test_validate_reports_the_bad_line_and_exit_4(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "d.txt"
    assert main_prepare_dataset(["--isl", "8", "--osl", "2", "--num-requests", "5", "--vocab-size", "100",
                                 "--eos-id", "1", "--output", str(out)]) == 0
    lines = out.read_text().splitlines(keepends=True)
    lines[3] = lines[3].replace('"input_ids":[', '"input_ids":[1,', 1)
    out.write_text("".join(lines))
    capsys.readouterr()
    assert main_validate_dataset([str(out)]) == 4  # the check ran and the dataset failed it
    err = capsys.readouterr().err
    assert err.strip() == f"{out}: line 4: input_ids has 9 tokens, expected ISL 8"
    assert main_validate_dataset([str(out), "--no-sidecar"]) == 0  # nothing checked but the structure
    assert main_validate_dataset([str(out), "--no-sidecar", "--vocab-size", "100", "--eos-id", "1"]) == 4


@pytest.mark.parametrize("argv, needle", [
    (["--isl", "0", "--osl", "1", "--num-requests", "1", "--vocab-size", "9", "--eos-id", "1"],
     "isl must be an integer in [1, 100000000], got 0"),
    (["--isl", "1", "--osl", "1", "--num-requests", "1"],
     "give --model-dir DIR, or both --vocab-size N and --eos-id N"),
    (["--isl", "1", "--osl", "1", "--num-requests", "1", "--vocab-size", "9", "--eos-id", "9"],
     "eos_id must be an integer in [0, 8], got 9"),
    (["--isl", "1", "--osl", "1", "--num-requests", "1", "--model-dir", "/nonexistent"],
     "/nonexistent: no config.json; give --vocab-size and --eos-id instead"),
    (["--isl", "1", "--osl", "1", "--num-requests", "1", "--stdev-in", "-2", "--vocab-size", "9", "--eos-id", "1"],
     "stdev_in must be a finite number >= 0, got -2.0"),
])
def test_bad_input_is_one_line_and_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture, argv: list[str],
                                          needle: str) -> None:
    assert main_prepare_dataset(argv + ["--output", str(tmp_path / "d.txt")]) == 1
    err = capsys.readouterr().err
    assert err == f"error: prepare-dataset: {needle}\n"
    assert not (tmp_path / "d.txt").exists()


@pytest.mark.parametrize("argv, needle", [
    (["--isl", "x", "--osl", "1", "--num-requests", "1", "--vocab-size", "9", "--eos-id", "1"],
     "argument --isl: invalid int value: 'x'"),
    (["--isl", "1", "--osl", "1", "--num-requests", "1", "--vocab-size", "9", "--eos-id", "a,b"],
     "argument --eos-id: expected a token id or a comma-separated list of ids, got 'a,b'"),
])
def test_usage_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture, argv: list[str], needle: str) -> None:
    assert main_prepare_dataset(argv + ["--output", str(tmp_path / "d.txt")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: python -m llmb_plugin_deepseek_r1 prepare-dataset") and needle in err
    assert not (tmp_path / "d.txt").exists()


def test_model_dir_and_explicit_vocabulary_are_exclusive(tmp_path: Path, model_dir: Path,
                                                         capsys: pytest.CaptureFixture) -> None:
    code = main_validate_dataset([str(tmp_path / "d.txt"), "--model-dir", str(model_dir), "--vocab-size", "5"])
    assert code == 1
    assert capsys.readouterr().err == "error: validate-dataset: give either --model-dir or --vocab-size/--eos-id, " \
                                      "not both\n"


def test_help_exits_0(capsys: pytest.CaptureFixture) -> None:
    assert main_prepare_dataset(["--help"]) == 0
    assert "--num-requests" in capsys.readouterr().out


def test_dispatcher_ends_without_teardown_but_flushes_and_keeps_the_status(tmp_path: Path) -> None:
    # The dataset commands end through tuning.exit_without_teardown (os._exit): the piped output must still be
    # complete and a failure's status kept.
    bad = tmp_path / "bad.txt"
    bad.write_text('{"task_id":0,"input_ids":[1,2],"output_tokens":3}\nnot json\n')
    run = subprocess.run([sys.executable, "-m", "llmb_plugin_deepseek_r1", "validate-dataset", str(bad)],
                         capture_output=True, text=True, check=False)
    assert run.returncode == 4 and "line 2" in run.stdout + run.stderr
    out = tmp_path / "d.txt"
    run = subprocess.run([sys.executable, "-m", "llmb_plugin_deepseek_r1", "prepare-dataset", "--isl", "5", "--osl",
                          "2", "--num-requests", "3", "--vocab-size", "100", "--eos-id", "1", "--output", str(out)],
                         capture_output=True, text=True, check=False)
    assert run.returncode == 0 and run.stdout.endswith("s\n") and f"generated {out}" in run.stdout


def test_numpy_is_imported_without_blas_threads_and_the_environment_is_restored() -> None:
    script = ("import os, sys; from llmb_plugin_deepseek_r1.tuning import no_blas_threads\n"
              "with no_blas_threads():\n"
              "    inside = os.environ.get('OPENBLAS_NUM_THREADS'); import numpy\n"
              "print(inside, os.environ.get('OPENBLAS_NUM_THREADS'))\n")
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, env=env)
    assert run.stdout.split() == ["1", "None"]
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                         env={**env, "OPENBLAS_NUM_THREADS": "3"})
    assert run.stdout.split() == ["3", "3"]  # the user's own setting is kept
