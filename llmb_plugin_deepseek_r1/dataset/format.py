"""Fast, streaming writer of synthetic trtllm-bench requests (JSON Lines), with numpy only.

Why it is fast: every allowed token id is pre-encoded once as an 8-byte word (its digits and a comma, padded with
zero bytes). A chunk of requests is one array of word indices: per line, 5 slots for ``{"task_id":N,"input_ids":[``,
one slot per input token and 4 slots for ``],"output_tokens":M}\\n``. The random draws (:mod:`.draws`) are made
straight into that array (the framing slots are then overwritten, their draws unused), one ``take`` gathers the
words and one fancy assignment stores them, two by two, at their byte offsets, each overwriting the zero padding
of the one before. No per-token Python work; memory is bounded by the chunk size. The bytes are hashed (XXH3,
:mod:`.digest`) and written by one more thread while the next chunks are drawn and formatted.

Semantics (those of TensorRT-LLM's ``prepare_dataset.py --stdout token-norm-dist``): lengths are exact (or
normal(mean, stdev) rounded to the nearest integer and clipped to >= 1), ids are uniform over ``[0, vocab)``
minus the EOS id(s), task ids run 0..N-1, and every line is what ``json.dumps(..., separators=(",", ":"))``
writes (TensorRT-LLM's own separators).

Determinism: three numpy streams (slots, input lengths, output lengths) derive from ``SeedSequence(seed)`` and
are consumed strictly in order, a fixed number of draws per line (:mod:`.draws`), so the bytes depend only on the
request - not on chunk size or thread count - and the first N lines of a larger dataset equal the N-request
dataset.
"""

from __future__ import annotations

import os
import queue
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np

from . import digest as _digest
from .draws import Chunk, iter_draws
from .model import DatasetRequest

PREFIX = b'{"task_id":%d,"input_ids":['
SUFFIX = b'],"output_tokens":%d}\n'
SEPARATOR = b","
#: Framing slots per line (8 bytes each): the prefix fits task ids below 10**15, the suffix OSL below 10**12
#: (DatasetRequest allows at most 10**12 requests and 10**8 tokens).
PREFIX_SLOTS, SUFFIX_SLOTS = 5, 4
FRAME_SLOTS = PREFIX_SLOTS + SUFFIX_SLOTS
#: Slots per chunk: about 2 MB for each of the chunk's arrays; enough to amortise per-chunk overhead.
CHUNK_SLOTS = 1 << 18


def _digit_counts(values: np.ndarray) -> np.ndarray:
    """Decimal digits of each non-negative int (< 10**7), as uint64."""
    ndigits = np.ones(values.shape, dtype=np.uint64)
    for power in range(1, 7):
        ndigits += values >= 10**power
    return ndigits


