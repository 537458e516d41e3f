"""Quick mode: the folder's layout, index, shard headers and quantization, from metadata only.

Everything here reads at most a few KiB per file (plus the shard headers and the index), so that it can run
as the first step of every benchmark job and finish in well under a second for the 395 GiB checkpoint.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from .quant import QUANT_CONFIG, check_quantization, needs_quant_config
from .report import Problem
from .safetensors_check import (
    LFS_PREFIX,
    MASK64,
    ShardInfo,
    inspect_many,
    lfs_pointer_detail,
    read_tensor_names,
)

INDEX = "model.safetensors.index.json"
SINGLE = "model.safetensors"
BASE_REQUIRED = ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json")

SHARD_RE = re.compile(r"^(?P<prefix>.+)-(?P<num>\d{5})-of-(?P<total>\d{5})\.safetensors$")
GIB = 1 << 30
OFFICIAL = {"nvfp4": (80, 395 * GIB)}  # dtype -> (shards, bytes) of the checkpoint setup downloads
SIZE_TOLERANCE = 0.05
FULL_PARSE_LIMIT = 1 << 20  # JSON files above this (tokenizer.json) are checked for a complete object, not parsed


@dataclass
class QuickResult:
    """Quick-mode findings plus what full mode needs to reuse (file sizes, which files already failed)."""

    problems: list[Problem] = field(default_factory=list)
    sizes: dict[str, int] = field(default_factory=dict)  # relative name -> bytes, every file looked at
    shards: dict[str, ShardInfo] = field(default_factory=dict)

    @property
    def total_bytes(self) -> int:
        return sum(self.sizes.values())


def _listing(model_dir: Path) -> dict[str, os.DirEntry[str]]:
    with os.scandir(model_dir) as it:
        return {e.name: e for e in it}


def _size(entry: os.DirEntry[str] | None) -> int | None:
    """Size following symlinks; None when absent, a broken link or not a regular file."""
    if entry is None:
        return None
    try:
        st = entry.stat()
    except OSError:
        return None
    return st.st_size if not entry.is_dir() else None


def _absent_detail(model_dir: Path, name: str, entry: os.DirEntry[str] | None, what: str) -> str:
    """Why a file is absent, with a hint when a download of it was interrupted."""
    if entry is not None and entry.is_symlink():
        detail = f"{what} is a broken symlink (to {os.readlink(entry.path)}): its download did not finish"
    elif entry is not None and entry.is_dir():
        detail = f"{what} is a directory, not a file"
    else:
        detail = f"{what} is absent"
    part = model_dir / ".cache" / "huggingface" / "download" / (name + ".incomplete")
    try:
        detail += f" (an interrupted download left {part.stat().st_size} bytes in {part.relative_to(model_dir)})"
    except OSError:
        pass
    return detail


def _read_json(model_dir: Path, name: str, entry: os.DirEntry[str] | None, res: QuickResult) -> object | None:
    """Load one of the checkpoint's JSON files, recording what is wrong with it; None when unusable."""
    size = _size(entry)
    if size is None:
        res.problems.append(Problem(name, "missing_file", _absent_detail(model_dir, name, entry, "required file")))
        return None
    res.sizes[name] = size
    path = model_dir / name
    kind = "bad_index" if name == INDEX else "bad_json"
    try:
        with open(path, "rb") as f:
            if size > FULL_PARSE_LIMIT and name != INDEX:
                head = f.read(64)
                f.seek(max(0, size - 64))
                tail = f.read()
                data = b""
            else:
                data = f.read()
                head = tail = data
    except OSError as exc:
        res.problems.append(Problem(name, "unreadable", f"cannot read: {exc.strerror or exc}"))
        return None
    if head.startswith(LFS_PREFIX):
        res.problems.append(Problem(name, "lfs_pointer", lfs_pointer_detail(head)))
        return None
    if size == 0:
        res.problems.append(Problem(name, kind, "file is empty"))
        return None
    if not data:  # large file: only check that it is one complete JSON object
        if not (head.lstrip()[:1] in (b"{", b"[") and tail.rstrip()[-1:] in (b"}", b"]")):
            res.problems.append(Problem(name, kind, f"{size}-byte file is not one complete JSON value (cut off?)"))
        return None
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        res.problems.append(Problem(name, kind, f"not valid JSON ({exc}); cut off or not the real file?"))
        return None


