"""Which repo and revision a model folder holds: setup's manifest, a Hugging Face cache snapshot, a git clone,
`hf download --local-dir` metadata, or the checkpoint's own config (DeepSeek's FP8 form vs ModelOpt NVFP4)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from llmb_plugin_deepseek_r1.weights.identity import checkpoint_identity, identity_mismatch
from llmb_plugin_deepseek_r1.weights.manifest import write_manifest

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def test_manifest_names_repo_and_revision(tmp_path: Path) -> None:
    folder = tmp_path / "DeepSeek-R1-FP4"
    write_manifest(folder, {"config.json": (2, "b" * 64)}, repo_id="nvidia/DeepSeek-R1-0528-FP4", revision=COMMIT)
    found = checkpoint_identity(folder)
    assert (found["repo_id"], found["revision"]) == ("nvidia/DeepSeek-R1-0528-FP4", COMMIT)
    assert found["source"].startswith("manifest ")
    assert identity_mismatch(found, "nvidia/DeepSeek-R1-FP4", "main") == (
        f"the folder holds nvidia/DeepSeek-R1-0528-FP4 ({found['source']}), but the profile was tuned for "
        "nvidia/DeepSeek-R1-FP4")
    assert identity_mismatch(found, "nvidia/DeepSeek-R1-0528-FP4", COMMIT[:12]) is None


def test_hub_cache_snapshot(tmp_path: Path) -> None:
    snapshot = tmp_path / "hub" / "models--deepseek-ai--DeepSeek-R1" / "snapshots" / COMMIT
    snapshot.mkdir(parents=True)
    (tmp_path / "hub" / "models--deepseek-ai--DeepSeek-R1" / "blobs").mkdir()
    found = checkpoint_identity(snapshot)
    assert (found["repo_id"], found["revision"]) == ("deepseek-ai/DeepSeek-R1", COMMIT)


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_git_clone_remote_and_head(tmp_path: Path) -> None:
    folder = tmp_path / "clone"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    git = ["git", "-C", str(folder), "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "remote", "add", "origin", "https://huggingface.co/nvidia/DeepSeek-R1-FP4"], check=True)
    subprocess.run([*git, "add", "config.json"], check=True)
    subprocess.run([*git, "commit", "-qm", "x"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    found = checkpoint_identity(folder)
    assert (found["repo_id"], found["revision"], found["source"]) == ("nvidia/DeepSeek-R1-FP4", head, "git clone")


def test_config_forms_and_local_dir_metadata(tmp_path: Path) -> None:
    fp8 = tmp_path / "DeepSeek-R1-FP8"
    fp8.mkdir()
    (fp8 / "config.json").write_text(json.dumps({"quantization_config": {"quant_method": "fp8", "fmt": "e4m3",
                                                                         "weight_block_size": [128, 128]}}))
    meta = fp8 / ".cache" / "huggingface" / "download"
    meta.mkdir(parents=True)
    (meta / "config.json.metadata").write_text(f"{COMMIT}\n{'e' * 64}\n1700000000.0\n")
    found = checkpoint_identity(fp8)
    assert (found["repo_id"], found["revision"], found["form"]) == ("deepseek-ai/DeepSeek-R1", COMMIT, "FP8")
    nvfp4 = tmp_path / "nvfp4"
    nvfp4.mkdir()
    (nvfp4 / "config.json").write_text("{}")
    (nvfp4 / "hf_quant_config.json").write_text(json.dumps({"quantization": {"quant_algo": "NVFP4"}}))
    found = checkpoint_identity(nvfp4)
    assert (found["repo_id"], found["form"]) == (None, "NVFP4")
    assert identity_mismatch(found, "nvidia/DeepSeek-R1-FP4", "main") is None  # unknown is not a mismatch
    assert checkpoint_identity(tmp_path / "missing")["repo_id"] is None


def test_llmb_run_verify_checks_the_profiles_checkpoint_and_warns_on_another(run_cli, install_dir, monkeypatch):
    from weights_fixtures import make_checkpoint

    folder = make_checkpoint(install_dir / "workloads" / "inference_deepseek-r1" / "DeepSeek-R1-FP4", shards=2)
    write_manifest(folder, {"config.json": (2, "b" * 64)}, repo_id="nvidia/DeepSeek-R1-FP4", revision=COMMIT)
    code, out, err = run_cli("verify", "-w", "inference_deepseek-r1")
    assert code == 0, err
    assert out.startswith("OK: ") and f"checkpoint: nvidia/DeepSeek-R1-FP4 at {COMMIT}" in out
    assert "WARNING" not in out
    monkeypatch.setenv("RUN_CONF_IMAGE", "nvcr.io#nvidia/tensorrt-llm/release:1.1.0rc5")  # profile 26.05
    code, out, err = run_cli("verify", "-w", "inference_deepseek-r1", "--", "--json")
    assert code == 0, err  # a warning, not a failure
    doc = json.loads(out)
    assert doc["checkpoint"]["repo_id"] == "nvidia/DeepSeek-R1-FP4"
    assert doc["warnings"] == [f"the folder holds nvidia/DeepSeek-R1-FP4 ({doc['checkpoint']['source']}), but the "
                               "profile was tuned for nvidia/DeepSeek-R1-0528-FP4"]
