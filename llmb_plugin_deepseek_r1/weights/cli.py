"""``python -m llmb_plugin_deepseek_r1 verify-weights DIR [--full] [--manifest FILE] [--json] [--dtype D]``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from llmb_plugin_deepseek_r1.host import errors
from llmb_plugin_deepseek_r1.tuning import bulk_work
from llmb_plugin_deepseek_r1.host.errors import ValidationError

from .check import check_weights
from .hashing import is_own_cache
from .quant import DTYPE_QUANT_ALGO


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m llmb_plugin_deepseek_r1 verify-weights",
        description="Check a DeepSeek-R1 checkpoint folder: quick (metadata only) by default, --full hashes "
        "every file against a manifest. Exit 0 only when nothing is wrong.",
    )
    p.add_argument("model_dir", metavar="DIR", type=Path, help="the checkpoint folder")
    p.add_argument("--full", action="store_true", help="also sha256 every file against a manifest")
    p.add_argument(
        "--manifest",
        type=Path,
        metavar="FILE",
        help="manifest to hash against (JSON or `sha256sum` output); implies --full",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    p.add_argument(
        "--dtype",
        default="nvfp4",
        type=str.lower,
        choices=sorted(DTYPE_QUANT_ALGO),
        help="quantization the checkpoint must have (default: nvfp4)",
    )
    p.add_argument(
        "--cache",
        type=Path,
        metavar="FILE",
        help="verification cache file (default: $LLMB_WEIGHTS_CACHE or ~/.cache/llmb/weights-verified.json)",
    )
    p.add_argument("--expect-repo", metavar="REPO", help="warn when the folder holds another Hugging Face repo")
    p.add_argument("--expect-revision", metavar="REV", help="warn when the folder holds another revision")
    p.add_argument("--no-cache", action="store_true", help="hash every file, remember nothing")
    p.add_argument("--jobs", type=int, metavar="N", help="hashing threads (default: all cores)")
    return p


@errors.command
def main(argv: list[str] | None = None) -> int:
    """Run the check and print its verdict; 0 when nothing is wrong, 4 when it found problems (README's table)."""
    args = build_parser().parse_args(argv)
    if args.manifest is not None and not args.manifest.is_file():
        raise ValidationError(f"--manifest {args.manifest}: no such file; pass a JSON manifest or `sha256sum` output")
    if args.cache is not None and not args.no_cache and args.cache.exists() and not is_own_cache(args.cache):
        raise ValidationError(f"--cache {args.cache}: exists and is not a verification cache written by "
                              f"verify-weights; refusing to overwrite it: pass a new file name")
    if args.jobs is not None and args.jobs < 1:
        raise ValidationError(f"--jobs {args.jobs}: must be a positive number of threads")
    with bulk_work():
        report = _check(args)
    if args.json:
        print(json.dumps(report.to_dict(), indent=1))
    else:
        print(report.format_text())
    return errors.EXIT_OK if report.ok else errors.EXIT_BENCHMARK_FAILED


def _check(args: argparse.Namespace):
    return check_weights(
        args.model_dir,
        dtype=args.dtype,
        full=args.full,
        manifest=args.manifest,
        cache_path=args.cache,
        use_cache=not args.no_cache,
        progress=None,
        workers=args.jobs,
        expect_repo=args.expect_repo,
        expect_revision=args.expect_revision,
    )
