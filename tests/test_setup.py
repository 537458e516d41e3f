"""Setup (issue 7): options, bad environments, the whole run offline, a second run that skips everything,
datasets reuse, and the three ways in (python -m, llmb-run setup, setup.sh)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from llmb_plugin_deepseek_r1.host.cluster import resolve_context
from llmb_plugin_deepseek_r1.host.errors import ValidationError
from llmb_plugin_deepseek_r1.recipe import load_metadata
from llmb_plugin_deepseek_r1.setup.options import (parse_steps, request_count, resolve_arch, resolve_image_uri,
                                                   resolve_options)
from llmb_plugin_deepseek_r1.setup.steps import build_parser, main
from test_setup_support import (COMMIT, EOS_ID, IMAGE_NAME, REPO, SCRUB, VOCAB_SIZE, expected_digests,
                                make_hf_cache, run_setup, setup_env, statuses)

WORKLOAD = "inference_deepseek-r1"


@pytest.fixture
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    """This process's environment as an installer would give it, with a hand-built hub cache (offline)."""
    install, hf = tmp_path / "install", tmp_path / "hf"
    snapshot = make_hf_cache(hf / "hub")
    for var in SCRUB:
        monkeypatch.delenv(var, raising=False)
    env = setup_env(install, hf)
    for key, value in env.items():
        if os.environ.get(key) != value:
            monkeypatch.setenv(key, value)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    wdir = install / "workloads" / WORKLOAD
    return {"install": install, "hf": hf, "snapshot": snapshot, "env": env, "wdir": wdir,
            "model": wdir / "DeepSeek-R1-FP4", "image": install / "images" / IMAGE_NAME}


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict]:
    code = main(["--json", *args])
    out = capsys.readouterr().out
    return code, json.loads(out)


def options(env: dict[str, str], *args: str, cwd: Path):
    context = resolve_context(env, cwd)
    return resolve_options(build_parser().parse_args(list(args)), context, load_metadata())


# ---- options (pure) ----------------------------------------------------------------------------------------

def test_steps_are_put_in_order_and_unknown_ones_rejected() -> None:
    assert parse_steps("datasets,layout") == ("layout", "datasets")
    assert parse_steps("image") == ("image",)
    with pytest.raises(ValidationError, match=r"--steps 'weights,dataset' is not valid.*layout, weights, image, "
                                              r"datasets"):
        parse_steps("weights,dataset")


def test_default_options_follow_the_recipe(tmp_path: Path) -> None:
    opts = options({"LLMB_INSTALL": str(tmp_path)}, cwd=tmp_path)
    wdir = tmp_path / "workloads" / WORKLOAD
    assert opts.steps == ("layout", "weights", "image", "datasets")
    assert opts.model_dir == wdir / "DeepSeek-R1-FP4"
    assert opts.repo_id == "nvidia/DeepSeek-R1-FP4"
    assert opts.image_uri == "nvcr.io#nvidia/tensorrt-llm/release:1.0.0rc1"
    assert opts.image_file == tmp_path / "images" / "tensorrt-llm+release+1.0.0rc1.sqsh"
    assert opts.arch == "aarch64"  # gb200 is the default GPU type
    assert [(u.name, u.isl, u.osl, u.num_requests, u.path.name) for u in opts.use_cases] == [
        ("reasoning", 1000, 1000, 7680, "dataset_reasoning_1000_1000.txt"),
        ("chat", 128, 128, 7680, "dataset_chat_128_128.txt"),
        ("summarization", 8000, 512, 7680, "dataset_summarization_8000_512.txt"),
        ("generation", 512, 8000, 7680, "dataset_generation_512_8000.txt")]
    assert opts.revision is None and opts.offline is False and opts.manual_install is True
    assert opts.run_command == ("USE_CASES=reasoning:1000/1000 llmb-run single -w inference_deepseek-r1 -s 671b "
                                "--dtype nvfp4 --scale 4")


def test_revision_offline_cache_and_model_path_come_from_the_environment(tmp_path: Path) -> None:
    env = {"LLMB_INSTALL": str(tmp_path), "HF_REVISION": "v1.0", "HF_HUB_OFFLINE": "yes",
           "HF_HOME": str(tmp_path / "h"), "MODEL_PATH": "/data/r1"}
    opts = options(env, cwd=tmp_path)
    assert (opts.revision, opts.offline, opts.hub_cache, opts.model_dir) == (
        "v1.0", True, tmp_path / "h" / "hub", Path("/data/r1"))
    assert options(env, "--revision", "abc123", cwd=tmp_path).revision == "abc123"
    with pytest.raises(ValidationError, match="revision 'a b' is not valid"):
        options(env, "--revision", "a b", cwd=tmp_path)


