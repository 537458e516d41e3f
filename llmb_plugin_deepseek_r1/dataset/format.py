"""Fast, streaming writer of synthetic trtllm-bench requests (JSON Lines), with numpy only.

Why it is fast: every allowed token id is pre-encoded once as an 8-byte word (its digits and a comma, padded with
zero bytes). A chunk of requests is one array of word indices: per line, 5 slots for ``{"task_id":N,"input_ids":[``,
one slot per input token and 4 slots for ``],"output_tokens":M}\\n``. The random draws are made straight into that
array (the framing slots are then overwritten, their draws unused), one ``take`` gathers the words and one
``translate`` drops the zero padding. No per-token Python work; memory is bounded by the chunk size.

Semantics (those of TensorRT-LLM's ``prepare_dataset.py --stdout token-norm-dist``): lengths are exact (or
normal(mean, stdev) rounded to the nearest integer and clipped to >= 1), ids are uniform over ``[0, vocab)``
minus the EOS id(s), task ids run 0..N-1, and every line is what ``json.dumps(..., separators=(",", ":"))``
writes (TensorRT-LLM's own separators).

Determinism: three numpy streams (slots, input lengths, output lengths) derive from ``SeedSequence(seed)`` and
are consumed strictly in order, a fixed number of draws per line, so the bytes depend only on the request - not
on chunk size or thread count - and the first N lines of a larger dataset equal the N-request dataset.
"""

from __future__ import annotations

import hashlib
import os
import queue
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np

from .model import MAX_TOKENS, DatasetRequest

PREFIX = b'{"task_id":%d,"input_ids":['
SUFFIX = b'],"output_tokens":%d}\n'
SEPARATOR = b","
#: Framing slots per line (8 bytes each): the prefix fits task ids below 10**15, the suffix OSL below 10**12
#: (DatasetRequest allows at most 10**12 requests and 10**8 tokens).
PREFIX_SLOTS, SUFFIX_SLOTS = 5, 4
FRAME_SLOTS = PREFIX_SLOTS + SUFFIX_SLOTS
#: Slots per chunk: about 2 MB for each of the chunk's arrays; enough to amortise per-chunk overhead.
CHUNK_SLOTS = 1 << 18
_STREAM_SLOTS, _STREAM_ISL, _STREAM_OSL = 0, 1, 2


