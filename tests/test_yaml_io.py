"""The libyaml fast paths give exactly what PyYAML's pure-Python safe loader and dumper give."""

from __future__ import annotations

import yaml

from llmb_plugin_deepseek_r1.recipe import metadata_text
from llmb_plugin_deepseek_r1.yaml_io import safe_dump, safe_load


def test_workload_yaml_loads_the_same():
    assert safe_load(metadata_text()) == yaml.safe_load(metadata_text())


def test_dry_run_mappings_dump_to_the_same_text(dry_run_json, monkeypatch):
    mappings = []
    for image in ("nvcr.io#nvidia/tensorrt-llm/release:0.20.0", "nvcr.io#nvidia/tensorrt-llm/release:1.0.0rc1",
                  "nvcr.io#nvidia/tensorrt-llm/release:1.1.0"):
        monkeypatch.setenv("RUN_CONF_IMAGE", image)
        document = dry_run_json(USE_CASES="reasoning:1000/1000 chat:128/128 summarization:8000/512 "
                                          "generation:512/8000")
        mappings += [value for job in document["jobs"] for use_case in job["use_cases"]
                     for value in use_case.values() if isinstance(value, dict)]
    mappings.append({"text": "a long line " * 20, "unicode": "é ü 漢", "empty": {}, "list": [], "none": None,
                     "float": 0.1, "flag": True, "quoted": "yes", "number_text": "0123"})
    assert len(mappings) > 12
    for mapping in mappings:
        options = {"sort_keys": False, "default_flow_style": None, "width": 110}
        assert safe_dump(mapping, **options) == yaml.safe_dump(mapping, **options)


def test_llmb_config_documents_dump_to_the_same_text():
    """What `llmb-config_<jobid>.yaml` holds (host/run_config.py), with awkward values."""
    document = {
        "job_info": {"job_id": "123_4", "launch_time": "2026-12-01T09:10:11.123456"},
        "workload_info": {"framework": "trt-llm", "gsw_version": "", "fw_version": "1.0.0rc1",
                          "workload_type": "inference", "synthetic_dataset": True},
        "model_info": {"model_name": "deepseek-r1", "model_size": "671b", "dtype": "nvfp4", "scale": 4,
                       "gpu_type": "gb200"},
        "cluster_info": {"cluster_name": None, "gpus_per_node": 4, "llmb_install": "/tmp/with space/llmb",
                         "llmb_repo": "~", "slurm_account": "llmb", "slurm_gpu_partition": "gpu:a100"},
        "container_info": {"images": ["nvcr.io#nvidia/tensorrt-llm/release:1.0.0rc1"]},
        "job_config": {"profile_enabled": False, "proxy": False,
                       "env_overrides": {"HF_TOKEN": "***", "NOTE": "yes", "EMPTY": "", "COLON": "a: b"},
                       "model_overrides": {}},
    }
    assert safe_dump(document, sort_keys=False) == yaml.safe_dump(document, sort_keys=False)
