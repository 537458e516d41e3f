"""Quick mode of the weight checker against real safetensors files, corrupted in every way it must catch."""

from __future__ import annotations

import json
import os
import shutil
import struct
from pathlib import Path

import pytest
from weights_fixtures import (
    lfs_pointer_text,
    make_checkpoint,
    make_sparse_official,
    read_header,
    rewrite_header,
    shard_names,
    write_json,
    write_raw_shard,
)

from llmb_plugin_deepseek_r1.weights import check_weights
from llmb_plugin_deepseek_r1.weights.layout import quick_check

SHARD1 = "model-00001-of-00003.safetensors"
SHARD2 = "model-00002-of-00003.safetensors"
SHARD3 = "model-00003-of-00003.safetensors"
INDEX = "model.safetensors.index.json"


@pytest.fixture()
def multi(tmp_path: Path) -> Path:
    return make_checkpoint(tmp_path / "ckpt", shards=3)


@pytest.fixture()
def single(tmp_path: Path) -> Path:
    return make_checkpoint(tmp_path / "one", single=True)


def kinds(model_dir: Path, dtype: str = "nvfp4") -> set[tuple[str, str]]:
    return {(p.file, p.kind) for p in check_weights(model_dir, dtype=dtype).problems}


def detail(model_dir: Path, file: str, kind: str) -> str:
    found = [p.detail for p in check_weights(model_dir).problems if (p.file, p.kind) == (file, kind)]
    assert found, f"no {kind} for {file}: {check_weights(model_dir).format_text()}"
    return found[0]


@pytest.mark.parametrize("layout", ["multi", "single"])
def test_clean_checkpoint_passes_and_counts_every_file(layout: str, request: pytest.FixtureRequest) -> None:
    d: Path = request.getfixturevalue(layout)
    report = check_weights(d)
    assert report.ok, report.format_text()
    assert report.mode == "quick" and report.problems == []
    files = [p for p in d.iterdir() if p.is_file()]
    assert report.files_checked == len(files)
    assert report.total_bytes == sum(p.stat().st_size for p in files)
    assert report.format_text().startswith("OK: ")


@pytest.mark.parametrize(
    "name",
    ["config.json", INDEX, "hf_quant_config.json", "tokenizer.json", "tokenizer_config.json", "generation_config.json"],
)
def test_each_required_file_missing_is_named(multi: Path, name: str) -> None:
    (multi / name).unlink()
    assert (name, "missing_file") in kinds(multi)


def test_single_shard_layout_needs_no_index(single: Path) -> None:
    assert not (single / INDEX).exists()
    assert check_weights(single).ok
    shutil.copy(single / "model.safetensors", single / "model-extra.safetensors")
    assert kinds(single) == {("model-extra.safetensors", "unindexed_shard")}


def test_broken_json_files(multi: Path) -> None:
    (multi / "config.json").write_text('{"architectures": [')
    (multi / INDEX).write_text(json.dumps({"metadata": {}}))
    (multi / "generation_config.json").write_bytes(b"")
    found = kinds(multi)
    assert ("config.json", "bad_json") in found
    assert (INDEX, "bad_index") in found
    assert ("generation_config.json", "bad_json") in found


