"""Setup's image step against the stand-in enroot (tests/fake_enroot/enroot, which writes real squashfs files):
the import itself, a missing or failing enroot, the lock between two setups, and a setup killed mid-import."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from llmb_plugin_deepseek_r1.setup.image import squashfs_check
from test_setup_support import IMAGE_NAME, make_hf_cache, run_setup, setup_env, statuses

pytestmark = pytest.mark.skipif(shutil.which("mksquashfs") is None or shutil.which("unsquashfs") is None,
                                reason="needs squashfs-tools (apt-get install squashfs-tools)")
DEADLINE_S = 30.0


@pytest.fixture
def site(tmp_path: Path) -> dict:
    install = tmp_path / "install"
    log = tmp_path / "enroot-calls.jsonl"
    return {"tmp": tmp_path, "install": install, "image": install / "images" / IMAGE_NAME,
            "lock": install / "images" / f".{IMAGE_NAME}.lock", "log": log,
            "env": setup_env(install, None, FAKE_ENROOT_LOG=str(log))}


def enroot_calls(log: Path) -> list[list[str]]:
    return [json.loads(line)["argv"] for line in log.read_text().splitlines()] if log.exists() else []


def partials(images: Path) -> list[Path]:
    return sorted(images.glob(f".{IMAGE_NAME}.llmb-partial-*")) if images.is_dir() else []


def make_squashfs(path: Path, content: str) -> None:
    src = path.parent / f"src-{path.name}"
    src.mkdir(parents=True)
    (src / "marker").write_text(content)
    subprocess.run(["mksquashfs", str(src), str(path), "-noappend", "-quiet", "-no-progress"], check=True,
                   stdout=subprocess.DEVNULL)
    shutil.rmtree(src)


def lock_is_free(lock: Path) -> bool:
    fd = os.open(lock, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)


def wait_for(probe, what: str, proc: subprocess.Popen | None = None):
    """Poll ``probe`` until it is truthy; fail at the deadline (or when ``proc`` exits first)."""
    deadline = time.monotonic() + DEADLINE_S
    while True:
        value = probe()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"setup exited ({proc.returncode}) before {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def start_setup(env: dict[str, str], cwd: Path, stderr: Path, *args: str) -> subprocess.Popen:
    """A setup in its own process group (as an installer's child would be), stderr to a file we can poll."""
    with open(stderr, "w") as err:
        return subprocess.Popen([sys.executable, "-m", "llmb_plugin_deepseek_r1", "setup", "--json", *args],
                                env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=err, text=True,
                                start_new_session=True)


def test_import_writes_a_valid_image_for_aarch64_and_a_rerun_skips_it(site) -> None:
    proc = run_setup(site["env"], "--steps", "layout,image", cwd=site["tmp"])
    assert proc.returncode == 0, proc.stderr
    assert statuses(json.loads(proc.stdout)) == {"layout": "done", "image": "done"}
    calls = enroot_calls(site["log"])
    assert len(calls) == 1
    assert calls[0][:3] == ["import", "-a", "aarch64"] and calls[0][3] == "-o"
    assert Path(calls[0][4]).parent == site["image"].parent and calls[0][4] != str(site["image"])  # temporary name
    assert calls[0][5] == "docker://nvcr.io#nvidia/tensorrt-llm/release:1.0.0rc1"
    assert squashfs_check(site["image"]) == (True, "unsquashfs -l")
    assert partials(site["image"].parent) == []
    proc = run_setup(site["env"], "--steps", "image", cwd=site["tmp"])
    doc = json.loads(proc.stdout)
    assert proc.returncode == 0 and statuses(doc) == {"image": "skipped"}
    assert doc["steps"][0]["detail"] == f"{site['image']} exists and is a valid squashfs (unsquashfs -l)"
    assert len(enroot_calls(site["log"])) == 1


def test_configured_image_and_architecture(site) -> None:
    env = dict(site["env"], RUN_CONF_IMAGE="nvcr.io#nvidia/tensorrt-llm/release:1.0.0", GPU_TYPE="b200")
    proc = run_setup(env, "--steps", "layout,image", "--arch", "x86_64", cwd=site["tmp"])
    assert proc.returncode == 0, proc.stderr
    image = site["install"] / "images" / "tensorrt-llm+release+1.0.0.sqsh"
    assert enroot_calls(site["log"])[0][1:3] == ["-a", "x86_64"]
    assert enroot_calls(site["log"])[0][5] == "docker://nvcr.io#nvidia/tensorrt-llm/release:1.0.0"
    assert subprocess.run(["unsquashfs", "-cat", str(image), "etc/image-uri"], capture_output=True, text=True,
                          check=True).stdout.strip() == "docker://nvcr.io#nvidia/tensorrt-llm/release:1.0.0"


def test_missing_enroot_says_what_to_do_and_the_other_steps_go_on(site) -> None:
    env = setup_env(site["install"], None, enroot=False)
    assert shutil.which("enroot", path=env["PATH"]) is None
    proc = run_setup(env, cwd=site["tmp"])
    doc = json.loads(proc.stdout)
    assert proc.returncode == 4
    assert statuses(doc) == {"layout": "done", "weights": "failed", "image": "incomplete", "datasets": "done"}
    image = doc["steps"][2]
    assert image["detail"] == "enroot is not installed here (not on PATH); the image was not imported"
    assert image["remedy"][0].startswith("install enroot (")
    assert image["remedy"][1] == "or run the heavy steps where enroot is: add --slurm (CPU partition)"
    assert image["remedy"][2] == (f"or import it by hand: enroot import -a aarch64 -o {site['image']} "
                                  "'docker://nvcr.io#nvidia/tensorrt-llm/release:1.0.0rc1'")
    assert doc["next"] == "llmb-run setup -w inference_deepseek-r1 -- --steps weights,image"
    assert not site["image"].exists()


@pytest.mark.parametrize("control, detail", [
    ({"FAKE_ENROOT_FAIL": "3"}, "enroot import exited 3 (its output is above)"),
    ({"FAKE_ENROOT_INVALID": "1"}, "enroot import wrote an invalid image: no squashfs superblock"),
])
def test_a_failed_import_leaves_nothing_behind(site, control, detail) -> None:
    proc = run_setup(dict(site["env"], **control), "--steps", "layout,image", cwd=site["tmp"])
    doc = json.loads(proc.stdout)
    assert proc.returncode == 4 and statuses(doc) == {"layout": "done", "image": "failed"}
    assert doc["steps"][1]["detail"].startswith(detail)
    assert not site["image"].exists() and partials(site["image"].parent) == []


def test_an_existing_invalid_image_is_reported_and_kept(site) -> None:
    site["image"].parent.mkdir(parents=True)
    site["image"].write_bytes(b"hsqs" + b"\0" * 200)  # a cut-off image someone copied in
    proc = run_setup(site["env"], "--steps", "image", cwd=site["tmp"])
    doc = json.loads(proc.stdout)
    assert proc.returncode == 4 and statuses(doc) == {"image": "failed"}
    assert "exists but is not a valid squashfs" in doc["steps"][0]["detail"]
    assert doc["steps"][0]["remedy"][0].startswith("move it aside and rerun (setup never deletes it): mv ")
    assert site["image"].read_bytes() == b"hsqs" + b"\0" * 200
    assert enroot_calls(site["log"]) == []


def test_a_second_setup_waits_for_the_lock_and_skips_what_the_first_imported(site) -> None:
    site["lock"].parent.mkdir(parents=True)
    holder = os.open(site["lock"], os.O_RDWR | os.O_CREAT)
    fcntl.flock(holder, fcntl.LOCK_EX)  # this test plays the first setup
    os.write(holder, b"the-other-host pid 4242\n")
    try:
        err = site["tmp"] / "err.txt"
        proc = start_setup(site["env"], site["tmp"], err, "--steps", "image")
        wait_for(lambda: "held by the-other-host pid 4242" in err.read_text(), "setup to wait for the lock", proc)
        assert enroot_calls(site["log"]) == [] and partials(site["image"].parent) == []
        make_squashfs(site["image"], "imported by the first setup")
    finally:
        os.close(holder)
    out, _ = proc.communicate(timeout=DEADLINE_S)
    doc = json.loads(out)
    assert proc.returncode == 0 and statuses(doc) == {"image": "skipped"}
    assert doc["steps"][0]["detail"].endswith("(imported by another setup while this one waited)")
    assert enroot_calls(site["log"]) == []


def test_a_lock_held_too_long_fails_the_step(site) -> None:
    site["lock"].parent.mkdir(parents=True)
    holder = os.open(site["lock"], os.O_RDWR | os.O_CREAT)
    fcntl.flock(holder, fcntl.LOCK_EX)
    try:
        proc = run_setup(site["env"], "--steps", "image", "--lock-timeout", "0.3", cwd=site["tmp"])
    finally:
        os.close(holder)
    doc = json.loads(proc.stdout)
    assert proc.returncode == 4 and statuses(doc) == {"image": "failed"}
    assert doc["steps"][0]["detail"].startswith("another setup is importing this image: ")
    assert enroot_calls(site["log"]) == []


def test_killed_mid_import_then_rerun_completes_and_a_third_run_skips_everything(site) -> None:
    hf = site["tmp"] / "hf"
    make_hf_cache(hf / "hub")
    env = setup_env(site["install"], hf, FAKE_ENROOT_LOG=str(site["log"]))
    err = site["tmp"] / "err1.txt"
    proc = start_setup(dict(env, FAKE_ENROOT_BLOCK="1"), site["tmp"], err)
    try:
        partial = wait_for(lambda: [p for p in partials(site["image"].parent) if p.stat().st_size > 0],
                           "the import to write part of its output", proc)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # setup and enroot together, as a dying installer would leave them
        proc.wait(timeout=DEADLINE_S)
    assert not site["image"].exists()  # nothing under the final name
    assert partial[0].exists() and lock_is_free(site["lock"])  # the kernel released the dead setup's lock

    proc2 = run_setup(env, cwd=site["tmp"])
    doc = json.loads(proc2.stdout)
    assert proc2.returncode == 0, proc2.stderr
    assert statuses(doc) == {"layout": "skipped", "weights": "skipped", "image": "done", "datasets": "done"}
    assert f"removing {partial[0].name}, left by an interrupted import" in proc2.stderr
    assert partials(site["image"].parent) == [] and squashfs_check(site["image"])[0]
    assert len(enroot_calls(site["log"])) == 2

    proc3 = run_setup(env, cwd=site["tmp"])
    assert proc3.returncode == 0
    assert set(statuses(json.loads(proc3.stdout)).values()) == {"skipped"}
    assert len(enroot_calls(site["log"])) == 2


def test_sigterm_mid_import_cleans_up_and_reports_interrupted(site) -> None:
    err = site["tmp"] / "err.txt"
    proc = start_setup(dict(site["env"], FAKE_ENROOT_BLOCK="1"), site["tmp"], err, "--steps", "layout,image,datasets")
    try:
        wait_for(lambda: [p for p in partials(site["image"].parent) if p.stat().st_size > 0],
                 "the import to write part of its output", proc)
        proc.send_signal(signal.SIGTERM)  # only setup: it must stop its enroot and remove the partial file
        out, _ = proc.communicate(timeout=DEADLINE_S)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    doc = json.loads(out)
    assert proc.returncode == 4
    assert statuses(doc) == {"layout": "done", "image": "interrupted", "datasets": "incomplete"}
    assert partials(site["image"].parent) == [] and not site["image"].exists()
    assert lock_is_free(site["lock"])
    enroot_pid = json.loads(site["log"].read_text().splitlines()[0])["pid"]
    wait_for(lambda: not _alive(enroot_pid), "the stand-in enroot to be gone")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as handle:  # a zombie awaiting its reaper is gone for our purposes
            return handle.read().split(") ")[-1][:1] != "Z"
    except FileNotFoundError:
        return False
