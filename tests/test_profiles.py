"""Profiles (25.07, 25.08, 26.05) through the real dry run: which profile an image gets, NVIDIA's numbers, the
25.08+ semantics, where every value came from, GPU types, checkpoints and derived time limits."""

from __future__ import annotations

import json

import pytest

from conftest import RUN_ARGS

IMAGE_11 = "nvcr.io#nvidia/tensorrt-llm/release:1.1.0rc5"

# NVIDIA's published tables (shared/reference/trtllm-current.md, nvidia-recipes/*/README.md), typed in by hand:
# MBS, concurrency, max_num_tokens, KV fraction, requests, chunked prefill.
NVIDIA_2605_GB200 = {"reasoning": (768, 3072, 6000, 0.85, 30720, False),
                     "chat": (2884, 11536, 16000, 0.50, 115360, False),
                     "summarization": (160, 960, 9000, 0.69, 9600, True),
                     "generation": (224, 896, 2000, 0.97, 8960, True)}
NVIDIA_2508_GB200 = {"reasoning": (816, 3264, 6000, 0.85, 32640), "chat": (3600, 14400, 16000, 0.50, 144000),
                     "summarization": (256, 1024, 9000, 0.85, 10240), "generation": (256, 1024, 2000, 0.85, 10240)}
NVIDIA_2605_B200 = {"reasoning": (786, 3144, 5000, 0.85, 31440), "chat": (3600, 4000, 12000, 0.50, 40000),
                    "summarization": (256, 256, 4000, 0.85, 2560), "generation": (256, 512, 2000, 0.85, 5120)}
SEED_2507 = {"reasoning": (384, -1, 6000, 0.85, 7680), "chat": (384, -1, 7000, 0.80, 7680),
             "summarization": (384, -1, 9000, 0.85, 7680), "generation": (384, -1, 3000, 0.85, 7680)}


def by_name(doc: dict) -> dict[str, dict]:
    return {uc["name"]: uc for job in doc["jobs"] for uc in job["use_cases"]}


def values(uc: dict) -> tuple:
    return (uc["max_batch_size"], uc["concurrency"], uc["max_num_tokens"], uc["kv_cache_free_gpu_mem_fraction"],
            uc["num_requests"])


def test_image_1_1_alone_gives_nvidia_2605_gb200_settings(dry_run_json):
    doc = by_name(dry_run_json(RUN_CONF_IMAGE=IMAGE_11))
    assert {n: values(uc) + (uc["enable_chunked_prefill"],) for n, uc in doc.items()} == NVIDIA_2605_GB200
    for uc in doc.values():
        assert uc["profile"]["name"] == "26.05" and uc["trtllm_version"] == "1.1.0rc5"
        assert "TensorRT-LLM 1.1.0rc5 (image) -> profile 26.05" == uc["sources"]["profile"]
        assert uc["checkpoint"]["repo_id"] == "nvidia/DeepSeek-R1-0528-FP4"
        assert uc["checkpoint"]["model_dir"].endswith("/DeepSeek-R1-FP4")  # NVIDIA reuses the folder name
        assert uc["command"][uc["command"].index("--config") + 1].endswith(".config.yml")
        assert uc["extra_llm_api_options"]["enable_chunked_prefill"] is uc["enable_chunked_prefill"]
    assert doc["reasoning"]["sources"]["concurrency"] == "derived: max_batch_size 768 x tp 4 (attention DP)"
    assert doc["summarization"]["sources"]["concurrency"] == "profile 26.05 gb200 max_throughput summarization"


def test_seed_image_and_profile_2507_give_the_seed_table(dry_run_json, monkeypatch):
    default = by_name(dry_run_json())
    assert {n: values(uc) for n, uc in default.items()} == SEED_2507
    assert {uc["profile"]["name"] for uc in default.values()} == {"25.07"}
    pinned = by_name(dry_run_json(RUN_CONF_IMAGE=IMAGE_11, PROFILE="25.07"))
    assert {n: values(uc) for n, uc in pinned.items()} == SEED_2507
    assert pinned["chat"]["sources"]["profile"] == "knob PROFILE"
    assert "cuda_graph_config" in pinned["chat"]["extra_llm_api_options"]  # 25.07 values, 1.1 spelling


