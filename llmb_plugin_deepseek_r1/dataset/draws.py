"""The random part of a synthetic dataset: token slots and request lengths, drawn chunk after chunk.

Three numpy streams derive from ``SeedSequence(seed)``: slots (``spawn_key=(0,)``), input lengths (1) and
output lengths (2). The slot stream is, by definition, what ``Generator(PCG64DXSM(...)).integers(0, n,
dtype=np.int32)`` returns, call after call. :class:`SlotStream` produces exactly that sequence without numpy's
per-value function calls: numpy draws each value from the next 32-bit word ``u`` of the generator (the low half
of a 64-bit output, then its high half) by Lemire's method: ``m = u * n``; the value is ``m >> 32`` unless the
low 32 bits of ``m`` fall below ``2**32 % n``, in which case that word is dropped and the next one is tried. That
is a filter over the word stream, so whole blocks of words can be turned into values with a few array
operations. A dropped word stays in the block as a *rejected slot*; the formatter gives it an empty word, so
no copy is needed to take it out.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from .model import MAX_TOKENS, DatasetRequest

_STREAM_SLOTS, _STREAM_ISL, _STREAM_OSL = 0, 1, 2


def _bit_generator(seed: int, stream: int) -> np.random.PCG64DXSM:
    return np.random.PCG64DXSM(np.random.SeedSequence(seed, spawn_key=(stream,)))


def _rng(seed: int, stream: int) -> np.random.Generator:
    return np.random.Generator(_bit_generator(seed, stream))


class SlotStream:
    """Uniform values in ``[0, n)``: numpy's ``Generator.integers(0, n, dtype=np.int32)`` sequence, vectorised.

    :meth:`draw` returns ``k`` values as a uint64 array that may hold extra *rejected* slots (their positions
    are returned too; their content is meaningless). Values follow each other exactly as numpy's calls would
    return them, whatever ``k`` is from call to call.
    """

    def __init__(self, seed: int, n: int) -> None:
        if not 1 <= n < 1 << 32:
            raise ValueError(f"n must be in [1, 2**32), got {n}")
        self.n = n
        self._bitgen = _bit_generator(seed, _STREAM_SLOTS)
        self._threshold = np.uint32((1 << 32) % n)
        self._carry: int | None = None  # the high half of the last 64-bit output, not used yet
        self._generator = None if sys.byteorder == "little" else np.random.Generator(self._bitgen)

    def draw(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(slots, rejected): ``k`` accepted values plus the rejected slots among them, and the rejected
        slots' positions (sorted)."""
        if self.n == 1:  # numpy draws nothing for a single value
            return np.zeros(k, dtype=np.uint64), np.empty(0, dtype=np.intp)
        if self._generator is not None:  # pragma: no cover - big-endian machines: numpy itself
            return self._generator.integers(0, self.n, size=k, dtype=np.int32).astype(np.uint64), \
                np.empty(0, dtype=np.intp)
        slack = 16 + 2 * int(k * int(self._threshold) / 2**32)  # twice the expected rejections: rarely exceeded
        slots = np.empty(k + slack, dtype=np.uint64)
        rejected: list[np.ndarray] = []
        filled = accepted = 0
        while accepted < k:
            need = k - accepted
            if filled + need > len(slots):
                slots = np.concatenate([slots[:filled], np.empty(need + slack, dtype=np.uint64)])
            bad = self._fill(slots[filled:filled + need])
            if len(bad):
                rejected.append(bad + filled)
            filled += need
            accepted += need - len(bad)
        positions = np.concatenate(rejected) if rejected else np.empty(0, dtype=np.intp)
        return slots[:filled], positions

    def _fill(self, out: np.ndarray) -> np.ndarray:
        """Turn the next ``len(out)`` 32-bit words into values in ``out``; returns the rejected positions."""
        start = 0
        if self._carry is not None:
            out[0] = self._carry * self.n
            start, self._carry = 1, None
        words = len(out) - start
        if words:
            raw = self._bitgen.random_raw((words + 1) // 2).view(np.uint32)  # low half first (little-endian)
            if len(raw) > words:
                self._carry = int(raw[-1])
            np.multiply(raw[:words], np.uint64(self.n), out=out[start:], dtype=np.uint64)
        bad = np.flatnonzero(out.view(np.uint32)[::2] < self._threshold)  # the low halves of u * n
        np.right_shift(out, np.uint64(32), out=out)
        return bad


@dataclass(frozen=True)
class Chunk:
    """Consecutive requests, drawn but not yet formatted.

    ``slots`` holds ``isl[r] + FRAME_SLOTS`` values per request, request after request, plus the rejected slots
    at ``rejected`` (sorted positions into ``slots``)."""

    first_task: int
    slots: np.ndarray
    rejected: np.ndarray
    isl: np.ndarray
    osl: np.ndarray

    def positions(self, accepted: np.ndarray) -> np.ndarray:
        """Positions in ``slots`` of the ``accepted``-th accepted values (0-based, any shape)."""
        if not len(self.rejected):
            return accepted
        before = self.rejected - np.arange(len(self.rejected))  # accepted values before each rejected slot
        return accepted + np.searchsorted(before, accepted, side="right")


def _lengths(rng: np.random.Generator | None, mean: int, stdev: float, count: int) -> np.ndarray:
    """``count`` lengths: exactly ``mean``, or normal(mean, stdev) rounded to nearest and clipped to
    ``[1, MAX_TOKENS]`` (the upper clip only matters for absurd stdevs)."""
    if rng is None:
        return np.full(count, mean, dtype=np.int64)
    return np.clip(np.rint(rng.normal(mean, stdev, count)), 1, MAX_TOKENS).astype(np.int64)


def iter_draws(req: DatasetRequest, n_allowed: int, chunk_slots: int, frame_slots: int) -> Iterator[Chunk]:
    """The random part of the dataset, chunk after chunk, each stream consumed strictly in order: per request
    ``isl + frame_slots`` slot values (the framing slots' values are drawn and not used, which keeps the
    stream's use per request fixed)."""
    slots = SlotStream(req.seed, n_allowed)
    isl_rng = _rng(req.seed, _STREAM_ISL) if req.stdev_in > 0 else None
    osl_rng = _rng(req.seed, _STREAM_OSL) if req.stdev_out > 0 else None
    rows_per_chunk = max(1, chunk_slots // (req.isl + frame_slots))
    for first in range(0, req.num_requests, rows_per_chunk):
        rows = min(rows_per_chunk, req.num_requests - first)
        isl = _lengths(isl_rng, req.isl, req.stdev_in, rows)
        osl = _lengths(osl_rng, req.osl, req.stdev_out, rows)
        values, rejected = slots.draw(int(isl.sum()) + rows * frame_slots)
        yield Chunk(first, values, rejected, isl, osl)
