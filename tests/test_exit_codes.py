"""One exit-code policy for every command (README "Exit codes"): 0 ok, 1 invalid input or configuration,
2 usage error (argparse's, as llmb-run 1.15), 3 system error, 4 ran but what it ran failed, 130 interrupted."""

from __future__ import annotations

import pytest
from conftest import RUN_ARGS
from weights_fixtures import make_checkpoint

from llmb_plugin_deepseek_r1.__main__ import main as module_main
from llmb_plugin_deepseek_r1.host import errors

# Every command, with a usage error: argparse's exit 2 and its usage line on stderr.
USAGE = {
    "llmb-run list": ["list", "--bogus"],
    "llmb-run single": [*RUN_ARGS, "--scale", "x"],
    "llmb-run submit": ["submit", "-w", "inference_deepseek-r1", "--max-scale", "x"],
    "llmb-run jobs": ["jobs", "frobnicate"],
    "llmb-run setup": ["setup", "-w", "inference_deepseek-r1", "--", "--bogus"],
    "llmb-run verify": ["verify", "-w", "inference_deepseek-r1", "--", "--dtype", "int3"],
    "llmb-run results": ["results", "--", "--bogus"],
    "llmb-run archive": ["archive", "--", "--bogus"],
}
MODULE_USAGE = {
    "verify-weights": ["verify-weights"],
    "prepare-dataset": ["prepare-dataset", "--isl", "x"],
    "validate-dataset": ["validate-dataset"],
    "parse-log": ["parse-log"],
    "launch": ["launch", "--scale", "x"],
    "setup": ["setup", "--bogus"],
    "results": ["results", "--bogus"],
    "archive": ["archive", "--bogus"],
    "(unknown command)": ["no-such-command"],
}


@pytest.mark.parametrize("argv", USAGE.values(), ids=USAGE.keys())
def test_llmb_run_usage_errors_exit_2(run_cli, argv):
    code, out, err = run_cli(*argv)
    assert code == errors.EXIT_USAGE == 2, err
    assert "usage:" in err


@pytest.mark.parametrize("argv", MODULE_USAGE.values(), ids=MODULE_USAGE.keys())
def test_module_commands_usage_errors_exit_2(llmb_env, capsys, argv):
    assert module_main(argv) == 2
    assert "usage:" in capsys.readouterr().err


def test_invalid_input_1_system_error_3_and_failed_outcome_4(run_cli, monkeypatch, tmp_path):
    code, _, err = run_cli("jobs", "show", "12345")
    assert code == 1 and err.startswith("error: no submitted job '12345'")
    monkeypatch.setenv("LLMB_EXECUTOR", "slurm")
    monkeypatch.setenv("PATH", str(tmp_path))  # no sbatch anywhere
    code, _, err = run_cli(*RUN_ARGS, "--no-preflight")
    assert code == 3 and "sbatch is not on PATH" in err
    monkeypatch.undo()


def test_verify_checks_the_model_path_jobs_use(run_cli, monkeypatch, tmp_path, install_dir):
    """MODEL_PATH moves the weights for jobs, so `llmb-run verify` checks that folder, not the default one."""
    elsewhere = make_checkpoint(tmp_path / "some" / "where")
    monkeypatch.setenv("MODEL_PATH", str(elsewhere))
    code, out, err = run_cli("verify", "-w", "inference_deepseek-r1")
    assert code == 0, out + err
    assert out.startswith(f"OK: {elsewhere}")
    monkeypatch.setenv("MODEL_PATH", str(tmp_path / "absent"))
    code, out, _ = run_cli("verify", "-w", "inference_deepseek-r1")
    assert code == 4 and f"model folder {tmp_path / 'absent'} does not exist" in out
    monkeypatch.delenv("MODEL_PATH")
    code, out, _ = run_cli("verify", "-w", "inference_deepseek-r1")
    assert code == 4 and str(install_dir / "workloads" / "inference_deepseek-r1" / "DeepSeek-R1-FP4") in out


def test_exceptions_map_to_the_table():
    assert errors.exit_code(errors.ValidationError("x")) == 1
    assert errors.exit_code(errors.ConfigError("x")) == 1
    assert errors.exit_code(SystemExit(2)) == 2
    assert errors.exit_code(errors.HostError("x")) == errors.exit_code(errors.SlurmError("x")) == 3
    assert errors.exit_code(RuntimeError("a bug")) == 3
    assert errors.exit_code(errors.BenchmarkFailed("x")) == 4
    assert errors.exit_code(KeyboardInterrupt()) == 130


def test_the_command_wrapper_prints_one_line_or_a_traceback(capsys):
    def failing(exc: BaseException):
        @errors.command
        def main() -> int:
            raise exc
        return main()

    assert failing(errors.ConfigError("LLMB_INSTALL is not set")) == 1
    assert capsys.readouterr().err == "error: LLMB_INSTALL is not set\n"
    assert failing(PermissionError(13, "Permission denied", "/x/out.csv")) == 3
    assert capsys.readouterr().err == "error: [Errno 13] Permission denied: '/x/out.csv'\n"
    assert failing(ZeroDivisionError("a bug")) == 3
    err = capsys.readouterr().err
    assert err.startswith("Traceback (most recent call last):") and "ZeroDivisionError: a bug" in err
    assert failing(KeyboardInterrupt()) == 130 and capsys.readouterr().err == "interrupted\n"
    assert failing(SystemExit("bye")) == 1 and capsys.readouterr().err == "error: bye\n"  # as Python exits


SECRET = "hf_PastedIntoTheWrongPlace42"


@pytest.mark.parametrize("where", ["--env", "shell"])
def test_an_error_never_prints_a_secret_the_command_was_given(run_cli, monkeypatch, where):
    # A token pasted into the wrong variable: the one-line error names the bad value, and the wrapper's last
    # scrub replaces it, whether the secret came from the shell or from --env on the command line.
    given = ["--env", f"HF_TOKEN={SECRET}"] if where == "--env" else []
    if where == "shell":
        monkeypatch.setenv("HF_TOKEN", SECRET)
    code, out, err = run_cli(*RUN_ARGS, "--dry-run", *given, "--env", f"MAX_BATCH_SIZE={SECRET}")
    assert code == errors.EXIT_INVALID and "MAX_BATCH_SIZE='***' is not valid" in err
    assert SECRET not in err + out


def test_a_traceback_is_scrubbed_too(capsys, monkeypatch):
    monkeypatch.setenv("NGC_API_KEY", SECRET)

    @errors.command
    def main() -> int:
        raise RuntimeError(f"a bug that quotes {SECRET}")

    assert main() == errors.EXIT_SYSTEM
    err = capsys.readouterr().err
    assert "RuntimeError: a bug that quotes ***" in err and SECRET not in err