def test_profile_2508_semantics_and_its_own_image(dry_run_json):
    doc = by_name(dry_run_json(PROFILE="25.08"))
    assert {n: values(uc) for n, uc in doc.items()} == NVIDIA_2508_GB200
    assert doc["chat"]["trtllm_version"] == "1.0.0rc1"
    assert doc["chat"]["sources"]["num_requests"] == ("derived: concurrency 14400 x CONCURRENCY_MULTIPLIER 10 "
                                                      "(profile 25.08)")


def test_profile_2508_min_latency_matches_nvidia(dry_run_json):
    doc = by_name(dry_run_json(PROFILE="25.08", MODE="min_latency"))
    for name, isl in (("reasoning", 1000), ("chat", 128), ("summarization", 8000), ("generation", 512)):
        uc = doc[name]
        assert (uc["max_batch_size"], uc["concurrency"], uc["max_num_tokens"], uc["kv_cache_free_gpu_mem_fraction"],
                uc["num_requests"], uc["tp"], uc["ep"], uc["attention_dp"]) == (1, 1, isl, 0.1, 10, 4, 1, False)
        speculative = uc["extra_llm_api_options"]["speculative_config"]
        assert speculative["use_relaxed_acceptance_for_thinking"] is True and speculative["relaxed_topk"] == 10
        assert uc["extra_llm_api_options"]["moe_backend"] == "TRTLLM"  # 1.0.0rc1: flat spelling


def test_user_values_are_never_overwritten_and_multiplier_applies(dry_run_json):
    uc = by_name(dry_run_json(RUN_CONF_IMAGE=IMAGE_11, USE_CASE="reasoning:1000/1000", NUM_REQUESTS="5000"))
    assert (uc["reasoning"]["concurrency"], uc["reasoning"]["num_requests"]) == (3072, 5000)
    assert uc["reasoning"]["sources"]["num_requests"] == "knob NUM_REQUESTS"
    uc = by_name(dry_run_json(RUN_CONF_IMAGE=IMAGE_11, USE_CASE="reasoning:1000/1000", NUM_REQUESTS="",
                              MAX_BATCH_SIZE="100", CONCURRENCY_MULTIPLIER="3"))["reasoning"]
    assert (uc["concurrency"], uc["num_requests"]) == (400, 1200)
    assert uc["sources"]["max_batch_size"] == "knob MAX_BATCH_SIZE"


def test_use_case_singular_and_its_conflicts(dry_run_json, run_cli, monkeypatch):
    doc = dry_run_json(USE_CASE="chat")
    assert [uc["name"] for job in doc["jobs"] for uc in job["use_cases"]] == ["chat"]
    monkeypatch.setenv("USE_CASE", "chat:128/128 reasoning:1000/1000")
    code, _, err = run_cli(*RUN_ARGS, "--dry-run")
    assert code == 1 and "USE_CASE='chat:128/128 reasoning:1000/1000' is not valid: expected one" in err
    monkeypatch.setenv("USE_CASE", "chat:128/128")
    monkeypatch.setenv("USE_CASES", "reasoning:1000/1000")
    code, _, err = run_cli(*RUN_ARGS, "--dry-run")
    assert code == 1 and "disagree: set only one of them" in err


def test_every_dry_run_value_names_its_source(dry_run_json, run_cli, monkeypatch):
    doc = dry_run_json(RUN_CONF_IMAGE=IMAGE_11, MAX_NUM_TOKENS="7000")
    for uc in by_name(doc).values():
        missing = [key for key in uc if key not in ("sources", "name") and key not in uc["sources"]]
        assert missing == [], missing
        assert uc["sources"]["max_num_tokens"] == "knob MAX_NUM_TOKENS"
    monkeypatch.delenv("RUN_CONF_IMAGE")
    monkeypatch.delenv("MAX_NUM_TOKENS")
    monkeypatch.setenv("USE_CASES", "chat:128/128")
    code, out, _ = run_cli(*RUN_ARGS, "--dry-run")
    assert code == 0
    assert "max_batch_size: 384    <- profile 25.07 gb200 max_throughput chat" in out
    assert "time_limit:    <- 15 min start-up + 7680 requests x (128 OSL + 128 ISL/8) tokens" in out