def encode_words(values: np.ndarray, separator: bytes = b"", ndigits: np.ndarray | None = None) -> np.ndarray:
    """Each non-negative int (< 10**7) as a little-endian uint64 holding its ASCII digits, then ``separator``.

    All seven digit places are written at fixed bytes (each digit by a division by the constant 10, numpy's fast
    path), then one shift per value drops the leading zeros: no per-element divisors, no per-byte work."""
    values = np.asarray(values).astype(np.uint32)
    ndigits = _digit_counts(values) if ndigits is None else ndigits
    words = np.zeros(values.shape, dtype=np.uint64)
    for place in range(7):
        quotient = values // np.uint32(10)
        digit = values - quotient * np.uint32(10) + np.uint32(48)
        words |= digit.astype(np.uint64) << np.uint64(8 * (6 - place))
        values = quotient
    words >>= (np.uint64(7) - ndigits) * np.uint64(8)
    if separator:
        words |= np.uint64(separator[0]) << (np.uint64(8) * ndigits)
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
    The words without a comma are those with it, the comma byte cleared; lengths are digit counts (+1 with it).
    """
    keep = np.ones(vocab_size, dtype=bool)
    keep[list(eos_ids)] = False
    allowed = np.flatnonzero(keep).astype(np.int64)
    ndigits = _digit_counts(allowed)
    with_comma = encode_words(allowed, SEPARATOR, ndigits)
    without = with_comma & ~(np.uint64(0xFF) << (np.uint64(8) * ndigits))
    lengths = np.concatenate([ndigits + np.uint64(1), ndigits]).astype(np.uint8)
    return TokenTable(allowed=allowed, words=np.concatenate([with_comma, without]), lengths=lengths)


def _padded(texts: list[bytes], slots: int) -> bytes:
    """Each text zero-padded to ``slots`` words, joined."""
    return b"".join(text.ljust(8 * slots, b"\0") for text in texts)


class ChunkFormatter:
    """Turns chunks of slot draws into JSON Lines bytes, reusing its arrays from one chunk to the next.

    ``ext`` is the token words (with and without a comma), one empty word for rejected slots, then the chunk's
    framing words. Words are stored two at a time: each pair is packed into 16 bytes (the second word shifted
    past the first one's text) and stored at the running sum of the lengths before it, so the next pair
    overwrites its zero padding. numpy's store at unaligned byte offsets costs the same per item whatever the
    item's size, which is why pairs pay. Every step is one numpy call that releases the GIL (take, shifts,
    cumsum, fancy assignment), so formatters run in parallel threads. One formatter per thread.
    """

    def __init__(self, table: TokenTable) -> None:
        self.table = table
        self.empty_word = len(table.words)
        self._ext = np.empty(0, dtype=np.uint64)
        self._ext_lengths = np.empty(0, dtype=np.uint8)
        self._capacity = -1

    def _ext_with(self, framing: bytes) -> tuple[np.ndarray, np.ndarray]:
        words = self.empty_word + 1
        need = words + len(framing) // 8
        if len(self._ext) < need:
            self._ext = np.empty(need + need // 8, dtype=np.uint64)
            self._ext[:words - 1] = self.table.words
            self._ext[words - 1] = 0
            self._ext_lengths = np.empty(len(self._ext), dtype=np.uint8)
            self._ext_lengths[:words - 1] = self.table.lengths
            self._ext_lengths[words - 1] = 0
        self._ext.view(np.uint8)[8 * words:8 * need] = np.frombuffer(framing, dtype=np.uint8)
        self._ext_lengths[words:need] = word_lengths(self._ext[words:need])
        return self._ext[:need], self._ext_lengths[:need]

    def _scratch(self, count: int) -> None:
        """Arrays for ``count`` words (rounded up to pairs), grown with some headroom, then reused."""
        if self._capacity >= count:
            return
        pairs = (count + count // 8) // 2 + 1
        self._capacity = 2 * pairs
        self._words = np.empty(2 * pairs, dtype=np.uint64)
        self._lengths = np.empty(2 * pairs, dtype=np.uint8)
        self._shifts = np.empty(pairs, dtype=np.uint64)
        self._shifted = np.empty(pairs, dtype=np.uint64)
        self._packed = np.empty((pairs, 2), dtype=np.uint64)
        self._offsets = np.empty(pairs, dtype=np.int64)

    def _store(self, count: int, out: bytearray) -> int:
        """Store the first ``count`` gathered words into ``out``, two at a time; returns the bytes written."""
        pairs = (count + 1) // 2
        words, lengths = self._words[:2 * pairs], self._lengths[:2 * pairs]
        words[count:], lengths[count:] = 0, 0  # an odd count ends with an empty word
        first, second = words[0::2], words[1::2]
        shifts, shifted = self._shifts[:pairs], self._shifted[:pairs]
        packed, offsets = self._packed[:pairs], self._offsets[:pairs]
        np.left_shift(lengths[0::2], 3, out=shifts, dtype=np.uint64, casting="unsafe")  # first's text, in bits
        np.left_shift(second, shifts, out=shifted)  # a shift by 64 (a full first word) gives 0 in numpy
        np.bitwise_or(first, shifted, out=packed[:, 0])
        np.subtract(np.uint64(64), shifts, out=shifts)
        np.right_shift(second, shifts, out=packed[:, 1])  # what did not fit in the low half
        np.add(lengths[0::2], lengths[1::2], out=shifts, dtype=np.uint64, casting="unsafe")  # pair lengths
        offsets[0] = 0  # each pair starts where the ones before it end: an exclusive running sum
        np.cumsum(shifts[:-1], out=offsets[1:].view(np.uint64))
        size = int(offsets[-1]) + int(shifts[-1])
        # One 16-byte item at every byte offset of ``out`` (overlapping, unaligned); numpy stores a 1-d index in
        # order, so pair i + 1 overwrites pair i's padding (an empty word adds only padding).
        at_byte = np.ndarray((len(out) - 15,), dtype="V16", buffer=out, strides=(1,))
        at_byte[offsets] = packed.view("V16").ravel()
        del at_byte  # release the export so that ``out`` can be resized by its owner
        return size

    def format(self, chunk: Chunk, out: bytearray) -> memoryview:
        """JSON Lines for the chunk's requests, written into ``out`` (at least ``8 * len(chunk.slots) + 16``
        bytes); returns the written part. ``chunk.slots`` becomes the word index of each slot (in place): token
        slots keep their draws, the framing slots get framing words and rejected slots the empty word.
        """
        n, rows, count = self.table.n, len(chunk.isl), len(chunk.slots)
        isl, osl = chunk.isl, chunk.osl
        if len(out) < 8 * count + 16:
            raise ValueError(f"output buffer of {len(out)} bytes is too small for {count} words")
        shared_suffix = bool(np.all(osl == osl[0]))
        prefix = _padded([PREFIX % (chunk.first_task + r) for r in range(rows)], PREFIX_SLOTS)
        suffix = _padded([SUFFIX % o for o in (osl[:1] if shared_suffix else osl).tolist()], SUFFIX_SLOTS)
        ext, ext_lengths = self._ext_with(prefix + suffix)
        framing = self.empty_word + 1
        index = chunk.slots.view(np.intp)
        index[chunk.rejected] = self.empty_word
        widths = isl + FRAME_SLOTS
        starts = np.cumsum(widths) - widths
        pre_at = chunk.positions(starts[:, None] + np.arange(PREFIX_SLOTS))
        index[pre_at.ravel()] = framing + np.arange(rows * PREFIX_SLOTS)
        last_token = starts + PREFIX_SLOTS + isl - 1
        index[chunk.positions(last_token)] += n  # the last id of a line has no comma after it
        suf_at = chunk.positions((last_token + 1)[:, None] + np.arange(SUFFIX_SLOTS))
        suf_words = framing + rows * PREFIX_SLOTS + np.arange(len(suffix) // 8).reshape(-1, SUFFIX_SLOTS)
        index[suf_at.ravel()] = np.broadcast_to(suf_words, (rows, SUFFIX_SLOTS)).ravel()
        self._scratch(count)
        ext.take(index, out=self._words[:count], mode="clip")
        ext_lengths.take(index, out=self._lengths[:count], mode="clip")
        return memoryview(out)[:self._store(count, out)]


@dataclass(frozen=True)
class WriteStats:
    """What was written: byte count, its content digest (``"xxh3_128:<hex>"``) and the token totals."""

    size: int
    digest: str
    total_input_tokens: int
    total_output_tokens: int


def default_workers() -> int:
    """Formatting threads: one per core (formatting releases the GIL), at most four (the draws and the writes,
    one thread each, set the pace beyond that)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, 4))


