"""The vectorised slot stream equals numpy's own ``Generator.integers`` draws, rejections included.

The generator's bytes for a seed are fixed (tests/test_dataset.py's golden hashes); these tests pin the reason
why: :class:`SlotStream` is numpy's Lemire sampling over the same 32-bit words, and the formatter turns its
rejected slots into nothing.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from llmb_plugin_deepseek_r1.dataset.draws import SlotStream, _rng
from llmb_plugin_deepseek_r1.dataset.format import FRAME_SLOTS, PREFIX_SLOTS, write_requests
from llmb_plugin_deepseek_r1.dataset.model import DatasetRequest

CALL_SIZES = [1, 7, 1000, 3, 50_000, 2, 1, 4097]


def numpy_draws(seed: int, n: int, sizes: list[int]) -> np.ndarray:
    """What numpy returns for these calls (uint32 above int32's range: numpy's same 32-bit Lemire routine)."""
    generator = _rng(seed, 0)
    dtype = np.int32 if n <= 2**31 else np.uint32
    return np.concatenate([generator.integers(0, n, size=k, dtype=dtype) for k in sizes]).astype(np.uint64)


def stream_draws(seed: int, n: int, sizes: list[int]) -> tuple[np.ndarray, int]:
    """The stream's accepted values for the same calls, and how many slots it rejected."""
    stream, values, rejections = SlotStream(seed, n), [], 0
    for k in sizes:
        slots, rejected = stream.draw(k)
        keep = np.ones(len(slots), dtype=bool)
        keep[rejected] = False
        assert keep.sum() == k and np.all(np.diff(rejected) > 0)
        values.append(slots[keep])
        rejections += len(rejected)
    return np.concatenate(values), rejections


@pytest.mark.parametrize("n", [1, 2, 3, 48, 129_279, 9_999_999, 2**31 + 1, 2**32 - 1])
def test_the_stream_is_numpys_integers_call_after_call(n: int) -> None:
    ours, rejections = stream_draws(420, n, CALL_SIZES)
    assert np.array_equal(ours, numpy_draws(420, n, CALL_SIZES))
    if n == 2**31 + 1:  # 2**32 % n = 2**31 - 1: about every other word is rejected
        assert rejections > 20_000


def test_odd_call_sizes_carry_the_unused_half_word() -> None:
    sizes = [1] * 9 + [3, 5, 1]
    ours, _ = stream_draws(7, 129_279, sizes)
    assert np.array_equal(ours, numpy_draws(7, 129_279, sizes))


def reference_dataset(req: DatasetRequest) -> bytes:
    """The dataset by the definition, line by line: numpy's draws, ``isl + FRAME_SLOTS`` per request, the token
    slots after the prefix's, ids from the sorted allowed list, TensorRT-LLM's compact JSON."""
    allowed = np.delete(np.arange(req.vocab_size), list(req.eos_ids))
    generator = _rng(req.seed, 0)
    lines = []
    for task in range(req.num_requests):
        draws = generator.integers(0, len(allowed), size=req.isl + FRAME_SLOTS, dtype=np.int32)
        tokens = allowed[draws[PREFIX_SLOTS:PREFIX_SLOTS + req.isl]].tolist()
        lines.append(json.dumps({"task_id": task, "input_ids": tokens, "output_tokens": req.osl},
                                separators=(",", ":")) + "\n")
    return "".join(lines).encode()


@pytest.mark.parametrize(("chunk_slots", "workers"), [(49, 3), (4096, 2), (1 << 18, None)])
def test_rejected_slots_leave_no_trace_in_the_bytes(chunk_slots: int, workers: int | None) -> None:
    # With ten million ids numpy rejects about 1 word in 860: ~110 rejections over these 98,000 slots, some at
    # chunk edges and next to framing slots.
    req = DatasetRequest(isl=40, osl=9, num_requests=2000, vocab_size=10_000_000, eos_id=1, seed=420)
    out = io.BytesIO()
    write_requests(out, req, chunk_slots=chunk_slots, workers=workers)
    assert out.getvalue() == reference_dataset(req)
    _, rejections = stream_draws(420, 9_999_999, [2000 * (40 + FRAME_SLOTS)])
    assert rejections > 50
