"""Preflight checks that run inside the allocation before any container starts: GPUs and image.

Parsing is pure (tested on real nvidia-smi readings); running nvidia-smi is the only side effect. Where a check
cannot run (no nvidia-smi on the node), it is reported as skipped and the job goes on.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Mapping

QUERY_FIELDS = ("index", "name", "uuid", "compute_cap", "memory.total", "memory.used", "memory.free",
                "driver_version")
# Minimum CUDA compute capability per dtype: NVFP4 kernels need Blackwell data-center GPUs (10.x).
MIN_COMPUTE_CAPABILITY = {"nvfp4": (10, 0), "fp8": (8, 9), "bf16": (8, 0), "fp16": (7, 0)}
MEMORY_HEADROOM = 1.10  # weights alone must leave at least 10% for activations and the KV cache


@dataclass(frozen=True)
class Gpu:
    index: int
    name: str
    uuid: str
    compute_capability: tuple[int, int] | None
    memory_total_mib: int
    memory_used_mib: int | None
    memory_free_mib: int | None
    driver: str


@dataclass(frozen=True)
class Check:
    """One preflight check: ``status`` is ok, failed, warning or skipped."""

    name: str
    status: str
    detail: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


def _int_or_none(text: str) -> int | None:
    text = text.strip().split()[0] if text.strip() else ""
    try:
        return int(float(text))
    except ValueError:
        return None


def _capability(text: str) -> tuple[int, int] | None:
    parts = text.strip().split(".")
    if len(parts) == 2 and all(p.isdigit() for p in parts):
        return int(parts[0]), int(parts[1])
    return None


def parse_nvidia_smi_csv(text: str) -> list[Gpu]:
    """Parse `nvidia-smi --query-gpu=<QUERY_FIELDS> --format=csv[,noheader][,nounits]` output.

    Accepts the header line and unit suffixes ("81559 MiB") or their absence; '[N/A]' values become None.
    """
    gpus = []
    for line in text.splitlines():
        cells = [c.strip() for c in line.split(",")]
        if len(cells) < len(QUERY_FIELDS) or not cells[0].isdigit():
            continue  # header or noise
        gpus.append(Gpu(
            index=int(cells[0]), name=cells[1], uuid=cells[2], compute_capability=_capability(cells[3]),
            memory_total_mib=_int_or_none(cells[4]) or 0, memory_used_mib=_int_or_none(cells[5]),
            memory_free_mib=_int_or_none(cells[6]), driver=cells[7],
        ))
    return gpus


def query_gpus(nvidia_smi: str | None = None, timeout_s: float = 60.0,
               search_path: str | None = None) -> tuple[list[Gpu] | None, str]:
    """(GPUs, how they were found) via nvidia-smi (looked up on ``search_path``, default $PATH); (None, reason)
    when it cannot run."""
    exe = nvidia_smi or shutil.which("nvidia-smi", path=search_path)
    if not exe:
        return None, "nvidia-smi not found on this node"
    argv = [exe, f"--query-gpu={','.join(QUERY_FIELDS)}", "--format=csv,noheader,nounits"]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"nvidia-smi could not run: {exc}"
    if done.returncode != 0:
        first = (done.stderr or done.stdout).strip().splitlines()[:1]
        return None, f"nvidia-smi failed (exit {done.returncode}): {first[0] if first else 'no output'}"
    return parse_nvidia_smi_csv(done.stdout), exe


def query_gpus_nvml() -> tuple[list[Gpu] | None, str]:
    """The same reading through NVML (nvidia-ml-py, the `gpu` extra), for nodes without nvidia-smi on PATH."""
    try:
        import pynvml
    except ImportError:
        return None, "nvidia-ml-py (pynvml) is not installed"

    def text(value: object) -> str:
        return value.decode() if isinstance(value, bytes) else str(value)

    try:
        pynvml.nvmlInit()
    except Exception as exc:  # noqa: BLE001 - NVMLError subclasses vary by version
        return None, f"NVML could not start: {exc}"
    try:
        driver = text(pynvml.nvmlSystemGetDriverVersion())
        gpus = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
            major, minor = pynvml.nvmlDeviceGetCudaComputeCapability(handle)
            gpus.append(Gpu(index=index, name=text(pynvml.nvmlDeviceGetName(handle)),
                            uuid=text(pynvml.nvmlDeviceGetUUID(handle)), compute_capability=(int(major), int(minor)),
                            memory_total_mib=int(memory.total) // 2**20, memory_used_mib=int(memory.used) // 2**20,
                            memory_free_mib=int(memory.free) // 2**20, driver=driver))
        return gpus, "NVML"
    except Exception as exc:  # noqa: BLE001
        return None, f"NVML query failed: {exc}"
    finally:
        try:
            pynvml.nvmlShutdown()
        except Exception:  # noqa: BLE001
            pass


def query_node_gpus(search_path: str | None = None) -> tuple[list[Gpu] | None, str]:
    """nvidia-smi, else NVML; (None, both reasons) when neither can tell."""
    gpus, how = query_gpus(search_path=search_path)
    if gpus is not None:
        return gpus, how
    nvml_gpus, nvml_how = query_gpus_nvml()
    if nvml_gpus is not None:
        return nvml_gpus, nvml_how
    return None, f"{how}; {nvml_how}"


def visible(gpus: list[Gpu], cuda_visible_devices: str | None) -> list[Gpu]:
    """The GPUs this job may use: CUDA_VISIBLE_DEVICES (indices or UUIDs) restricts nvidia-smi's full list."""
    if cuda_visible_devices is None or cuda_visible_devices.strip() == "":
        return gpus
    wanted = [d.strip() for d in cuda_visible_devices.split(",") if d.strip()]
    chosen = [g for g in gpus if str(g.index) in wanted or g.uuid in wanted]
    return chosen or gpus