def _check_shard_sets(names: set[str], missing_reported: set[str]) -> list[Problem]:
    """Shards named ``P-XXXXX-of-YYYYY`` must form complete sets of YYYYY files."""
    groups: dict[str, dict[int, set[int]]] = {}
    for n in names:
        m = SHARD_RE.match(n)
        if m:
            groups.setdefault(m["prefix"], {}).setdefault(int(m["total"]), set()).add(int(m["num"]))
    problems: list[Problem] = []
    for prefix, by_total in sorted(groups.items()):
        main_total = max(by_total, key=lambda t: (len(by_total[t]), t))
        for total, nums in sorted(by_total.items()):
            if total != main_total:
                for num in sorted(nums):
                    problems.append(
                        Problem(
                            f"{prefix}-{num:05d}-of-{total:05d}.safetensors",
                            "mixed_shard_set",
                            f"belongs to a set of {total}, but the other shards form a set of {main_total}",
                        )
                    )
        nums = by_total[main_total]
        for num in sorted(nums):
            if not 1 <= num <= main_total:
                problems.append(
                    Problem(
                        f"{prefix}-{num:05d}-of-{main_total:05d}.safetensors",
                        "mixed_shard_set",
                        f"shard number {num} is outside 1..{main_total}",
                    )
                )
        for num in range(1, main_total + 1):
            name = f"{prefix}-{num:05d}-of-{main_total:05d}.safetensors"
            if num not in nums and name not in missing_reported:
                problems.append(
                    Problem(
                        name, "incomplete_shard_set", f"shard {num} of {main_total} is absent (and no index names it)"
                    )
                )
    return problems


def _cross_check_tensors(
    model_dir: Path, digests: dict[str, tuple[int, int]], shards: dict[str, ShardInfo], weight_map: dict[str, str]
) -> list[Problem]:
    """Every tensor the index maps to a shard is in that shard's header, and vice versa."""
    problems: list[Problem] = []
    for name, info in sorted(shards.items()):
        if not info.header_ok or info.names_digest == digests.get(name, (0, 0)):
            continue
        want = {t for t, s in weight_map.items() if s == name}
        have = read_tensor_names(str(model_dir / name))
        lacking, extra = want - have, have - want
        parts = []
        if lacking:
            parts.append(f"the index maps {len(lacking)} tensors here that its header lacks: {_ex(lacking)}")
        if extra:
            elsewhere = sorted(t for t in extra if t in weight_map)
            note = f" ({len(elsewhere)} of them the index places in another shard)" if elsewhere else ""
            parts.append(f"its header has {len(extra)} tensors the index does not map here{note}: {_ex(extra)}")
        problems.append(Problem(name, "tensor_mismatch", "; ".join(parts)))
    return problems


def _ex(names: set[str], k: int = 3) -> str:
    shown = sorted(names)[:k]
    return ", ".join(shown) + (f" (+{len(names) - k} more)" if len(names) > k else "")


def _load_index(model_dir: Path, entries: dict[str, os.DirEntry[str]], res: QuickResult) -> dict[str, str] | None:
    """The index's weight_map (tensor -> shard file), or None (with the problem recorded)."""
    index = _read_json(model_dir, INDEX, entries.get(INDEX), res)
    if index is None:
        return None
    wm = index.get("weight_map") if isinstance(index, dict) else None
    if not isinstance(wm, dict) or not all(isinstance(v, str) for v in wm.values()):
        res.problems.append(Problem(INDEX, "bad_index", 'has no "weight_map" of tensor name -> shard file'))
        return None
    odd = {v for v in set(wm.values()) if "/" in v or "\\" in v or v.startswith(".")}
    if odd:
        res.problems.append(Problem(INDEX, "bad_index", f"names shards outside the folder: {_ex(odd)}"))
        return None
    return wm


def _digests_by_shard(weight_map: dict[str, str]) -> dict[str, tuple[int, int]]:
    """names_digest() of the tensors the index maps to each shard, in one pass."""
    counts: dict[str, int] = {}
    sums: dict[str, int] = {}
    for tensor, shard in weight_map.items():
        if shard in sums:
            sums[shard] += hash(tensor)
            counts[shard] += 1
        else:
            sums[shard] = hash(tensor)
            counts[shard] = 1
    return {s: (counts[s], sums[s] & MASK64) for s in sums}


