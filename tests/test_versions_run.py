"""Each TensorRT-LLM version end to end with the STAND-IN trtllm-bench (tests/fake_trtllm; TensorRT-LLM cannot run
here), which accepts only that version's flags and YAML keys: the plugin's argv and YAML for every image reach
VALID, and a YAML written for another version is refused by the stand-in as the real one would."""

from __future__ import annotations

import pytest
import yaml

from jobkit import job_environ, load, result_files, specs_for
from llmb_plugin_deepseek_r1.job.run import JobFailed, run_job

IMAGES = {"1.0.0rc1": "nvcr.io#nvidia/tensorrt-llm/release:1.0.0rc1",
          "1.1.0rc5": "nvcr.io#nvidia/tensorrt-llm/release:1.1.0rc5",
          "1.2.0": "nvcr.io#nvidia/tensorrt-llm/release:1.2.0",
          "1.3.0rc27": "nvcr.io#nvidia/tensorrt-llm/release:1.3.0rc27"}


@pytest.mark.parametrize("mode", ["max_throughput", "min_latency"])
@pytest.mark.parametrize("version", list(IMAGES))
def test_each_version_runs_valid_with_its_own_argv_and_yaml(tmp_path, version, mode):
    environ = job_environ(tmp_path, RUN_CONF_IMAGE=IMAGES[version], FAKE_TRTLLM_VERSION=version, MODE=mode,
                         CONCURRENCY="4", CUDA_GRAPH_BATCH_SIZES="step-64")
    specs = specs_for(environ)
    run_job(specs, environ)
    [path] = result_files(tmp_path)
    doc = load(path)
    assert doc["verdict"]["status"] == "VALID", doc["verdict"]
    attempt = doc["attempts"][0]
    written = yaml.safe_load(open(attempt["extra_llm_api_options_file"]).read())
    assert written == attempt["extra_llm_api_options"]
    assert ("--config" in attempt["command"]) is (version != "1.0.0rc1")
    if mode == "min_latency":
        assert "= DECODING STATISTICS (MTP)" in open(attempt["stdout"]).read()  # the stand-in read the MTP keys
        speculative = written["speculative_config"]
        assert ("max_draft_len" in speculative) is (version in ("1.2.0", "1.3.0rc27"))
    prov = doc["provenance"]
    expected_profile = "25.07" if version == "1.0.0rc1" else "26.05"
    assert prov["profile"]["name"] == expected_profile and prov["trtllm_version_reported"] == version
    assert prov["sources"]["profile"].endswith(f"-> profile {expected_profile}")
    assert prov["sources"]["concurrency"] == "knob CONCURRENCY"
    assert prov["cuda_graphs"]["scheme"] == "step-64"
    assert prov["checkpoint"]["held"]["repo_id"] is None  # the test folder names no repo


def test_yaml_for_another_version_is_refused_by_the_stand_in(tmp_path):
    """The plugin writes 1.0.0rc1's flat keys (TRTLLM_VERSION says so), the image is really 1.3: it fails."""
    environ = job_environ(tmp_path, TRTLLM_VERSION="1.0.0rc1", FAKE_TRTLLM_VERSION="1.3.0rc27")
    with pytest.raises(JobFailed):
        run_job(specs_for(environ), environ)
    [path] = result_files(tmp_path)
    doc = load(path)
    assert doc["verdict"]["status"] == "FAILED"
    err = open(doc["attempts"][0]["stderr"]).read()
    assert "Extra inputs are not permitted" in err


def test_checkpoint_mismatch_is_a_preflight_warning_recorded_in_provenance(tmp_path):
    from llmb_plugin_deepseek_r1.weights.manifest import write_manifest

    environ = job_environ(tmp_path, RUN_CONF_IMAGE=IMAGES["1.1.0rc5"], FAKE_TRTLLM_VERSION="1.1.0rc5",
                          CONCURRENCY="4")
    model = tmp_path / "models" / "DeepSeek-R1-FP4"
    write_manifest(model, {"config.json": (10, "a" * 64)}, repo_id="nvidia/DeepSeek-R1-FP4", revision="c" * 40)
    run_job(specs_for(environ), environ)
    doc = load(result_files(tmp_path)[0])
    assert doc["verdict"]["status"] == "VALID"
    [check] = [c for c in doc["provenance"]["preflight"] if c["name"] == "checkpoint"]
    assert check["status"] == "warning"
    assert "holds nvidia/DeepSeek-R1-FP4" in check["detail"] and "tuned for nvidia/DeepSeek-R1-0528-FP4" in \
        check["detail"]
    held = doc["provenance"]["checkpoint"]["held"]
    assert (held["repo_id"], held["revision"]) == ("nvidia/DeepSeek-R1-FP4", "c" * 40)