def check_gpus(gpus: list[Gpu] | None, how: str, *, scale: int, dtype: str, model_bytes: int | None) -> list[Check]:
    """GPU count, architecture able to run the dtype, and memory for the checkpoint."""
    if gpus is None:
        return [Check("gpus", "skipped", f"GPU checks skipped: {how}")]
    checks = []
    names = ", ".join(sorted({g.name for g in gpus})) or "none"
    if len(gpus) < scale:
        checks.append(Check("gpu_count", "failed", f"found {len(gpus)} GPU(s) ({names}); this job needs {scale}"))
    else:
        checks.append(Check("gpu_count", "ok", f"{len(gpus)} GPU(s): {names}"))
    need = MIN_COMPUTE_CAPABILITY.get(dtype.lower())
    if need and gpus:
        weak = [g for g in gpus if g.compute_capability is not None and g.compute_capability < need]
        unknown = [g for g in gpus if g.compute_capability is None]
        if weak:
            g = weak[0]
            cc = ".".join(map(str, g.compute_capability or ()))
            checks.append(Check("gpu_architecture", "failed",
                                f"{dtype} needs compute capability {need[0]}.{need[1]} or newer (Blackwell B200/GB200 "
                                f"for nvfp4); found {g.name} (compute capability {cc})"))
        elif unknown:
            checks.append(Check("gpu_architecture", "skipped",
                                f"compute capability not reported for {unknown[0].name}; architecture not checked"))
        else:
            cc = ", ".join(sorted({".".join(map(str, g.compute_capability or ())) for g in gpus}))
            checks.append(Check("gpu_architecture", "ok", f"compute capability {cc} runs {dtype}"))
    used_gpus = gpus[:scale]
    if model_bytes and used_gpus:
        total_mib = sum(g.memory_total_mib for g in used_gpus)
        need_mib = int(model_bytes * MEMORY_HEADROOM / 2**20)
        if total_mib < need_mib:
            checks.append(Check("gpu_memory", "failed",
                                f"{len(used_gpus)} GPU(s) hold {total_mib / 1024:.0f} GiB; the checkpoint "
                                f"({model_bytes / 2**30:.0f} GiB) needs at least {need_mib / 1024:.0f} GiB"))
        else:
            checks.append(Check("gpu_memory", "ok", f"{total_mib / 1024:.0f} GiB on {len(used_gpus)} GPU(s) for a "
                                                    f"{model_bytes / 2**30:.0f} GiB checkpoint"))
        busy = [g for g in used_gpus if g.memory_used_mib and g.memory_total_mib
                and g.memory_used_mib > 0.05 * g.memory_total_mib]
        if busy:
            checks.append(Check("gpu_memory_in_use", "warning",
                                f"GPU {busy[0].index} already has {busy[0].memory_used_mib} MiB in use: another "
                                f"process may be on it, and the KV cache will be smaller"))
    return checks