def test_time_limits_scale_with_requests_and_lengths(dry_run_json):
    seed = by_name(dry_run_json())
    tuned = by_name(dry_run_json(RUN_CONF_IMAGE=IMAGE_11))
    for name in seed:
        assert tuned[name]["time_limit"]["minutes"] >= seed[name]["time_limit"]["minutes"]
        assert tuned[name]["time_limit"]["minutes"] % 5 == 0
    gen = tuned["generation"]["time_limit"]
    assert gen["minutes"] == 120 and "8960 requests x (8000 OSL + 512 ISL/8)" in gen["basis"]
    limits = [job["slurm"]["time_min"] for job in dry_run_json(RUN_CONF_IMAGE=IMAGE_11, SBATCH_TIMELIMIT="50")["jobs"]]
    assert limits == [50, 50, 50, 50]


def test_b200_runs_its_own_2605_table_and_seed_profile_says_nearest(dry_run_json, monkeypatch):
    monkeypatch.setenv("GPU_TYPE", "b200")
    doc = by_name(dry_run_json(RUN_CONF_IMAGE=IMAGE_11))
    assert {n: values(uc) for n, uc in doc.items()} == NVIDIA_2605_B200
    assert doc["summarization"]["enable_chunked_prefill"] is True  # max_num_tokens 4000 < ISL 8000
    job = dry_run_json(RUN_CONF_IMAGE=IMAGE_11)["jobs"][0]
    assert (job["slurm"]["nodes"], job["slurm"]["ntasks_per_node"]) == (1, 4)  # 4 of the node's 8 GPUs
    seed = by_name(dry_run_json(PROFILE="25.07", RUN_CONF_IMAGE=""))["chat"]
    assert seed["profile"]["gpu_table"] == "gb200"
    assert seed["profile"]["notes"] == ["profile 25.07 has no max_throughput table tuned for b200: running the "
                                        "nearest, gb200's"]


def test_gb300_runs_the_nearest_profile_and_says_so(dry_run_json, monkeypatch):
    monkeypatch.setenv("GPU_TYPE", "gb300")
    uc = by_name(dry_run_json(RUN_CONF_IMAGE=IMAGE_11))["reasoning"]
    assert values(uc) == NVIDIA_2605_GB200["reasoning"][:5]
    assert uc["profile"] == {"name": "26.05", "gpu_table": "gb200", "notes": [
        "profile 26.05 has no max_throughput table tuned for gb300: running the nearest, gb200's"]}


def test_h100_runs_on_two_nodes_with_the_26_05_profile(run_cli, monkeypatch):
    monkeypatch.setenv("GPU_TYPE", "h100")
    monkeypatch.setenv("RUN_CONF_IMAGE", IMAGE_11)
    argv = list(RUN_ARGS)
    argv[argv.index("--dtype") + 1] = "fp8"
    argv[argv.index("--scale") + 1] = "16"
    code, out, err = run_cli(*argv, "--dry-run")
    assert code == 0, err
    assert "    nodes: 2" in out and "    ntasks_per_node: 8" in out and "--tp 8 --ep 8 --pp 2" in out
    argv[argv.index("--dtype") + 1] = "nvfp4"
    code, _, err = run_cli(*argv, "--dry-run")
    assert code == 1 and "dtype 'nvfp4' is not available" in err and "h100; available: fp8" in err
    monkeypatch.setenv("PROFILE", "25.07")
    argv[argv.index("--dtype") + 1] = "fp8"
    code, _, err = run_cli(*argv, "--dry-run")
    assert code == 1 and "profile 25.07 has no max_throughput settings for GPU type 'h100'" in err


def test_checkpoint_repo_and_revision_overrides(dry_run_json):
    uc = by_name(dry_run_json(RUN_CONF_IMAGE=IMAGE_11, USE_CASE="chat", MODEL_REPO="nvidia/DeepSeek-R1-0528-FP4-v2",
                              MODEL_REVISION="abc123"))["chat"]
    assert uc["checkpoint"]["repo_id"] == "nvidia/DeepSeek-R1-0528-FP4-v2"
    assert uc["checkpoint"]["revision"] == "abc123"
    assert uc["checkpoint"]["model_dir"].endswith("/DeepSeek-R1-0528-FP4-v2")
    assert uc["sources"]["checkpoint"] == "knob MODEL_REPO; revision from knob MODEL_REVISION"