def test_request_count_precedence() -> None:
    assert request_count({}) == (None, "each use case's num_requests")
    assert request_count({"NUM_REQUESTS": "128,256"}) == (256, "NUM_REQUESTS=128,256")
    assert request_count({"NUM_REQUESTS": "9", "PROMT_REQUESTS": "50"}) == (50, "PROMT_REQUESTS=50")
    assert request_count({"PROMT_REQUESTS": "50", "PROMPT_REQUESTS": "70"}) == (70, "PROMPT_REQUESTS=70")
    with pytest.raises(ValidationError, match="PROMPT_REQUESTS='many' is not valid: expected a positive"):
        request_count({"PROMPT_REQUESTS": "many"})


def test_request_count_applies_to_every_use_case(tmp_path: Path) -> None:
    opts = options({"LLMB_INSTALL": str(tmp_path), "USE_CASES": "chat:128/128,custom:64/32",
                    "PROMT_REQUESTS": "33"}, cwd=tmp_path)
    assert [(u.name, u.num_requests) for u in opts.use_cases] == [("chat", 33), ("custom", 33)]
    opts = options({"LLMB_INSTALL": str(tmp_path), "USE_CASES": "custom:64/32"}, cwd=tmp_path)
    assert opts.use_cases[0].num_requests == 7680  # an unknown use case takes reasoning's row, as jobs do


def test_image_comes_from_option_then_run_conf_image_uri_then_recipe() -> None:
    meta = load_metadata()
    assert resolve_image_uri(None, {}, meta) == "nvcr.io#nvidia/tensorrt-llm/release:1.0.0rc1"
    assert resolve_image_uri(None, {"RUN_CONF_IMAGE": "nvcr.io#nvidia/tensorrt-llm/release:1.0.0"}, meta) == \
        "nvcr.io#nvidia/tensorrt-llm/release:1.0.0"
    assert resolve_image_uri(None, {"RUN_CONF_IMAGE": "/images/mine.sqsh"}, meta) == \
        "nvcr.io#nvidia/tensorrt-llm/release:1.0.0rc1"
    assert resolve_image_uri("docker://nvcr.io#a/b:c", {"RUN_CONF_IMAGE": "x#y/z:1"}, meta) == "nvcr.io#a/b:c"
    with pytest.raises(ValidationError, match=r"--image '/x/y.sqsh' is not valid: expected an image URI"):
        resolve_image_uri("/x/y.sqsh", {}, meta)


def test_arch_defaults_to_aarch64_on_gb200_else_this_machine() -> None:
    assert resolve_arch(None, "gb200", machine="x86_64") == "aarch64"
    assert resolve_arch(None, "b200", machine="x86_64") == "x86_64"
    assert resolve_arch(None, "b200", machine="arm64") == "aarch64"
    assert resolve_arch("amd64", "gb200") == "x86_64"
    with pytest.raises(ValidationError, match="--arch 'ppc64le' is not valid: expected aarch64 or x86_64"):
        resolve_arch("ppc64le", "gb200")


# ---- bad environments and options: exit 1 with one line ------------------------------------------------------

@pytest.mark.parametrize("env_change, args, message", [
    ({"LLMB_INSTALL": None}, [], "LLMB_INSTALL is not set"),
    ({"STAGE_PATH": "/old/stage"}, [], "STAGE_PATH is set but is no longer used: set LLMB_INSTALL"),
    ({"MANUAL_INSTALL": "perhaps"}, [], "MANUAL_INSTALL='perhaps' is not valid: expected true or false"),
    ({"PROMPT_REQUESTS": "0"}, [], "PROMPT_REQUESTS='0' is not valid"),
    ({"USE_CASES": "thinking"}, [], "USE_CASES entry 'thinking' is not valid"),
    ({}, ["--steps", "everything"], "--steps 'everything' is not valid"),
    ({}, ["--wait"], "--wait only applies with --slurm"),
    ({}, ["--slurm"], "--slurm needs a CPU partition: pass --partition NAME or set slurm.cpu_partition"),
    ({"SLURM_JOB_ID": "77"}, ["--slurm", "--partition", "cpu"], "--slurm is not valid inside a Slurm job"),
    ({}, ["--workers", "0"], "--workers 0 is not valid"),
])
def test_bad_environment_or_option_is_exit_1_with_one_line(offline, monkeypatch, capsys, env_change, args,
                                                           message) -> None:
    for key, value in env_change.items():
        if value is None:
            monkeypatch.delenv(key)
        else:
            monkeypatch.setenv(key, value)
    assert main(args) == 1
    out, err = capsys.readouterr()
    assert message in err and err.count("\n") == 1 and out == ""
    assert not offline["install"].exists()  # nothing was started


