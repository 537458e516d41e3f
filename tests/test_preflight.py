"""GPU preflight parsing and checks, on real nvidia-smi readings (tests/fixtures/gpu, read off a real H100)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from llmb_plugin_deepseek_r1.job.preflight import (Gpu, check_gpus, check_image, parse_nvidia_smi_csv, query_gpus,
                                               visible)

FIXTURES = Path(__file__).parent / "fixtures" / "gpu"
H100 = FIXTURES / "h100-query-gpu.csv"
GIB = 2**30


def gb200(index: int) -> Gpu:
    return Gpu(index, "NVIDIA GB200", f"GPU-{index}", (10, 0), 189471, 0, 189000, "580.1")


def test_parse_real_h100_reading_with_header_and_units():
    [gpu] = parse_nvidia_smi_csv(H100.read_text())
    assert gpu == Gpu(0, "NVIDIA H100 80GB HBM3", "GPU-47005795-b939-8308-a558-1ed5867c0160", (9, 0), 81559, 0,
                      81079, "580.159.04")


def test_parse_noheader_nounits_and_na():
    text = "0, NVIDIA GB200, GPU-a, 10.0, 189471, 10, 189000, 580.1\n1, NVIDIA GB200, GPU-b, [N/A], 189471, [N/A], [N/A], 580.1\n"
    gpus = parse_nvidia_smi_csv(text)
    assert [g.compute_capability for g in gpus] == [(10, 0), None]
    assert gpus[1].memory_used_mib is None and gpus[1].memory_total_mib == 189471


def test_h100_cannot_run_nvfp4_and_is_too_few_and_too_small():
    gpus = parse_nvidia_smi_csv(H100.read_text())
    checks = {c.name: c for c in check_gpus(gpus, "nvidia-smi", scale=4, dtype="nvfp4", model_bytes=395 * GIB)}
    assert checks["gpu_count"].status == "failed" and "found 1 GPU(s) (NVIDIA H100 80GB HBM3)" in checks[
        "gpu_count"].detail
    assert checks["gpu_architecture"].status == "failed"
    assert "found NVIDIA H100 80GB HBM3 (compute capability 9.0)" in checks["gpu_architecture"].detail
    assert checks["gpu_memory"].status == "failed" and "80 GiB" in checks["gpu_memory"].detail


def test_four_gb200_pass():
    checks = check_gpus([gb200(i) for i in range(4)], "nvidia-smi", scale=4, dtype="nvfp4", model_bytes=395 * GIB)
    assert [(c.name, c.status) for c in checks] == [("gpu_count", "ok"), ("gpu_architecture", "ok"),
                                                    ("gpu_memory", "ok")]


def test_busy_gpu_is_a_warning():
    busy = Gpu(0, "NVIDIA GB200", "GPU-0", (10, 0), 189471, 50000, 139471, "580.1")
    checks = check_gpus([busy] + [gb200(i) for i in range(1, 4)], "x", scale=4, dtype="nvfp4", model_bytes=GIB)
    assert [c.status for c in checks if c.name == "gpu_memory_in_use"] == ["warning"]


def test_no_nvidia_smi_is_skipped(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    gpus, how = query_gpus()
    assert gpus is None and how == "nvidia-smi not found on this node"
    [check] = check_gpus(gpus, how, scale=4, dtype="nvfp4", model_bytes=None)
    assert check.status == "skipped" and "nvidia-smi not found" in check.detail


def test_query_runs_nvidia_smi_with_the_query(tmp_path):
    fake = tmp_path / "nvidia-smi"
    fake.write_text(f"#!/bin/sh\necho \"$@\" > {tmp_path}/args\ntail -n +2 {H100}\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    gpus, how = query_gpus(str(fake))
    assert how == str(fake) and gpus[0].name == "NVIDIA H100 80GB HBM3"
    assert (tmp_path / "args").read_text().split() == [
        "--query-gpu=index,name,uuid,compute_cap,memory.total,memory.used,memory.free,driver_version",
        "--format=csv,noheader,nounits"]


def test_cuda_visible_devices_restricts():
    gpus = [gb200(i) for i in range(8)]
    assert [g.index for g in visible(gpus, "4,5,6,7")] == [4, 5, 6, 7]
    assert [g.index for g in visible(gpus, "GPU-1")] == [1]
    assert len(visible(gpus, None)) == 8


def test_image_checks(tmp_path):
    image = tmp_path / "tensorrt-llm+release+1.0.0rc1.sqsh"
    assert check_image(str(image), "pyxis").status == "failed"
    image.write_bytes(b"hsqs")
    assert check_image(str(image), "pyxis").status == "ok"
    assert check_image("nvcr.io#nvidia/tensorrt-llm/release:1.0.0rc1", "pyxis").status == "skipped"
    assert check_image(str(tmp_path / "missing.sqsh"), "none").status == "skipped"
    if os.geteuid() != 0:  # root reads everything
        image.chmod(0)
        assert check_image(str(image), "pyxis").status == "failed"


def test_nvml_reading_of_the_real_h100(monkeypatch):
    """NVML cannot run here (no GPU): a stand-in pynvml module returns the values NVML gave on the real H100
    (tests/fixtures/gpu/README.md: name, compute capability (9, 0), 85520809984 bytes)."""
    import sys
    import types

    class Memory:
        total, used, free = 85520809984, 0, 85020000000

    fake = types.SimpleNamespace(
        nvmlInit=lambda: None, nvmlShutdown=lambda: None, nvmlSystemGetDriverVersion=lambda: "580.159.04",
        nvmlDeviceGetCount=lambda: 1, nvmlDeviceGetHandleByIndex=lambda i: i,
        nvmlDeviceGetMemoryInfo=lambda h: Memory(), nvmlDeviceGetCudaComputeCapability=lambda h: (9, 0),
        nvmlDeviceGetName=lambda h: b"NVIDIA H100 80GB HBM3",
        nvmlDeviceGetUUID=lambda h: "GPU-47005795-b939-8308-a558-1ed5867c0160")
    monkeypatch.setitem(sys.modules, "pynvml", types.ModuleType("pynvml"))
    sys.modules["pynvml"].__dict__.update(vars(fake))
    from llmb_plugin_deepseek_r1.job.preflight import query_gpus_nvml, query_node_gpus

    [gpu], how = query_gpus_nvml()
    assert how == "NVML" and gpu == parse_nvidia_smi_csv(H100.read_text())[0].__class__(
        0, "NVIDIA H100 80GB HBM3", "GPU-47005795-b939-8308-a558-1ed5867c0160", (9, 0), 81559, 0, 81081,
        "580.159.04")
    gpus, how = query_node_gpus(search_path="/nonexistent")
    assert how == "NVML" and gpus[0].memory_total_mib == 81559  # same as nvidia-smi's reading


def test_neither_nvidia_smi_nor_nvml(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "pynvml", None)  # import fails
    from llmb_plugin_deepseek_r1.job.preflight import query_node_gpus

    gpus, how = query_node_gpus(search_path="/nonexistent")
    assert gpus is None and how == "nvidia-smi not found on this node; nvidia-ml-py (pynvml) is not installed"


def test_gpu_type_is_compared_with_the_planned_type():
    from llmb_plugin_deepseek_r1.job.preflight import check_gpu_type
    from llmb_plugin_deepseek_r1.planning.profiles import gpu_type_info
    from llmb_plugin_deepseek_r1.recipe import load_metadata

    meta = load_metadata()
    h100 = parse_nvidia_smi_csv(H100.read_text())
    assert check_gpu_type(h100, "h100", gpu_type_info(meta, "h100")).status == "ok"
    wrong = check_gpu_type(h100, "b200", gpu_type_info(meta, "b200"))
    assert wrong.status == "warning"
    assert "compute capability 9.0, not 10.0 and 80 GiB per GPU, not about 179 GiB" in wrong.detail
    assert check_gpu_type([gb200(0)], "gb200", gpu_type_info(meta, "gb200")).status == "ok"
    gb300 = check_gpu_type([gb200(0)], "gb300", gpu_type_info(meta, "gb300"))
    assert gb300.status == "warning" and "not 10.3" in gb300.detail
    assert check_gpu_type(None, "gb200", gpu_type_info(meta, "gb200")).status == "skipped"


def test_checkpoint_identity_check(tmp_path):
    from llmb_plugin_deepseek_r1.job.preflight import check_checkpoint

    held = {"repo_id": "nvidia/DeepSeek-R1-FP4", "revision": "abc", "source": "manifest x"}
    assert check_checkpoint(held, "nvidia/DeepSeek-R1-FP4", "main", "25.07").status == "ok"
    warn = check_checkpoint(held, "nvidia/DeepSeek-R1-0528-FP4", "main", "26.05")
    assert warn.status == "warning" and "profile 26.05" in warn.detail and "MODEL_REPO" in warn.detail
    assert check_checkpoint(held, "nvidia/DeepSeek-R1-FP4", "def", "25.07").status == "warning"
    unknown = {"repo_id": None, "revision": None, "source": "nothing in the folder says"}
    assert check_checkpoint(unknown, "nvidia/DeepSeek-R1-FP4", "main", "25.07").status == "ok"
