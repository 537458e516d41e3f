"""trtllm-bench argv and extra-options YAML by TensorRT-LLM version: exact expected values."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmb_plugin_deepseek_r1.paths import image_file_name
from llmb_plugin_deepseek_r1.planning.spec import RunSpec
from llmb_plugin_deepseek_r1.planning.trtllm import bench_argv, cuda_graph_batch_sizes, extra_llm_api_options
from llmb_plugin_deepseek_r1.planning.versions import trtllm_version_from_image, yaml_generation


def profile_yaml(profile: str = "25.07", mode: str = "max_throughput") -> dict:
    from llmb_plugin_deepseek_r1.recipe import load_metadata

    return load_metadata()["profiles"][profile]["yaml"][mode]


def make_spec(**changes) -> RunSpec:
    base = dict(yaml_base=profile_yaml(changes.pop("profile", "25.07"), changes.get("mode", "max_throughput")),
                use_case="reasoning", isl=1000, osl=1000, max_batch_size=384, max_num_tokens=6000,
                kv_cache_fraction=0.85, concurrency=-1, num_requests=7680, tp=4, ep=4, pp=1, streaming=True,
                mode="max_throughput", attention_dp=True, time_limit_min=30, workload="inference_deepseek-r1",
                model_size="671b", dtype="nvfp4", scale=4, gpu_type="gb200", gpus_per_node_hw=4,
                install_dir=Path("/i"), workload_dir=Path("/i/workloads/inference_deepseek-r1"),
                model_dir=Path("/w/DeepSeek-R1-FP4"), image="/i/images/x.sqsh", trtllm_version="1.0.0rc1",
                runtime="pyxis", mpi_type="pmix", weight_check="quick", oom_retries=0)
    base.update(changes)
    return RunSpec(**base)


@pytest.mark.parametrize("image, version", [
    ("tensorrt-llm+release+1.0.0rc1.sqsh", "1.0.0rc1"),
    ("/data/images/tensorrt-llm+release+1.1.0rc5.sqsh", "1.1.0rc5"),
    ("nvcr.io#nvidia/tensorrt-llm/release:1.1.0rc5", "1.1.0rc5"),
    ("nvcr.io/nvidia/tensorrt-llm/release:0.20.0", "0.20.0"),
    ("nvcr.io#nvidia/tensorrt-llm/release:latest", None),
    ("/images/custom.sqsh", None),
])
def test_version_from_image(image, version):
    found = trtllm_version_from_image(image)
    assert (str(found) if found else None) == version


@pytest.mark.parametrize("version, generation", [
    ("0.19.0", "legacy"), ("0.20.0", "legacy"), ("0.21.0", "flat"), ("0.21.0rc1", "flat"),
    ("1.0.0rc1", "flat"), ("1.0.0rc6", "flat"), ("1.0.0", "nested"), ("1.1.0rc5", "nested"), ("1.2.0", "nested"),
])
def test_yaml_generation(version, generation):
    assert yaml_generation(version) == generation


def test_image_file_name_matches_installer():
    assert image_file_name("nvcr.io#nvidia/tensorrt-llm/release:1.0.0rc1") == "tensorrt-llm+release+1.0.0rc1.sqsh"
    assert image_file_name("nvcr.io/nvidia/tensorrt-llm/release:1.1.0") == "tensorrt-llm+release+1.1.0.sqsh"


@pytest.mark.parametrize("mbs, sizes", [(1, [1]), (2, [1, 2]), (384, [1, 2, 4, 8, 16, 32, 64, 128, 256, 384]),
                                        (256, [1, 2, 4, 8, 16, 32, 64, 128, 256]), (100, [1, 2, 4, 8, 16, 32, 64, 100])])
def test_cuda_graph_batch_sizes(mbs, sizes):
    assert cuda_graph_batch_sizes(mbs) == sizes


def test_max_throughput_yaml_nested_flat_and_legacy():
    nested = extra_llm_api_options(make_spec(trtllm_version="1.1.0rc5", max_batch_size=8))
    assert nested == {"enable_attention_dp": True,
                      "cuda_graph_config": {"enable_padding": True, "batch_sizes": [1, 2, 4, 8]},
                      "kv_cache_config": {"dtype": "fp8", "free_gpu_memory_fraction": 0.85},
                      "print_iter_log": True, "stream_interval": 4}
    flat = extra_llm_api_options(make_spec(trtllm_version="1.0.0rc1", max_batch_size=8))
    assert flat == {"enable_attention_dp": True, "use_cuda_graph": True, "cuda_graph_padding_enabled": True,
                    "cuda_graph_batch_sizes": [1, 2, 4, 8], "kv_cache_dtype": "fp8", "print_iter_log": True,
                    "stream_interval": 4}  # the seed's config.yml keys (25.07)
    legacy = extra_llm_api_options(make_spec(trtllm_version="0.20.0", max_batch_size=4))
    assert legacy == {"enable_attention_dp": True,
                      "pytorch_backend_config": {"use_cuda_graph": True, "cuda_graph_padding_enabled": True,
                                                 "cuda_graph_batch_sizes": [1, 2, 4], "kv_cache_dtype": "fp8",
                                                 "enable_overlap_scheduler": True},
                      "print_iter_log": True, "stream_interval": 4}


def test_min_latency_yaml_nested():
    spec = make_spec(trtllm_version="1.0.0", mode="min_latency", max_batch_size=1, attention_dp=False)
    assert extra_llm_api_options(spec) == {
        "enable_attention_dp": False, "cuda_graph_config": {"enable_padding": True, "batch_sizes": [1]},
        "kv_cache_config": {"free_gpu_memory_fraction": 0.85}, "moe_config": {"backend": "TRTLLM"},
        "speculative_config": {"decoding_type": "MTP", "num_nextn_predict_layers": 3}}


@pytest.mark.parametrize("version, layers_key", [("1.0.0rc1", "num_nextn_predict_layers"),
                                                 ("1.1.0rc5", "num_nextn_predict_layers"),
                                                 ("1.2.0", "max_draft_len"), ("1.3.0rc27", "max_draft_len")])
def test_min_latency_mtp_layers_and_relaxed_acceptance_by_version(version, layers_key):
    spec = make_spec(trtllm_version=version, mode="min_latency", profile="26.05", max_batch_size=1,
                     attention_dp=False)
    speculative = extra_llm_api_options(spec)["speculative_config"]
    assert speculative == {"decoding_type": "MTP", layers_key: 3, "use_relaxed_acceptance_for_thinking": True,
                           "relaxed_topk": 10, "relaxed_delta": 0.6}


def test_step64_cuda_graphs_written_per_version():
    from llmb_plugin_deepseek_r1.planning.trtllm import cuda_graph_plan

    assert cuda_graph_batch_sizes(300, "step-64") == [1, 2, 4, 8, 16, 32, 64, 128, 192, 256, 300]
    assert cuda_graph_batch_sizes(40, "step-64") == [1, 2, 4, 8, 16, 32, 40]
    old = make_spec(trtllm_version="1.1.0rc5", max_batch_size=300, cuda_graph_scheme="step-64")
    assert extra_llm_api_options(old)["cuda_graph_config"] == {
        "enable_padding": True, "batch_sizes": [1, 2, 4, 8, 16, 32, 64, 128, 192, 256, 300]}
    new = make_spec(trtllm_version="1.3.0rc27", max_batch_size=300, cuda_graph_scheme="step-64")
    assert extra_llm_api_options(new)["cuda_graph_config"] == {"enable_padding": True, "max_batch_size": 300}
    plan = cuda_graph_plan(new)
    assert (plan["graphs"], plan["approx_memory_mib"], plan["extra_memory_vs_powers_of_two_mib"]) == (11, 110, 10)
    assert "TensorRT-LLM generates" in plan["written_as"]


@pytest.mark.parametrize("version, flag", [("1.0.0rc1", "--extra_llm_api_options"), ("1.0.0", "--extra_llm_api_options"),
                                           ("1.1.0rc5", "--config"), ("1.2.0", "--config"), ("1.3.0rc27", "--config")])
def test_config_flag_and_eos_id_by_version(version, flag):
    argv = bench_argv(make_spec(trtllm_version=version), job_id="5")
    assert argv[argv.index(flag) + 1].endswith("_5.config.yml")
    other = {"--config", "--extra_llm_api_options"} - {flag}
    assert not other & set(argv)
    assert argv[argv.index("--eos_id") + 1] == "-1"


@pytest.mark.parametrize("version, extra, refused", [
    ("1.0.0rc1", {"attention_dp_config": {"enable_balance": True}}, "attention_dp_config"),
    ("1.1.0rc5", {"attention_dp_config": {"enable_balance": True, "batching_wait_iters": 0}}, None),
    ("1.1.0rc5", {"use_cuda_graph": True}, "use_cuda_graph"),
    ("1.0.0rc1", {"kv_cache_config": {"enable_block_reuse": False}}, None),
    ("1.1.0rc5", {"speculative_config": {"max_draft_len": 3}}, "speculative_config.max_draft_len"),
    ("1.2.0", {"moe_config": {"backend": "CUTLASS", "bogus": 1}}, "moe_config.bogus"),
])
def test_unknown_yaml_keys_are_refused_with_name_and_version(version, extra, refused):
    from llmb_plugin_deepseek_r1.host.errors import ValidationError

    spec = make_spec(trtllm_version=version, extra_yaml=extra)
    if refused is None:
        options = extra_llm_api_options(spec)
        for key, value in extra.items():
            for sub, sub_value in value.items():
                assert options[key][sub] == sub_value
        return
    with pytest.raises(ValidationError) as info:
        extra_llm_api_options(spec)
    assert f"'{refused}'" in str(info.value) and version in str(info.value)


def test_bench_argv_streaming_off_old_version_has_no_report_json():
    argv = bench_argv(make_spec(streaming=False, trtllm_version="0.19.0", kv_cache_fraction=0.8), job_id="77")
    assert "--streaming" not in argv and "--report_json" not in argv
    assert argv[argv.index("--kv_cache_free_gpu_mem_fraction") + 1] == "0.8"
    assert argv[argv.index("--extra_llm_api_options") + 1] == (
        "/i/workloads/inference_deepseek-r1/experiments/DeepSeek-R1_TP4_EP4_PP1_CON-1_reasoning/"
        "DeepSeek-R1_TP4_EP4_PP1_CON-1_reasoning_streaming-off_77.config.yml")
    assert argv[-2:] == ["--eos_id", "-1"]


def test_derived_paths_cannot_escape_the_workload_dir():
    from llmb_plugin_deepseek_r1.host.errors import ValidationError
    from llmb_plugin_deepseek_r1.planning.spec import check_spec

    check_spec(make_spec(use_case="ok_name"))
    with pytest.raises(ValidationError, match="would escape"):
        check_spec(make_spec(use_case="../../../etc"))


def test_a_spec_pickled_before_the_profile_fields_existed_still_builds_its_yaml():
    import pickle

    spec = make_spec(trtllm_version="1.0.0rc1")
    state = {k: v for k, v in spec.__dict__.items() if k not in ("yaml_base", "extra_yaml", "sources", "notes",
                                                                  "profile", "cuda_graph_scheme")}
    old = object.__new__(RunSpec)
    old.__dict__.update(state)
    revived = pickle.loads(pickle.dumps(old))
    assert extra_llm_api_options(revived) == extra_llm_api_options(spec)
    assert revived.sources == {} and revived.profile == "25.07"
