"""Value types of the synthetic dataset: the request, the sidecar record and the validation result.

Kept free of I/O so that the generator, the validator, the job body and the tests share one definition of
"which dataset is this" (and one set of input checks with one-line error messages).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from .digest import split as split_digest
from .limits import MAX_REQUESTS, MAX_TOKENS, MAX_VOCAB_SIZE  # noqa: F401 - part of this module's API

#: Bump when the bytes written for the same request change (separators, sampling rule, RNG): existing
#: datasets then no longer match their request and are regenerated instead of silently mixed.
FORMAT_VERSION = 1
FORMAT_NAME = "trtllm-bench-jsonl"
DEFAULT_SEED = 420


class DatasetError(ValueError):
    """A bad dataset request, an unusable dataset file or directory; the message is one line for the user."""


def check_int(name: str, value: Any, minimum: int, maximum: int | None = None) -> int:
    """``value`` as an int within bounds, or DatasetError naming the value and what is accepted."""
    if isinstance(value, bool):
        raise DatasetError(f"{name} must be an integer, got {value!r}")
    try:
        number = operator.index(value)
    except TypeError:
        raise DatasetError(f"{name} must be an integer, got {value!r}") from None
    if number < minimum or (maximum is not None and number > maximum):
        accepted = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
        raise DatasetError(f"{name} must be an integer {accepted}, got {number}")
    return number


def check_stdev(name: str, value: Any) -> float:
    """A finite, non-negative standard deviation (0 means exact lengths)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DatasetError(f"{name} must be a number >= 0, got {value!r}")
    number = float(value)
    if not math.isfinite(number) or number < 0:
        raise DatasetError(f"{name} must be a finite number >= 0, got {value!r}")
    return number


def normalize_eos(value: Any, vocab_size: int | None = None) -> int | tuple[int, ...]:
    """One EOS id as an int, several as a sorted tuple without repeats.

    Rule for lists (``eos_token_id: [1, 2]`` in some config.json files): every id in the list ends generation
    for the model, so every one of them is kept out of the prompts.
    """
    items: Iterable[Any] = value if isinstance(value, (list, tuple, set, frozenset)) else (value,)
    upper = None if vocab_size is None else vocab_size - 1
    ids = sorted({check_int("eos_id", item, 0, upper) for item in items})
    if not ids:
        raise DatasetError("eos_id must name at least one token id, got an empty list")
    return ids[0] if len(ids) == 1 else tuple(ids)


def eos_tuple(eos: int | tuple[int, ...]) -> tuple[int, ...]:
    """The EOS id(s) as a tuple, whatever form they were stored in."""
    return (eos,) if isinstance(eos, int) else tuple(eos)


@dataclass(frozen=True)
class DatasetRequest:
    """What a benchmark needs from its dataset: lengths, size, vocabulary, EOS and seed.

    With both stdevs 0 (the recipe's case) every request has exactly ``isl`` input and ``osl`` output tokens.
    """

    isl: int
    osl: int
    num_requests: int
    vocab_size: int
    eos_id: int | tuple[int, ...]
    seed: int = DEFAULT_SEED
    stdev_in: float = 0.0
    stdev_out: float = 0.0

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "isl", check_int("isl", self.isl, 1, MAX_TOKENS))
        set_(self, "osl", check_int("osl", self.osl, 1, MAX_TOKENS))
        set_(self, "num_requests", check_int("num_requests", self.num_requests, 1, MAX_REQUESTS))
        set_(self, "vocab_size", check_int("vocab_size", self.vocab_size, 2, MAX_VOCAB_SIZE))
        set_(self, "eos_id", normalize_eos(self.eos_id, self.vocab_size))
        if len(eos_tuple(self.eos_id)) >= self.vocab_size:
            raise DatasetError(f"eos_id {self.eos_id} leaves no token id in a vocabulary of {self.vocab_size}")
        set_(self, "seed", check_int("seed", self.seed, 0))
        set_(self, "stdev_in", check_stdev("stdev_in", self.stdev_in))
        set_(self, "stdev_out", check_stdev("stdev_out", self.stdev_out))

    @property
    def eos_ids(self) -> tuple[int, ...]:
        return eos_tuple(self.eos_id)

    @property
    def exact_lengths(self) -> bool:
        return self.stdev_in == 0 and self.stdev_out == 0

    def describe(self) -> str:
        """Short human form, e.g. ``7680 requests, ISL 8000, OSL 512, vocab 129280, EOS 1, seed 420``."""
        isl = f"{self.isl}" if self.stdev_in == 0 else f"{self.isl}+-{self.stdev_in:g}"
        osl = f"{self.osl}" if self.stdev_out == 0 else f"{self.osl}+-{self.stdev_out:g}"
        eos = ",".join(map(str, self.eos_ids))
        return (f"{self.num_requests} requests, ISL {isl}, OSL {osl}, vocab {self.vocab_size}, EOS {eos}, "
                f"seed {self.seed}")