def test_index_that_is_cut_off(multi: Path) -> None:
    data = (multi / INDEX).read_bytes()
    (multi / INDEX).write_bytes(data[: len(data) // 2])
    assert (INDEX, "bad_index") in kinds(multi)


def test_lfs_pointer_shard_says_git_lfs_pull(multi: Path) -> None:
    content = (multi / SHARD2).read_bytes()
    (multi / SHARD2).write_bytes(lfs_pointer_text(content))
    assert kinds(multi) == {(SHARD2, "lfs_pointer")}
    text = detail(multi, SHARD2, "lfs_pointer")
    assert "git lfs pull" in text and str(len(content)) in text


def test_lfs_pointer_json_file(multi: Path) -> None:
    (multi / "tokenizer.json").write_bytes(lfs_pointer_text((multi / "tokenizer.json").read_bytes()))
    assert ("tokenizer.json", "lfs_pointer") in kinds(multi)


def test_truncated_shard_names_expected_and_actual_size(multi: Path) -> None:
    data = (multi / SHARD1).read_bytes()
    (multi / SHARD1).write_bytes(data[:-100])
    assert kinds(multi) == {(SHARD1, "truncated")}
    text = detail(multi, SHARD1, "truncated")
    assert str(len(data)) in text and str(len(data) - 100) in text


def test_padded_shard_names_expected_and_actual_size(multi: Path) -> None:
    data = (multi / SHARD3).read_bytes()
    (multi / SHARD3).write_bytes(data + b"\0" * 24)
    assert kinds(multi) == {(SHARD3, "padded")}
    text = detail(multi, SHARD3, "padded")
    assert str(len(data)) in text and str(len(data) + 24) in text


def test_shard_cut_inside_its_header(multi: Path) -> None:
    data = (multi / SHARD1).read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    (multi / SHARD1).write_bytes(data[: 8 + n // 2])
    assert kinds(multi) == {(SHARD1, "truncated")}


def test_shard_shorter_than_length_prefix(multi: Path) -> None:
    (multi / SHARD1).write_bytes(b"\x10\x00")
    assert kinds(multi) == {(SHARD1, "truncated")}


def test_zero_filled_preallocated_shard(multi: Path) -> None:
    size = (multi / SHARD2).stat().st_size
    with open(multi / SHARD2, "wb") as f:
        f.truncate(size)
    assert kinds(multi) == {(SHARD2, "bad_header")}
    assert "zero" in detail(multi, SHARD2, "bad_header")


def test_header_length_that_cannot_be_a_header(multi: Path) -> None:
    data = bytearray((multi / SHARD2).read_bytes())
    data[:8] = struct.pack("<Q", 1 << 40)
    (multi / SHARD2).write_bytes(bytes(data))
    assert kinds(multi) == {(SHARD2, "bad_header")}


def test_header_that_is_not_json(multi: Path) -> None:
    data = bytearray((multi / SHARD2).read_bytes())
    data[20:30] = b"@@@@@@@@@@"
    (multi / SHARD2).write_bytes(bytes(data))
    assert (SHARD2, "bad_header") in kinds(multi)


def test_header_entry_without_dtype(multi: Path) -> None:
    _, header = read_header(multi / SHARD1)
    name = next(k for k in header if k != "__metadata__")
    del header[name]["dtype"]
    rewrite_header(multi / SHARD1, header)
    assert (SHARD1, "bad_header") in kinds(multi)
    assert name in detail(multi, SHARD1, "bad_header")


def test_unknown_dtype_is_a_problem_not_a_crash(multi: Path) -> None:
    _, header = read_header(multi / SHARD1)
    name = next(k for k in header if k != "__metadata__" and header[k]["dtype"] == "U8")
    header[name]["dtype"] = "Q3_K"
    rewrite_header(multi / SHARD1, header)
    assert kinds(multi) == {(SHARD1, "unknown_dtype")}
    assert "Q3_K" in detail(multi, SHARD1, "unknown_dtype")


def test_shape_that_does_not_match_byte_range(multi: Path) -> None:
    _, header = read_header(multi / SHARD3)
    name = next(k for k in header if k != "__metadata__" and header[k]["dtype"] == "F32")
    header[name]["shape"] = [header[name]["shape"][0] * 2, *header[name]["shape"][1:]]
    rewrite_header(multi / SHARD3, header)
    assert kinds(multi) == {(SHARD3, "tensor_size_mismatch")}
    assert name in detail(multi, SHARD3, "tensor_size_mismatch")


@pytest.mark.parametrize("shift", [8, -8], ids=["gap", "overlap"])
def test_non_contiguous_byte_ranges(multi: Path, shift: int) -> None:
    _, header = read_header(multi / SHARD1)
    entries = sorted((v["data_offsets"][0], k) for k, v in header.items() if k != "__metadata__")
    _, victim = entries[len(entries) // 2]  # move one tensor's range, keeping its length
    begin, end = header[victim]["data_offsets"]
    header[victim]["data_offsets"] = [begin + shift, end + shift]
    rewrite_header(multi / SHARD1, header)
    assert (SHARD1, "bad_offsets") in kinds(multi)
    assert victim in detail(multi, SHARD1, "bad_offsets")


def test_missing_shard_is_named_once(multi: Path) -> None:
    (multi / SHARD2).unlink()
    assert kinds(multi) == {(SHARD2, "missing_shard")}


def test_broken_symlink_shard_and_interrupted_download(multi: Path) -> None:
    (multi / SHARD2).unlink()
    os.symlink("../blobs/does-not-exist", multi / SHARD2)
    part = multi / ".cache" / "huggingface" / "download"
    part.mkdir(parents=True)
    (part / (SHARD2 + ".incomplete")).write_bytes(b"x" * 123)
    text = detail(multi, SHARD2, "missing_shard")
    assert "broken symlink" in text and "123 bytes" in text


def test_unindexed_shard(multi: Path) -> None:
    shutil.copy(multi / SHARD1, multi / "model-00004-of-00003.safetensors")
    shutil.copy(multi / SHARD1, multi / "consolidated.safetensors")
    found = kinds(multi)
    assert ("consolidated.safetensors", "unindexed_shard") in found
    assert ("model-00004-of-00003.safetensors", "unindexed_shard") in found


def test_incomplete_shard_set_that_the_index_does_not_reveal(multi: Path) -> None:
    index = json.loads((multi / INDEX).read_text())
    index["weight_map"] = {t: s for t, s in index["weight_map"].items() if s != SHARD2}
    write_json(multi / INDEX, index)
    (multi / SHARD2).unlink()
    assert kinds(multi) == {(SHARD2, "incomplete_shard_set")}


def test_shards_from_two_different_sets(multi: Path) -> None:
    index = json.loads((multi / INDEX).read_text())
    odd = "model-00001-of-00004.safetensors"
    os.rename(multi / SHARD1, multi / odd)
    index["weight_map"] = {t: (odd if s == SHARD1 else s) for t, s in index["weight_map"].items()}
    write_json(multi / INDEX, index)
    found = kinds(multi)
    assert (odd, "mixed_shard_set") in found
    assert (SHARD1, "incomplete_shard_set") in found  # the 3-shard set now lacks its first shard
    remedy = check_weights(multi).format_text().split("remedy:")[1]
    assert f"out of the folder; they are not part of the checkpoint:\n    {odd}" in remedy


def test_index_and_headers_disagree_both_ways(multi: Path) -> None:
    index = json.loads((multi / INDEX).read_text())
    wm = index["weight_map"]
    in_shard1 = sorted(t for t, s in wm.items() if s == SHARD1)
    del wm[in_shard1[0]]  # header has a tensor the index does not map here
    wm["model.layers.999.ghost"] = SHARD3  # index maps a tensor the header lacks
    write_json(multi / INDEX, index)
    assert kinds(multi) == {(SHARD1, "tensor_mismatch"), (SHARD3, "tensor_mismatch")}
    assert in_shard1[0] in detail(multi, SHARD1, "tensor_mismatch")
    assert "model.layers.999.ghost" in detail(multi, SHARD3, "tensor_mismatch")
    remedy = check_weights(multi).format_text().split("remedy:")[1]
    assert f"rm -f {SHARD1} {SHARD3} {INDEX}" in remedy


def test_tensor_index_places_in_the_wrong_shard(multi: Path) -> None:
    index = json.loads((multi / INDEX).read_text())
    wm = index["weight_map"]
    t1 = sorted(t for t, s in wm.items() if s == SHARD1)[0]
    t2 = sorted(t for t, s in wm.items() if s == SHARD2)[0]
    wm[t1], wm[t2] = SHARD2, SHARD1  # a swap keeps every per-shard count the same
    write_json(multi / INDEX, index)
    assert kinds(multi) == {(SHARD1, "tensor_mismatch"), (SHARD2, "tensor_mismatch")}


@pytest.mark.parametrize(
    ("algo", "dtype", "ok"),
    [
        ("NVFP4", "nvfp4", True),
        ("FP8", "nvfp4", False),
        ("FP8", "fp8", True),
        ("NVFP4", "fp8", False),
        (None, "bf16", True),
        ("NVFP4", "bf16", False),
    ],
)
def test_quantization_matches_dtype(tmp_path: Path, algo: str | None, dtype: str, ok: bool) -> None:
    d = make_checkpoint(tmp_path / "q", shards=2, dtype="bf16")
    if algo:
        write_json(d / "hf_quant_config.json", {"quantization": {"quant_algo": algo}})
    found = kinds(d, dtype)
    assert (found == set()) is ok, found
    if not ok:
        assert found == {("hf_quant_config.json", "quantization_mismatch")}


def test_fp8_checkpoint_declared_in_config_json(tmp_path: Path) -> None:
    d = make_checkpoint(tmp_path / "fp8", shards=2, dtype="bf16")
    assert kinds(d, "fp8") == {("hf_quant_config.json", "missing_file")}
    write_json(d / "config.json", {"quantization_config": {"quant_method": "fp8"}})
    assert kinds(d, "fp8") == set()
    assert kinds(d, "bf16") == {("config.json", "quantization_mismatch")}
    assert kinds(d, "nvfp4") == {("config.json", "quantization_mismatch")}  # the FP8 form, asked to be NVFP4
    [problem] = check_weights(d, dtype="nvfp4").problems
    assert "DeepSeek's FP8 checkpoint" in problem.detail and "quant_method: fp8" in problem.detail


def test_unknown_dtype_argument_is_refused(multi: Path) -> None:
    with pytest.raises(ValueError, match="int3.*nvfp4"):
        check_weights(multi, dtype="int3")


def test_missing_folder(tmp_path: Path) -> None:
    report = check_weights(tmp_path / "nowhere")
    assert not report.ok and [(p.file, p.kind) for p in report.problems] == [(".", "missing_dir")]


def test_dtypes_numpy_cannot_write(tmp_path: Path) -> None:
    d = make_checkpoint(tmp_path / "dt", single=True)
    write_raw_shard(
        d / "model.safetensors",
        {
            "a": ("BF16", [3, 4], 24),
            "b": ("F8_E4M3", [5], 5),
            "c": ("F4", [4, 4], 8),
            "d": ("F8_E8M0", [2], 2),
            "e": ("F6_E2M3", [4], 3),
            "f": ("U16", [2], 4),
            "g": ("C64", [1], 8),
            "h": ("F32", [], 4),
            "i": ("I8", [0, 9], 0),
        },
    )
    assert check_weights(d).ok, check_weights(d).format_text()
    write_raw_shard(d / "model.safetensors", {"c": ("F4", [3], 2)})  # 12 bits do not fill whole bytes
    assert kinds(d) == {("model.safetensors", "tensor_size_mismatch")}


def test_official_layout_size(tmp_path: Path) -> None:
    good = make_sparse_official(tmp_path / "official")
    report = check_weights(good)
    assert report.ok, report.format_text()
    assert report.total_bytes > 390 * (1 << 30)
    small = make_sparse_official(tmp_path / "small", shard_bytes=1 << 30)
    assert kinds(small) == {(".", "size_deviation")}


def test_parallel_and_serial_header_reads_agree(multi: Path) -> None:
    data = (multi / SHARD1).read_bytes()
    (multi / SHARD1).write_bytes(data[:-5])
    (multi / SHARD3).write_bytes(lfs_pointer_text(b"x"))
    index = json.loads((multi / INDEX).read_text())
    index["weight_map"]["ghost"] = SHARD2
    write_json(multi / INDEX, index)
    serial = quick_check(multi, "nvfp4", workers=1)
    parallel = quick_check(multi, "nvfp4", workers=2)
    assert sorted(serial.problems, key=str) == sorted(parallel.problems, key=str)
    assert {(p.file, p.kind) for p in parallel.problems} == {
        (SHARD1, "truncated"),
        (SHARD3, "lfs_pointer"),
        (SHARD2, "tensor_mismatch"),
    }
    assert serial.sizes == parallel.sizes


def test_other_top_level_files_are_checked_for_lfs_pointers(multi: Path) -> None:
    (multi / "modeling_deepseek.py").write_bytes(lfs_pointer_text(b"print()"))
    (multi / "LICENSE").write_text("MIT")
    assert kinds(multi) == {("modeling_deepseek.py", "lfs_pointer")}
    assert shard_names(multi) == [SHARD1, SHARD2, SHARD3]