def test_manual_install_warns_without_a_venv_but_does_not_fail(offline, monkeypatch, capsys) -> None:
    if sys.prefix != sys.base_prefix:
        pytest.skip("the tests run inside a virtual environment; the no-venv case cannot be produced here")
    monkeypatch.delenv("MANUAL_INSTALL")  # unset: a user running setup.sh by hand
    code, doc = run_json(capsys, "--steps", "layout")
    assert code == 0 and len(doc["warnings"]) == 1
    assert doc["warnings"][0].startswith("MANUAL_INSTALL is true but no virtual environment is active")
    monkeypatch.setenv("CONDA_PREFIX", str(offline["install"] / "venvs" / "r1"))  # a conda env is active
    assert run_json(capsys, "--steps", "layout")[1]["warnings"] == []
    monkeypatch.delenv("CONDA_PREFIX")
    monkeypatch.setenv("MANUAL_INSTALL", "false")  # what the installer sets
    assert run_json(capsys, "--steps", "layout")[1]["warnings"] == []


def test_an_unknown_option_is_a_usage_error_exit_2(offline, capsys) -> None:
    assert main(["--no-such-option"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: setup.sh") and "unrecognized arguments: --no-such-option" in err
    assert not offline["install"].exists()


def test_help_documents_manual_install_and_exit_codes(capsys) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "MANUAL_INSTALL" in out and "the installer sets it to false" in out and "--slurm" in out
    assert "exit codes: 0 everything done or skipped, 1 bad option value or configuration, 2 usage error" in out
    assert "4 a step failed or is incomplete" in out


# ---- whole runs ------------------------------------------------------------------------------------------------

def _listing(root: Path) -> dict[str, tuple[int, int, int]]:
    """Every path under root with (size, mtime_ns, inode): what a run that changes nothing leaves alone."""
    out = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        out[str(path.relative_to(root))] = (st.st_size if path.is_file() else 0, st.st_mtime_ns, st.st_ino)
    return out


def test_dry_run_changes_nothing_and_says_what_it_would_do(offline, capsys) -> None:
    code, doc = run_json(capsys, "--dry-run")
    assert code == 0 and doc["dry_run"] is True
    assert statuses(doc) == {"layout": "planned", "weights": "planned", "image": "planned", "datasets": "planned"}
    details = {s["step"]: s["detail"] for s in doc["steps"]}
    assert details["weights"].startswith(f"would download nvidia/DeepSeek-R1-FP4 from the local Hugging Face cache "
                                         f"{offline['hf'] / 'hub'} (offline) into {offline['model']}")
    assert f"enroot import -a aarch64 -o {offline['image']} " in details["image"]
    items = doc["steps"][3]["items"]
    assert [i["action"] for i in items] == ["would generate (no dataset file)"] * 2
    assert not offline["install"].exists()


def test_full_offline_run_then_a_second_run_skips_everything(offline, capsys) -> None:
    from llmb_plugin_deepseek_r1.dataset.store import read_sidecar
    from llmb_plugin_deepseek_r1.weights import check_weights

    code, doc = run_json(capsys)
    assert code == 0, doc
    assert statuses(doc) == {"layout": "done", "weights": "done", "image": "done", "datasets": "done"}
    for sub in ("images", "datasets", "venvs", "workloads"):
        assert (offline["install"] / sub).is_dir()
    model = offline["model"]
    assert check_weights(model, full=True, use_cache=False).ok  # the manifest setup recorded verifies every file
    manifest = json.loads((model / ".llmb-manifest.json").read_text())
    assert manifest["revision"] == COMMIT and manifest["repo_id"] == "nvidia/DeepSeek-R1-FP4"
    recorded = {name: e.get("sha256") or e.get("git_sha1") for name, e in manifest["files"].items()}
    assert recorded == expected_digests(offline["snapshot"])
    weights_step = doc["steps"][1]
    assert "manifest of 9 files from the local Hugging Face cache's blob names" in weights_step["detail"]
    assert weights_step["bytes"] == sum(p.stat().st_size for p in model.iterdir() if not p.name.startswith("."))
    assert subprocess.run(["unsquashfs", "-cat", str(offline["image"]), "etc/image-arch"], capture_output=True,
                          text=True, check=True).stdout.strip() == "aarch64"
    for name, isl, osl in (("reasoning", 1000, 1000), ("chat", 128, 128)):
        info = read_sidecar(offline["wdir"] / f"dataset_{name}_{isl}_{osl}.txt")
        assert (info.isl, info.osl, info.num_requests, info.vocab_size, info.eos_id) == (isl, osl, 16, VOCAB_SIZE,
                                                                                         EOS_ID)
    assert doc["next"] == ("USE_CASES=reasoning:1000/1000 llmb-run single -w inference_deepseek-r1 -s 671b "
                           "--dtype nvfp4 --scale 4")

    before = _listing(offline["install"])
    code, again = run_json(capsys)
    assert code == 0
    assert statuses(again) == {"layout": "skipped", "weights": "skipped", "image": "skipped", "datasets": "skipped"}
    lock_files = {k for k in before if k.endswith(".lock")}
    after = _listing(offline["install"])
    assert {k: v for k, v in after.items() if k not in lock_files} == \
        {k: v for k, v in before.items() if k not in lock_files}


def test_text_summary_names_each_step_size_time_and_next_command(offline, capsys) -> None:
    assert main(["--steps", "layout,datasets"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"Setup summary for inference_deepseek-r1 in {offline['install']}:"
    assert out[1].startswith("  layout    DONE        created ")
    assert out[2].startswith("  datasets  DONE        2 generated, 0 reused: 2 dataset(s) in ")
    assert "requests from PROMPT_REQUESTS=16, vocab from DeepSeek-R1's known values" in out[2]
    assert out[2].endswith(" s]") and "KiB" in out[2]
    assert out[3].startswith("      reasoning: generated dataset_reasoning_1000_1000.txt (16 requests, ")
    assert out[-1].startswith("Setup complete (") and out[-1].endswith(
        " s). Next: USE_CASES=reasoning:1000/1000 llmb-run single -w inference_deepseek-r1 -s 671b --dtype nvfp4 "
        "--scale 4")


def test_datasets_are_reused_when_their_sidecar_matches_and_regenerated_when_not(offline, monkeypatch,
                                                                                  capsys) -> None:
    monkeypatch.setenv("USE_CASES", "chat:128/128")
    assert run_json(capsys, "--steps", "layout,datasets")[1]["steps"][1]["items"][0]["action"] == "generated"
    path = offline["wdir"] / "dataset_chat_128_128.txt"
    first = path.stat()
    monkeypatch.setenv("PROMPT_REQUESTS", "8")  # fewer than made: the first 8 lines serve, reuse
    assert run_json(capsys, "--steps", "datasets")[1]["steps"][0]["items"][0]["action"] == "reused"
    monkeypatch.setenv("PROMPT_REQUESTS", "32")  # more than made: regenerate
    code, doc = run_json(capsys, "--steps", "datasets")
    assert code == 0 and doc["steps"][0]["items"][0]["action"] == "generated"
    assert path.stat().st_ino != first.st_ino and path.stat().st_size > first.st_size


def test_a_failing_layout_stops_the_other_steps(offline, capsys) -> None:
    offline["install"].mkdir()
    (offline["install"] / "images").write_text("a file where a directory belongs")
    code, doc = run_json(capsys)
    assert code == 4
    assert statuses(doc) == {"layout": "failed", "weights": "incomplete", "image": "incomplete",
                             "datasets": "incomplete"}
    assert doc["steps"][0]["detail"] == f"{offline['install'] / 'images'} exists but is not a directory"
    assert (offline["install"] / "images").read_text() == "a file where a directory belongs"
    assert doc["next"] == "llmb-run setup -w inference_deepseek-r1 -- --steps layout,weights,image,datasets"


# ---- the ways in -----------------------------------------------------------------------------------------------

def test_llmb_run_setup_drives_the_plugins_setup(offline, capsys, monkeypatch) -> None:
    from llmb_plugin_deepseek_r1.host import cli, plugins

    monkeypatch.setattr(plugins, "_SHARED", None)
    code = cli.main(["setup", "-w", WORKLOAD, "--", "--steps", "layout,datasets", "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0 and statuses(doc) == {"layout": "done", "datasets": "done"}
    assert doc["install_dir"] == str(offline["install"])
    assert (offline["wdir"] / "dataset_chat_128_128.txt").is_file()


def test_setup_sh_is_a_thin_executable_wrapper(tmp_path: Path) -> None:
    script = REPO / "setup.sh"
    assert script.stat().st_mode & stat.S_IXUSR
    install = tmp_path / "install"
    env = setup_env(install, None, LLMB_PYTHON=sys.executable)
    proc = subprocess.run([str(script), "--steps", "layout", "--json"], env=env, cwd=tmp_path, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert statuses(json.loads(proc.stdout)) == {"layout": "done"}
    env.pop("LLMB_INSTALL")
    proc = subprocess.run([str(script)], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and proc.stderr.startswith("error: LLMB_INSTALL is not set")


def test_python_module_entry_point(tmp_path: Path) -> None:
    proc = run_setup(setup_env(tmp_path / "install", None), "--steps", "layout", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert statuses(json.loads(proc.stdout)) == {"layout": "done"}


# ---- the profile decides the checkpoint and the datasets ------------------------------------------------------

def test_the_image_picks_the_profile_checkpoint_and_request_counts(tmp_path: Path) -> None:
    env = {"LLMB_INSTALL": str(tmp_path), "RUN_CONF_IMAGE": "nvcr.io#nvidia/tensorrt-llm/release:1.1.0rc5"}
    opts = options(env, cwd=tmp_path)
    assert (opts.repo_id, opts.profile, opts.dtype) == ("nvidia/DeepSeek-R1-0528-FP4", "26.05", "nvfp4")
    assert opts.model_dir == tmp_path / "workloads" / WORKLOAD / "DeepSeek-R1-FP4"  # NVIDIA reuses the name
    assert [(u.name, u.num_requests) for u in opts.use_cases] == [
        ("reasoning", 30720), ("chat", 115360), ("summarization", 9600), ("generation", 8960)]
    assert options({**env, "RUN_CONF_IMAGE": "", "PROFILE": "26.05"}, cwd=tmp_path).image_uri == \
        "nvcr.io#nvidia/tensorrt-llm/release:1.1.0rc5"


def test_h100_fetches_deepseeks_fp8_checkpoint_and_overrides_win(tmp_path: Path) -> None:
    env = {"LLMB_INSTALL": str(tmp_path), "GPU_TYPE": "h100", "PROFILE": "26.05", "USE_CASE": "chat"}
    opts = options(env, cwd=tmp_path)
    assert (opts.repo_id, opts.dtype, opts.arch) == ("deepseek-ai/DeepSeek-R1", "fp8", resolve_arch(None, "h100"))
    assert opts.model_dir.name == "DeepSeek-R1-FP8"
    assert [(u.name, u.num_requests) for u in opts.use_cases] == [("chat", 30720)]
    assert opts.run_command.endswith("--dtype fp8 --scale 16")
    mine = options({**env, "MODEL_REPO": "nvidia/DeepSeek-R1-0528-FP4-v2", "MODEL_REVISION": "r2"}, cwd=tmp_path)
    assert (mine.repo_id, mine.revision, mine.model_dir.name) == ("nvidia/DeepSeek-R1-0528-FP4-v2", "r2",
                                                                  "DeepSeek-R1-0528-FP4-v2")
    assert resolve_arch(None, "gb300", machine="x86_64") == "aarch64"


def test_a_folder_holding_another_checkpoint_is_kept_with_a_warning(offline, capsys, monkeypatch) -> None:
    code, doc = run_json(capsys, "--steps", "weights")
    assert code == 0 and statuses(doc) == {"weights": "done"}
    monkeypatch.setenv("RUN_CONF_IMAGE", "nvcr.io#nvidia/tensorrt-llm/release:1.1.0rc5")
    code, doc = run_json(capsys, "--steps", "weights")
    assert code == 0 and statuses(doc) == {"weights": "skipped"}
    detail = doc["steps"][0]["detail"]
    assert "WARNING: the folder holds nvidia/DeepSeek-R1-FP4" in detail
    assert "tuned for nvidia/DeepSeek-R1-0528-FP4 (profile 26.05); it is kept as it is" in detail