@dataclass(frozen=True)
class DatasetInfo:
    """The sidecar (``<dataset>.meta.json``): how a dataset file was made, and which file it describes.

    ``size``, ``mtime_ns`` and ``inode`` identify the file cheaply; ``digest`` (``"<algorithm>:<hex>"``, see
    :mod:`.digest`) is the authority when they differ. A sidecar written by 0.1 has ``sha256`` instead: it is
    read as the digest ``"sha256:<hex>"``.
    """

    file: str
    isl: int
    osl: int
    num_requests: int
    vocab_size: int
    eos_id: int | tuple[int, ...]
    seed: int
    stdev_in: float
    stdev_out: float
    size: int
    digest: str
    mtime_ns: int
    inode: int
    total_input_tokens: int
    total_output_tokens: int
    format: str = FORMAT_NAME
    format_version: int = FORMAT_VERSION
    generator: str = ""
    created: str = ""
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the sidecar's content); EOS ids as an int or a list."""
        data = asdict(self)
        data["eos_id"] = self.eos_id if isinstance(self.eos_id, int) else list(self.eos_id)
        extra = data.pop("extra")
        return {**extra, **data}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DatasetInfo:
        """Parse a sidecar; DatasetError when a field is missing or of the wrong kind."""
        if not isinstance(data, dict):
            raise DatasetError("sidecar is not a JSON object")
        if "digest" not in data and isinstance(data.get("sha256"), str):  # written by 0.1
            data = {**{k: v for k, v in data.items() if k != "sha256"}, "digest": f"sha256:{data['sha256']}"}
        names = [f for f in cls.__dataclass_fields__ if f != "extra"]
        required = [f for f in names if f not in ("format", "format_version", "generator", "created")]
        missing = [f for f in required if f not in data]
        if missing:
            raise DatasetError(f"sidecar lacks {', '.join(missing)}")
        kwargs = {name: data[name] for name in names if name in data}
        ints = ("isl", "osl", "num_requests", "vocab_size", "seed", "size", "mtime_ns", "inode",
                "total_input_tokens", "total_output_tokens", "format_version")
        for name in ints:
            if name in kwargs:
                kwargs[name] = check_int(f"sidecar {name}", kwargs[name], 0)
        kwargs["eos_id"] = normalize_eos(kwargs["eos_id"])
        kwargs["stdev_in"] = check_stdev("sidecar stdev_in", kwargs["stdev_in"])
        kwargs["stdev_out"] = check_stdev("sidecar stdev_out", kwargs["stdev_out"])
        for name in ("file", "digest", "format", "generator", "created"):
            if name in kwargs and not isinstance(kwargs[name], str):
                raise DatasetError(f"sidecar {name} must be a string, got {kwargs[name]!r}")
        try:
            split_digest(kwargs["digest"])
        except ValueError as exc:
            raise DatasetError(f"sidecar {exc}") from None
        extra = {k: v for k, v in data.items() if k not in names}
        return cls(**kwargs, extra=extra)

    def mismatch(self, req: DatasetRequest) -> str | None:
        """Why this dataset cannot serve ``req`` (None when it can).

        A dataset with more requests than asked serves: trtllm-bench ``--num_requests N`` reads only the first N
        lines, and the generator's streams make those lines identical to a fresh N-request dataset.
        """
        if self.format != FORMAT_NAME or self.format_version != FORMAT_VERSION:
            return f"made by format {self.format} v{self.format_version}, this version writes v{FORMAT_VERSION}"
        ours = (self.isl, self.osl, self.stdev_in, self.stdev_out)
        theirs = (req.isl, req.osl, req.stdev_in, req.stdev_out)
        if ours != theirs:
            return (f"made for ISL {self.isl} OSL {self.osl} (stdev {self.stdev_in:g}/{self.stdev_out:g}), "
                    f"asked ISL {req.isl} OSL {req.osl} (stdev {req.stdev_in:g}/{req.stdev_out:g})")
        if (self.vocab_size, eos_tuple(self.eos_id)) != (req.vocab_size, req.eos_ids):
            return (f"made for vocab {self.vocab_size} EOS {self.eos_id}, "
                    f"asked vocab {req.vocab_size} EOS {req.eos_id}")
        if self.seed != req.seed:
            return f"made with seed {self.seed}, asked seed {req.seed}"
        if self.num_requests < req.num_requests:
            return f"has {self.num_requests} requests, {req.num_requests} asked"
        return None


@dataclass(frozen=True)
class ValidationResult:
    """Outcome of checking a dataset file: ``lines`` request lines were read; the first bad one is named."""

    ok: bool
    lines: int
    first_error_line: int | None
    message: str

    def __bool__(self) -> bool:
        return self.ok
