"""Setup step "image": ``enroot import`` of the TensorRT-LLM container to ``$LLMB_INSTALL/images/<name>.sqsh``.

The import runs under a lock (two setups never import the same file at once), writes to a hidden temporary
name and is renamed only once enroot succeeded and the result is a valid squashfs, so a killed setup leaves
nothing under the final name and the next run starts the import again. An existing valid image is kept.
"""

from __future__ import annotations

import os
import shlex
import shutil
import struct
import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from .model import SetupOptions, StepResult
from .util import LockTimeout, file_lock, partial_name, stale_partials

SQUASHFS_MAGIC = b"hsqs"
SUPERBLOCK_BYTES = 96
BYTES_USED_OFFSET = 40
UNSQUASHFS_TIMEOUT_S = 1800
ENROOT_URL = "https://github.com/NVIDIA/enroot/blob/master/doc/installation.md"


def docker_uri(image: str) -> str:
    """The argument enroot import takes: ``docker://<registry>#<image>:<tag>``."""
    return image if image.startswith("docker://") else f"docker://{image}"


def enroot_argv(enroot: str, arch: str, output: Path, image: str) -> list[str]:
    """``enroot import -a ARCH -o OUTPUT docker://IMAGE`` (the architecture is always explicit: a GB200
    image is aarch64 even when imported from an x86 login node)."""
    return [enroot, "import", "-a", arch, "-o", str(output), docker_uri(image)]


def squashfs_check(path: Path, env: Mapping[str, str] | None = None) -> tuple[bool, str]:
    """(valid, how we know or why not): the superblock (magic, size the filesystem claims) always, then
    ``unsquashfs -l`` where it is installed (it reads the directory and inode tables)."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as handle:
            head = handle.read(SUPERBLOCK_BYTES)
    except OSError as exc:
        return False, f"cannot read: {exc.strerror or exc}"
    if len(head) < SUPERBLOCK_BYTES or head[:4] != SQUASHFS_MAGIC:
        return False, "no squashfs superblock (not an image, or cut off)"
    (bytes_used,) = struct.unpack_from("<Q", head, BYTES_USED_OFFSET)
    if size < bytes_used:
        return False, f"file is {size} bytes, its superblock says {bytes_used}: cut off"
    tool = shutil.which("unsquashfs", path=(env or os.environ).get("PATH"))
    if tool is None:
        return True, "squashfs superblock (unsquashfs not installed)"
    try:
        proc = subprocess.run([tool, "-l", str(path)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True, timeout=UNSQUASHFS_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"unsquashfs -l could not run: {exc}"
    if proc.returncode != 0:
        last = [line for line in proc.stderr.splitlines() if line.strip()]
        return False, f"unsquashfs -l: {last[-1].strip() if last else f'exit {proc.returncode}'}"
    return True, "unsquashfs -l"


def _enroot_missing(opts: SetupOptions, argv_text: str) -> StepResult:
    return StepResult("image", "incomplete", "enroot is not installed here (not on PATH); the image was not imported",
                      remedy=[f"install enroot ({ENROOT_URL}) and rerun: llmb-run setup -w {opts.workload} -- "
                              f"--steps image",
                              "or run the heavy steps where enroot is: add --slurm (CPU partition)",
                              f"or import it by hand: {argv_text}"])


def image_step(opts: SetupOptions, env: Mapping[str, str], log: Callable[[str], None]) -> StepResult:
    """Import the image unless a valid file is already there; see the module docstring for the guarantees."""
    final = opts.image_file
    if final.exists():
        return _existing(final, env)
    enroot = shutil.which("enroot", path=env.get("PATH"))
    shown = shlex.join(enroot_argv("enroot", opts.arch, final, opts.image_uri))
    if opts.dry_run:
        if enroot is None:
            result = _enroot_missing(opts, shown)
            result.detail = "would import, but " + result.detail
            return result
        return StepResult("image", "planned", f"would run `{shown}` (to a temporary name, renamed when complete)")
    if enroot is None:
        return _enroot_missing(opts, shown)
    lock = final.parent / f".{final.name}.lock"
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        with file_lock(lock, opts.lock_timeout_s, log) as waited:
            if final.exists():  # another setup imported it while we waited
                result = _existing(final, env)
                if waited and result.status == "skipped":
                    result.detail += " (imported by another setup while this one waited)"
                return result
            return _import_locked(opts, enroot, final, env, log)
    except LockTimeout as exc:
        return StepResult("image", "failed", f"another setup is importing this image: {exc}",
                          remedy=[f"wait for it to finish, then rerun; the lock is {lock}"])
    except OSError as exc:  # a read-only or full images/ folder
        return StepResult("image", "failed", f"cannot write in {final.parent}: {exc.strerror or exc}",
                          remedy=["make it writable (or free space), or point LLMB_INSTALL elsewhere, then rerun"])


def _existing(final: Path, env: Mapping[str, str]) -> StepResult:
    ok, how = squashfs_check(final, env)
    size = final.stat().st_size
    if ok:
        return StepResult("image", "skipped", f"{final} exists and is a valid squashfs ({how})", bytes=size)
    moved = shlex.join(["mv", str(final), str(final) + ".bad"])
    return StepResult("image", "failed", f"{final} exists but is not a valid squashfs: {how}", bytes=size,
                      remedy=[f"move it aside and rerun (setup never deletes it): {moved}"])


def _import_locked(opts: SetupOptions, enroot: str, final: Path, env: Mapping[str, str],
                   log: Callable[[str], None]) -> StepResult:
    """The import proper; the caller holds the lock, so leftovers of interrupted runs are ours to remove."""
    for stale in stale_partials(final):
        log(f"removing {stale.name}, left by an interrupted import")
        stale.unlink(missing_ok=True)
    tmp = partial_name(final)
    argv = enroot_argv(enroot, opts.arch, tmp, opts.image_uri)
    log(f"importing {opts.image_uri} ({opts.arch}): {shlex.join(argv)}")
    t0 = time.monotonic()
    try:
        # enroot's progress goes to our stderr: the user (or the Slurm job's log) sees it as it happens.
        try:
            proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=2, stderr=2, env=dict(env), check=False)
        except OSError as exc:
            return StepResult("image", "failed", f"cannot run {enroot}: {exc.strerror or exc}",
                              remedy=["check the enroot installation (enroot version), then rerun"])
        if proc.returncode != 0:
            return StepResult("image", "failed", f"enroot import exited {proc.returncode} (its output is above)",
                              seconds=time.monotonic() - t0,
                              remedy=["check registry access (nvcr.io needs credentials in "
                                      "~/.config/enroot/.credentials) and free space in "
                                      f"{final.parent}, then rerun"])
        if not tmp.exists():
            return StepResult("image", "failed", f"enroot import succeeded but wrote no {tmp.name}",
                              seconds=time.monotonic() - t0)
        ok, how = squashfs_check(tmp, env)
        if not ok:
            return StepResult("image", "failed", f"enroot import wrote an invalid image: {how}",
                              seconds=time.monotonic() - t0, remedy=["rerun; if it persists, import by hand"])
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)
    size = final.stat().st_size
    return StepResult("image", "done", f"imported {opts.image_uri} ({opts.arch}) to {final} (checked: {how})",
                      seconds=time.monotonic() - t0, bytes=size)
