"""Synthetic trtllm-bench datasets: make them (fast, atomically, with a sidecar), reuse them, check them.

Public API (setup and the job body share it):

- :class:`DatasetRequest`, :class:`DatasetInfo`, :class:`ValidationResult`, :class:`DatasetError`
- :func:`read_vocab` - vocabulary size and EOS id(s) from a model folder's ``config.json``
- :func:`generate_dataset` - always writes ``path`` (temp name + rename) and ``<path>.meta.json``
- :func:`ensure_dataset` - reuses a matching dataset, regenerates anything else
- :func:`find_reusable` - the reuse decision alone, with its reason
- :func:`validate_dataset` - streams a file and names the first bad line

Commands: ``python -m llmb_plugin_deepseek_r1 prepare-dataset ...`` and ``validate-dataset ...``.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import errno
import json
import logging
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .check import validate_dataset
from .digest import file_digest, same_content
from .format import write_requests
from .model import (
    FORMAT_NAME,
    FORMAT_VERSION,
    DatasetError,
    DatasetInfo,
    DatasetRequest,
    ValidationResult,
    check_int,
    normalize_eos,
)

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "DatasetError",
    "DatasetInfo",
    "DatasetRequest",
    "ValidationResult",
    "ensure_dataset",
    "file_digest",
    "find_reusable",
    "generate_dataset",
    "read_sidecar",
    "read_vocab",
    "sidecar_path",
    "validate_dataset",
]

log = logging.getLogger(__name__)
SIDECAR_SUFFIX = ".meta.json"


def sidecar_path(path: Path) -> Path:
    """``dataset_reasoning_1000_1000.txt`` -> ``dataset_reasoning_1000_1000.txt.meta.json``."""
    path = Path(path)
    return path.with_name(path.name + SIDECAR_SUFFIX)


def _load_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise DatasetError(f"cannot read {path}: {exc}") from None
    except RecursionError:
        raise DatasetError(f"cannot read {path}: JSON nested too deeply") from None
    if not isinstance(data, dict):
        raise DatasetError(f"{path} is not a JSON object")
    return data


DEEPSEEK_R1_VOCAB = (129280, 1)  # DeepSeek-R1's config.json vocab_size and eos_token_id


def vocab_or_default(model_dir: Path) -> tuple[int, int | tuple[int, ...], str | None]:
    """(vocab_size, eos_id, note): the model's config.json, else DeepSeek-R1's known values with a note saying
    why. Jobs and setup share this, so a job reuses the dataset setup made before the weights arrived."""
    try:
        vocab, eos = read_vocab(model_dir)
        return vocab, eos, None
    except (DatasetError, OSError, ValueError) as exc:
        return DEEPSEEK_R1_VOCAB[0], DEEPSEEK_R1_VOCAB[1], f"no readable {Path(model_dir).name}/config.json ({exc})"


def read_vocab(model_dir: Path) -> tuple[int, int | tuple[int, ...]]:
    """(vocab_size, eos_id) from ``config.json`` (or its ``text_config``); EOS falls back to
    ``generation_config.json``. An ``eos_token_id`` list comes back as a sorted tuple: all of its ids are kept
    out of prompts. DeepSeek-R1 gives (129280, 1). No tokenizer library is needed."""
    model_dir = Path(model_dir)
    config_file = model_dir / "config.json"
    if not config_file.is_file():
        raise DatasetError(f"{model_dir}: no config.json; give --vocab-size and --eos-id instead")
    config = _load_json(config_file)
    sections = [config, config.get("text_config") or {}]
    vocab = next((s["vocab_size"] for s in sections if isinstance(s, dict) and "vocab_size" in s), None)
    if vocab is None:
        raise DatasetError(f"{config_file} has no vocab_size; give --vocab-size and --eos-id instead")
    vocab = check_int(f"vocab_size in {config_file}", vocab, 2)
    eos = next((s["eos_token_id"] for s in sections if isinstance(s, dict) and s.get("eos_token_id") is not None),
               None)
    generation_file = model_dir / "generation_config.json"
    if eos is None and generation_file.is_file():
        eos = _load_json(generation_file).get("eos_token_id")
    if eos is None:
        raise DatasetError(f"{config_file} has no eos_token_id; give --eos-id instead")
    try:
        return vocab, normalize_eos(eos, vocab)
    except DatasetError as exc:
        raise DatasetError(f"{config_file}: {exc}") from None


def _create_temp(final: Path) -> tuple[int, Path]:
    """A new file next to ``final`` (same filesystem, so the rename is atomic), mode 0666 minus umask."""
    for _ in range(100):
        temp = final.with_name(f".{final.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        try:
            return os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), temp
        except FileExistsError:
            continue
    raise DatasetError(f"cannot create a temporary file next to {final}")  # pragma: no cover


def _write_atomically(final: Path, write: Callable[[Any], Any]) -> tuple[Any, os.stat_result]:
    """Run ``write(binary_file)`` on a temp file, then rename it over ``final``: readers see the old file or
    the complete new one, never a partial one. Returns write's result and the file's stat (size, mtime and
    inode survive the rename)."""
    fd, temp = _create_temp(final)
    try:
        with os.fdopen(fd, "wb") as handle:
            result = write(handle)
        stat = os.stat(temp)  # after close: network filesystems settle mtime on close
        os.replace(temp, final)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return result, stat


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _write_sidecar(info: DatasetInfo, path: Path) -> None:
    text = json.dumps(info.to_dict(), indent=2, sort_keys=True) + "\n"
    _write_atomically(sidecar_path(path), lambda handle: handle.write(text.encode()))


def _generate(path: Path, req: DatasetRequest, why: str) -> DatasetInfo:
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        stats, stat = _write_atomically(path, lambda handle: write_requests(handle, req))
    except OSError as exc:
        if not isinstance(exc, PermissionError) and exc.errno != errno.EROFS:
            raise
        raise DatasetError(f"dataset {path} must be written ({why}) but {path.parent} is not writable "
                           f"({exc.strerror or type(exc).__name__}); make it writable, or prepare the dataset "
                           "where it is (setup)") from None
    info = DatasetInfo(
        file=path.name, isl=req.isl, osl=req.osl, num_requests=req.num_requests, vocab_size=req.vocab_size,
        eos_id=req.eos_id, seed=req.seed, stdev_in=req.stdev_in, stdev_out=req.stdev_out, size=stats.size,
        digest=stats.digest, mtime_ns=stat.st_mtime_ns, inode=stat.st_ino,
        total_input_tokens=stats.total_input_tokens, total_output_tokens=stats.total_output_tokens,
        generator=f"llmb_plugin_deepseek_r1.dataset.store (numpy {np.__version__})", created=_now())
    _write_sidecar(info, path)
    return info


def generate_dataset(path: Path, req: DatasetRequest) -> DatasetInfo:
    """Write the dataset for ``req`` to ``path`` and its sidecar, both atomically; returns the sidecar record.

    Streams in chunks (memory does not grow with the number of requests). An interrupted run leaves at most a
    hidden ``.<name>.<pid>.<random>.tmp`` file, never a partial file under ``path``. DatasetError (one line)
    when the directory is not writable.
    """
    return _generate(path, req, "asked to generate")


def read_sidecar(path: Path) -> DatasetInfo:
    """The sidecar of the dataset at ``path``; DatasetError when it is missing or unreadable."""
    meta = sidecar_path(path)
    if not meta.is_file():
        raise DatasetError(f"{meta} does not exist")
    try:
        return DatasetInfo.from_dict(_load_json(meta))
    except DatasetError as exc:
        raise DatasetError(f"{meta}: {exc}") from None


def _own_sidecar(path: Path, stat: os.stat_result, verify: bool) -> tuple[DatasetInfo | None, str]:
    """The sidecar when it still describes the file at ``path`` (a file this plugin wrote and nobody changed);
    else (None, why).

    Cheap by default: the file's size, mtime and inode must equal the sidecar's. When only mtime or inode differ (a
    copy, a ``touch``), the file's digest decides, and on a match the sidecar is refreshed so that the next check is
    cheap again. ``verify`` always hashes.
    """
    try:
        info = read_sidecar(path)
    except DatasetError as exc:
        return None, f"no usable sidecar: {exc}"
    if stat.st_size != info.size:
        return None, f"file has {stat.st_size} bytes, its sidecar says {info.size}: it changed since it was made"
    if verify or (stat.st_mtime_ns, stat.st_ino) != (info.mtime_ns, info.inode):
        if not same_content(path, info.digest):
            return None, "file content differs from its sidecar's digest: it changed since it was made"
        if (stat.st_mtime_ns, stat.st_ino) != (info.mtime_ns, info.inode):
            info = dataclasses.replace(info, mtime_ns=stat.st_mtime_ns, inode=stat.st_ino)
            try:
                _write_sidecar(info, path)
            except OSError:
                pass  # read-only: still reusable, the next check hashes again
    return info, ""


def find_reusable(path: Path, req: DatasetRequest, *, verify: bool = False) -> tuple[DatasetInfo | None, str]:
    """(sidecar, "") when the file at ``path`` was written by this plugin, is unchanged and serves ``req`` (more
    requests than asked is fine); else (None, why not)."""
    path = Path(path)
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None, "no dataset file"
    info, why = _own_sidecar(path, stat, verify)
    if info is None:
        return None, why
    why = info.mismatch(req)
    return (None, why) if why else (info, "")


def _adopt_foreign(path: Path, req: DatasetRequest, why: str) -> tuple[DatasetInfo, str]:
    """A dataset this plugin did not write (or that was changed since): never overwritten. Used when it passes
    validation for ``req``; otherwise a one-line DatasetError saying what is wrong and what to do."""
    isl_osl = (req.isl, req.osl) if req.stdev_in == 0 and req.stdev_out == 0 else (None, None)
    result = validate_dataset(path, isl=isl_osl[0], osl=isl_osl[1], num_requests=req.num_requests,
                              vocab_size=req.vocab_size, eos_id=req.eos_id)
    if not result.ok:
        raise DatasetError(f"{path} was not written by this plugin ({why}) and does not fit the request "
                           f"({result.message}); it is left untouched: move it away to have it regenerated")
    stat = path.stat()
    info = DatasetInfo(file=path.name, isl=req.isl, osl=req.osl, num_requests=result.lines,
                       vocab_size=req.vocab_size, eos_id=req.eos_id, seed=-1, stdev_in=req.stdev_in,
                       stdev_out=req.stdev_out, size=stat.st_size, digest=file_digest(path),
                       mtime_ns=stat.st_mtime_ns, inode=stat.st_ino,
                       total_input_tokens=req.isl * result.lines, total_output_tokens=req.osl * result.lines,
                       generator="user-provided (validated)", extra={"why_not_own": why})
    return info, "validated"


def ensure_dataset(path: Path, req: DatasetRequest, *, verify: bool = False) -> tuple[DatasetInfo, str]:
    """The dataset for ``req`` at ``path``, as (sidecar, action):

    - "reused": a file this plugin wrote, unchanged, that fits ``req`` (one with more requests fits too, as
      trtllm-bench reads only the first ``--num_requests`` lines, which equal a fresh dataset's);
    - "generated": written now, because there was none, or this plugin's own file was made for other settings;
    - "validated": a file this plugin did not write (no sidecar, or changed since): never overwritten, used only
      when it passes validation for ``req``, else DatasetError.
    DatasetError (one line) also when it must be written and the directory is read-only."""
    path = Path(path)
    try:
        stat = path.stat()
    except FileNotFoundError:
        stat = None
    why = "no dataset file"
    if stat is not None:
        info, why = _own_sidecar(path, stat, verify)
        if info is None:
            return _adopt_foreign(path, req, why)
        why = info.mismatch(req)
        if not why:
            log.info("reusing %s (%s)", path, req.describe())
            return info, "reused"
    log.info("generating %s: %s (%s)", path, why, req.describe())
    return _generate(path, req, why), "generated"