@pytest.mark.parametrize("var, value, fragment", [
    ("PROFILE", "26.06", "PROFILE='26.06' is not valid: expected one of 25.07, 25.08, 26.05"),
    ("CUDA_GRAPH_BATCH_SIZES", "dense", "CUDA_GRAPH_BATCH_SIZES='dense' is not valid: expected one of powers-of-two"),
    ("ENABLE_CHUNKED_PREFILL", "maybe", "ENABLE_CHUNKED_PREFILL='maybe' is not valid"),
    ("CONCURRENCY_MULTIPLIER", "0", "CONCURRENCY_MULTIPLIER='0' is not valid"),
    ("MODEL_REPO", "../etc", "MODEL_REPO='../etc' is not valid"),
])
def test_bad_profile_knobs_are_one_line_errors(run_cli, monkeypatch, var, value, fragment):
    monkeypatch.setenv(var, value)
    code, out, err = run_cli(*RUN_ARGS, "--dry-run")
    assert code == 1 and fragment in err and err.count("\n") == 1 and out == ""


def test_unknown_extra_option_is_refused_before_submission(run_cli, monkeypatch, tmp_path):
    extra = tmp_path / "extra.yml"
    extra.write_text("attention_dp_config: {enable_balance: true, batching_wait_iters: 0, timeout_iters: 60}\n"
                     "kv_cache_config: {enable_block_reuse: false}\n")
    monkeypatch.setenv("EXTRA_LLM_API_OPTIONS", str(extra))
    monkeypatch.setenv("USE_CASE", "chat")
    code, _, err = run_cli(*RUN_ARGS, "--dry-run")
    assert code == 1 and "'attention_dp_config' (from EXTRA_LLM_API_OPTIONS) is not known to TensorRT-LLM 1.0.0rc1" \
        in err
    monkeypatch.setenv("RUN_CONF_IMAGE", "nvcr.io#nvidia/tensorrt-llm/release:1.3.0rc27")
    code, out, err = run_cli(*RUN_ARGS, "--dry-run", "--json")
    assert code == 0, err
    options = json.loads(out)["jobs"][0]["use_cases"][0]["extra_llm_api_options"]
    assert options["attention_dp_config"]["timeout_iters"] == 60
    assert options["kv_cache_config"] == {"dtype": "fp8", "free_gpu_memory_fraction": 0.5, "enable_block_reuse": False}


def test_step64_cuda_graphs_show_list_and_memory(dry_run_json):
    uc = by_name(dry_run_json(RUN_CONF_IMAGE=IMAGE_11, USE_CASE="reasoning", CUDA_GRAPH_BATCH_SIZES="step-64"))
    graphs = uc["reasoning"]["cuda_graphs"]
    assert graphs["batch_sizes"][:8] == [1, 2, 4, 8, 16, 32, 64, 128] and graphs["batch_sizes"][-1] == 768
    assert graphs["graphs"] == 18 and graphs["approx_memory_mib"] == 180
    assert graphs["extra_memory_vs_powers_of_two_mib"] == (18 - 11) * 10
    assert uc["reasoning"]["extra_llm_api_options"]["cuda_graph_config"]["batch_sizes"] == graphs["batch_sizes"]


def test_references_for_new_gpu_types_carry_definitions_and_match_like_with_like():
    from llmb_plugin_deepseek_r1.recipe import load_metadata
    from llmb_plugin_deepseek_r1.results.load import match_reference, validate_references

    refs = validate_references(load_metadata()["references"])
    assert all(r["definition"] and r["source"] and r["metric"] == "output_tok_s_gpu" for r in refs)
    run = {"gpu_type": "b200", "scale": 4, "dtype": "nvfp4", "isl": 1000, "osl": 1000, "mode": "max_throughput"}
    assert match_reference(run, refs)["id"] == "perf-b200-dep4-1000-1000"
    h200 = dict(run, gpu_type="h200", scale=8, dtype="fp8")
    assert match_reference(h200, refs)["value"] == 1627
    assert match_reference(dict(h200, gpu_type="h100"), refs) is None  # never a different GPU type
    assert match_reference(dict(run, gpu_type="gb300"), refs) is None
