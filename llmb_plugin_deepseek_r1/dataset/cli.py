"""Command lines ``prepare-dataset`` and ``validate-dataset`` (argument parsing and printing only).

Exit codes: README's table (0 success, 1 bad input, 2 usage, 3 system error, 4 the dataset checked is not valid).
Every error is one line on stderr naming the bad value and what is accepted.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from llmb_plugin_deepseek_r1.host import errors
from llmb_plugin_deepseek_r1.tuning import bulk_work
from llmb_plugin_deepseek_r1.host.errors import ValidationError

from .store import (
    DatasetError,
    DatasetRequest,
    ensure_dataset,
    generate_dataset,
    read_sidecar,
    read_vocab,
    validate_dataset,
)
from .model import DEFAULT_SEED, eos_tuple


def _eos_list(text: str) -> tuple[int, ...]:
    try:
        ids = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a token id or a comma-separated list of ids, got {text!r}") from None
    return ids


def _vocab_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("vocabulary (from the model folder, or given)")
    group.add_argument("--model-dir", type=Path, help="model folder whose config.json gives vocab_size and "
                       "eos_token_id")
    group.add_argument("--vocab-size", type=int, help="token ids are drawn from [0, N)")
    group.add_argument("--eos-id", type=_eos_list, help="EOS token id(s) never to draw, e.g. 1 or 1,2")


def _vocab(args: argparse.Namespace, required: bool) -> tuple[int | None, Any]:
    explicit = args.vocab_size is not None or args.eos_id is not None
    if args.model_dir is not None and explicit:
        raise ValidationError("give either --model-dir or --vocab-size/--eos-id, not both")
    if args.model_dir is not None:
        return read_vocab(args.model_dir)
    if required and (args.vocab_size is None or args.eos_id is None):
        raise ValidationError("give --model-dir DIR, or both --vocab-size N and --eos-id N")
    return args.vocab_size, args.eos_id


def _run(name: str, parser: argparse.ArgumentParser, argv: list[str] | None, body: Any) -> int:
    args = parser.parse_args(sys.argv[2:] if argv is None else argv)
    try:
        with bulk_work(numpy=True):
            return body(args)
    except (DatasetError, ValidationError) as exc:  # a dataset named by the user that cannot be used: invalid input
        raise ValidationError(f"{name}: {exc}") from None


def _prepare_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m llmb_plugin_deepseek_r1 prepare-dataset",
                     description="Write a synthetic trtllm-bench dataset (JSON Lines) and its .meta.json sidecar; "
                                 "an existing dataset that fits is reused.")
    parser.add_argument("--isl", type=int, required=True, help="input tokens per request (mean with --stdev-in)")
    parser.add_argument("--osl", type=int, required=True, help="output tokens per request (mean with --stdev-out)")
    parser.add_argument("--num-requests", type=int, required=True, help="number of requests (lines)")
    _vocab_options(parser)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"random seed (default {DEFAULT_SEED})")
    parser.add_argument("--stdev-in", type=float, default=0.0, help="stdev of input lengths (default 0: exact)")
    parser.add_argument("--stdev-out", type=float, default=0.0, help="stdev of output lengths (default 0: exact)")
    parser.add_argument("--output", type=Path, required=True, help="dataset file to write")
    parser.add_argument("--force", action="store_true", help="regenerate even if the existing dataset fits")
    parser.add_argument("--verify", action="store_true",
                        help="check the content digest before reusing an existing dataset")
    return parser


def _prepare(args: argparse.Namespace) -> int:
    vocab, eos = _vocab(args, required=True)
    assert vocab is not None
    req = DatasetRequest(isl=args.isl, osl=args.osl, num_requests=args.num_requests, vocab_size=vocab,
                         eos_id=eos, seed=args.seed, stdev_in=args.stdev_in, stdev_out=args.stdev_out)
    start = time.perf_counter()
    if args.force:
        info, how = generate_dataset(args.output, req), "generated"
    else:
        info, how = ensure_dataset(args.output, req, verify=args.verify)
    took = time.perf_counter() - start
    print(f"{how} {args.output}: {req.describe()}; {info.num_requests} requests in file, "
          f"{info.size / 1e6:.1f} MB, digest {info.digest[:25]}, {took:.2f} s")
    return 0


def _validate_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m llmb_plugin_deepseek_r1 validate-dataset",
                     description="Check a trtllm-bench dataset; checks not given on the command line are taken "
                                 "from the dataset's .meta.json sidecar when there is one.")
    parser.add_argument("dataset", type=Path, help="dataset file (JSON Lines)")
    parser.add_argument("--isl", type=int, help="every request has exactly this many input ids")
    parser.add_argument("--osl", type=int, help="every request asks for exactly this many output tokens")
    parser.add_argument("--num-requests", type=int, help="at least this many requests; only these are checked")
    _vocab_options(parser)
    parser.add_argument("--no-sidecar", action="store_true", help="ignore the sidecar")
    return parser


def _validate(args: argparse.Namespace) -> int:
    vocab, eos = _vocab(args, required=False)
    expect: dict[str, Any] = {"isl": args.isl, "osl": args.osl, "num_requests": args.num_requests,
                              "vocab_size": vocab, "eos_id": eos}
    if not args.no_sidecar:
        try:
            info = read_sidecar(args.dataset)
        except DatasetError:
            info = None
        if info is not None:
            known = {"isl": info.isl if info.stdev_in == 0 else None,
                     "osl": info.osl if info.stdev_out == 0 else None,
                     "num_requests": info.num_requests, "vocab_size": info.vocab_size,
                     "eos_id": eos_tuple(info.eos_id)}
            expect = {key: known[key] if value is None else value for key, value in expect.items()}
    result = validate_dataset(args.dataset, **expect)
    print(result.message, file=sys.stdout if result.ok else sys.stderr)
    return errors.EXIT_OK if result.ok else errors.EXIT_BENCHMARK_FAILED


@errors.command
def main_prepare_dataset(argv: list[str] | None = None) -> int:
    """``prepare-dataset --isl N --osl N --num-requests N (--model-dir DIR | --vocab-size N --eos-id N)
    [--seed N] [--stdev-in X --stdev-out X] --output FILE [--force] [--verify]``."""
    return _run("prepare-dataset", _prepare_parser(), argv, _prepare)


@errors.command
def main_validate_dataset(argv: list[str] | None = None) -> int:
    """``validate-dataset FILE [--isl N] [--osl N] [--num-requests N] [--model-dir DIR | --vocab-size N
    --eos-id N] [--no-sidecar]``."""
    return _run("validate-dataset", _validate_parser(), argv, _validate)
