"""Full mode: digests against every manifest source, the verification cache, and parallel hashing."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from weights_fixtures import lfs_pointer_text, make_checkpoint, sha256_file

from llmb_plugin_deepseek_r1.weights import check_weights, write_manifest
from llmb_plugin_deepseek_r1.weights.manifest import MANIFEST_NAME, read_manifest_file
from llmb_plugin_deepseek_r1.weights.hashing import VerifyCache, hash_file, hash_many
from llmb_plugin_deepseek_r1.weights.manifest import manifest_paths

SHARD2 = "model-00002-of-00003.safetensors"


@pytest.fixture()
def ckpt(tmp_path: Path) -> Path:
    return make_checkpoint(tmp_path / "ckpt", shards=3)


@pytest.fixture()
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache" / "verified.json"


def record(d: Path) -> dict[str, tuple[int, str]]:
    return {p.name: (p.stat().st_size, sha256_file(p)) for p in sorted(d.iterdir()) if p.is_file()}


def full(d: Path, cache: Path | None = None, **kw: object):  # type: ignore[no-untyped-def]
    return check_weights(d, full=True, cache_path=cache, use_cache=cache is not None, progress=False, **kw)


def flip_data_byte(path: Path) -> None:
    """Change one byte of tensor data: the header (and so quick mode) stays valid."""
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))


def test_setup_manifest_passes_then_catches_silent_corruption(ckpt: Path, cache: Path) -> None:
    written = write_manifest(ckpt, record(ckpt), repo_id="nvidia/DeepSeek-R1-FP4", revision="abc")
    assert written == ckpt / MANIFEST_NAME
    report = full(ckpt, cache)
    assert report.ok, report.format_text()
    assert report.mode == "full" and report.files_hashed == 9 and report.manifest_source == str(written)
    flip_data_byte(ckpt / SHARD2)
    assert check_weights(ckpt).ok  # quick mode cannot see it
    report = full(ckpt, cache)
    assert [(p.file, p.kind) for p in report.problems] == [(SHARD2, "checksum_mismatch")]
    assert sha256_file(ckpt / SHARD2) in report.problems[0].detail


def test_size_differs_from_manifest(ckpt: Path) -> None:
    write_manifest(ckpt, record(ckpt))
    with open(ckpt / "tokenizer.json", "a") as f:
        f.write("\n\n")  # still valid JSON, so only the manifest can tell
    report = full(ckpt)
    assert [(p.file, p.kind) for p in report.problems] == [("tokenizer.json", "padded")]


def test_manifest_beside_a_folder(ckpt: Path) -> None:
    side = manifest_paths(ckpt)[1]
    assert side.parent == ckpt.parent
    write_manifest(ckpt, record(ckpt), path=side)
    report = full(ckpt)
    assert report.ok and report.manifest_source == str(side)


def test_sha256sum_output_as_manifest(ckpt: Path, tmp_path: Path) -> None:
    out = subprocess.run(
        ["sha256sum", *sorted(p.name for p in ckpt.iterdir())], cwd=ckpt, capture_output=True, text=True, check=True
    ).stdout
    (tmp_path / "SHA256SUMS").write_text(out)
    assert full(ckpt, manifest=tmp_path / "SHA256SUMS").ok
    flip_data_byte(ckpt / SHARD2)
    kinds = [(p.file, p.kind) for p in full(ckpt, manifest=tmp_path / "SHA256SUMS").problems]
    assert kinds == [(SHARD2, "checksum_mismatch")]


def test_manifest_implies_full_mode(ckpt: Path, tmp_path: Path) -> None:
    write_manifest(ckpt, record(ckpt), path=tmp_path / "m.json")
    report = check_weights(ckpt, manifest=tmp_path / "m.json", use_cache=False)
    assert report.mode == "full" and report.files_hashed == 9


def test_no_manifest_and_bad_manifest(ckpt: Path, tmp_path: Path) -> None:
    assert [(p.file, p.kind) for p in full(ckpt).problems] == [(".", "no_manifest")]
    bad = tmp_path / "bad.json"
    bad.write_text('{"files": {"config.json": {"size": 3, "sha256": "xyz"}}}')
    assert [p.kind for p in full(ckpt, manifest=bad).problems] == ["bad_manifest"]
    bad.write_text('{"files": {"../../etc/passwd": {"size": 3, "sha256": "' + "0" * 64 + '"}}}')
    assert [p.kind for p in full(ckpt, manifest=bad).problems] == ["bad_manifest"]


def test_files_the_manifest_does_not_cover(ckpt: Path) -> None:
    entries = record(ckpt)
    del entries[SHARD2]
    write_manifest(ckpt, entries)
    assert [(p.file, p.kind) for p in full(ckpt).problems] == [(SHARD2, "not_in_manifest")]


def test_file_listed_in_manifest_but_absent(ckpt: Path) -> None:
    entries = record(ckpt)
    entries["README.md"] = (5, "a" * 64)
    write_manifest(ckpt, entries)
    assert [(p.file, p.kind) for p in full(ckpt).problems] == [("README.md", "missing_file")]


def test_cache_skips_unchanged_files_and_never_trusts_changed_ones(ckpt: Path, cache: Path) -> None:
    write_manifest(ckpt, record(ckpt))
    first = full(ckpt, cache)
    assert (first.files_hashed, first.files_from_cache) == (9, 0)
    second = full(ckpt, cache)
    assert second.ok and (second.files_hashed, second.files_from_cache) == (0, 9)
    # same size, same mtime, different content: the ctime still moves, so it is hashed again
    path = ckpt / SHARD2
    st = path.stat()
    flip_data_byte(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_mtime_ns == st.st_mtime_ns and path.stat().st_size == st.st_size
    third = full(ckpt, cache)
    assert (third.files_hashed, third.files_from_cache) == (1, 8)
    assert [(p.file, p.kind) for p in third.problems] == [(SHARD2, "checksum_mismatch")]


def test_cache_is_what_answers_for_unchanged_files(ckpt: Path, cache: Path) -> None:
    write_manifest(ckpt, record(ckpt))
    assert full(ckpt, cache).ok
    doc = json.loads(cache.read_text())
    key = os.path.realpath(ckpt / "config.json")
    doc["entries"][key]["sha256"] = "f" * 64  # only a lookup in the cache can produce this digest
    cache.write_text(json.dumps(doc))
    report = full(ckpt, cache)
    assert [(p.file, p.kind) for p in report.problems] == [("config.json", "checksum_mismatch")]
    assert "f" * 64 in report.problems[0].detail


def test_unwritable_cache_location_still_checks(ckpt: Path, tmp_path: Path) -> None:
    write_manifest(ckpt, record(ckpt))
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    report = full(ckpt, blocker / "cache.json")
    assert report.ok and report.files_hashed == 9
    report = full(ckpt, blocker / "cache.json")
    assert report.files_hashed == 9  # nothing could be remembered


def test_hash_file_matches_hashlib_and_git(tmp_path: Path) -> None:
    p = tmp_path / "blob.bin"
    p.write_bytes(os.urandom(3 << 20) + b"tail")
    got = hash_file(str(p), ("sha256", "git-sha1"))
    assert got["sha256"] == hashlib.sha256(p.read_bytes()).hexdigest()
    git_id = subprocess.run(["git", "hash-object", str(p)], capture_output=True, text=True, check=True).stdout.strip()
    assert got["git-sha1"] == git_id


def test_parallel_hashing_equals_serial(tmp_path: Path) -> None:
    jobs = {}
    for i in range(6):
        p = tmp_path / f"f{i}"
        p.write_bytes(os.urandom(100_000 * (i + 1)))
        jobs[p.name] = (str(p), ("sha256",))
    one = hash_many(jobs, cache=VerifyCache(None), workers=1)
    two = hash_many(jobs, cache=VerifyCache(None), workers=2)
    assert one.digests == two.digests and one.hashed == two.hashed == 6
    assert two.digests["f3"]["sha256"] == sha256_file(tmp_path / "f3")


def _git(repo: Path, *args: str, stdin: bytes | None = None) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-C", str(repo), *args],
        input=stdin,
        check=True,
        capture_output=True,
    )


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_git_clone_lfs_pointers_are_the_manifest(tmp_path: Path, cache: Path) -> None:
    repo = make_checkpoint(tmp_path / "DeepSeek-R1-FP4", shards=3)
    real = {p.name: p.read_bytes() for p in repo.glob("*.safetensors")}
    for name, content in real.items():  # what the server's git holds: pointers for LFS files
        (repo / name).write_bytes(lfs_pointer_text(content))
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "weights")
    _git(repo, "remote", "add", "origin", "https://huggingface.co/nvidia/DeepSeek-R1-FP4")
    # a clone without git-lfs: pointers in the working tree
    report = full(repo, cache)
    assert {p.kind for p in report.problems} == {"lfs_pointer"} and report.origin == "git"
    assert "git lfs pull" in report.format_text()
    for name, content in real.items():  # what `git lfs pull` leaves
        (repo / name).write_bytes(content)
    report = full(repo, cache)
    assert report.ok, report.format_text()
    assert report.manifest_source and report.manifest_source.startswith("git HEAD")
    flip_data_byte(repo / SHARD2)
    cfg = (repo / "config.json").read_text()
    (repo / "config.json").write_text(cfg.replace("deepseek_v3", "deepseek_v2"))  # same size; checked by git blob id
    report = full(repo, cache)
    assert {(p.file, p.kind) for p in report.problems} == {
        (SHARD2, "checksum_mismatch"),
        ("config.json", "checksum_mismatch"),
    }
    assert "git lfs pull" in report.format_text() and "nvidia/DeepSeek-R1-FP4" not in report.format_text()


def _hf_snapshot(tmp_path: Path) -> Path:
    """A Hugging Face cache entry as huggingface_hub lays it out: blobs named by sha256 / git blob id."""
    src = make_checkpoint(tmp_path / "src", shards=3)
    repo = tmp_path / "hub" / "models--nvidia--DeepSeek-R1-FP4"
    snap = repo / "snapshots" / ("c" * 40)
    (repo / "blobs").mkdir(parents=True)
    snap.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("c" * 40)
    for p in src.iterdir():
        data = p.read_bytes()
        if p.suffix == ".safetensors":
            blob = hashlib.sha256(data).hexdigest()
        else:
            blob = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
        (repo / "blobs" / blob).write_bytes(data)
        os.symlink(f"../../blobs/{blob}", snap / p.name)
    return snap


def test_hf_cache_snapshot_blob_names_are_the_manifest(tmp_path: Path) -> None:
    snap = _hf_snapshot(tmp_path)
    report = full(snap)
    assert report.ok, report.format_text()
    assert report.origin == "hf-cache" and "blob names" in (report.manifest_source or "")
    flip_data_byte((snap / SHARD2).resolve())
    report = full(snap)
    assert [(p.file, p.kind) for p in report.problems] == [(SHARD2, "checksum_mismatch")]
    assert f"hf download nvidia/DeepSeek-R1-FP4 {SHARD2} --force-download" in report.format_text()


def test_hf_local_dir_metadata_is_the_manifest(ckpt: Path) -> None:
    meta_dir = ckpt / ".cache" / "huggingface" / "download"
    meta_dir.mkdir(parents=True)
    for name, (_size, sha) in record(ckpt).items():
        (meta_dir / f"{name}.metadata").write_text(f"{'c' * 40}\n{sha}\n1700000000.0\n")
    report = full(ckpt)
    assert report.ok and "metadata" in (report.manifest_source or "")
    flip_data_byte(ckpt / SHARD2)
    assert [(p.file, p.kind) for p in full(ckpt).problems] == [(SHARD2, "checksum_mismatch")]


def test_manifest_round_trip(tmp_path: Path) -> None:
    entries = {"a.safetensors": (10, "A" * 64), "config.json": (3, "b" * 40)}
    path = write_manifest(tmp_path, entries, path=tmp_path / "m.json", repo_id="org/name")
    man = read_manifest_file(path)
    assert man.repo_id == "org/name"
    assert {k: (e.size, e.algo, e.digest) for k, e in man.files.items()} == {
        "a.safetensors": (10, "sha256", "a" * 64),
        "config.json": (3, "git-sha1", "b" * 40),
    }
    assert not list(tmp_path.glob("*.tmp"))


def test_manifest_goes_beside_a_folder_it_cannot_write_into(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "weights"  # mkstemp inside it fails, as in a read-only folder
    not_a_dir.write_text("")
    written = write_manifest(not_a_dir, {"config.json": (2, "0" * 64)})
    assert written == manifest_paths(not_a_dir)[1] == tmp_path / f"weights{MANIFEST_NAME}"
    assert read_manifest_file(written).files["config.json"].digest == "0" * 64


def test_progress_bar_only_when_asked(ckpt: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_manifest(ckpt, record(ckpt))
    assert check_weights(ckpt, full=True, use_cache=False, progress=True).ok
    err = capsys.readouterr().err
    assert "sha256" in err and "100%" in err
    assert check_weights(ckpt, full=True, use_cache=False, progress=False).ok
    assert capsys.readouterr().err == ""
