"""Hardening, walked as tables: a new bad input is one line. Every bad value gets a one-line error (exit 1) before
anything is written or submitted; generated batch scripts run in a sandbox start nothing else; no secret value
appears in anything written or printed; corrupt files are skipped with a warning naming them; interrupted jobs
are recorded. Jobs run the STAND-IN tests/fake_trtllm/trtllm-bench (TensorRT-LLM cannot run here)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from conftest import LLMB_RUN, RUN_ARGS
from jobkit import job_environ, load, result_files, start_job_body
from slurm_cluster import wait_until

SECRET = "hf_s3cretTokenValue42"
SECRET2 = "k3y-material-9876"
WDIR = Path("workloads") / "inference_deepseek-r1"

# (case id, environment knobs, extra command-line words, fragment of the one-line error)
BAD_RUN_INPUTS = [
    ("slurm-arg newline", {}, ["--slurm-arg", "reservation=x\ntouch M #"], "control character '\\n'"),
    ("slurm-arg bad key", {}, ["--slurm-arg", "mail-type=END", "--slurm-arg", "1 x=y"], "is not valid: expected a sbatch"),
    ("env value newline", {}, ["--env", "MODE=max_throughput\ntouch M"], "--env MODE='max_throughput\\ntouch M'"),
    ("secret env newline", {}, ["--env", f"HF_TOKEN={SECRET}\nx"], "--env HF_TOKEN=*** is not valid"),
    ("env key with space", {}, ["--env", f"MY KEY={SECRET}"], "got key 'MY KEY'"),
    ("env without =", {}, ["--env", "JUSTAWORD"], "without '='"),
    ("LLMB_INSTALL newline", {"LLMB_INSTALL": "/tmp/x\ntouch M"}, [], "LLMB_INSTALL='/tmp/x\\ntouch M'"),
    ("LLMB_INSTALL comma", {"LLMB_INSTALL": "/tmp/a,/root:/mnt/root:ro"}, [], "split the container mount list"),
    ("MODEL_PATH colon", {"MODEL_PATH": "/m:/mnt/root:ro"}, [], "MODEL_PATH='/m:/mnt/root:ro' is not valid"),
    ("MODEL_PATH comma", {"MODEL_PATH": "/m,/root"}, [], "',' would split"),
    ("MODEL_PATH relative", {"MODEL_PATH": "models/x"}, [], "expected an absolute path"),
    ("MODEL_PATH newline", {"MODEL_PATH": "/m\n/x"}, [], "control character"),
    ("image control char", {"RUN_CONF_IMAGE": "/i.sqsh\rx"}, [], "RUN_CONF_IMAGE='/i.sqsh\\rx' is not valid"),
    ("knob tab", {"SBATCH_PARTITION": "gpu\tx"}, [], "SBATCH_PARTITION='gpu\\tx' is not valid"),
    ("repeats huge", {}, ["-r", "100000000"], "--repeats 100000000 is not valid: expected 1 to 100"),
    ("repeats zero", {}, ["-r", "0"], "expected 1 to 100"),
    ("sweep 1000x1000", {"MAX_BATCH_SIZE": ",".join(map(str, range(1, 1001))),
                         "CONCURRENCY": ",".join(map(str, range(1, 1001)))}, [], "more than 1000 points"),
    ("sweep x use cases", {"MAX_BATCH_SIZE": ",".join(map(str, range(1, 401)))}, [], "at most 1000 per invocation"),
    ("jobs x repeats", {"MAX_BATCH_SIZE": ",".join(map(str, range(1, 201))), "USE_CASES": "chat:128/128"},
     ["-r", "6"], "1200 jobs"),
    ("gpus per node", {"SBATCH_GPUS_PER_NODE": "100000"}, [], "SBATCH_GPUS_PER_NODE=100000 is not valid"),
    ("time limit huge", {"SBATCH_TIMELIMIT": "99999999"}, [], "at most 30 days"),
    ("time limit digits", {"SBATCH_TIMELIMIT": "9" * 5000}, [], "SBATCH_TIMELIMIT='999"),
    ("int 5000 digits", {"MAX_BATCH_SIZE": "9" * 5000}, [], "expected a positive whole number"),
    ("num requests", {"NUM_REQUESTS": str(10 ** 13)}, [], f"NUM_REQUESTS={10 ** 13} is not valid: expected at most"),
    ("isl", {"USE_CASES": "x:200000000/10"}, [], "USE_CASES ISL of x=200000000 is not valid"),
    ("osl", {"USE_CASES": "x:10/200000000"}, [], "USE_CASES OSL of x=200000000"),
    ("max num tokens", {"MAX_NUM_TOKENS": str(10 ** 9)}, [], "MAX_NUM_TOKENS=1000000000 is not valid"),
    ("max batch size", {"MAX_BATCH_SIZE": str(10 ** 7)}, [], "MAX_BATCH_SIZE=10000000 is not valid"),
    ("tp", {"TP": "100000"}, [], "TP=100000 is not valid"),
    ("oom retries", {"OOM_RETRIES": "1000"}, [], "OOM_RETRIES=1000 is not valid: expected at most 20"),
    ("hang grace", {"HANG_GRACE": str(10 ** 12)}, [], "HANG_GRACE=1000000000000 is not valid"),
    ("use case name length", {"USE_CASES": "u" * 300 + ":10/10"}, [], "at most 64 characters"),
    ("many use cases", {"USE_CASES": " ".join(f"u{i}:10/10" for i in range(100))}, [], "at most 64 per"),
]

BAD_HOST_COMMANDS = [  # (case id, llmb-run words, fragment of the one-line error)
    ("wait timeout nan", ["jobs", "wait", "1", "--timeout", "nan"], "--timeout nan is not valid"),
    ("wait timeout inf", ["jobs", "wait", "1", "--timeout", "inf"], "--timeout inf is not valid"),
    ("log timeout negative", ["jobs", "log", "1", "--timeout", "-5"], "expected seconds in (0,"),
    ("slurm-arg without key", [*RUN_ARGS, "--dry-run", "--slurm-arg", "=x"], "is not valid: expected a sbatch"),
]

SWEEP_FILES = [  # (case id, file bytes, fragment)
    ("not utf-8", b"MAX_BATCH_SIZE: [128, \xff\xfe]\n", "not UTF-8 text"),
    ("mapping value", b"MAX_BATCH_SIZE: [{a: 1}]\n", "key MAX_BATCH_SIZE: expected a number, string or true/false"),
    ("null value", b"CONCURRENCY: [null]\n", "got null"),
    ("nested list", b"TP: [[4]]\n", "got list"),
    ("top-level list", b"- 1\n- 2\n", "expected a mapping of knob names to lists of values, got list"),
    ("unknown key", b"HF_TOKEN: [1]\n", "key 'HF_TOKEN' is not valid"),
    ("deep nesting", b"MAX_BATCH_SIZE: " + b"[" * 5000 + b"]" * 5000 + b"\n", "SWEEP_FILE="),
    ("too many values", ("MAX_BATCH_SIZE: [" + ",".join(map(str, range(1, 1200))) + "]\n").encode(), "1199 values"),
]


def _one_line_error(code: int, out: str, err: str, fragment: str) -> None:
    """Exit 1 with one `error:` line; or, for a malformed option (argparse's usage error), exit 2 with the usage
    text and one `error:` line (the project's exit-code policy, host/errors.py)."""
    assert out == "" and "Traceback" not in err, err
    if code == 2:
        error_lines = [line for line in err.splitlines() if ": error: " in line]
        assert err.startswith("usage: ") and len(error_lines) == 1 and fragment in error_lines[0], err
        return
    assert code == 1, err
    assert fragment in err and err.count("\n") == 1 and err.startswith("error: "), err


@pytest.mark.parametrize("case, knobs, extra, fragment", BAD_RUN_INPUTS, ids=[c[0] for c in BAD_RUN_INPUTS])
def test_bad_run_input_is_one_line_error_before_anything_is_written(run_cli, monkeypatch, install_dir, case, knobs,
                                                                    extra, fragment):
    monkeypatch.setenv("CONTAINER_RUNTIME", "none")
    for key, value in knobs.items():
        monkeypatch.setenv(key, value)
    for args in ([*RUN_ARGS, "--dry-run", *extra], [*RUN_ARGS, "--no-preflight", "--executor", "local", *extra]):
        code, out, err = run_cli(*args)
        _one_line_error(code, out, err, fragment)
        assert SECRET not in err
    assert list(install_dir.iterdir()) == []  # nothing written, nothing submitted


@pytest.mark.parametrize("case, argv, fragment", BAD_HOST_COMMANDS, ids=[c[0] for c in BAD_HOST_COMMANDS])
def test_bad_host_command_input_is_one_line_error(run_cli, case, argv, fragment):
    _one_line_error(*run_cli(*argv), fragment)


@pytest.mark.parametrize("case, data, fragment", SWEEP_FILES, ids=[c[0] for c in SWEEP_FILES])
def test_bad_sweep_file_names_file_key_and_type(run_cli, monkeypatch, tmp_path, case, data, fragment):
    sweep = tmp_path / "sweep.yaml"
    sweep.write_bytes(data)
    monkeypatch.setenv("SWEEP_FILE", str(sweep))
    code, out, err = run_cli(*RUN_ARGS, "--dry-run")
    _one_line_error(code, out, err, fragment)
    assert f"SWEEP_FILE='{sweep}'" in err


def test_setup_refuses_a_newline_in_llmb_install(tmp_path):
    from test_setup_support import run_setup, setup_env

    env = setup_env(tmp_path / "x\ntouch M #", None)
    proc = run_setup(env, "--slurm", "--partition", "cpu", "--dry-run", cwd=tmp_path)
    assert proc.returncode == 1 and "LLMB_INSTALL=" in proc.stderr and "control character" in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []


# --- generated batch scripts, run with bash in a sandbox ------------------------------------------------------

STUB = "#!/bin/sh\nprintf '%s\\n' \"$0\" \"$@\" >> \"$SANDBOX/ran.txt\"\n"
SBATCH_STUB = "#!/bin/sh\nn=$(ls \"$SANDBOX\"/script-*.sh 2>/dev/null | wc -l)\n" \
              "for last; do :; done\ncp \"$last\" \"$SANDBOX/script-$n.sh\"\necho \"Submitted batch job 12$n\"\n"


def _stub_bin(sandbox: Path) -> Path:
    bin_dir = sandbox / "bin"
    bin_dir.mkdir(parents=True)
    for name, text in (("sbatch", SBATCH_STUB), ("srun", STUB), ("python", STUB), ("python3", STUB)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    return bin_dir


def _run_scripts(sandbox: Path, bin_dir: Path) -> list[str]:
    """bash each captured script in an empty folder with the stubs first on PATH; return what the stubs saw."""
    scripts = sorted(sandbox.glob("script-*.sh"))
    assert scripts, "no batch script was generated"
    for script in scripts:
        run_dir = sandbox / f"run-{script.stem}"
        run_dir.mkdir()
        done = subprocess.run(["bash", str(script)], cwd=run_dir, capture_output=True, text=True, timeout=60,
                              env={"PATH": f"{bin_dir}:/usr/bin:/bin", "SANDBOX": str(sandbox)})
        assert done.returncode == 0, done.stderr
        assert list(run_dir.iterdir()) == []  # nothing but the (stub) interpreter ran
    return (sandbox / "ran.txt").read_text().splitlines()


def _hostile_python(tmp_path: Path) -> Path:
    """This Python, reached through a venv-like path with a space, `$(...)` and backquotes in it."""
    venv = tmp_path / "my venv $(touch PWNED) `touch PWNED2`" / "bin"
    venv.mkdir(parents=True)
    python = venv / "python"
    python.symlink_to(sys.executable)
    return python


def _make_stub(python: Path) -> None:
    """The job's interpreter becomes a stub that only records how it was called."""
    python.unlink()
    python.write_text(STUB)
    python.chmod(0o755)


def test_batch_scripts_with_hostile_paths_run_only_the_job(tmp_path):
    """The interpreter (a venv under a path with a space and `$(...)`) and LLMB_INSTALL are quoted; a newline
    anywhere is refused before sbatch is called."""
    sandbox = tmp_path / "sandbox"
    bin_dir = _stub_bin(sandbox)
    python = _hostile_python(tmp_path)
    install = tmp_path / "inst $(touch PWNED3)"
    install.mkdir()
    env = job_environ(install, PATH=f"{bin_dir}:{os.environ['PATH']}", SANDBOX=str(sandbox))
    env.pop("LLMB_JOB_ID")
    code = "import sys; from llmb_plugin_deepseek_r1.host.cli import main; sys.exit(main())"
    done = subprocess.run([str(python), "-c", code, *RUN_ARGS, "--executor", "slurm", "--no-preflight"], env=env,
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    refused = subprocess.run([str(python), "-c", code, *RUN_ARGS, "--executor", "slurm", "--no-preflight",
                              "--slurm-arg", "reservation=x\ntouch PWNED4 #"], env=env, capture_output=True,
                             text=True, timeout=120, cwd=tmp_path)
    assert refused.returncode == 1 and "control character" in refused.stderr
    _make_stub(python)
    ran = _run_scripts(sandbox, bin_dir)
    assert ran[0] == str(python) and ran[1:4] == ["-u", "-m", "submitit.core._submit"]
    assert ran[4].startswith(str(install)) and len(ran) == 5
    assert not [p for p in tmp_path.rglob("PWNED*")]


def test_setup_job_batch_script_runs_only_the_job(tmp_path):
    from test_setup_support import setup_env

    sandbox = tmp_path / "sandbox"
    bin_dir = _stub_bin(sandbox)
    python = _hostile_python(tmp_path)
    install = tmp_path / "inst $(touch PWNED3)"
    env = setup_env(install, None, SANDBOX=str(sandbox))
    env["PATH"] = f"{bin_dir}:{env['PATH']}"
    proc = subprocess.run([str(python), "-m", "llmb_plugin_deepseek_r1", "setup", "--json", "--slurm", "--partition",
                           "cpu", "--steps", "datasets"], env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    _make_stub(python)
    ran = _run_scripts(sandbox, bin_dir)
    assert ran[0] == str(python) and ran[1:4] == ["-u", "-m", "submitit.core._submit"] and ran[4].startswith(str(install))
    assert not [p for p in tmp_path.rglob("PWNED*")]


# --- secrets --------------------------------------------------------------------------------------------------


def _llmb(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([LLMB_RUN, *args], env=env, capture_output=True, text=True, timeout=180,
                          cwd=env["LLMB_INSTALL"])


def test_no_secret_in_anything_written_or_printed(tmp_path):
    env = job_environ(tmp_path, LLMB_EXECUTOR="local", HF_TOKEN=SECRET)
    env.pop("LLMB_JOB_ID")
    printed, last = [], None
    for args in ([*RUN_ARGS, "--env", f"HF_TOKEN={SECRET}", "--env=NGC_API_KEY=" + SECRET2, "--wait", "-v"],
                 [*RUN_ARGS, "--dry-run", "-v", "--env", f"MY_SECRET={SECRET2}"],
                 [*RUN_ARGS, "--dry-run", "--json", "--env", f"HF_TOKEN={SECRET}"],
                 [*RUN_ARGS, "--env", f"MY KEY={SECRET}"], ["jobs", "list"], ["jobs", "list", "--json"]):
        last = _llmb(env, *args)
        printed.append(last.stdout + last.stderr)
    assert "VALID" in printed[0], printed[0]
    job_id = json.loads(last.stdout)[0]["job_id"]
    for args in (["jobs", "show", job_id], ["jobs", "show", job_id, "--json"], ["jobs", "log", job_id],
                 ["results"], ["results", "--json"], ["archive", "--output", str(tmp_path / "a.tar.gz")]):
        done = _llmb(env, *args)
        assert done.returncode == 0, done.stderr
        printed.append(done.stdout + done.stderr)
    assert "HF_TOKEN=***" in printed[6]  # the command line is shown, redacted
    with tarfile.open(tmp_path / "a.tar.gz") as tar:
        packed = b"".join(tar.extractfile(m).read() for m in tar.getmembers() if m.isfile())
    written = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file() and not p.is_symlink())
    for secret in (SECRET, SECRET2):
        assert all(secret not in text for text in printed)
        assert secret.encode() not in written and secret.encode() not in packed


def test_records_written_before_redaction_are_redacted_when_shown_and_archived(tmp_path):
    from llmb_plugin_deepseek_r1.host import records
    from llmb_plugin_deepseek_r1.host.safety import redact_json_bytes, redact_record

    record = {"job_id": "5", "workload": "inference_deepseek-r1", "submitted": 1.0, "plan": {"name": "x"},
              "command_line": f"llmb-run single --env 'HF_TOKEN={SECRET}' --en=MY_PASSWORD={SECRET2} --env A=1",
              "environment": {"HF_TOKEN": SECRET}}
    path = records.write_json_atomic(tmp_path / "r.json", record)
    shown = json.dumps(redact_record(record)) + redact_json_bytes(path.read_bytes()).decode()
    assert SECRET not in shown and SECRET2 not in shown and "--env A=1" in shown


# --- corrupt files: skipped with a one-line warning naming them -----------------------------------------------


def _valid_result(tmp_path: Path) -> Path:
    from llmb_plugin_deepseek_r1.job.run import run_job
    from jobkit import specs_for

    environ = job_environ(tmp_path)
    run_job(specs_for(environ), environ)
    [path] = result_files(tmp_path)
    return path


def _corrupt(doc: dict, **changes) -> dict:
    """A copy of ``doc`` as job 999's result, with ``changes`` (``a__b`` is doc["a"]["b"])."""
    out = json.loads(json.dumps(doc))
    out["job_id"] = out["provenance"]["job_id"] = "999"
    for dotted, value in changes.items():
        target = out
        *parents, last = dotted.split("__")
        for key in parents:
            target = target[key]
        target[last] = value
    return out


CORRUPT_RESULTS = [  # (case id, document maker: valid document -> bytes, fragment of the warning)
    ("deep nesting", lambda d: b'{"schema": 1, "asked": ' + b"[" * 100000 + b"]" * 100000 + b"}", "nested too deeply"),
    ("not utf-8", lambda d: b"\xff\xfe{}", "codec"),
    ("asked is a list", lambda d: json.dumps(_corrupt(d, asked=[1])).encode(), "no asked in the result document"),
    ("nested asked value", lambda d: json.dumps(_corrupt(d, asked__isl={"a": 1})).encode(), "asked 'isl' is a dict"),
    ("status not a word", lambda d: json.dumps(_corrupt(d, verdict__status=["VALID"])).encode(), "verdict status"),
    ("provenance a list", lambda d: json.dumps(_corrupt(d, provenance=[])).encode(), "'provenance' is a list"),
    ("measured a string", lambda d: json.dumps(_corrupt(d, measured="fast")).encode(), "'measured' is a str"),
    ("huge timestamp", lambda d: json.dumps(_corrupt(d, provenance__finished=1e300)).encode(), "is not a time"),
    ("negative timestamp", lambda d: json.dumps(_corrupt(d, provenance__started=-5)).encode(), "is not a time"),
    ("infinite timestamp", lambda d: json.dumps(_corrupt(d, provenance__finished=float("inf"))).encode(),
     "is not a time"),
    ("VALID without metrics", lambda d: json.dumps(_corrupt(d, measured__headline={"output_tok_s_gpu": "9"})).encode(),
     "VALID verdict without a numeric"),
    ("copy of another run", lambda d: json.dumps(d).encode(), "does not match the file name"),
]


@pytest.mark.parametrize("case, make, fragment", CORRUPT_RESULTS, ids=[c[0] for c in CORRUPT_RESULTS])
def test_corrupt_result_file_is_skipped_and_good_runs_listed(tmp_path, capsys, case, make, fragment):
    from llmb_plugin_deepseek_r1.results.cli import main

    good = _valid_result(tmp_path)
    capsys.readouterr()  # the job's own log lines
    bad = good.with_name(good.name.replace("_4242.json", "_999.json"))
    bad.write_bytes(make(load(good)))
    code = main(["--dir", str(tmp_path / WDIR), "--runs", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    rows = json.loads(out)
    assert [r["job_id"] for r in rows] == ["4242"] and rows[0]["status"] == "VALID"
    assert f"warning: skipped {bad}: " in err and fragment in err and err.count("\n") == 1, err
    assert main(["--dir", str(tmp_path / WDIR)]) == 0  # the table renders too


CORRUPT_RECORDS = [  # (case id, record bytes)
    ("not json", b"{"),
    ("a list", b"[]"),
    ("no plan", json.dumps({"job_id": "1", "workload": "w", "submitted": 1.0}).encode()),
    ("huge time", json.dumps({"job_id": "1", "workload": "w", "submitted": 1e300, "plan": {"name": "x"}}).encode()),
    ("deep nesting", b"[" * 100000 + b"]" * 100000),
]


@pytest.mark.parametrize("case, data", CORRUPT_RECORDS, ids=[c[0] for c in CORRUPT_RECORDS])
def test_corrupt_submission_record_is_skipped_by_jobs(run_cli, install_dir, case, data):
    folder = install_dir / WDIR / "experiments" / ".llmb" / "submitted"
    folder.mkdir(parents=True)
    (folder / "13.json").write_bytes(data)
    code, out, err = run_cli("jobs", "list")
    assert code == 0 and "No submitted jobs." in out
    assert f"warning: skipped submission record {folder / '13.json'}: " in err and err.count("\n") == 1


def test_validate_dataset_on_deeply_nested_json(tmp_path):
    from llmb_plugin_deepseek_r1.dataset.check import validate_dataset

    path = tmp_path / "d.txt"
    path.write_bytes(b"[" * 100000 + b"]" * 100000 + b"\n")
    result = validate_dataset(path)
    assert not result.ok and "nested too deeply" in result.message


@pytest.mark.parametrize("victim", ["config.json", ".llmb-manifest.json", "notes.txt"])
def test_verify_weights_cache_never_overwrites_a_file_it_did_not_write(tmp_path, victim):
    from llmb_plugin_deepseek_r1.weights.cli import main
    from llmb_plugin_deepseek_r1.weights.hashing import VerifyCache, is_own_cache
    from weights_fixtures import make_checkpoint

    model = make_checkpoint(tmp_path / "model", shards=1)
    target = model / victim if victim != "notes.txt" else tmp_path / victim
    if not target.exists():
        target.write_text('{"files": {}}\n')
    before = target.read_bytes()
    assert main([str(model), "--full", "--cache", str(target)]) == 1
    assert target.read_bytes() == before
    st = target.stat()
    cache = VerifyCache.load(target)
    cache.store("/m/x.safetensors", st, {"sha256": "0" * 64})
    assert cache.save() is False and target.read_bytes() == before  # the library refuses as well
    own = VerifyCache.load(tmp_path / "cache.json")  # its own cache is written and rewritten
    for digest in ("1", "2"):
        own.store("/m/x.safetensors", st, {"sha256": digest * 64})
        assert own.save() is True
    assert is_own_cache(tmp_path / "cache.json") and VerifyCache.load(tmp_path / "cache.json").lookup(
        "/m/x.safetensors", st, "sha256") == "2" * 64


# --- interrupted and colliding jobs ---------------------------------------------------------------------------


def test_sigint_records_a_cancelled_result_that_results_lists(tmp_path, capsys):
    from llmb_plugin_deepseek_r1.results.cli import main

    environ = job_environ(tmp_path, FAKE_TRTLLM_DELAY="120")
    proc = start_job_body(environ)
    proc.send_signal(signal.SIGINT)
    output = proc.communicate(timeout=60)[0]
    assert proc.returncode != 0 and "KeyboardInterrupt" not in output
    [path] = result_files(tmp_path)
    assert load(path)["verdict"]["classification"] == "cancelled"
    assert load(tmp_path / WDIR / "experiments/.llmb/jobs/4242.json")["state"] == "CANCELLED"
    assert main(["--dir", str(tmp_path / WDIR), "--runs", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["job_id"], r["status"], r["classification"]) for r in rows] == [("4242", "FAILED", "cancelled")]


def _ctrl_c_on_wait(tmp_path: Path, *extra: str) -> tuple[dict[str, str], str, str]:
    """`single --wait` with the local executor, Ctrl-C once its benchmark runs; (environment, job id, stderr)."""
    env = job_environ(tmp_path, LLMB_EXECUTOR="local", FAKE_TRTLLM_DELAY="120")
    env.pop("LLMB_JOB_ID")
    proc = subprocess.Popen([LLMB_RUN, *RUN_ARGS, "--wait", *extra], env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    assert proc.stdout.readline().startswith("Submitted 1 job(s) with the local executor")
    job_id = proc.stdout.readline().split()[0]
    out = wait_until(lambda: list((tmp_path / WDIR / "experiments").glob("*/*.out")) or None, 60,
                     "the job's benchmark log")[0]
    wait_until(lambda: "DATASET DETAILS" in out.read_text() or None, 60, "the stand-in benchmark running")
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C on the terminal does: the whole foreground group
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    return env, job_id, err


def test_ctrl_c_on_wait_leaves_the_local_job_running(tmp_path):
    env, job_id, err = _ctrl_c_on_wait(tmp_path)
    assert f"keep running: {job_id}" in err and "llmb-run jobs cancel" in err
    listed = _llmb(env, "jobs", "list", "--json")
    assert [(r["job_id"], r["state"]) for r in json.loads(listed.stdout)] == [(job_id, "RUNNING")]
    assert job_id.startswith("local-")  # never a bare pid
    assert _llmb(env, "jobs", "cancel", job_id).returncode == 0
    [path] = wait_until(lambda: result_files(tmp_path) or None, 60, "the cancelled job's result")
    assert load(path)["verdict"]["classification"] == "cancelled"


def test_ctrl_c_on_wait_cancels_when_asked(tmp_path):
    env, job_id, err = _ctrl_c_on_wait(tmp_path, "--cancel-on-interrupt")
    assert f"cancel requested for {job_id}" in err
    [path] = wait_until(lambda: result_files(tmp_path) or None, 60, "the cancelled job's result")
    assert load(path)["verdict"]["classification"] == "cancelled"


def test_local_job_ids_are_unique_across_pid_namespaces_and_records_never_overwritten(tmp_path):
    from llmb_plugin_deepseek_r1.host.contract import JobPlan, RunRequest, SlurmParams
    from llmb_plugin_deepseek_r1.host.errors import HostError
    from llmb_plugin_deepseek_r1.host.submit import Submitted, write_records
    from llmb_plugin_deepseek_r1.job.run import current_job_id

    same_pid = [current_job_id({"SUBMITIT_LOCAL_JOB_ID": "77", "LLMB_LOCAL_TOKEN": t})
                for t in ("a1b2c3d4e5f6", "0f0f0f0f0f0f")]
    assert same_pid[0] != same_pid[1] and all(i.startswith("local-") for i in same_pid)
    assert not current_job_id({}).isdigit()
    plan = JobPlan(name="p", slurm=SlurmParams(job_name="p", nodes=1, ntasks_per_node=4, time_min=5),
                   container={}, use_cases=[])
    request = RunRequest(workload="inference_deepseek-r1", model_size="671b", dtype="nvfp4", scale=4,
                         gpu_type="gb200", install_dir=tmp_path, env={})
    write_records([Submitted(same_pid[0], plan, "local", tmp_path, pid=77)], request, ["single"])
    record = tmp_path / WDIR / "experiments/.llmb/submitted" / f"{same_pid[0]}.json"
    before = record.read_bytes()
    with pytest.raises(HostError, match="already exists"):
        write_records([Submitted(same_pid[0], plan, "local", tmp_path, pid=77)], request, ["single", "-r", "2"])
    assert record.read_bytes() == before
