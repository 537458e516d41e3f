"""Dataset validator: accepts what trtllm-bench can use, names the first bad line of anything else."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from llmb_plugin_deepseek_r1.dataset import check as dataset_check
from llmb_plugin_deepseek_r1.dataset.store import DatasetError, DatasetRequest, generate_dataset, validate_dataset

VOCAB, EOS = 129280, 1
CHECKS = {"isl": 12, "osl": 5, "vocab_size": VOCAB, "eos_id": EOS}


@pytest.fixture
def good(tmp_path: Path) -> Path:
    path = tmp_path / "good.txt"
    generate_dataset(path, DatasetRequest(isl=12, osl=5, num_requests=10, vocab_size=VOCAB, eos_id=EOS))
    return path


def lines_of(path: Path) -> list[str]:
    return path.read_text().splitlines(keepends=True)


def with_line(path: Path, number: int, text: str) -> Path:
    """Copy of the dataset with line ``number`` (1-based) replaced by ``text``."""
    lines = lines_of(path)
    lines[number - 1] = text
    out = path.with_name(f"bad{number}.txt")
    out.write_text("".join(lines))
    return out


def edited(path: Path, number: int, **fields) -> str:
    obj = json.loads(lines_of(path)[number - 1])
    obj.update(fields)
    return json.dumps(obj, separators=(",", ":")) + "\n"


def test_generated_dataset_is_valid(good: Path) -> None:
    result = validate_dataset(good, num_requests=10, **CHECKS)
    assert result.ok and result.lines == 10 and result.first_error_line is None
    assert result.message == f"{good}: 10 requests OK (ISL 12, OSL 5, ids in [0, 129280), no EOS 1)"


def test_other_json_layouts_are_accepted(good: Path, tmp_path: Path) -> None:
    # Key order, spaces and extra keys do not matter to trtllm-bench (json.loads), so not to us either.
    out = tmp_path / "loose.txt"
    rows = [json.loads(line) for line in lines_of(good)]
    out.write_text("".join(json.dumps({"output_tokens": r["output_tokens"], "input_ids": r["input_ids"],
                                       "task_id": r["task_id"], "extra": 1}) + "\r\n" for r in rows))
    assert validate_dataset(out, num_requests=10, **CHECKS).ok


def test_last_line_without_newline_is_fine(good: Path) -> None:
    good.write_bytes(good.read_bytes().rstrip(b"\n"))
    assert validate_dataset(good, **CHECKS).ok


@pytest.mark.parametrize("line, fields, needle", [
    (4, {"input_ids": [5] * 11}, "input_ids has 11 tokens, expected ISL 12"),
    (4, {"input_ids": [5] * 11 + [VOCAB]}, "input_ids[11] = 129280 is outside [0, 129280)"),
    (4, {"input_ids": [VOCAB * 1000] + [5] * 11}, "input_ids[0] = 129280000 is outside [0, 129280)"),
    (4, {"input_ids": [5, 5, EOS] + [5] * 9}, "input_ids[2] = 1 is the EOS id"),
    (4, {"input_ids": [-3] + [5] * 11}, "input_ids[0] = -3 is outside [0, 129280)"),
    (4, {"input_ids": [1.5] + [5] * 11}, "input_ids[0] is not an integer: 1.5"),
    (4, {"input_ids": []}, "input_ids is not a non-empty list"),
    (4, {"task_id": 7}, "task_id is 7, expected 3"),
    (4, {"task_id": "3"}, "task_id is not an integer: '3'"),
    (4, {"output_tokens": 6}, "output_tokens is 6, expected 5"),
    (4, {"output_tokens": True}, "output_tokens is not an integer: True"),
    (10, {"prompt": "hello", "input_ids": None}, "a text prompt instead of input_ids"),
])
def test_rule_breaks_name_the_line(good: Path, line: int, fields: dict, needle: str) -> None:
    text = edited(good, line, **fields)
    if fields.get("input_ids", 0) is None:
        obj = json.loads(text)
        del obj["input_ids"]
        text = json.dumps(obj) + "\n"
    result = validate_dataset(with_line(good, line, text), **CHECKS)
    assert not result.ok and result.first_error_line == line
    assert f": line {line}: {needle}" in result.message, result.message


@pytest.mark.parametrize("damage, needle", [
    (lambda s: s[:30] + "\n", "not valid JSON"),
    (lambda s: "\n", "empty line"),
    (lambda s: s.replace("[", "[0", 1), "not valid JSON"),  # leading zero
    (lambda s: s.replace(",", ",,", 3), "not valid JSON"),
    (lambda s: s.replace("[", "[,", 1), "not valid JSON"),
    (lambda s: s.replace('"output_tokens":5', '"output_tokens":05'), "not valid JSON"),
    (lambda s: s.replace(',"output_tokens":5', ""), "no output_tokens"),
    (lambda s: "[1, 2]\n", "not a JSON object (a list)"),
])
def test_malformed_lines_are_named(good: Path, damage, needle: str) -> None:
    result = validate_dataset(with_line(good, 6, damage(lines_of(good)[5])), **CHECKS)
    assert not result.ok and result.first_error_line == 6 and needle in result.message, result.message


def test_huge_integers_are_named_not_raised(good: Path) -> None:
    text = lines_of(good)[4].replace('"task_id":4', '"task_id":' + "9" * 5000)
    result = validate_dataset(with_line(good, 5, text), vocab_size=VOCAB)  # no ISL: no line length limit
    assert result.first_error_line == 5 and "not usable JSON" in result.message


def test_not_utf8_is_named(good: Path) -> None:
    data = good.read_bytes().split(b"\n")
    data[2] = data[2].replace(b"[", b"[\xff", 1)
    good.write_bytes(b"\n".join(data))
    result = validate_dataset(good, **CHECKS)
    assert result.first_error_line == 3 and "not UTF-8" in result.message


def test_the_first_of_several_bad_lines_is_named(good: Path) -> None:
    bad = with_line(good, 8, edited(good, 8, output_tokens=9))
    bad = with_line(bad, 3, edited(good, 3, input_ids=[EOS] * 12))
    result = validate_dataset(bad, **CHECKS)
    assert result.first_error_line == 3 and "EOS" in result.message


def test_only_the_requests_trtllm_bench_reads_are_checked(good: Path) -> None:
    bad = with_line(good, 8, "garbage\n")
    assert validate_dataset(bad, num_requests=7, **CHECKS).ok
    result = validate_dataset(bad, num_requests=7, **CHECKS)
    assert result.lines == 7
    assert validate_dataset(bad, num_requests=8, **CHECKS).first_error_line == 8


def test_too_few_requests(good: Path) -> None:
    result = validate_dataset(good, num_requests=11, **CHECKS)
    assert not result.ok and result.lines == 10 and result.first_error_line is None
    assert "has 10 requests, fewer than the 11 needed" in result.message


def test_empty_and_missing_files(tmp_path: Path) -> None:
    (tmp_path / "empty.txt").write_bytes(b"")
    assert "no requests" in validate_dataset(tmp_path / "empty.txt").message
    missing = validate_dataset(tmp_path / "missing.txt")
    assert not missing.ok and "cannot read" in missing.message


def test_overlong_line_is_named_without_reading_it_whole(good: Path) -> None:
    bad = with_line(good, 2, edited(good, 2, input_ids=[5] * 100_000))
    result = validate_dataset(bad, **CHECKS)
    assert result.first_error_line == 2 and "longer than" in result.message


def test_checks_left_out_are_not_applied(good: Path) -> None:
    bad = with_line(good, 2, edited(good, 2, input_ids=[EOS, VOCAB + 5], output_tokens=77))
    assert validate_dataset(bad).ok
    assert validate_dataset(bad, vocab_size=VOCAB).first_error_line == 2


def test_bad_arguments_raise() -> None:
    with pytest.raises(DatasetError, match="isl must be an integer >= 1, got 0"):
        validate_dataset(Path("x"), isl=0)
    with pytest.raises(DatasetError, match=r"eos_id must be an integer in \[0, 9\], got 10"):
        validate_dataset(Path("x"), vocab_size=10, eos_id=10)


# --- the numpy fast path agrees with a plain json.loads reading -------------------------------------------


def reference_first_error(path: Path, isl: int, osl: int, vocab: int, eos: int) -> int | None:
    """Straightforward validator: json.loads every line."""
    for number, raw in enumerate(path.read_bytes().split(b"\n")[:-1], start=1):
        try:
            obj = json.loads(raw)
        except ValueError:
            return number
        ids = obj.get("input_ids") if isinstance(obj, dict) else None
        if not (isinstance(ids, list) and len(ids) == isl
                and all(type(t) is int and 0 <= t < vocab and t != eos for t in ids)
                and type(obj.get("task_id")) is int and obj["task_id"] == number - 1
                and type(obj.get("output_tokens")) is int and obj["output_tokens"] == osl):
            return number
    return None


def test_fast_path_matches_json_on_random_damage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dataset_check, "BATCH_BYTES", 300)  # many batches: exercise batch boundaries
    path = tmp_path / "base.txt"
    vocab, eos = 1000, 3
    generate_dataset(path, DatasetRequest(isl=6, osl=2, num_requests=40, vocab_size=vocab, eos_id=eos))
    base = path.read_bytes()
    rng = random.Random(7)
    alphabet = b'0123456789,,,[]{}":- .e\nx'
    differs = 0
    for trial in range(300):
        data = bytearray(base)
        for _ in range(rng.choice([1, 1, 2, 3])):
            at = rng.randrange(len(data) - 1)
            op = rng.random()
            if op < 0.5:
                data[at] = rng.choice(alphabet)
            elif op < 0.75:
                del data[at]
            else:
                data.insert(at, rng.choice(alphabet))
        if not data.endswith(b"\n"):
            data += b"\n"
        bad = tmp_path / f"t{trial}.txt"
        bad.write_bytes(bytes(data))
        expected = reference_first_error(bad, 6, 2, vocab, eos)
        got = validate_dataset(bad, isl=6, osl=2, vocab_size=vocab, eos_id=eos)
        assert got.first_error_line == expected, (trial, got.message)
        assert got.ok == (expected is None) or got.lines < 40
        differs += expected is not None
        bad.unlink()
    assert differs > 200  # most damage is caught, and the comparison was not vacuous


def test_boundary_ids_multi_digit_and_several_eos(tmp_path: Path) -> None:
    """Ids as long as the vocabulary's largest, and EOS ids of several lengths, are compared exactly."""
    path = tmp_path / "d.txt"
    lines = [[0, 129279, 128000, 5], [128001, 0, 0, 0], [0, 0, 129280, 0], [2, 0, 0, 0], [0, 10, 100, 1000]]
    path.write_text("".join(json.dumps({"task_id": i, "input_ids": ids, "output_tokens": 3},
                                       separators=(",", ":")) + "\n" for i, ids in enumerate(lines)))
    checks = {"isl": 4, "osl": 3, "vocab_size": 129280, "eos_id": [2, 128001]}
    result = validate_dataset(path, **checks)
    assert result.first_error_line == 2 and "input_ids[0] = 128001 is the EOS id" in result.message
    del lines[1]
    path.write_text("".join(json.dumps({"task_id": i, "input_ids": ids, "output_tokens": 3},
                                       separators=(",", ":")) + "\n" for i, ids in enumerate(lines)))
    result = validate_dataset(path, **checks)
    assert result.first_error_line == 2 and "input_ids[2] = 129280 is outside [0, 129280)" in result.message
    assert validate_dataset(path, **{**checks, "vocab_size": 129281}).first_error_line == 3  # the EOS 2
    assert validate_dataset(path, isl=4, osl=3, eos_id=123456789).ok
    lines[3][1] = 123456789  # longer than 8 digits: decided by json.loads
    path.write_text("".join(json.dumps({"task_id": i, "input_ids": ids, "output_tokens": 3},
                                       separators=(",", ":")) + "\n" for i, ids in enumerate(lines)))
    assert validate_dataset(path, isl=4, osl=3, eos_id=123456789).first_error_line == 4
    assert validate_dataset(path, isl=4, osl=3, eos_id=123456788).ok
