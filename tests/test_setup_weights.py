"""Setup's weights step without the hub: a hand-built Hugging Face cache with HF_HUB_OFFLINE=1, partial and
foreign folders, git clones, and the 429 backoff (with real HfHubHTTPError objects)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from llmb_plugin_deepseek_r1.setup.download import (cache_manifest_entries, hub_manifest_entries, retry_delay,
                                                   with_backoff)
from llmb_plugin_deepseek_r1.setup.steps import main
from llmb_plugin_deepseek_r1.weights import check_weights
from test_setup_support import (COMMIT, SCRUB, FakeHub, checkpoint_files, expected_digests, make_hf_cache, run_setup,
                                setup_env, statuses)
from weights_fixtures import make_checkpoint

WORKLOAD = "inference_deepseek-r1"


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    install, hf = tmp_path / "install", tmp_path / "hf"
    for var in SCRUB:
        monkeypatch.delenv(var, raising=False)
    for key, value in setup_env(install, hf).items():
        if os.environ.get(key) != value:
            monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)
    model = install / "workloads" / WORKLOAD / "DeepSeek-R1-FP4"
    return {"tmp": tmp_path, "install": install, "hf": hf, "model": model}


def weights(capsys, *args: str) -> tuple[int, dict]:
    code = main(["--json", "--steps", "layout,weights", *args])
    doc = json.loads(capsys.readouterr().out)
    return code, doc["steps"][-1]


def test_offline_cache_is_linked_into_the_workload_with_a_manifest_of_blob_names(site, capsys) -> None:
    snapshot = make_hf_cache(site["hf"] / "hub")
    code, step = weights(capsys)
    assert code == 0 and step["status"] == "done", step
    model = site["model"]
    for link in snapshot.iterdir():
        placed = model / link.name
        assert placed.is_file() and not placed.is_symlink()
        assert os.path.samefile(placed, link)  # a hard link to the cached blob: no second copy
    assert step["detail"].startswith(f"nvidia/DeepSeek-R1-FP4 from the local Hugging Face cache (9 linked) into "
                                     f"{model} (passes the quick weight check, 9 files); manifest of 9 files from "
                                     f"the local Hugging Face cache's blob names (offline: ")
    report = check_weights(model, full=True, use_cache=False)
    assert report.ok and report.manifest_source == str(model / ".llmb-manifest.json")
    assert {k: v[1] for k, v in cache_manifest_entries(snapshot).items()} == expected_digests(snapshot)


def test_a_partial_folder_is_reported_and_completed_keeping_the_users_files(site, capsys) -> None:
    snapshot = make_hf_cache(site["hf"] / "hub")
    model = site["model"]
    model.mkdir(parents=True)
    shutil.copyfile(snapshot / "config.json", model / "config.json")
    cut = model / "model-00002-of-00003.safetensors"
    cut.write_bytes((snapshot / cut.name).read_bytes()[:100])  # an interrupted copy
    (model / "NOTES.txt").write_text("my notes")
    stale = model / ".model-00001-of-00003.safetensors.llmb-partial-999999"
    stale.write_bytes(b"left by a killed setup")
    code, step = weights(capsys)
    assert code == 0 and step["status"] == "done", step
    assert step["detail"].startswith("the existing folder failed the weight check (")
    assert "resumed into it. nvidia/DeepSeek-R1-FP4 from the local Hugging Face cache (8 linked, 1 kept, 1 replaced)" \
        in step["detail"]
    assert cut.read_bytes() == (snapshot / cut.name).read_bytes()
    assert (model / "NOTES.txt").read_text() == "my notes" and not stale.exists()
    assert check_weights(model, full=True, use_cache=False).ok


def test_offline_without_the_model_in_the_cache_fails_with_a_remedy(site, capsys) -> None:
    code, step = weights(capsys)
    assert code == 4 and step["status"] == "failed"
    assert step["detail"].startswith(f"offline (HF_HUB_OFFLINE) and nvidia/DeepSeek-R1-FP4 is not complete in the "
                                     f"Hugging Face cache {site['hf'] / 'hub'}: ")
    assert step["remedy"][0] == ("unset HF_HUB_OFFLINE where the hub is reachable, or fill the cache first: "
                                 "hf download nvidia/DeepSeek-R1-FP4")
    assert step["remedy"][1] == ("rerun: llmb-run setup -w inference_deepseek-r1 -- --steps weights "
                                 "(the download resumes)")


def test_a_folder_that_passes_is_kept_and_given_a_manifest_once(site, capsys) -> None:
    snapshot = make_hf_cache(site["hf"] / "hub")
    model = site["model"]
    model.mkdir(parents=True)
    for link in snapshot.iterdir():
        shutil.copyfile(link, model / link.name)  # a copy made by hand, no manifest
    before = {p.name: p.stat().st_mtime_ns for p in model.iterdir()}
    code, step = weights(capsys)
    assert code == 0 and step["status"] == "skipped"
    assert step["detail"] == (f"{model} passes the quick weight check (9 files); manifest of 9 files from the local "
                              f"Hugging Face cache's blob names: {model / '.llmb-manifest.json'}")
    assert {p.name: p.stat().st_mtime_ns for p in model.iterdir() if p.name != ".llmb-manifest.json"} == before
    assert check_weights(model, full=True, use_cache=False).ok
    code, step = weights(capsys)
    assert step["detail"] == (f"{model} passes the quick weight check (9 files); "
                              f"manifest: {model / '.llmb-manifest.json'}")


def test_a_revision_pin_picks_that_snapshot(site, capsys) -> None:
    make_hf_cache(site["hf"] / "hub")
    other = "0" * 39 + "1"
    make_hf_cache(site["hf"] / "hub", commit=other, shards=2)
    code, step = weights(capsys, "--revision", other)
    assert code == 0, step
    assert sorted(p.name for p in site["model"].glob("*.safetensors")) == [
        "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
    assert json.loads((site["model"] / ".llmb-manifest.json").read_text())["revision"] == other


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", f"safe.directory={cwd}", *args],
                   cwd=cwd, check=True, capture_output=True)


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_an_existing_git_clone_is_accepted_as_it_is(site, capsys) -> None:
    model = make_checkpoint(site["model"], shards=2)
    _git(model, "init", "-q")
    _git(model, "add", ".")
    _git(model, "commit", "-q", "-m", "weights")
    code, step = weights(capsys)  # offline and no cache: nothing could be downloaded anyway
    assert code == 0 and step["status"] == "skipped"
    assert step["detail"] == (f"{model} is a git clone that passes the quick weight check (8 files); kept as it is "
                              "(the full check reads its LFS pointers)")
    assert not (model / ".llmb-manifest.json").exists()
    (model / "model-00002-of-00002.safetensors").unlink()
    code, step = weights(capsys)
    assert code == 4 and step["status"] == "failed"
    assert step["detail"].endswith("setup does not download into a clone")
    assert any("git" in line for line in step["remedy"])


# ---- hub metadata and backoff (no network: real objects, recorded sleeps) ---------------------------------------

def _http_error(status: int, headers: dict[str, str] | None = None) -> Exception:
    from huggingface_hub.errors import HfHubHTTPError
    try:
        import httpx2 as httpx
    except ImportError:  # huggingface_hub < 2 uses httpx / requests
        import httpx
    request = httpx.Request("GET", "https://huggingface.co/api/models/nvidia/DeepSeek-R1-FP4")
    return HfHubHTTPError(f"{status} error", response=httpx.Response(status, headers=headers or {}, request=request))


def test_backoff_retries_429_with_growing_delays_then_succeeds() -> None:
    answers = [_http_error(429), _http_error(429), "model info"]
    slept: list[float] = []
    lines: list[str] = []

    def call():
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert with_backoff(call, "model_info", lines.append, sleep=slept.append) == "model info"
    assert slept == [2.0, 4.0]
    assert lines[0] == "model_info: the hub answered 429 (rate limited); retry 1/5 in 2 s"


def test_backoff_honours_retry_after_and_gives_up_after_its_attempts() -> None:
    slept: list[float] = []
    error = _http_error(429, {"Retry-After": "7"})

    def always_429():
        raise error

    with pytest.raises(type(error)):
        with_backoff(always_429, "snapshot_download", lambda _: None, attempts=3, sleep=slept.append)
    assert slept == [7.0, 7.0]
    assert retry_delay(_http_error(429), 10) == 120.0  # capped
    assert retry_delay(_http_error(429, {"Retry-After": "900"}), 1) == 120.0


def test_backoff_does_not_retry_other_errors() -> None:
    calls = []

    def forbidden():
        calls.append(1)
        raise _http_error(403)

    with pytest.raises(Exception, match="403 error"):
        with_backoff(forbidden, "model_info", lambda _: None, sleep=lambda _: pytest.fail("slept"))
    assert calls == [1]


def test_manifest_entries_from_the_hubs_file_metadata() -> None:
    from huggingface_hub.hf_api import ModelInfo

    info = ModelInfo(id="nvidia/DeepSeek-R1-FP4", sha=COMMIT, siblings=[
        {"rfilename": "model-00001-of-00080.safetensors", "size": 5368709120, "blobId": "b" * 40,
         "lfs": {"sha256": "c" * 64, "size": 5368709120, "pointerSize": 135}},
        {"rfilename": "config.json", "size": 1644, "blobId": "d" * 40},
        {"rfilename": "README.md"},  # no metadata: not recorded
    ])
    assert hub_manifest_entries(info) == {"model-00001-of-00080.safetensors": (5368709120, "c" * 64),
                                          "config.json": (1644, "d" * 40)}


def test_dry_run_of_a_failing_folder_says_it_would_resume(site, capsys) -> None:
    site["model"].mkdir(parents=True)
    (site["model"] / "config.json").write_text("{}")
    code = main(["--json", "--dry-run", "--steps", "weights"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0 and statuses(doc) == {"weights": "planned"}
    assert doc["steps"][0]["detail"].startswith("would resume nvidia/DeepSeek-R1-FP4 from the local Hugging Face cache")
    assert sorted(p.name for p in site["model"].iterdir()) == ["config.json"]


# ---- online, against a stand-in hub on 127.0.0.1 (tests/test_setup_support.FakeHub) -------------------------------

TOKEN = "hf_test_token_never_printed"


def _online_env(tmp: Path, hub) -> dict[str, str]:
    return setup_env(tmp / "install", tmp / "hf", HF_HUB_OFFLINE="0", HF_ENDPOINT=hub.endpoint, HF_TOKEN=TOKEN,
                     HF_HUB_DISABLE_TELEMETRY="1", HF_HUB_DISABLE_UPDATE_CHECK="1")


def _files_under(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def test_online_download_retries_429_pins_the_commit_and_records_the_hubs_metadata(tmp_path: Path) -> None:
    files = checkpoint_files(tmp_path)
    with FakeHub(files, info_errors=(429, 429)) as hub:
        proc = run_setup(_online_env(tmp_path, hub), "--steps", "layout,weights", cwd=tmp_path)
    doc = json.loads(proc.stdout)
    assert proc.returncode == 0, proc.stderr
    model = tmp_path / "install" / "workloads" / WORKLOAD / "DeepSeek-R1-FP4"
    assert doc["steps"][1]["detail"] == (
        f"nvidia/DeepSeek-R1-FP4 from the hub at {COMMIT[:12]} into {model} (passes the quick weight check, 9 files); "
        f"manifest of 9 files from the hub's file metadata: {model / '.llmb-manifest.json'}")
    assert proc.stderr.count("model_info: the hub answered 429 (rate limited); retry") == 2
    info_calls = [r for r in hub.requests if r[1] == "/api/models/nvidia/DeepSeek-R1-FP4"]
    assert len(info_calls) == 3
    downloads = {r[1].rsplit("/", 1)[-1] for r in hub.requests if r[0] == "GET" and "/resolve/" in r[1]}
    assert downloads == set(files)
    assert all(f"/resolve/{COMMIT}/" in r[1] for r in hub.requests if "/resolve/" in r[1])  # pinned to model_info's sha
    assert {r[2] for r in hub.requests} == {f"Bearer {TOKEN}"}  # the token was used ...
    assert TOKEN not in proc.stdout + proc.stderr  # ... and never printed
    assert not any(TOKEN.encode() in p.read_bytes() for p in _files_under(tmp_path / "install"))
    manifest = json.loads((model / ".llmb-manifest.json").read_text())
    assert manifest["revision"] == COMMIT
    assert {n: e.get("sha256") or e.get("git_sha1") for n, e in manifest["files"].items()} == \
        {n: hub.etag(n) for n in files}
    assert {n: e["size"] for n, e in manifest["files"].items()} == {n: len(d) for n, d in files.items()}
    assert check_weights(model, full=True, use_cache=False).ok


def test_online_resume_fetches_only_what_is_missing_or_different(tmp_path: Path) -> None:
    files = checkpoint_files(tmp_path)
    model = tmp_path / "install" / "workloads" / WORKLOAD / "DeepSeek-R1-FP4"
    model.mkdir(parents=True)
    intact, cut = "model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors"
    (model / intact).write_bytes(files[intact])
    (model / cut).write_bytes(files[cut][:64])
    with FakeHub(files) as hub:
        proc = run_setup(_online_env(tmp_path, hub), "--steps", "weights", cwd=tmp_path)
    doc = json.loads(proc.stdout)
    assert proc.returncode == 0, proc.stderr
    assert doc["steps"][0]["detail"].startswith("the existing folder failed the weight check (")
    fetched = {r[1].rsplit("/", 1)[-1] for r in hub.requests if r[0] == "GET" and "/resolve/" in r[1]}
    assert cut in fetched and intact not in fetched
    assert (model / cut).read_bytes() == files[cut]


@pytest.mark.parametrize("status, detail, remedy", [
    (401, "the hub refused nvidia/DeepSeek-R1-FP4 (", "export HF_TOKEN with read access and accept the licence"),
    (429, "the hub kept rate-limiting (HTTP 429) after 6 attempts", "wait a while, then rerun"),
])
def test_hub_refusals_fail_the_step_with_what_to_do(tmp_path: Path, status, detail, remedy) -> None:
    with FakeHub(checkpoint_files(tmp_path), info_errors=(status,) * 6) as hub:
        proc = run_setup(_online_env(tmp_path, hub), "--steps", "weights", cwd=tmp_path)
    step = json.loads(proc.stdout)["steps"][0]
    assert proc.returncode == 4 and step["status"] == "failed"
    assert step["detail"].startswith(detail) and step["remedy"][0].startswith(remedy)
    assert not any("/resolve/" in r[1] for r in hub.requests)


def test_a_second_setup_waits_for_the_weights_lock_and_keeps_what_the_first_fetched(tmp_path: Path) -> None:
    import fcntl
    import sys
    import time

    snapshot = make_hf_cache(tmp_path / "hf" / "hub")
    model = tmp_path / "install" / "workloads" / WORKLOAD / "DeepSeek-R1-FP4"
    model.mkdir(parents=True)
    lock = model.parent / ".DeepSeek-R1-FP4.setup.lock"
    holder = os.open(lock, os.O_RDWR | os.O_CREAT)
    fcntl.flock(holder, fcntl.LOCK_EX)  # this test plays the first setup
    err = tmp_path / "err.txt"
    try:
        with open(err, "w") as stderr:
            proc = subprocess.Popen([sys.executable, "-m", "llmb_plugin_deepseek_r1", "setup", "--json", "--steps",
                                     "weights"], env=setup_env(tmp_path / "install", tmp_path / "hf"), cwd=tmp_path,
                                    stdout=subprocess.PIPE, stderr=stderr, text=True)
        deadline = time.monotonic() + 30
        while f"waiting for {lock}" not in err.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, err.read_text()
            time.sleep(0.05)
        for link in snapshot.iterdir():
            shutil.copyfile(link, model / link.name)
    finally:
        os.close(holder)
    out, _ = proc.communicate(timeout=30)
    step = json.loads(out)["steps"][0]
    assert proc.returncode == 0 and step["status"] == "skipped"
    assert step["detail"].endswith("(9 files): fetched by another setup while this one waited")
    assert all(p.stat().st_nlink == 1 for p in model.iterdir())  # our copies were kept, not re-linked
