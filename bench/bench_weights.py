"""Benchmark of the weight checker, printed as ratios against its targets and references.

1. quick mode over a layout of the official size: 80 shards summing to about 395 GiB, made as sparse files
   with valid headers (~2,400 NVFP4-style tensors each, ~190k in the index, like DeepSeek-R1-FP4);
   target: under 1 s (in-process and for the whole CLI command);
2. quick mode over DeepSeek-R1's own FP8 layout: 163 sparse shards, about 642 GiB, ~91k FP8 tensors with their
   F32 block scales, and the same layout cut to 41 shards to show the growth; target: under 0.5 s for the whole
   CLI command (`verify-weights --dtype fp8`) at 163 shards, linear growth;
3. full mode over a few GB of real (non-sparse) data: throughput vs coreutils `sha256sum` on the same files
   (target: at least 5x), and a second run over unchanged files (target: close to zero).

    python bench/bench_weights.py [--workdir DIR] [--full-gib 4] [--files 8] [--skip-full] [--skip-fp8] [--keep]

Everything is written under a temporary folder (default: beside the system temp dir) and removed after.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

from llmb_plugin_deepseek_r1.tuning import bulk_work
from llmb_plugin_deepseek_r1.weights import check_weights

GIB = 1 << 30
SHARDS = 80
TARGET_TOTAL = 395 * GIB


def _expert_tensors(layer: int, expert: int) -> list[tuple[str, str, list[int]]]:
    """One MoE expert of an NVFP4 checkpoint: packed FP4 weights, FP8 block scales, two FP32 scalars."""
    out = []
    for proj, (rows, cols) in (("gate_proj", (2048, 7168)), ("up_proj", (2048, 7168)), ("down_proj", (7168, 2048))):
        base = f"model.layers.{layer}.mlp.experts.{expert}.{proj}"
        out.append((f"{base}.weight", "U8", [rows, cols // 2]))
        out.append((f"{base}.weight_scale", "F8_E4M3", [rows, cols // 16]))
        out.append((f"{base}.weight_scale_2", "F32", []))
        out.append((f"{base}.input_scale", "F32", []))
    return out


def _nbytes(dtype: str, shape: list[int]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n * {"U8": 1, "F8_E4M3": 1, "F32": 4}[dtype]


def write_shards(root: Path, shards: int, of: str, per_shard: int,
                 tensors: Callable[[int, int], list[tuple[str, str, list[int]]]]) -> None:
    """``shards`` sparse shards of ``per_shard`` data bytes with real headers (experts from ``tensors``, layer by
    layer), named ``model-NNNNN-of-<of>.safetensors``, and the index that maps every tensor to its shard."""
    root.mkdir(parents=True)
    weight_map: dict[str, str] = {}
    layer, expert = 3, 0
    for s in range(1, shards + 1):
        name = f"model-{s:05d}-of-{of}.safetensors"
        header: dict[str, object] = {"__metadata__": {"format": "pt"}}
        offset = 0
        while offset < per_shard:
            for tname, dtype, shape in tensors(layer, expert):
                n = _nbytes(dtype, shape)
                header[tname] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + n]}
                weight_map[tname] = name
                offset += n
            expert += 1
            if expert == 256:
                layer, expert = layer + 1, 0
        raw = json.dumps(header, separators=(",", ":")).encode()
        raw += b" " * (-len(raw) % 8)
        with open(root / name, "wb") as f:
            f.write(struct.pack("<Q", len(raw)) + raw)
            f.truncate(8 + len(raw) + offset)
    (root / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": 0}, "weight_map": weight_map}, indent=2)
    )


def make_official_layout(root: Path) -> None:
    """80 sparse shards with real headers, the index and the small files: ~395 GiB apparent, ~50 MB real."""
    write_shards(root, SHARDS, f"{SHARDS:05d}", TARGET_TOTAL // SHARDS, _expert_tensors)
    (root / "config.json").write_text(json.dumps({"architectures": ["DeepseekV3ForCausalLM"]}))
    (root / "generation_config.json").write_text("{}")
    (root / "tokenizer_config.json").write_text("{}")
    (root / "tokenizer.json").write_text(json.dumps({"model": {"vocab": {f"t{i}": i for i in range(129280)}}}))
    (root / "hf_quant_config.json").write_text(json.dumps({"quantization": {"quant_algo": "NVFP4"}}))


FP8_SHARDS, FP8_TOTAL, FP8_TARGET_S = 163, 642 * GIB, 0.5
_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}  # as installed code runs: .pyc


def _fp8_expert_tensors(layer: int, expert: int) -> list[tuple[str, str, list[int]]]:
    """One MoE expert of DeepSeek-R1's FP8 release: FP8 weights and F32 128x128 block scales (scale_inv)."""
    out = []
    for proj, (rows, cols) in (("gate_proj", (2048, 7168)), ("up_proj", (2048, 7168)), ("down_proj", (7168, 2048))):
        base = f"model.layers.{layer}.mlp.experts.{expert}.{proj}"
        out.append((f"{base}.weight", "F8_E4M3", [rows, cols]))
        out.append((f"{base}.weight_scale_inv", "F32", [rows // 128, cols // 128]))
    return out


def make_fp8_layout(root: Path, shards: int = FP8_SHARDS) -> None:
    """DeepSeek-R1's FP8 layout (sparse shards of its shard size), with ``shards`` shards, index and small files."""
    write_shards(root, shards, f"{shards:06d}", FP8_TOTAL // FP8_SHARDS, _fp8_expert_tensors)
    quant = {"quant_method": "fp8", "fmt": "e4m3", "activation_scheme": "dynamic", "weight_block_size": [128, 128]}
    (root / "config.json").write_text(json.dumps({"architectures": ["DeepseekV3ForCausalLM"],
                                                  "quantization_config": quant}))
    (root / "generation_config.json").write_text("{}")
    (root / "tokenizer_config.json").write_text("{}")
    (root / "tokenizer.json").write_text(json.dumps({"model": {"vocab": {f"t{i}": i for i in range(129280)}}}))


def bench_fp8_quick(work: Path, runs: int = 5) -> bool:
    rows = []
    for shards in (FP8_SHARDS // 4, FP8_SHARDS):
        root = work / f"DeepSeek-R1-fp8-{shards}"
        make_fp8_layout(root, shards)
        tensors = len(json.loads((root / "model.safetensors.index.json").read_text())["weight_map"])
        apparent = sum(p.stat().st_size for p in root.iterdir())
        argv = [sys.executable, "-m", "llmb_plugin_deepseek_r1", "verify-weights", "--dtype", "fp8", str(root)]
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            done = subprocess.run(argv, capture_output=True, text=True, check=False, env=_ENV)
            times.append(time.perf_counter() - t)
            assert done.returncode == 0, done.stdout + done.stderr
        rows.append((shards, tensors, apparent, sorted(times)[len(times) // 2], min(times)))
    print("quick mode, DeepSeek-R1 FP8 layout (whole CLI command `verify-weights --dtype fp8`):")
    for shards, tensors, apparent, median, best in rows:
        print(f"  {shards:>4} shards  {tensors:>6} tensors  {apparent / GIB:6.1f} GiB   median {median:.3f} s  "
              f"best {best:.3f} s")
    (s1, _, _, t1, _), (s2, _, _, t2, _) = rows
    print(f"  growth: {s2 / s1:.1f}x the shards took {t2 / t1:.1f}x the time")
    ok = t2 < FP8_TARGET_S
    print(f"  target: {s2} shards < {FP8_TARGET_S} s -> {'met' if ok else 'MISSED'} ({t2:.3f} s, "
          f"ratio target/median = {FP8_TARGET_S / t2:.2f}x)")
    return ok


def bench_quick(work: Path) -> None:
    root = work / "DeepSeek-R1-FP4"
    t = time.perf_counter()
    make_official_layout(root)
    print(f"# made the 80-shard sparse layout in {time.perf_counter() - t:.1f} s")
    apparent = sum(p.stat().st_size for p in root.iterdir())
    tensors = len(json.loads((root / "model.safetensors.index.json").read_text())["weight_map"])
    times = []
    for _ in range(5):
        report = check_weights(root)
        assert report.ok, report.format_text()
        times.append(report.elapsed_s)
    best, worst = min(times), max(times)
    cli_times = []
    for _ in range(3):
        t = time.perf_counter()
        rc = subprocess.run(
            [sys.executable, "-m", "llmb_plugin_deepseek_r1", "verify-weights", str(root)],
            stdout=subprocess.DEVNULL,
            check=False,
        ).returncode
        cli_times.append(time.perf_counter() - t)
        assert rc == 0
    cli = min(cli_times)
    print(f"quick mode: {report.files_checked} files, {apparent / GIB:.1f} GiB apparent, {tensors} tensors")
    print(f"  in-process   best {best:.3f} s  worst {worst:.3f} s   target < 1 s   ratio target/best = {1 / best:.1f}x")
    print(
        f"  CLI command  best {cli:.3f} s  worst {max(cli_times):.3f} s (python start-up included)   "
        f"target < 1 s   ratio target/best = {1 / cli:.1f}x"
    )


def _make_real_checkpoint(root: Path, total_gib: float, files: int) -> list[Path]:
    """A real (non-sparse) checkpoint: ``files`` shards of random bytes, each one U8 tensor, plus the JSON files."""
    root.mkdir(parents=True)
    each = int(total_gib * GIB) // files
    block = bytearray(os.urandom(16 << 20))
    weight_map = {}
    for i in range(files):
        name = f"model-{i + 1:05d}-of-{files:05d}.safetensors"
        tensor = f"model.layers.{i}.mlp.experts.weight"
        raw = json.dumps({tensor: {"dtype": "U8", "shape": [each], "data_offsets": [0, each]}}).encode()
        raw += b" " * (-len(raw) % 8)
        block[:8] = i.to_bytes(8, "little")  # every shard differs, so no layer can dedupe them
        with open(root / name, "wb") as f:
            f.write(struct.pack("<Q", len(raw)) + raw)
            left = each
            while left > 0:
                f.write(block[: min(left, len(block))])
                left -= len(block)
        weight_map[tensor] = name
    (root / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    for small in ("config.json", "generation_config.json", "tokenizer_config.json", "tokenizer.json"):
        (root / small).write_text("{}")
    (root / "hf_quant_config.json").write_text(json.dumps({"quantization": {"quant_algo": "NVFP4"}}))
    return sorted(root.iterdir())


def bench_full(work: Path, total_gib: float, files: int) -> None:
    root = work / "real"
    paths = _make_real_checkpoint(root, total_gib, files)
    total = sum(p.stat().st_size for p in paths)
    sums = shutil.which("sha256sum")
    assert sums, "coreutils sha256sum is needed for the reference"
    # warm the page cache once, then time both over cached data (the disk is not what is compared)
    subprocess.run(["cat", *map(str, paths)], stdout=subprocess.DEVNULL, check=True)
    t = time.perf_counter()
    out = subprocess.run([sums, *(p.name for p in paths)], cwd=root, capture_output=True, text=True, check=True)
    t_ref = time.perf_counter() - t
    mpath = work / "SHA256SUMS"
    mpath.write_text(out.stdout)  # full mode reads `sha256sum` output as a manifest
    cache = work / "cache.json"
    print(f"full mode: {len(paths)} files, {total / GIB:.2f} GiB of real data, {os.cpu_count()} cores, page cache warm")
    print(f"  {'sha256sum (coreutils)':<34} {t_ref:7.3f} s  {total / t_ref / 2**20:7.0f} MiB/s   1.00x")
    runs = (
        ("verify-weights --full, 1 thread", None, 1),
        ("verify-weights --full, no cache", None, None),
        ("verify-weights --full, first run", cache, None),
        ("verify-weights --full, unchanged", cache, None),
    )
    for label, cache_path, workers in runs:
        report = check_weights(
            root,
            full=True,
            manifest=mpath,
            cache_path=cache_path,
            use_cache=cache_path is not None,
            progress=False,
            workers=workers,
        )
        assert report.ok and report.files_hashed + report.files_from_cache == len(paths), report.format_text()
        secs = report.elapsed_s
        print(
            f"  {label:<34} {secs:7.3f} s  {total / secs / 2**20:7.0f} MiB/s  {t_ref / secs:6.1f}x"
            f"   (hashed {report.files_hashed}, from cache {report.files_from_cache})"
        )
    print("  targets: no-cache/first run >= 5x sha256sum; unchanged run close to zero seconds")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workdir", type=Path, default=None, help="where to make the files (default: a temp dir)")
    ap.add_argument("--full-gib", type=float, default=4.0, help="GiB of real data for the full-mode run")
    ap.add_argument("--files", type=int, default=8, help="number of files for the full-mode run")
    ap.add_argument("--skip-full", action="store_true")
    ap.add_argument("--skip-fp8", action="store_true")
    ap.add_argument("--skip-nvfp4", action="store_true")
    ap.add_argument("--keep", action="store_true", help="leave the files in place")
    args = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="llmb-bench-weights-", dir=args.workdir))
    _print_load("before")
    try:
        if not args.skip_nvfp4:
            bench_quick(work)
        if not args.skip_fp8:
            bench_fp8_quick(work)
        if not args.skip_full:
            bench_full(work, args.full_gib, args.files)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    _print_load("after")
    return 0


def _print_load(when: str) -> None:
    """Both targets assume the cores are ours: say so when other work was competing for them."""
    load = os.getloadavg()[0]
    cores = os.cpu_count() or 1
    note = "" if load < 0.5 else f"  WARNING: other work is using ~{load:.1f} of {cores} cores; timings are pessimistic"
    print(f"# load average {when}: {load:.2f}{note}")


if __name__ == "__main__":
    with bulk_work():  # as verify-weights applies it for its duration
        sys.exit(main())
