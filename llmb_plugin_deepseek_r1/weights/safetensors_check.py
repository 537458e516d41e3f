"""Structural check of one ``.safetensors`` file from its header alone (never reads tensor data).

A safetensors file is ``u64 little-endian N`` + ``N bytes of JSON`` + the tensors' bytes. Every way a
download goes wrong shows up here: a Git LFS pointer instead of data, a zero-filled or cut-off file, a
file with bytes appended, or a header that does not describe its own data.
"""

from __future__ import annotations

import json
import math
import operator
import os
import struct
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from itertools import chain
from typing import Any, TypeVar

from .report import Problem

# Bits per element, as the safetensors format (0.6+) names its dtypes; sub-byte types pack.
DTYPE_BITS: dict[str, int] = {
    "BOOL": 8,
    "U8": 8,
    "I8": 8,
    "F8_E4M3": 8,
    "F8_E5M2": 8,
    "F8_E8M0": 8,
    "F4": 4,
    "F6_E2M3": 6,
    "F6_E3M2": 6,
    "I16": 16,
    "U16": 16,
    "F16": 16,
    "BF16": 16,
    "I32": 32,
    "U32": 32,
    "F32": 32,
    "C64": 64,
    "I64": 64,
    "U64": 64,
    "F64": 64,
}

LFS_PREFIX = b"version https://git-lfs"
# The reference implementation refuses headers above 100 MB; a bigger "length" is garbage, not a header.
MAX_HEADER_BYTES = 100_000_000
EXAMPLES = 3
PARALLEL_MIN_SHARDS = 16
MAX_FORKS = 8  # 80 headers: beyond 8 processes the forking costs more than it saves
MASK64 = (1 << 64) - 1
T = TypeVar("T")


@dataclass
class ShardInfo:
    """What the header of one shard says (its tensor names as a digest, so it pickles small), and what is wrong."""

    name: str
    size: int
    names_digest: tuple[int, int] = (0, 0)
    n_tensors: int = 0
    header_ok: bool = False
    problems: list[Problem] = field(default_factory=list)


def names_digest(names: Iterable[str]) -> tuple[int, int]:
    """Order-independent fingerprint of a set of tensor names: (count, sum of their str hashes mod 2**64).

    str hashes are already cached on dict keys, so this costs almost nothing; they are only comparable within
    one process and its forks (the hash seed), which is all we need. Equal fingerprints are trusted; unequal
    ones are explained by comparing the real sets, so a fingerprint can never hide a difference it saw.
    """
    if not isinstance(names, (dict, set, frozenset, list, tuple)):
        names = list(names)
    count = len(names)
    total = sum(map(hash, names))
    return count, total & MASK64


def parse_lfs_pointer(data: bytes) -> tuple[str | None, int | None]:
    """(sha256, size) from a Git LFS pointer's text; (None, None) where a field is missing."""
    oid: str | None = None
    size: int | None = None
    for line in data.decode("utf-8", "replace").splitlines():
        key, _, value = line.partition(" ")
        if key == "oid" and value.startswith("sha256:"):
            oid = value[len("sha256:") :].strip().lower()
        elif key == "size" and value.strip().isdigit():
            size = int(value.strip())
    return oid, size


def lfs_pointer_detail(data: bytes) -> str:
    """The user-facing sentence for a file that is an LFS pointer rather than the file itself."""
    oid, size = parse_lfs_pointer(data)
    what = f" for {size} bytes (sha256 {oid[:12]}...)" if oid and size is not None else ""
    return (
        f"Git LFS pointer text{what}, not the real file: the clone skipped LFS content; run `git lfs pull` "
        "in the folder or download the file properly"
    )


def _examples(names: list[str]) -> str:
    shown = ", ".join(sorted(names)[:EXAMPLES])
    return shown + (f" (+{len(names) - EXAMPLES} more)" if len(names) > EXAMPLES else "")


