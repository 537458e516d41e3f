"""Small, real checkpoint folders for the weight-checker tests (written with the safetensors library)."""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

QUANT_ALGO = {"nvfp4": "NVFP4", "fp8": "FP8"}
SMALL_FILES = ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json")


def _shard_tensors(shard: int, per_shard: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """A mix of dtypes like an NVFP4 layer: packed uint8 weights, fp32 scales, fp16 norms, int64 ids."""
    out: dict[str, np.ndarray] = {}
    for i in range(per_shard):
        layer = f"model.layers.{shard * per_shard + i}"
        out[f"{layer}.mlp.weight"] = rng.integers(0, 255, size=(8, 16), dtype=np.uint8)
        out[f"{layer}.mlp.weight_scale"] = rng.random((8, 2), dtype=np.float32)
        out[f"{layer}.norm.weight"] = rng.random(16).astype(np.float16)
    out[f"model.extra_{shard}.ids"] = np.arange(5, dtype=np.int64)
    out[f"model.extra_{shard}.mask"] = np.array([True, False, True])
    return out


def write_json(path: Path, obj: object) -> None:
    path.write_text(json.dumps(obj, indent=1))


def make_checkpoint(
    root: Path, *, shards: int = 3, single: bool = False, dtype: str = "nvfp4", per_shard: int = 2, seed: int = 0
) -> Path:
    """A checkpoint folder: the required JSON files plus one shard (``single``) or ``shards`` with an index."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    write_json(root / "config.json", {"architectures": ["DeepseekV3ForCausalLM"], "model_type": "deepseek_v3"})
    write_json(root / "generation_config.json", {"do_sample": True, "temperature": 0.6})
    write_json(root / "tokenizer.json", {"version": "1.0", "model": {"type": "BPE", "vocab": {"a": 0, "b": 1}}})
    write_json(root / "tokenizer_config.json", {"model_max_length": 163840})
    if dtype in QUANT_ALGO:
        write_json(
            root / "hf_quant_config.json",
            {"producer": {"name": "modelopt"}, "quantization": {"quant_algo": QUANT_ALGO[dtype], "group_size": 16}},
        )
    if single:
        save_file(_shard_tensors(0, per_shard, rng), str(root / "model.safetensors"), metadata={"format": "pt"})
        return root
    weight_map: dict[str, str] = {}
    total = 0
    for s in range(shards):
        name = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
        tensors = _shard_tensors(s, per_shard, rng)
        save_file(tensors, str(root / name), metadata={"format": "pt"})
        weight_map.update({t: name for t in tensors})
        total += sum(a.nbytes for a in tensors.values())
    write_json(root / "model.safetensors.index.json", {"metadata": {"total_size": total}, "weight_map": weight_map})
    return root


def shard_names(root: Path) -> list[str]:
    return sorted(p.name for p in root.glob("*.safetensors"))


def read_header(path: Path) -> tuple[int, dict]:
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    return n, json.loads(data[8 : 8 + n])


def rewrite_header(path: Path, header: dict) -> None:
    """Replace a shard's header, keeping its data bytes: for corruptions the library refuses to write."""
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    body = data[8 + n :]
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + body)


def lfs_pointer_text(content: bytes) -> bytes:
    """What `git lfs` stores in git (and leaves in the working tree when the content was never pulled)."""
    sha = hashlib.sha256(content).hexdigest()
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha}\nsize {len(content)}\n".encode()


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_raw_shard(path: Path, tensors: dict[str, tuple[str, list[int], int]], *, fill: int = 7) -> None:
    """A safetensors file built by hand, for dtypes numpy cannot express: {name: (dtype, shape, nbytes)}."""
    header: dict[str, object] = {}
    offset = 0
    for name, (dtype, shape, nbytes) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + bytes([fill]) * offset)


def make_sparse_official(root: Path, *, shards: int = 80, shard_bytes: int = 395 * (1 << 30) // 80) -> Path:
    """The official layout's shape (80 shards, ~395 GiB) as sparse files: real headers, no real data."""
    make_checkpoint(root, shards=1)
    (root / "model-00001-of-00001.safetensors").unlink()
    weight_map = {}
    for s in range(1, shards + 1):
        name = f"model-{s:05d}-of-{shards:05d}.safetensors"
        tensor = f"model.layers.{s}.mlp.experts.weight"
        raw = json.dumps({tensor: {"dtype": "U8", "shape": [shard_bytes], "data_offsets": [0, shard_bytes]}}).encode()
        with open(root / name, "wb") as f:
            f.write(struct.pack("<Q", len(raw)) + raw)
            f.truncate(8 + len(raw) + shard_bytes)
        weight_map[tensor] = name
    write_json(root / "model.safetensors.index.json", {"metadata": {}, "weight_map": weight_map})
    return root