def write_requests(out: BinaryIO, req: DatasetRequest, chunk_slots: int = CHUNK_SLOTS,
                   workers: int | None = None) -> WriteStats:
    """Write the whole dataset to ``out``.

    This thread draws the random numbers (in order); ``workers`` threads format chunks into reusable buffers;
    one more thread hashes and writes each formatted chunk, in order. Draws, formatting, hashing and ``write``
    all release the GIL, so every core works. At most ``workers + 2`` chunks are alive at a time, whatever the
    request count. The bytes do not depend on ``chunk_slots``/``workers``.
    """
    table = token_table(req.vocab_size, req.eos_ids)
    workers = workers or default_workers()
    formatters: queue.SimpleQueue[ChunkFormatter] = queue.SimpleQueue()
    for _ in range(workers):
        formatters.put(ChunkFormatter(table))
    hasher = _digest.new_hasher()

    def format_chunk(chunk: Chunk, buffer: bytearray) -> memoryview:
        formatter = formatters.get()
        try:
            return formatter.format(chunk, buffer)
        finally:
            formatters.put(formatter)

    def write_chunk(formatted: Future[memoryview]) -> int:
        data = formatted.result()
        hasher.update(data)
        out.write(data)
        return len(data)

    free: list[bytearray] = []
    pending: deque[tuple[Future[int], bytearray]] = deque()
    size = total_in = total_out = 0

    def retire_oldest() -> None:
        nonlocal size
        written, buffer = pending.popleft()
        size += written.result()
        free.append(buffer)

    with ThreadPoolExecutor(workers, thread_name_prefix="dataset-format") as pool, \
            ThreadPoolExecutor(1, thread_name_prefix="dataset-write") as writer:
        try:
            for chunk in iter_draws(req, table.n, chunk_slots, FRAME_SLOTS):
                total_in += int(chunk.isl.sum())
                total_out += int(chunk.osl.sum())
                while len(pending) >= workers + 2:
                    retire_oldest()
                need = 8 * len(chunk.slots) + 16
                buffer = free.pop() if free else bytearray()
                if len(buffer) < need:  # the first chunks; later ones only with varying lengths
                    buffer = bytearray(need if not pending else need + need // 8)
                formatted = pool.submit(format_chunk, chunk, buffer)
                pending.append((writer.submit(write_chunk, formatted), buffer))
            while pending:
                retire_oldest()
        finally:
            for written, _ in pending:
                written.cancel()
    return WriteStats(size=size, digest=f"{_digest.ALGORITHM}:{hasher.hexdigest()}", total_input_tokens=total_in,
                      total_output_tokens=total_out)