def inspect_shard(path: str, name: str, size: int) -> ShardInfo:
    """Read the header of ``path`` (``size`` bytes on disk) and check it against the file."""
    info = ShardInfo(name=name, size=size)

    def bad(kind: str, detail: str) -> ShardInfo:
        info.problems.append(Problem(name, kind, detail))
        return info

    try:
        with open(path, "rb", buffering=0) as f:
            head = f.read(8)  # the length prefix, then exactly the header: never a byte of tensor data
            if head == LFS_PREFIX[:8]:
                head += f.read(1024)
                if head.startswith(LFS_PREFIX):
                    return bad("lfs_pointer", lfs_pointer_detail(head))
            if len(head) < 8:
                return bad("truncated", f"file is {size} bytes, shorter than the 8-byte header length")
            (hlen,) = struct.unpack("<Q", head[:8])
            if hlen == 0:
                zeros = " (the file starts with zero bytes: an unfinished or preallocated download?)"
                return bad("bad_header", "header length is 0" + zeros)
            if hlen > MAX_HEADER_BYTES:
                return bad(
                    "bad_header",
                    f"header length {hlen} is not plausible (at most {MAX_HEADER_BYTES}): not a safetensors file",
                )
            if 8 + hlen > size:
                return bad(
                    "truncated",
                    f"file is {size} bytes but its header alone needs {8 + hlen} bytes (cut off inside the header)",
                )
            f.seek(8)
            raw = f.read(hlen)
            while len(raw) < hlen and (more := f.read(hlen - len(raw))):
                raw += more
            if len(raw) < hlen:
                return bad(
                    "truncated", f"file ended while reading its {hlen}-byte header (file changed while checked?)"
                )
    except OSError as exc:
        return bad("unreadable", f"cannot read: {exc.strerror or exc}")
    return _check_header(info, raw, hlen)


def _columns(header: dict[str, Any]) -> tuple[list[str], list[str], list[int], list[int], list[int], list[str]]:
    """(names, dtypes, element counts, begins, ends, malformed names) of the tensor entries.

    The common case (every entry well formed) is checked column-wise with C-level builtins, which is what
    keeps 80 headers of ~2,500 tensors each well inside the one-second budget; anything odd falls back to
    a per-entry loop that names the bad entries.
    """
    names = list(header)
    vals = list(header.values())
    try:
        dtypes = [v["dtype"] for v in vals]
        shapes = [v["shape"] for v in vals]
        offs = [v["data_offsets"] for v in vals]
        # min() raises TypeError on a str/None/list among ints; prod() of a float dim is a float
        counts = list(map(math.prod, shapes))
        fast = (
            set(map(type, dtypes)) <= {str}
            and set(map(type, shapes)) <= {list}
            and set(map(type, counts)) <= {int}
            and min(chain.from_iterable(shapes), default=0) >= 0
            and set(map(type, offs)) <= {list}
            and set(map(len, offs)) <= {2}
            and set(map(type, chain.from_iterable(offs))) <= {int}
        )
    except (KeyError, TypeError, ValueError):
        fast = False
    if fast:
        begins = [o[0] for o in offs]
        ends = [o[1] for o in offs]
        if min(begins, default=0) >= 0 and not any(map(operator.gt, begins, ends)):
            return names, dtypes, counts, begins, ends, []
    good_names: list[str] = []
    dtypes, counts, begins, ends, malformed = [], [], [], [], []
    for tname, t in header.items():
        try:
            dtype, shape = t["dtype"], t["shape"]
            begin, end = t["data_offsets"]
            if dtype.__class__ is not str or shape.__class__ is not list:
                raise TypeError
            if any(d.__class__ is not int or d < 0 for d in shape):
                raise TypeError
            if begin.__class__ is not int or end.__class__ is not int or not 0 <= begin <= end:
                raise TypeError
        except (KeyError, TypeError, ValueError):
            malformed.append(tname)
            continue
        good_names.append(tname)
        dtypes.append(dtype)
        counts.append(math.prod(shape))
        begins.append(begin)
        ends.append(end)
    return good_names, dtypes, counts, begins, ends, malformed