def encode_words(values: np.ndarray, separator: bytes = b"") -> np.ndarray:
    """Each non-negative int (< 10**7) as a little-endian uint64 holding its ASCII digits, then ``separator``."""
    values = np.asarray(values, dtype=np.int64)
    ndigits = np.ones(values.shape, dtype=np.int64)
    for power in range(1, 7):
        ndigits += values >= 10**power
    words = np.zeros(values.shape, dtype=np.uint64)
    for pos in range(7):
        exponent = ndigits - 1 - pos
        digit = (values // 10 ** np.maximum(exponent, 0)) % 10
        byte = np.where(exponent >= 0, 48 + digit, 0).astype(np.uint64)
        words |= byte << np.uint64(8 * pos)
    if separator:
        words |= np.uint64(separator[0]) << (8 * ndigits).astype(np.uint64)
    return words


@dataclass(frozen=True)
class TokenTable:
    """Words of the allowed ids: ``words[i]`` is ``allowed[i]`` followed by a comma, ``words[n + i]`` without;
    ``lengths[i]`` is the byte length of ``words[i]`` (its non-zero bytes)."""

    allowed: np.ndarray
    words: np.ndarray
    lengths: np.ndarray

    @property
    def n(self) -> int:
        return len(self.allowed)


def word_lengths(words: np.ndarray) -> np.ndarray:
    """Byte length of each zero-padded word (its text is a prefix, the rest zero bytes)."""
    return np.count_nonzero(words.view(np.uint8).reshape(-1, 8), axis=1).astype(np.uint8)


def token_table(vocab_size: int, eos_ids: tuple[int, ...]) -> TokenTable:
    """Table of the ids a prompt may contain: ``[0, vocab_size)`` minus the EOS id(s).

    A uniform draw over this table is a uniform draw over the allowed ids (TensorRT-LLM's script instead
    rewrites a drawn EOS to EOS+1, which makes that one id twice as likely; the set of ids is the same).
    """
    keep = np.ones(vocab_size, dtype=bool)
    keep[list(eos_ids)] = False
    allowed = np.flatnonzero(keep).astype(np.int64)
    words = np.concatenate([encode_words(allowed, SEPARATOR), encode_words(allowed)])
    return TokenTable(allowed=allowed, words=words, lengths=word_lengths(words))


def _padded(texts: list[bytes], slots: int) -> bytes:
    """Each text zero-padded to ``slots`` words, joined."""
    return b"".join(text.ljust(8 * slots, b"\0") for text in texts)


class ChunkFormatter:
    """Turns chunks of slot draws into JSON Lines bytes, reusing its arrays from one chunk to the next.

    ``ext`` is the token words followed by the chunk's framing words. Each selected word is stored, 8 bytes at
    once, at the running sum of the lengths before it: the next word overwrites its zero padding. Every step is
    one numpy call that releases the GIL (take, cumsum, fancy assignment), so formatters run in parallel
    threads. One formatter per thread.
    """

    def __init__(self, table: TokenTable) -> None:
        self.table = table
        self._ext = np.empty(0, dtype=np.uint64)
        self._ext_lengths = np.empty(0, dtype=np.uint8)
        self._index = np.empty(0, dtype=np.intp)
        self._words = np.empty(0, dtype=np.uint64)
        self._lengths = np.empty(0, dtype=np.uint8)
        self._offsets = np.empty(0, dtype=np.int64)

    def _ext_with(self, framing: bytes) -> tuple[np.ndarray, np.ndarray]:
        words = len(self.table.words)
        need = words + len(framing) // 8
        if len(self._ext) < need:
            self._ext = np.empty(need + need // 8, dtype=np.uint64)
            self._ext[:words] = self.table.words
            self._ext_lengths = np.empty(len(self._ext), dtype=np.uint8)
            self._ext_lengths[:words] = self.table.lengths
        self._ext.view(np.uint8)[8 * words:8 * need] = np.frombuffer(framing, dtype=np.uint8)
        self._ext_lengths[words:need] = word_lengths(self._ext[words:need])
        return self._ext[:need], self._ext_lengths[:need]

    def _scratch(self, count: int) -> None:
        if len(self._index) < count:
            size = count + count // 8
            self._index = np.empty(size, dtype=np.intp)
            self._words = np.empty(size, dtype=np.uint64)
            self._lengths = np.empty(size, dtype=np.uint8)
            self._offsets = np.empty(size, dtype=np.int64)

    def format(self, slots: np.ndarray, isl: np.ndarray, osl: np.ndarray, first_task: int,
               out: bytearray) -> memoryview:
        """JSON Lines for requests ``first_task, first_task + 1, ...``, written into ``out`` (at least
        ``8 * len(slots) + 8`` bytes); returns the written part.

        ``slots`` holds ``isl[r] + FRAME_SLOTS`` draws in ``[0, table.n)`` per request, request after request
        (it is modified in place): the token slots keep their draws, the framing slots are overwritten.
        """
        n, rows, count = self.table.n, len(isl), len(slots)
        if len(out) < 8 * count + 8:
            raise ValueError(f"output buffer of {len(out)} bytes is too small for {count} words")
        shared_suffix = bool(np.all(osl == osl[0]))
        prefix = _padded([PREFIX % (first_task + r) for r in range(rows)], PREFIX_SLOTS)
        suffix = _padded([SUFFIX % o for o in (osl[:1] if shared_suffix else osl).tolist()], SUFFIX_SLOTS)
        ext, ext_lengths = self._ext_with(prefix + suffix)
        widths = isl + FRAME_SLOTS
        starts = np.cumsum(widths) - widths
        pre_at = starts[:, None] + np.arange(PREFIX_SLOTS)
        slots[pre_at.ravel()] = 2 * n + np.arange(rows * PREFIX_SLOTS)
        last_token = starts + PREFIX_SLOTS + isl - 1
        slots[last_token] += n  # the last id of a line has no comma after it
        suf_at = (last_token + 1)[:, None] + np.arange(SUFFIX_SLOTS)
        suf_words = 2 * n + rows * PREFIX_SLOTS + np.arange(len(suffix) // 8).reshape(-1, SUFFIX_SLOTS)
        slots[suf_at.ravel()] = np.broadcast_to(suf_words, (rows, SUFFIX_SLOTS)).ravel()
        self._scratch(count)
        index, words = self._index[:count], self._words[:count]
        lengths, offsets = self._lengths[:count], self._offsets[:count]
        index[:] = slots
        ext.take(index, out=words, mode="clip")
        ext_lengths.take(index, out=lengths, mode="clip")
        np.cumsum(lengths, dtype=np.int64, out=offsets)
        size = int(offsets[-1])
        offsets -= lengths
        # One uint64 at every byte offset of ``out`` (overlapping, unaligned): storing word i at offsets[i]
        # writes its text and zero padding; numpy stores a 1-d index in order, so word i + 1 then
        # overwrites that padding.
        at_byte = np.ndarray((len(out) - 7,), dtype=np.uint64, buffer=out, strides=(1,))
        at_byte[offsets] = words
        del at_byte  # release the export so that ``out`` can be resized by its owner
        return memoryview(out)[:size]


def _lengths(rng: np.random.Generator | None, mean: int, stdev: float, count: int) -> np.ndarray:
    """``count`` lengths: exactly ``mean``, or normal(mean, stdev) rounded to nearest and clipped to
    ``[1, MAX_TOKENS]`` (the upper clip only matters for absurd stdevs)."""
    if rng is None:
        return np.full(count, mean, dtype=np.int64)
    return np.clip(np.rint(rng.normal(mean, stdev, count)), 1, MAX_TOKENS).astype(np.int64)


def _rng(seed: int, stream: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64DXSM(np.random.SeedSequence(seed, spawn_key=(stream,))))


@dataclass(frozen=True)
class Chunk:
    """Consecutive requests, drawn but not yet formatted (``slots`` as :meth:`ChunkFormatter.format` wants)."""

    first_task: int
    slots: np.ndarray
    isl: np.ndarray
    osl: np.ndarray


def iter_draws(req: DatasetRequest, n_allowed: int, chunk_slots: int = CHUNK_SLOTS) -> Iterator[Chunk]:
    """The random part of the dataset, chunk after chunk, each stream consumed strictly in order."""
    slots = _rng(req.seed, _STREAM_SLOTS)
    isl_rng = _rng(req.seed, _STREAM_ISL) if req.stdev_in > 0 else None
    osl_rng = _rng(req.seed, _STREAM_OSL) if req.stdev_out > 0 else None
    rows_per_chunk = max(1, chunk_slots // (req.isl + FRAME_SLOTS))
    for first in range(0, req.num_requests, rows_per_chunk):
        rows = min(rows_per_chunk, req.num_requests - first)
        isl = _lengths(isl_rng, req.isl, req.stdev_in, rows)
        osl = _lengths(osl_rng, req.osl, req.stdev_out, rows)
        draws = slots.integers(0, n_allowed, size=int(isl.sum()) + rows * FRAME_SLOTS, dtype=np.int32)
        yield Chunk(first, draws, isl, osl)


@dataclass(frozen=True)
class WriteStats:
    """What was written: byte count, its sha256 and the token totals."""

    size: int
    sha256: str
    total_input_tokens: int
    total_output_tokens: int


def default_workers() -> int:
    """Formatting threads: one per core (formatting releases the GIL), at most four (the draws, sha256 and the
    writes, one thread each, set the pace beyond that)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, 4))


def write_requests(out: BinaryIO, req: DatasetRequest, chunk_slots: int = CHUNK_SLOTS,
                   workers: int | None = None) -> WriteStats:
    """Write the whole dataset to ``out``.

    This thread draws the random numbers (in order); ``workers`` threads format chunks into reusable buffers;
    one thread hashes and another writes each formatted chunk, in order, at the same time. Draws, formatting,
    sha256 and ``write`` all release the GIL, so every core works. At most ``workers + 2`` chunks are alive at a
    time, whatever the request count. The bytes do not depend on ``chunk_slots``/``workers``.
    """
    table = token_table(req.vocab_size, req.eos_ids)
    workers = workers or default_workers()
    formatters: queue.SimpleQueue[ChunkFormatter] = queue.SimpleQueue()
    for _ in range(workers):
        formatters.put(ChunkFormatter(table))
    digest = hashlib.sha256()

    def format_chunk(chunk: Chunk, buffer: bytearray) -> memoryview:
        formatter = formatters.get()
        try:
            return formatter.format(chunk.slots, chunk.isl, chunk.osl, chunk.first_task, buffer)
        finally:
            formatters.put(formatter)

    def hash_chunk(formatted: Future[memoryview]) -> int:
        data = formatted.result()
        digest.update(data)
        return len(data)

    def write_chunk(formatted: Future[memoryview]) -> None:
        out.write(formatted.result())

    free: list[bytearray] = []
    pending: deque[tuple[Future[int], Future[None], bytearray]] = deque()
    size = total_in = total_out = 0

    def retire_oldest() -> None:
        nonlocal size
        hashed, written, buffer = pending.popleft()
        size += hashed.result()
        written.result()
        free.append(buffer)

    with ThreadPoolExecutor(workers, thread_name_prefix="dataset-format") as pool, \
            ThreadPoolExecutor(1, thread_name_prefix="dataset-sha256") as hasher, \
            ThreadPoolExecutor(1, thread_name_prefix="dataset-write") as writer:
        try:
            for chunk in iter_draws(req, table.n, chunk_slots):
                total_in += int(chunk.isl.sum())
                total_out += int(chunk.osl.sum())
                while len(pending) >= workers + 2:
                    retire_oldest()
                need = 8 * len(chunk.slots) + 8
                buffer = free.pop() if free else bytearray()
                if len(buffer) < need:  # the first chunks; later ones only with varying lengths
                    buffer = bytearray(need if not pending else need + need // 8)
                formatted = pool.submit(format_chunk, chunk, buffer)
                pending.append((hasher.submit(hash_chunk, formatted), writer.submit(write_chunk, formatted), buffer))
            while pending:
                retire_oldest()
        finally:
            for hashed, written, _ in pending:
                hashed.cancel()
                written.cancel()
    return WriteStats(size=size, sha256=digest.hexdigest(), total_input_tokens=total_in,
                      total_output_tokens=total_out)