def check_gpu_type(gpus: list[Gpu] | None, gpu_type: str, info: Mapping[str, Any]) -> Check:
    """Whether the node's GPUs are the GPU type the job was planned for (compute capability and memory from
    workload.yaml's gpu_types): a different type runs settings tuned for another GPU, so it is a warning."""
    if gpus is None or not gpus or not info:
        return Check("gpu_type", "skipped", f"no GPU reading or no description of {gpu_type}; type not compared")
    want_cc = _capability(str(info.get("compute_capability", "")))
    want_gib = float(info.get("memory_gib") or 0)
    gpu = gpus[0]
    have_gib = gpu.memory_total_mib / 1024
    problems = []
    if want_cc and gpu.compute_capability and gpu.compute_capability != want_cc:
        problems.append(f"compute capability {'.'.join(map(str, gpu.compute_capability))}, not "
                        f"{'.'.join(map(str, want_cc))}")
    if want_gib and have_gib and abs(have_gib - want_gib) > 0.15 * want_gib:
        problems.append(f"{have_gib:.0f} GiB per GPU, not about {want_gib:.0f} GiB")
    if problems:
        return Check("gpu_type", "warning", f"GPU type {gpu_type} ({info.get('name', gpu_type)}) was planned, but "
                                            f"{gpu.name} has {' and '.join(problems)}: set GPU_TYPE (or "
                                            f"cluster_config.yaml launcher.gpu_type) to this node's type")
    return Check("gpu_type", "ok", f"{gpu.name} matches {gpu_type}")


def check_checkpoint(identity: Mapping[str, Any], repo_id: str | None, revision: str | None,
                     profile: str) -> Check:
    """Whether the model folder holds the checkpoint the profile was tuned for (a warning when not: the
    numbers will not be comparable with the profile's)."""
    from llmb_plugin_deepseek_r1.weights.identity import identity_mismatch

    why = identity_mismatch(dict(identity), repo_id, revision)
    if why:
        return Check("checkpoint", "warning", f"{why} (profile {profile}): set MODEL_REPO/MODEL_REVISION to what "
                                              f"the folder holds, or MODEL_PATH to a folder with {repo_id}")
    held = identity.get("repo_id") or "an unnamed checkpoint"
    rev = f" at {identity['revision']}" if identity.get("revision") else ""
    return Check("checkpoint", "ok", f"{held}{rev} ({identity.get('source')}); profile {profile} expects {repo_id}")


def is_image_file(image: str) -> bool:
    """A path to a squashfs file (pyxis also accepts registry URIs, which it pulls itself)."""
    return image.startswith("/") or image.startswith("./") or image.endswith(".sqsh")


def check_image(image: str, runtime: str) -> Check:
    if runtime != "pyxis":
        return Check("image", "skipped", f"runtime {runtime}: no image file to check")
    if not is_image_file(image):
        return Check("image", "skipped", f"{image} is a registry URI: pyxis pulls it at start")
    path = Path(image)
    if not path.is_file():
        return Check("image", "failed", f"container image {image} does not exist: run setup (llmb-run setup -w "
                                        f"inference_deepseek-r1) or set RUN_CONF_IMAGE")
    if not os.access(path, os.R_OK):
        return Check("image", "failed", f"container image {image} is not readable by this user")
    return Check("image", "ok", f"{image} ({path.stat().st_size / 2**30:.1f} GiB)")
