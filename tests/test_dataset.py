"""Synthetic dataset generation: semantics, determinism, atomic writes, sidecar reuse and regeneration."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import xxhash

from llmb_plugin_deepseek_r1.dataset.store import (
    DatasetError,
    DatasetInfo,
    DatasetRequest,
    _write_atomically,
    ensure_dataset,
    find_reusable,
    generate_dataset,
    read_sidecar,
    read_vocab,
    sidecar_path,
    validate_dataset,
)
from llmb_plugin_deepseek_r1.dataset.format import encode_words, write_requests


def requests_of(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_bytes().splitlines()]


def small(**changes) -> DatasetRequest:
    base = {"isl": 40, "osl": 9, "num_requests": 30, "vocab_size": 50, "eos_id": 7, "seed": 420}
    return DatasetRequest(**{**base, **changes})


# --- semantics -----------------------------------------------------------------------------------------------


def test_exact_lengths_ids_in_range_without_eos(tmp_path: Path) -> None:
    req = small()
    info = generate_dataset(tmp_path / "d.txt", req)
    rows = requests_of(tmp_path / "d.txt")
    assert [r["task_id"] for r in rows] == list(range(30))
    assert {len(r["input_ids"]) for r in rows} == {40}
    assert {r["output_tokens"] for r in rows} == {9}
    counts = Counter(tok for r in rows for tok in r["input_ids"])
    # 1200 draws over the 49 allowed ids: all of them appear, EOS never, nothing outside [0, 50).
    assert set(counts) == set(range(50)) - {7}
    expected = 1200 / 49
    chi2 = sum((c - expected) ** 2 / expected for c in counts.values())
    assert chi2 < 100  # 48 degrees of freedom: uniform data stays below 100 with p > 0.99999
    assert (info.total_input_tokens, info.total_output_tokens) == (1200, 270)


def test_lines_are_compact_json_as_tensorrt_llm_writes_them(tmp_path: Path) -> None:
    generate_dataset(tmp_path / "d.txt", small(num_requests=5))
    data = (tmp_path / "d.txt").read_bytes()
    assert data.endswith(b"}\n")
    for line in data.splitlines(keepends=True):
        obj = json.loads(line)
        assert list(obj) == ["task_id", "input_ids", "output_tokens"]
        assert line == (json.dumps(obj, separators=(",", ":")) + "\n").encode()


def test_all_ids_of_an_eos_list_are_avoided(tmp_path: Path) -> None:
    generate_dataset(tmp_path / "d.txt", small(vocab_size=12, eos_id=[11, 0, 5], isl=200))
    seen = {tok for r in requests_of(tmp_path / "d.txt") for tok in r["input_ids"]}
    assert seen == set(range(12)) - {0, 5, 11}


def test_smallest_vocabulary_leaves_one_id(tmp_path: Path) -> None:
    generate_dataset(tmp_path / "d.txt", small(vocab_size=2, eos_id=0, isl=3, num_requests=2))
    assert [r["input_ids"] for r in requests_of(tmp_path / "d.txt")] == [[1, 1, 1], [1, 1, 1]]


def test_deepseek_sized_ids_reach_both_ends_of_the_vocabulary(tmp_path: Path) -> None:
    # Encoded words must render every digit count correctly: compare the whole table with str().
    values = np.array([0, 1, 9, 10, 99, 100, 12345, 129279, 999_999, 9_999_999])
    words = encode_words(values, b",")
    rendered = [w.tobytes().rstrip(b"\0") for w in words.reshape(-1, 1)]
    assert rendered == [f"{v},".encode() for v in values.tolist()]


def test_normal_lengths_are_rounded_and_clipped_to_one(tmp_path: Path) -> None:
    info = generate_dataset(tmp_path / "d.txt", small(isl=2, osl=3, stdev_in=4.0, stdev_out=5.0, num_requests=400))
    rows = requests_of(tmp_path / "d.txt")
    isl = [len(r["input_ids"]) for r in rows]
    osl = [r["output_tokens"] for r in rows]
    assert min(isl) == 1 and min(osl) == 1  # clipped: normal(2, 4) is often below 1
    assert max(isl) > 6 and max(osl) > 8  # spread: about 1 in 6 draws is above mean + stdev
    assert info.total_input_tokens == sum(isl) and info.total_output_tokens == sum(osl)
    assert all(0 <= t < 50 and t != 7 for r in rows for t in r["input_ids"])


# --- determinism ---------------------------------------------------------------------------------------------


def test_same_seed_gives_the_same_bytes_and_digest(tmp_path: Path) -> None:
    a = generate_dataset(tmp_path / "a.txt", small())
    b = generate_dataset(tmp_path / "b.txt", small())
    assert (tmp_path / "a.txt").read_bytes() == (tmp_path / "b.txt").read_bytes()
    assert a.digest == b.digest == "xxh3_128:" + xxhash.xxh3_128((tmp_path / "a.txt").read_bytes()).hexdigest()


def test_different_seeds_give_different_tokens(tmp_path: Path) -> None:
    generate_dataset(tmp_path / "a.txt", small(seed=420))
    generate_dataset(tmp_path / "b.txt", small(seed=421))
    a, b = requests_of(tmp_path / "a.txt"), requests_of(tmp_path / "b.txt")
    assert [r["task_id"] for r in a] == [r["task_id"] for r in b]
    pairs = zip(a, b, strict=True)
    same = sum(x == y for ra, rb in pairs for x, y in zip(ra["input_ids"], rb["input_ids"], strict=True))
    assert same < 0.1 * 1200  # independent draws agree about 1 time in 49


@pytest.mark.parametrize("req", [small(), small(stdev_in=6.0, stdev_out=2.0), small(isl=1, num_requests=3)])
def test_bytes_do_not_depend_on_chunk_size_or_threads(req: DatasetRequest) -> None:
    outputs = set()
    for chunk_slots, workers in [(1, 1), (37, 2), (500, 3), (1 << 18, None)]:
        out = io.BytesIO()
        write_requests(out, req, chunk_slots=chunk_slots, workers=workers)
        outputs.add(out.getvalue())
    assert len(outputs) == 1


@pytest.mark.parametrize("stdev", [0.0, 5.0])
def test_a_smaller_dataset_is_the_prefix_of_a_larger_one(tmp_path: Path, stdev: float) -> None:
    generate_dataset(tmp_path / "few.txt", small(num_requests=7, stdev_in=stdev))
    generate_dataset(tmp_path / "many.txt", small(num_requests=19, stdev_in=stdev))
    few = (tmp_path / "few.txt").read_bytes()
    many = (tmp_path / "many.txt").read_bytes()
    assert many.startswith(few) and len(many) > len(few)


def test_writer_errors_propagate_and_leave_process_state_alone(tmp_path: Path) -> None:
    before = sys.getswitchinterval()
    (tmp_path / "ro.txt").write_bytes(b"")
    with open(tmp_path / "ro.txt", "rb") as not_writable, pytest.raises(io.UnsupportedOperation):
        write_requests(not_writable, small(num_requests=50), chunk_slots=64, workers=2)
    assert sys.getswitchinterval() == before
    generate_dataset(tmp_path / "d.txt", small())
    assert sys.getswitchinterval() == before


#: sha256 of the bytes the previous writer (single 64-bit draws, translate-based formatting) produced for these
#: requests; the writer may get faster, but a seed's bytes never change without a FORMAT_VERSION bump.
GOLDEN = [
    ({"isl": 1000, "osl": 1000, "num_requests": 300, "vocab_size": 129280, "eos_id": 1, "seed": 420},
     "9423f685b6647cb8de785dfdf07c9d0f1d0d98ab2725c8d829413a0e36b2a176"),
    ({"isl": 128, "osl": 128, "num_requests": 500, "vocab_size": 129280, "eos_id": 1, "seed": 7, "stdev_in": 30.0,
      "stdev_out": 10.0}, "f2adfcc0011613af4030fa69609d111a3a335ee5fac0ba7c15a13bc1e3657b15"),
    ({"isl": 40, "osl": 9, "num_requests": 30, "vocab_size": 50, "eos_id": (7, 8), "seed": 420},
     "b2ea705aff124256ac220549a3768ed7a13ca615881b150f616fc03ca86eacef"),
    ({"isl": 3, "osl": 2, "num_requests": 1000, "vocab_size": 2, "eos_id": 0, "seed": 1},
     "b1b7ba13b29cccfe33aace9f5306af1dfdd8d4f96af2405327b9c1b7523e3199"),
]


@pytest.mark.parametrize(("fields", "sha256"), GOLDEN, ids=["deepseek", "normal-lengths", "eos-list", "one-id"])
@pytest.mark.parametrize(("chunk_slots", "workers"), [(37, 3), (4096, 1), (1 << 18, None)])
def test_bytes_for_a_seed_equal_the_previous_writers(fields: dict, sha256: str, chunk_slots: int,
                                                     workers: int | None) -> None:
    out = io.BytesIO()
    stats = write_requests(out, DatasetRequest(**fields), chunk_slots=chunk_slots, workers=workers)
    assert hashlib.sha256(out.getvalue()).hexdigest() == sha256
    assert stats.digest == "xxh3_128:" + xxhash.xxh3_128(out.getvalue()).hexdigest()
    assert stats.size == len(out.getvalue())


# --- atomic writes -------------------------------------------------------------------------------------------


def test_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path: Path) -> None:
    final = tmp_path / "d.txt"
    final.write_bytes(b"old\n")

    def half_then_fail(handle) -> None:
        handle.write(b"partial")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _write_atomically(final, half_then_fail)
    assert final.read_bytes() == b"old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.txt"]


def test_killed_writer_never_leaves_a_partial_file_under_the_final_name(tmp_path: Path) -> None:
    final = tmp_path / "d.txt"
    final.write_bytes(b"old\n")
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from llmb_plugin_deepseek_r1.dataset.store import _write_atomically\n"
        "def write(handle):\n"
        "    handle.write(b'partial'); handle.flush()\n"
        "    print('writing', flush=True); sys.stdin.readline()\n"
        f"_write_atomically(Path({str(final)!r}), write)\n")
    child = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert child.stdout.readline() == b"writing\n"  # the child is inside write(), the temp file exists
    temps = [p for p in tmp_path.iterdir() if p.name != "d.txt"]
    assert len(temps) == 1 and temps[0].name.startswith(".d.txt.") and temps[0].read_bytes() == b"partial"
    child.kill()
    child.wait()
    assert final.read_bytes() == b"old\n"


def test_generated_file_is_readable_by_others_as_umask_allows(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        generate_dataset(tmp_path / "d.txt", small(num_requests=2))
    finally:
        os.umask(old)
    assert (tmp_path / "d.txt").stat().st_mode & 0o777 == 0o644
    assert sidecar_path(tmp_path / "d.txt").stat().st_mode & 0o777 == 0o644


# --- sidecar, reuse and regeneration -------------------------------------------------------------------------


def test_sidecar_describes_the_file(tmp_path: Path) -> None:
    path = tmp_path / "dataset_chat_128_128.txt"
    info = generate_dataset(path, small())
    meta = sidecar_path(path)
    assert meta.name == "dataset_chat_128_128.txt.meta.json"
    stored = json.loads(meta.read_text())
    assert stored == info.to_dict()
    assert {k: stored[k] for k in ("isl", "osl", "num_requests", "vocab_size", "eos_id", "seed")} == \
        {"isl": 40, "osl": 9, "num_requests": 30, "vocab_size": 50, "eos_id": 7, "seed": 420}
    assert stored["size"] == path.stat().st_size
    assert stored["digest"] == "xxh3_128:" + xxhash.xxh3_128(path.read_bytes()).hexdigest()
    assert DatasetInfo.from_dict(stored) == info == read_sidecar(path)


def test_a_sidecar_written_by_0_1_is_read_and_its_sha256_still_decides(tmp_path: Path) -> None:
    path = tmp_path / "d.txt"
    info = generate_dataset(path, small())
    old = {k: v for k, v in info.to_dict().items() if k != "digest"}
    old["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()  # what 0.1 wrote
    sidecar_path(path).write_text(json.dumps(old))
    assert read_sidecar(path).digest == f"sha256:{old['sha256']}"
    os.utime(path, ns=(1, 1))  # the cheap check fails: the recorded SHA-256 decides
    assert ensure_dataset(path, small())[1] == "reused"
    _flip_one_digit(path)
    assert "digest" in find_reusable(path, small())[1]


def test_a_sidecar_with_an_unknown_digest_is_not_trusted(tmp_path: Path) -> None:
    path = tmp_path / "d.txt"
    info = generate_dataset(path, small())
    sidecar_path(path).write_text(json.dumps({**info.to_dict(), "digest": "md5:00"}))
    found, why = find_reusable(path, small())
    assert found is None and "'md5:00'" in why and "xxh3_128, sha256" in why


def test_missing_then_reused(tmp_path: Path) -> None:
    path = tmp_path / "d.txt"
    _, action = ensure_dataset(path, small())
    before = path.stat()
    info, action2 = ensure_dataset(path, small())
    after = path.stat()
    assert (action, action2) == ("generated", "reused")
    assert (before.st_ino, before.st_mtime_ns) == (after.st_ino, after.st_mtime_ns)
    assert info.num_requests == 30


def test_larger_dataset_serves_a_smaller_request_but_not_the_reverse(tmp_path: Path) -> None:
    path = tmp_path / "d.txt"
    ensure_dataset(path, small(num_requests=30))
    assert ensure_dataset(path, small(num_requests=10))[1] == "reused"
    info, action = ensure_dataset(path, small(num_requests=31))
    assert action == "generated" and info.num_requests == 31
    assert len(requests_of(path)) == 31


@pytest.mark.parametrize("change", [{"isl": 41}, {"osl": 10}, {"seed": 1}, {"vocab_size": 51},
                                    {"eos_id": (7, 8)}, {"stdev_in": 1.0}, {"stdev_out": 1.0}])
def test_dataset_made_for_other_settings_is_regenerated(tmp_path: Path, change: dict) -> None:
    path = tmp_path / "d.txt"
    ensure_dataset(path, small())
    info, why = find_reusable(path, small(**change))
    assert info is None and why
    _, action = ensure_dataset(path, small(**change))
    assert action == "generated"
    assert read_sidecar(path).mismatch(small(**change)) is None
    assert validate_dataset(path, isl=small(**change).isl if "stdev_in" not in change else None,
                            vocab_size=small(**change).vocab_size, eos_id=small(**change).eos_id).ok


def _flip_one_digit(path: Path) -> None:
    data = bytearray(path.read_bytes())
    at = data.index(b"[") + 1
    data[at] = ord("1") if data[at] != ord("1") else ord("2")
    path.write_bytes(bytes(data))


def test_changed_content_is_never_reused(tmp_path: Path) -> None:
    path = tmp_path / "d.txt"
    ensure_dataset(path, small())
    original = path.read_bytes()
    _flip_one_digit(path)  # same size, new mtime
    changed = path.read_bytes()
    info, why = find_reusable(path, small())
    assert info is None and "digest" in why
    # Not ours any more: never overwritten; used only because it still validates for the request.
    info, action = ensure_dataset(path, small())
    assert action == "validated" and info.generator == "user-provided (validated)"
    assert path.read_bytes() == changed != original


def test_changed_content_with_restored_mtime_is_caught_by_verify(tmp_path: Path) -> None:
    path = tmp_path / "d.txt"
    ensure_dataset(path, small())
    stat = path.stat()
    _flip_one_digit(path)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert find_reusable(path, small(), verify=True)[0] is None
    assert ensure_dataset(path, small(), verify=True)[1] == "validated"


def test_truncated_file_is_an_error_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "d.txt"
    ensure_dataset(path, small())
    with open(path, "r+b") as handle:
        handle.truncate(100)
    damaged = path.read_bytes()
    info, why = find_reusable(path, small())
    assert info is None and "bytes" in why
    with pytest.raises(DatasetError, match="was not written by this plugin .* left untouched: move it away"):
        ensure_dataset(path, small())
    assert path.read_bytes() == damaged
    path.unlink()  # once moved away, it is regenerated
    assert ensure_dataset(path, small())[1] == "generated"
    assert validate_dataset(path, isl=40, osl=9, num_requests=30, vocab_size=50, eos_id=7).ok


def test_touched_or_copied_file_with_same_content_is_reused_and_sidecar_refreshed(tmp_path: Path) -> None:
    path = tmp_path / "d.txt"
    ensure_dataset(path, small())
    copy = tmp_path / "copy.txt"
    copy.write_bytes(path.read_bytes())
    os.replace(copy, path)  # new inode and mtime, same bytes
    info, action = ensure_dataset(path, small())
    assert action == "reused"
    stat = path.stat()
    assert (info.inode, info.mtime_ns) == (stat.st_ino, stat.st_mtime_ns) == \
        (read_sidecar(path).inode, read_sidecar(path).mtime_ns)


@pytest.mark.parametrize("sidecar", [None, "{not json", '{"isl": 40}', "[]"])
def test_missing_or_broken_sidecar_means_validate_never_overwrite(tmp_path: Path, sidecar: str | None) -> None:
    path = tmp_path / "d.txt"
    ensure_dataset(path, small())
    meta = sidecar_path(path)
    if sidecar is None:
        meta.unlink()
    else:
        meta.write_text(sidecar)
    before = path.stat()
    info, why = find_reusable(path, small())
    assert info is None and "sidecar" in why
    info, action = ensure_dataset(path, small())
    assert action == "validated" and info.num_requests == 30
    assert (path.stat().st_ino, path.stat().st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_foreign_dataset_for_other_lengths_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "d.txt"
    path.write_text('{"task_id":0,"input_ids":[1,2],"output_tokens":9}\n')
    with pytest.raises(DatasetError, match="does not fit the request"):
        ensure_dataset(path, small())
    assert path.read_text() == '{"task_id":0,"input_ids":[1,2],"output_tokens":9}\n'


def test_sidecar_of_another_format_version_means_regenerate(tmp_path: Path) -> None:
    path = tmp_path / "d.txt"
    ensure_dataset(path, small())
    meta = sidecar_path(path)
    meta.write_text(json.dumps({**json.loads(meta.read_text()), "format_version": 0}))
    assert "format" in find_reusable(path, small())[1]


FS_IOC_GETFLAGS, FS_IOC_SETFLAGS, FS_IMMUTABLE_FL = 0x80086601, 0x40086602, 0x10


def _set_immutable(directory: Path, on: bool) -> None:
    """chattr +i / -i: even root cannot add, rename or remove entries of an immutable directory."""
    import array
    import fcntl

    fd = os.open(directory, os.O_RDONLY)
    try:
        flags = array.array("l", [0])
        fcntl.ioctl(fd, FS_IOC_GETFLAGS, flags, True)
        flags[0] = flags[0] | FS_IMMUTABLE_FL if on else flags[0] & ~FS_IMMUTABLE_FL
        fcntl.ioctl(fd, FS_IOC_SETFLAGS, flags, True)
    finally:
        os.close(fd)


@pytest.fixture
def read_only_dir(tmp_path: Path):
    """A directory this process cannot write: mode 0555, or (as root, who ignores modes) immutable."""
    directory = tmp_path / "ro"
    directory.mkdir()
    holder: dict[str, object] = {}

    def lock() -> None:
        if os.geteuid() != 0:
            directory.chmod(0o555)
            return
        try:
            _set_immutable(directory, True)
        except OSError as exc:
            pytest.skip(f"running as root and cannot make a directory immutable here: {exc}")
        holder["immutable"] = True

    yield directory, lock
    if holder.get("immutable"):
        _set_immutable(directory, False)
    directory.chmod(0o755)


def test_read_only_directory_reuses_a_good_dataset_and_fails_clearly_otherwise(read_only_dir) -> None:
    directory, lock = read_only_dir
    path = directory / "d.txt"
    ensure_dataset(path, small(num_requests=20))
    lock()
    with pytest.raises(OSError):
        (directory / "probe").write_bytes(b"")
    assert ensure_dataset(path, small(num_requests=20))[1] == "reused"
    with pytest.raises(DatasetError) as err:
        ensure_dataset(path, small(num_requests=25))
    message = str(err.value)
    assert message.startswith(f"dataset {path} must be written (has 20 requests, 25 asked) but ")
    assert "not writable" in message and "\n" not in message
    assert sorted(p.name for p in directory.iterdir()) == ["d.txt", "d.txt.meta.json"]
    assert len(requests_of(path)) == 20


def test_read_only_directory_still_reuses_a_copied_dataset(read_only_dir) -> None:
    directory, lock = read_only_dir
    path = directory / "d.txt"
    ensure_dataset(path, small())
    os.utime(path, ns=(0, 0))  # as after a copy: the cheap check fails, the digest decides, sidecar cannot refresh
    lock()
    assert ensure_dataset(path, small())[1] == "reused"


# --- inputs --------------------------------------------------------------------------------------------------


def test_read_vocab_from_config(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"vocab_size": 129280, "eos_token_id": 1, "bos_token_id": 0}))
    assert read_vocab(tmp_path) == (129280, 1)


def test_read_vocab_eos_list_text_config_and_generation_config(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"text_config": {"vocab_size": 1000}}))
    (tmp_path / "generation_config.json").write_text(json.dumps({"eos_token_id": [7, 3, 7]}))
    assert read_vocab(tmp_path) == (1000, (3, 7))


@pytest.mark.parametrize("config, needle", [
    (None, "no config.json"),
    ({"eos_token_id": 1}, "no vocab_size"),
    ({"vocab_size": 100}, "no eos_token_id"),
    ({"vocab_size": 100, "eos_token_id": 100}, "eos_id must be an integer in [0, 99], got 100"),
    ({"vocab_size": "many", "eos_token_id": 1}, "must be an integer, got 'many'"),
])
def test_read_vocab_errors_are_one_clear_line(tmp_path: Path, config: dict | None, needle: str) -> None:
    if config is not None:
        (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(DatasetError) as err:
        read_vocab(tmp_path)
    assert needle in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("change, needle", [
    ({"isl": 0}, "isl must be an integer in [1, 100000000], got 0"),
    ({"osl": -5}, "osl must be an integer in [1, 100000000], got -5"),
    ({"num_requests": 2.5}, "num_requests must be an integer, got 2.5"),
    ({"num_requests": True}, "num_requests must be an integer, got True"),
    ({"vocab_size": 1}, "vocab_size must be an integer in [2, 10000000], got 1"),
    ({"eos_id": 50}, "eos_id must be an integer in [0, 49], got 50"),
    ({"eos_id": []}, "eos_id must name at least one token id"),
    ({"vocab_size": 2, "eos_id": [0, 1]}, "leaves no token id"),
    ({"seed": -1}, "seed must be an integer >= 0, got -1"),
    ({"stdev_in": -1.0}, "stdev_in must be a finite number >= 0, got -1.0"),
    ({"stdev_out": float("nan")}, "stdev_out must be a finite number >= 0, got nan"),
])
def test_bad_requests_name_the_value(change: dict, needle: str) -> None:
    with pytest.raises(DatasetError) as err:
        small(**change)
    assert needle in str(err.value)


def test_request_normalizes_eos_and_describes_itself() -> None:
    req = small(eos_id=[9, 7, 9])
    assert req.eos_id == (7, 9) and req.eos_ids == (7, 9)
    assert small(eos_id=[7]).eos_id == 7
    assert small(eos_id=np.int64(7)).eos_id == 7
    assert small().describe() == "30 requests, ISL 40, OSL 9, vocab 50, EOS 7, seed 420"


def test_numpy_defines_shifts_by_the_full_width_as_zero() -> None:
    # The paired store (format.ChunkFormatter._store) shifts by 64 bits next to a full 8-byte word or an empty one;
    # numpy defines that as 0 since 1.17 (C leaves it undefined). Should a build ever differ, this names why.
    words = np.array([5, 2**63 + 3] * 40, dtype=np.uint64)
    width = np.full(len(words), 64, dtype=np.uint64)
    assert not np.left_shift(words, width).any() and not np.right_shift(words, width).any()
