"""`python -m llmb_plugin_deepseek_r1 COMMAND ...`: the plugin's own tools.

Each command lives in its own module and exposes ``main(argv) -> int``; modules are imported only when their
command runs, so that one broken optional dependency never breaks the others.
"""

from __future__ import annotations

import contextlib
import importlib
import sys

from llmb_plugin_deepseek_r1.host import errors
from llmb_plugin_deepseek_r1.tuning import exit_without_teardown, no_blas_threads

COMMANDS: dict[str, tuple[str, str]] = {
    "verify-weights": ("llmb_plugin_deepseek_r1.weights", "check a DeepSeek-R1-FP4 checkpoint folder"),
    "prepare-dataset": ("llmb_plugin_deepseek_r1.dataset.cli", "write a synthetic trtllm-bench dataset"),
    "validate-dataset": ("llmb_plugin_deepseek_r1.dataset.cli", "check an existing trtllm-bench dataset"),
    "parse-log": ("llmb_plugin_deepseek_r1.report.cli", "parse a trtllm-bench output file"),
    "launch": ("llmb_plugin_deepseek_r1.job.launch", "run the benchmark job body for $USE_CASES (launch.sh)"),
    "node-check": ("llmb_plugin_deepseek_r1.job.nodes", "what this node sees (GPUs, model, dataset), one JSON line"),
    "setup": ("llmb_plugin_deepseek_r1.setup.steps", "prepare weights, image and datasets (setup.sh)"),
    "results": ("llmb_plugin_deepseek_r1.results.cli", "one table of all runs, compared with references"),
    "archive": ("llmb_plugin_deepseek_r1.results.cli", "pack experiments (logs, results, YAML) into one file"),
}


# Commands that use numpy for bulk work but never multiply a matrix: imported without BLAS threads, and ended
# without the interpreter's teardown once their files are closed (tuning).
BULK_NUMPY_COMMANDS = {"prepare-dataset", "validate-dataset"}

# The function each module exposes for its command, where it is not ``main``.
ENTRY_POINTS = {"prepare-dataset": "main_prepare_dataset", "validate-dataset": "main_validate_dataset",
                "parse-log": "main_parse_log", "archive": "main_archive"}


def _usage() -> str:
    lines = ["usage: python -m llmb_plugin_deepseek_r1 COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name:<18} {help_}" for name, (_, help_) in COMMANDS.items()]
    return "\n".join(lines)


@errors.command
def main(argv: list[str] | None = None) -> int:
    """Dispatch to the command's ``main``; every one of them follows the one exit-code policy (host.errors)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in ("-h", "--help"):
        print(_usage())
        return errors.EXIT_OK
    if not args or args[0] not in COMMANDS:
        print(_usage(), file=sys.stderr)
        what = f"unknown command {args[0]!r}" if args else "a command is needed"
        print(f"error: {what}; choose one of: {', '.join(COMMANDS)}", file=sys.stderr)
        return errors.EXIT_USAGE
    name, rest = args[0], args[1:]
    with no_blas_threads() if name in BULK_NUMPY_COMMANDS else contextlib.nullcontext():
        module = importlib.import_module(COMMANDS[name][0])
    return int(getattr(module, ENTRY_POINTS.get(name, "main"))(rest) or 0)


if __name__ == "__main__":
    status = main()
    if sys.argv[1:2] and sys.argv[1] in BULK_NUMPY_COMMANDS:
        exit_without_teardown(status)
    sys.exit(status)
