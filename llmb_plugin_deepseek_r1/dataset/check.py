"""Streaming validator for trtllm-bench JSON Lines datasets; names the first bad line.

Checks what trtllm-bench relies on: every line read is a JSON object with ``task_id`` (here: 0, 1, 2, ... in
order), ``input_ids`` (a non-empty list of ints, optionally exactly ``isl`` long, in ``[0, vocab)``, without EOS)
and ``output_tokens`` (an int >= 1, optionally exactly ``osl``). Only the first ``num_requests`` lines are checked
when that is given, because trtllm-bench ``--num_requests N`` reads only those.

Speed: lines in the compact layout writers use (``{"task_id":N,"input_ids":[...],"output_tokens":M}``) are
checked in batches with numpy (separators, token lengths, and only the tokens long enough to reach the vocabulary
size, or as long as an EOS id, compared as 8-byte keys); anything that looks odd, and every line in another
layout, goes through ``json.loads``, which also words the error message.
Memory is bounded by the batch size and the longest line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .model import (
    MAX_VOCAB_SIZE,
    DatasetError,
    ValidationResult,
    check_int,
    eos_tuple,
    normalize_eos,
)

_HEAD = b'{"task_id":'
_MID = b',"input_ids":['
_TAIL = b'],"output_tokens":'
BATCH_BYTES = 2 << 20
_PAD = b"\n" * 8  # in front of the joined bodies, so that every token has 8 bytes before its end
_NO_ISL_MAX_LINE = 256 << 20
_U64 = np.uint64


@dataclass(frozen=True)
class Expect:
    """What the lines must satisfy; None means "not checked"."""

    isl: int | None = None
    osl: int | None = None
    num_requests: int | None = None
    vocab_size: int | None = None
    eos: tuple[int, ...] = ()

    @property
    def max_line(self) -> int:
        return _NO_ISL_MAX_LINE if self.isl is None else 16 * self.isl + 4096

    def describe(self) -> str:
        parts = [f"ISL {self.isl}" if self.isl is not None else "",
                 f"OSL {self.osl}" if self.osl is not None else "",
                 f"ids in [0, {self.vocab_size})" if self.vocab_size is not None else "",
                 f"no EOS {','.join(map(str, self.eos))}" if self.eos else ""]
        return ", ".join(p for p in parts if p)


def _is_uint(text: bytes) -> bool:
    """A JSON non-negative integer literal (digits, no leading zero) of at most 18 digits."""
    return text.isdigit() and len(text) <= 18 and (len(text) == 1 or text[0] != 0x30)


def _fast_split(line: bytes) -> tuple[int, bytes, int] | None:
    """(task_id, the bytes between the brackets of input_ids, output_tokens) for a compact line, else None."""
    if not line.startswith(_HEAD):
        return None
    mid = line.find(_MID, len(_HEAD))
    end = line.rfind(_TAIL)
    if mid < 0 or end < mid:
        return None
    task, tail = line[len(_HEAD):mid], line[end + len(_TAIL):]
    tail = tail[:-1] if tail.endswith(b"\n") else tail
    if not (tail.endswith(b"}") and _is_uint(tail[:-1]) and _is_uint(task)):
        return None
    return int(task), line[mid + len(_MID):end], int(tail[:-1])


def _keys(buf: bytes, ends: np.ndarray, length: int) -> np.ndarray:
    """The ``length`` (<= 8) bytes before each of ``ends`` as big-endian integers: for digit runs of one length,
    comparing these keys compares the numbers."""
    words = np.ndarray((len(buf) - 7,), dtype="<u8", buffer=buf, strides=(1,))[ends - 8]
    words.byteswap(inplace=True)
    words &= _U64((1 << (8 * length)) - 1)
    return words


def _key_of(number: int) -> int:
    return int.from_bytes(str(number).encode(), "big")


def _bad_tokens(buf: bytes, ends: np.ndarray, lengths: np.ndarray, expect: Expect) -> np.ndarray:
    """Indices of the tokens (digit runs ending at ``ends``) that are not valid JSON numbers or break the id
    rules. Only tokens of the one or two lengths that can break a rule are looked at closely."""
    a = np.frombuffer(buf, dtype=np.uint8)
    found = []
    zero_first = np.flatnonzero(a[ends - lengths] == 48)
    found.append(zero_first[lengths[zero_first] > 1])  # a leading zero is not JSON
    if expect.vocab_size is not None:
        top = len(str(expect.vocab_size - 1))
        found.append(np.flatnonzero(lengths > top))
        longest = np.flatnonzero(lengths == top)
        found.append(longest[_keys(buf, ends[longest], top) > _U64(_key_of(expect.vocab_size - 1))])
    for eos in expect.eos:
        size = len(str(eos))
        same = np.flatnonzero(lengths == size)
        found.append(same if size > 8 else same[_keys(buf, ends[same], size) == _U64(_key_of(eos))])
    return np.concatenate(found)


def suspicious_segments(segments: list[bytes], expect: Expect) -> np.ndarray:
    """Indices of the ``input_ids`` bodies (text between the brackets) that may break a rule; the others are
    certainly valid JSON integer lists that satisfy ``expect``.

    numpy finds every byte below '0' (commas, and the newlines that join the bodies). If those are all commas
    and newlines, no byte is above '9' and no two separators touch, the bodies are well-formed lists of digit
    runs: the gaps between separators are the tokens. Otherwise every body is returned and ``json.loads`` looks
    for the first bad one (the batch holds an error somewhere).
    """
    n = len(segments)
    buf = _PAD + b"\n".join(segments) + b"\n"
    a = np.frombuffer(buf, dtype=np.uint8)
    sep = np.flatnonzero(a < 48)
    at_sep = a[sep]
    newline_at = np.flatnonzero(at_sep == 10)
    everything = np.arange(n)
    if len(newline_at) + np.count_nonzero(at_sep == 44) != len(sep) or a.max() > 57:
        return everything  # some byte is neither a digit, a comma nor a joining newline
    gaps = np.diff(sep)
    gaps -= 1
    if np.count_nonzero(gaps == 0) != len(_PAD) - 1:
        return everything  # an empty list, or a leading, trailing or doubled comma
    counts = np.diff(newline_at)[len(_PAD) - 1:]  # separators per body = its commas + its closing newline
    bad = np.zeros(n, dtype=bool) if expect.isl is None else counts != expect.isl
    lengths, ends = gaps[len(_PAD) - 1:], sep[len(_PAD):]
    tokens = _bad_tokens(buf, ends, lengths, expect)
    if len(tokens):
        bad[np.searchsorted(newline_at, tokens + len(_PAD)) - len(_PAD)] = True
    return np.flatnonzero(bad)


def _int_field(obj: dict[str, Any], key: str) -> tuple[int | None, str | None]:
    if key not in obj:
        return None, f"no {key}"
    value = obj[key]
    if isinstance(value, bool) or not isinstance(value, int):
        return None, f"{key} is not an integer: {value!r:.40}"
    return value, None


def line_error(line: bytes, index: int, expect: Expect) -> str | None:
    """Why the line for request ``index`` (0-based) breaks a rule, checked with ``json.loads``; None if fine."""
    if not line.strip():
        return "empty line"
    try:
        obj = json.loads(line)
    except UnicodeDecodeError:
        return "not UTF-8 text"
    except json.JSONDecodeError as exc:
        return f"not valid JSON ({exc.msg} at column {exc.colno})"
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        return f"not usable JSON ({exc})"
    except RecursionError:
        return "not usable JSON (nested too deeply)"
    if not isinstance(obj, dict):
        return f"not a JSON object (a {type(obj).__name__})"
    task, err = _int_field(obj, "task_id")
    if err:
        return err
    if task != index:
        return f"task_id is {task}, expected {index} (task ids must run 0, 1, 2, ... in file order)"
    ids = obj.get("input_ids")
    if ids is None:
        return "a text prompt instead of input_ids" if "prompt" in obj else "no input_ids"
    if not isinstance(ids, list) or not ids:
        return "input_ids is not a non-empty list"
    if expect.isl is not None and len(ids) != expect.isl:
        return f"input_ids has {len(ids)} tokens, expected ISL {expect.isl}"
    eos = set(expect.eos)
    for pos, tok in enumerate(ids):
        if isinstance(tok, bool) or not isinstance(tok, int):
            return f"input_ids[{pos}] is not an integer: {tok!r:.40}"
        if tok < 0 or (expect.vocab_size is not None and tok >= expect.vocab_size):
            return f"input_ids[{pos}] = {tok} is outside [0, {expect.vocab_size or 'inf'})"
        if tok in eos:
            return f"input_ids[{pos}] = {tok} is the EOS id"
    osl, err = _int_field(obj, "output_tokens")
    if err or osl is None:
        return err
    if osl < 1 or (expect.osl is not None and osl != expect.osl):
        return f"output_tokens is {osl}, expected {expect.osl if expect.osl is not None else 'an integer >= 1'}"
    return None


class _Checker:
    """Feeds lines in order; compact lines wait in a batch for the numpy check, others are checked at once."""

    def __init__(self, expect: Expect) -> None:
        self.expect = expect
        self.batch: list[tuple[int, bytes, bytes]] = []  # (index, line, segment)
        self.batch_bytes = 0

    def add(self, index: int, line: bytes) -> tuple[int, str] | None:
        split = _fast_split(line)
        exp = self.expect
        if split is None or split[0] != index or split[2] < 1 or (exp.osl is not None and split[2] != exp.osl):
            found = self.flush()
            if found:
                return found
            err = line_error(line, index, exp)
            return (index, err) if err else None
        self.batch.append((index, line, split[1]))
        self.batch_bytes += len(line)
        return self.flush() if self.batch_bytes >= BATCH_BYTES else None

    def flush(self) -> tuple[int, str] | None:
        batch, self.batch, self.batch_bytes = self.batch, [], 0
        if not batch:
            return None
        for k in suspicious_segments([seg for _, _, seg in batch], self.expect).tolist():
            index, line, _ = batch[k]
            err = line_error(line, index, self.expect)
            if err:
                return index, err
        return None


def make_expect(isl: int | None, osl: int | None, num_requests: int | None, vocab_size: int | None,
                eos_id: Any) -> Expect:
    """Checked arguments of :func:`validate_dataset` (DatasetError on a bad one)."""
    return Expect(
        isl=None if isl is None else check_int("isl", isl, 1),
        osl=None if osl is None else check_int("osl", osl, 1),
        num_requests=None if num_requests is None else check_int("num_requests", num_requests, 1),
        vocab_size=None if vocab_size is None else check_int("vocab_size", vocab_size, 2, MAX_VOCAB_SIZE),
        eos=() if eos_id is None else eos_tuple(normalize_eos(eos_id, vocab_size)))


def validate_dataset(path: Path, *, isl: int | None = None, osl: int | None = None,
                     num_requests: int | None = None, vocab_size: int | None = None,
                     eos_id: int | tuple[int, ...] | list[int] | None = None) -> ValidationResult:
    """Check a dataset file line by line (streaming, bounded memory); arguments left None are not checked.

    ``ok`` False names the first bad line (1-based) in ``first_error_line`` and ``message``; a file with too few
    requests has no bad line (``first_error_line`` None). DatasetError only for bad arguments.
    """
    path = Path(path)
    expect = make_expect(isl, osl, num_requests, vocab_size, eos_id)
    checker = _Checker(expect)
    count = 0
    try:
        with open(path, "rb") as handle:
            while expect.num_requests is None or count < expect.num_requests:
                line = handle.readline(expect.max_line + 1)
                if not line:
                    break
                if len(line) > expect.max_line:
                    return _failed(path, checker.flush() or (count, f"longer than {expect.max_line} bytes"), count)
                found = checker.add(count, line)
                count += 1
                if found:
                    return _failed(path, found, count)
            last = checker.flush()
            if last:
                return _failed(path, last, count)
    except OSError as exc:
        return ValidationResult(False, count, None, f"{path}: cannot read: {exc.strerror or exc}")
    if count == 0:
        return ValidationResult(False, 0, None, f"{path}: no requests (empty file)")
    if expect.num_requests is not None and count < expect.num_requests:
        return ValidationResult(False, count, None,
                                f"{path}: has {count} requests, fewer than the {expect.num_requests} needed")
    checked = expect.describe()
    return ValidationResult(True, count, None, f"{path}: {count} requests OK" + (f" ({checked})" if checked else ""))


def _failed(path: Path, found: tuple[int, str], count: int) -> ValidationResult:
    index, why = found
    return ValidationResult(False, count, index + 1, f"{path}: line {index + 1}: {why}")


__all__ = ["DatasetError", "Expect", "line_error", "make_expect", "suspicious_segments", "validate_dataset"]