def quick_check(model_dir: Path, dtype: str, workers: int | None = None) -> QuickResult:
    """Run every metadata-only check on ``model_dir`` for ``dtype`` (already validated).

    Shard headers are read on ``workers`` processes (default: all cores for a large checkpoint) while this
    process parses the index.
    """
    res = QuickResult()
    entries = _listing(model_dir)
    single = SINGLE in entries and INDEX not in entries

    config = _read_json(model_dir, "config.json", entries.get("config.json"), res)
    for name in BASE_REQUIRED[1:]:
        _read_json(model_dir, name, entries.get(name), res)
    quant_present = QUANT_CONFIG in entries
    quant = None
    if quant_present or needs_quant_config(dtype, config):
        quant = _read_json(model_dir, QUANT_CONFIG, entries.get(QUANT_CONFIG), res)
    res.problems += check_quantization(dtype, quant, quant_present, config)

    disk_sizes = {n: sz for n, e in entries.items() if n.endswith(".safetensors") and (sz := _size(e)) is not None}
    items = [(str(model_dir / n), n, sz) for n, sz in sorted(disk_sizes.items())]

    def index_work() -> tuple[dict[str, str] | None, dict[str, tuple[int, int]]]:
        wm = None if single else _load_index(model_dir, entries, res)
        return wm, _digests_by_shard(wm) if wm else {}

    infos, (weight_map, digests) = inspect_many(items, workers, meanwhile=index_work)
    on_disk = set(disk_sizes)
    indexed = set(digests)
    if single:
        keep, stray = {SINGLE} & on_disk, on_disk - {SINGLE}
    elif weight_map is not None:
        keep, stray = indexed & on_disk, on_disk - indexed
    else:
        keep, stray = on_disk, set()

    missing: set[str] = set()
    for name in sorted(indexed - on_disk):
        res.problems.append(
            Problem(
                name,
                "missing_shard",
                _absent_detail(model_dir, name, entries.get(name), f"shard holding {digests[name][0]} indexed tensors"),
            )
        )
        missing.add(name)
    for name in sorted(stray):
        why = INDEX if not single else "the single-file layout"
        res.problems.append(
            Problem(name, "unindexed_shard", f"not named by {why}: a leftover of another download or checkpoint")
        )
    res.problems += _check_shard_sets(keep | indexed, missing)

    for info in infos:
        if info.name in keep:
            res.shards[info.name] = info
            res.sizes[info.name] = info.size
            res.problems += info.problems
    if weight_map is not None:
        res.problems += _cross_check_tensors(model_dir, digests, res.shards, weight_map)

    _check_other_files(model_dir, entries, res)
    _check_official_size(dtype, res)
    return res


def _check_other_files(model_dir: Path, entries: dict[str, os.DirEntry[str]], res: QuickResult) -> None:
    """The remaining top-level files (code, licence, docs) must not be LFS pointers either."""
    for name, entry in sorted(entries.items()):
        if name in res.sizes or name.startswith(".") or name.endswith(".safetensors"):
            continue
        size = _size(entry)
        if size is None:
            if entry.is_symlink():
                res.problems.append(Problem(name, "missing_file", _absent_detail(model_dir, name, entry, "file")))
            continue
        res.sizes[name] = size
        try:
            with open(entry.path, "rb") as f:
                head = f.read(256)
        except OSError as exc:
            res.problems.append(Problem(name, "unreadable", f"cannot read: {exc.strerror or exc}"))
            continue
        if head.startswith(LFS_PREFIX):
            res.problems.append(Problem(name, "lfs_pointer", lfs_pointer_detail(head)))


def _check_official_size(dtype: str, res: QuickResult) -> None:
    """For the official checkpoint's shard set, a total far from its known size means the wrong files."""
    if dtype not in OFFICIAL:
        return
    shards, expected = OFFICIAL[dtype]
    names = [n for n in res.shards if (m := SHARD_RE.match(n)) and int(m["total"]) == shards]
    if not names:
        return
    if any(p.kind in {"missing_shard", "incomplete_shard_set", "truncated", "lfs_pointer"} for p in res.problems):
        return  # the deviation is already explained file by file
    total = sum(res.shards[n].size for n in names)
    if abs(total - expected) > SIZE_TOLERANCE * expected:
        res.problems.append(
            Problem(
                ".",
                "size_deviation",
                f"the {len(names)} shards total {total / GIB:.1f} GiB; the official {shards}-shard "
                f"checkpoint is about {expected / GIB:.0f} GiB (tolerance {SIZE_TOLERANCE:.0%})",
            )
        )