def _check_header(info: ShardInfo, raw: bytes, hlen: int) -> ShardInfo:
    """Validate the JSON header: tensor entries, dtype x shape, contiguous in-bounds ranges, file size."""
    name = info.name

    def bad(kind: str, detail: str) -> ShardInfo:
        info.problems.append(Problem(name, kind, detail))
        return info

    if not raw.lstrip()[:1] == b"{":
        return bad("bad_header", "header does not start with '{': not a safetensors file")
    try:
        header = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        return bad("bad_header", f"header is not valid JSON: {exc}")
    if not isinstance(header, dict):
        return bad("bad_header", "header is not a JSON object")
    meta = header.pop("__metadata__", None)
    if meta is not None and not (isinstance(meta, dict) and all(isinstance(v, str) for v in meta.values())):
        return bad("bad_header", "__metadata__ is not a map of strings")

    names, dtypes, counts, begins, ends, malformed = _columns(header)
    if malformed:
        bad(
            "bad_header",
            f"{len(malformed)} tensor entries lack a valid dtype/shape/data_offsets: {_examples(malformed)}",
        )
    bits = list(map(DTYPE_BITS.get, dtypes))
    if None in bits:
        unknown: dict[str, list[str]] = {}
        for tname, dtype, b in zip(names, dtypes, bits, strict=True):
            if b is None:
                unknown.setdefault(dtype, []).append(tname)
        for dtype, tnames in sorted(unknown.items()):
            bad("unknown_dtype", f"dtype {dtype!r} (not one of {', '.join(DTYPE_BITS)}) in {_examples(tnames)}")
    nbits = list(map(operator.mul, counts, [b or 0 for b in bits] if None in bits else bits))
    span_bits = [(e - b) * 8 for b, e in zip(begins, ends, strict=True)]
    wrong = []
    if any(map(operator.ne, nbits, span_bits)):
        wrong = [
            (tname, dt, c, e - s)
            for tname, dt, c, b, s, e in zip(names, dtypes, counts, bits, begins, ends, strict=True)
            if b is not None and c * b != (e - s) * 8
        ]
    if wrong:
        tname, dt, c, nbytes = min(wrong)
        bad(
            "tensor_size_mismatch",
            f"{len(wrong)} tensors whose byte range does not match dtype x shape: {_examples([w[0] for w in wrong])} "
            f"(e.g. {tname}: {c} x {dt} in {nbytes} bytes)",
        )
    order = sorted(range(len(begins)), key=begins.__getitem__)
    sb = [begins[i] for i in order]
    se = [ends[i] for i in order]
    if sb and (sb[0] != 0 or not all(map(operator.eq, se[:-1], sb[1:]))):
        holes: list[str] = []
        expected_at = 0
        for i in order:
            if begins[i] != expected_at:
                what = (
                    "overlaps the previous tensor"
                    if begins[i] < expected_at
                    else f"leaves a {begins[i] - expected_at}-byte gap"
                )
                holes.append(f"{names[i]} at {begins[i]} {what}")
            expected_at = max(expected_at, ends[i])
        more = f" (+{len(holes) - EXAMPLES} more)" if len(holes) > EXAMPLES else ""
        bad("bad_offsets", f"tensor byte ranges are not contiguous: {'; '.join(holes[:EXAMPLES])}{more}")
    expected_size = 8 + hlen + max(ends, default=0)
    if info.size < expected_size:
        bad(
            "truncated",
            f"file is {info.size} bytes, its header says {expected_size} (short by {expected_size - info.size} bytes: "
            "an interrupted download?)",
        )
    elif info.size > expected_size:
        bad(
            "padded",
            f"file is {info.size} bytes, its header says {expected_size} ({info.size - expected_size} extra bytes)",
        )
    info.names_digest = names_digest(header)
    info.n_tensors = len(header)
    info.header_ok = not malformed
    return info


def read_tensor_names(path: str) -> set[str]:
    """The tensor names in a shard's header (for explaining a mismatch; the header was already validated)."""
    with open(path, "rb") as f:
        (hlen,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(hlen))
    header.pop("__metadata__", None)
    return set(header)


def _inspect_chunk(chunk: list[tuple[str, str, int]]) -> list[ShardInfo]:
    return [inspect_shard(path, name, size) for path, name, size in chunk]


def usable_cores() -> int:
    """Cores this process may run on (a Slurm job's cgroup/affinity, not the whole node)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _can_fork() -> bool:
    """Forking is cheap and safe only in a single-threaded, non-daemon process on a platform that has fork."""
    import multiprocessing as mp

    return "fork" in mp.get_all_start_methods() and threading.active_count() == 1 and not mp.current_process().daemon


def inspect_many(
    items: list[tuple[str, str, int]], workers: int | None, meanwhile: Callable[[], T]
) -> tuple[list[ShardInfo], T]:
    """Inspect ``(path, name, size)`` shards on ``workers`` forked processes (default: the usable cores when
    there are enough shards to pay for it), running ``meanwhile()`` in this process while they work.

    Returns the infos in input order and what ``meanwhile`` returned.
    """
    auto = min(usable_cores(), MAX_FORKS) if len(items) >= PARALLEL_MIN_SHARDS else 1
    n = workers if workers is not None else auto
    n = min(n, len(items))
    done: list[T] = []

    def run_meanwhile() -> None:
        if not done:
            done.append(meanwhile())

    if n > 1 and _can_fork():
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        # interleave so that each worker gets a similar share of (similar-sized) headers
        chunks = [items[i::n] for i in range(n)]
        try:
            with ProcessPoolExecutor(max_workers=n, mp_context=mp.get_context("fork")) as pool:
                futures = [pool.submit(_inspect_chunk, c) for c in chunks]
                run_meanwhile()
                results = [f.result() for f in futures]
            by_name = {info.name: info for r in results for info in r}
            return [by_name[name] for _p, name, _s in items], done[0]
        except (OSError, RuntimeError):  # no processes to be had (limits, sandbox, broken pool): do it here
            pass
    run_meanwhile()
    return _inspect_chunk(items), done[0]
