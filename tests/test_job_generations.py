"""Verdicts for every report generation and failure class: judge() on parsed fixture logs, and the job body end to
end through the STAND-IN trtllm-bench (tests/fake_trtllm; TensorRT-LLM cannot run here) printing an old report
generation and the `latency` subcommand's report."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import FAKE_TRTLLM, python_env
from jobkit import job_environ, load, result_files, specs_for
from llmb_plugin_deepseek_r1.job.benchmark import BenchOutcome
from llmb_plugin_deepseek_r1.job.collect import RANDOM_TOKENS_CAVEAT, judge, measured_document
from llmb_plugin_deepseek_r1.job.run import run_job
from llmb_plugin_deepseek_r1.report import scan_logs

FIXTURES = Path(__file__).parent / "fixtures" / "reports"
OK = BenchOutcome(returncode=0, seconds=12.0, timed_out=False, killed_after_rank_died=False)


@pytest.fixture
def spec(tmp_path):
    """The resolved spec of a 4-GPU chat run asking 7680 requests, 1000/1000 tokens (the fixtures' numbers)."""
    [one] = specs_for(job_environ(tmp_path, USE_CASES="chat:1000/1000", NUM_REQUESTS="7680"))
    return one


def scan_text(tmp_path: Path, *texts: str):
    paths = []
    for index, text in enumerate(texts):
        path = tmp_path / f"log{index}.txt"
        path.write_text(text)
        paths.append(path)
    return scan_logs(*paths)


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


def test_complete_report_is_valid(tmp_path, spec) -> None:
    scan = scan_text(tmp_path, fixture("machine_details_1.2.txt"))
    verdict = judge(spec, OK, scan)
    assert verdict.status == "VALID" and verdict.reasons == [] and verdict.caveats == []
    measured = measured_document(spec, scan.report)
    assert measured["generation"] == "0.20+" and measured["machine"]["name"] == "NVIDIA GB200"
    assert measured["metric_labels"]["per_gpu_output_throughput_tok_s_gpu"] == (
        "PERFORMANCE OVERVIEW: Per GPU Output Throughput (tps/gpu)") and measured["decoding"] is None


def test_zero_output_tokens_is_invalid_even_when_complete(tmp_path, spec) -> None:
    text = fixture("machine_details_1.2.txt").replace("Average Output Length (tokens): 1000.0000",
                                                      "Average Output Length (tokens): 0.0000")
    verdict = judge(spec, OK, scan_text(tmp_path, text))
    assert verdict.status == "INVALID" and "the report counts zero output tokens" in verdict.reasons


def test_fewer_requests_and_other_parallelism_are_invalid_with_the_difference(tmp_path, spec) -> None:
    text = fixture("machine_details_1.2.txt").replace("Number of requests:             7680",
                                                      "Number of requests:             7000")
    text = text.replace("TP Size:                4", "TP Size:                8")
    verdict = judge(spec, OK, scan_text(tmp_path, text))
    assert verdict.status == "INVALID"
    assert "completed requests 7000 != asked 7680 (680 fewer)" in verdict.reasons
    assert "the report's TP 8 != asked 4" in verdict.reasons


def test_mtp_on_random_tokens_is_marked_with_its_acceptance(tmp_path, spec) -> None:
    scan = scan_text(tmp_path, fixture("decoding_stats_mtp.txt"))
    verdict = judge(spec, OK, scan)
    assert verdict.status == "VALID" and len(verdict.caveats) == 1
    assert verdict.caveats[0].startswith(RANDOM_TOKENS_CAVEAT)
    assert "draft acceptance rate 0.28" in verdict.caveats[0] and "acceptance length 1.85" in verdict.caveats[0]
    decoding = measured_document(spec, scan.report)["decoding"]
    assert decoding["mode"] == "MTP" and decoding["draft_acceptance_rate"] == 0.28
    assert decoding["representative"] is False and decoding["synthetic_dataset"] is True
    assert judge(spec, OK, scan, synthetic_dataset=False).caveats == []


def test_failed_verdict_quotes_line_rank_node_and_remedy(tmp_path, spec) -> None:
    out = "[TRT-LLM] [I] Setting up throughput benchmark.\n"
    err = ("[gb200-n02:5512] *** Process received signal ***\n"
           "[gb200-n02:5512] [ 4] /usr/lib/x86_64-linux-gnu/libnccl.so.2(ncclCommInitRank+0x2e)[0x7f3a9c5c12e]\n"
           "MPI_ABORT was invoked on rank 2 in communicator MPI_COMM_WORLD\n")
    verdict = judge(spec, BenchOutcome(1, 3.0, False, False), scan_text(tmp_path, out, err))
    assert (verdict.status, verdict.classification, verdict.node) == ("FAILED", "nccl", "gb200-n02")
    assert verdict.failure_line.endswith("libnccl.so.2(ncclCommInitRank+0x2e)[0x7f3a9c5c12e]")
    assert verdict.failure_lineno == 3 and "NCCL" in verdict.remedy
    assert verdict.reasons[0].startswith("nccl [backtrace] (node gb200-n02): ")


def test_root_cause_beats_the_wall_clock_and_bare_failures_quote_the_last_line(tmp_path, spec) -> None:
    err = ("[TRT-LLM] [RANK 1] [E] torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB.\n"
           "Child job 2 terminated normally, but 1 process returned a non-zero exit code\n")
    verdict = judge(spec, BenchOutcome(None, 600.0, True, False), scan_text(tmp_path, err))
    assert (verdict.classification, verdict.rank) == ("oom", 1) and "wall-clock limit" in verdict.reasons[-1]
    hang = judge(spec, BenchOutcome(None, 600.0, True, False), scan_text(tmp_path, err.splitlines()[1] + "\n"))
    assert hang.classification == "timeout" and hang.failure_line.startswith("Child job 2")
    bare = judge(spec, BenchOutcome(1, 1.0, False, False), scan_text(tmp_path, "loading\nsomething odd happened\n"))
    assert bare.classification == "unknown" and bare.failure_line == "something odd happened"


# --- end to end through the stand-in ----------------------------------------------------------------------------

def run(install: Path, **extra: str) -> dict:
    environ = job_environ(install, **extra)
    run_job(specs_for(environ), environ)
    [path] = result_files(install)
    return load(path)


def test_job_collects_an_old_0_16_report(tmp_path) -> None:
    doc = run(tmp_path, TRTLLM_VERSION="0.17.0", FAKE_TRTLLM_VERSION="0.17.0")
    measured = doc["measured"]
    assert doc["verdict"]["status"] == "VALID", doc["verdict"]
    assert measured["generation"] == "0.16" and measured["subcommand"] == "throughput"
    assert measured["metric_labels"]["total_output_throughput_tok_s"] == (
        "PERFORMANCE OVERVIEW: Token Throughput (tokens/sec)")
    assert "per_gpu_output_throughput_tok_s_gpu" not in measured["metrics"]
    assert measured["headline"]["output_tok_s_gpu"] == pytest.approx(
        measured["metrics"]["total_output_throughput_tok_s"] / 4)
    assert "STREAMING STATISTICS" in Path(doc["files"]["stdout"]).read_text()


def test_job_collects_a_0_12_statistics_block(tmp_path) -> None:
    doc = run(tmp_path, TRTLLM_VERSION="0.12.0", FAKE_TRTLLM_VERSION="0.12.0", STREAMING="false")
    assert doc["verdict"]["status"] == "VALID", doc["verdict"]
    assert doc["measured"]["generation"] == "0.12"
    assert doc["measured"]["metric_labels"]["total_latency_ms"] == "STATISTICS: Total Latency (seconds)"


LATENCY_ADAPTER = f'''#!{sys.executable}
"""Test adapter: runs the job's `trtllm-bench ... throughput ...` command as `trtllm-bench ... latency ...` on the
stand-in (the plugin submits `throughput`; min-latency users run `latency` by hand). Drops the options `latency`
does not have (batch size, token budget, streaming and EOS are fixed there)."""
import os, sys
argv, out, skip = sys.argv[1:], [], False
for arg in argv:
    if skip:
        skip = False
    elif arg in ("--max_batch_size", "--max_num_tokens", "--eos_id"):
        skip = True
    elif arg != "--streaming":
        out.append("latency" if arg == "throughput" else arg)
os.execv(sys.executable, [sys.executable, {str(FAKE_TRTLLM / "trtllm-bench")!r}] + out)
'''


@pytest.mark.parametrize("version, generation", [("0.19.0", "latency-0.16"), ("1.0.0rc1", "0.20+")])
def test_job_collects_the_latency_subcommand_report(tmp_path, version, generation) -> None:
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    script = adapter / "trtllm-bench"
    script.write_text(LATENCY_ADAPTER)
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    environ_path = f"{adapter}{os.pathsep}{job_environ(tmp_path)['PATH']}"
    doc = run(tmp_path, PATH=environ_path, TRTLLM_VERSION=version, FAKE_TRTLLM_VERSION=version,
              MODE="min_latency", NUM_REQUESTS="10")
    out = Path(doc["files"]["stdout"]).read_text()
    assert "Preparing to run latency benchmark" in out
    measured = doc["measured"]
    assert measured["generation"] == generation and doc["verdict"]["status"] == "VALID", doc["verdict"]
    assert measured["request_details"]["num_requests"] == 10 and "avg_ttft_ms" in measured["metrics"]
    assert doc["verdict"]["caveats"] and RANDOM_TOKENS_CAVEAT in doc["verdict"]["caveats"][0]
    assert measured["decoding"]["representative"] is False


@pytest.mark.parametrize("version, labels, command, generation", [
    ("0.12.0", "new", "throughput", "0.12"), ("0.17.0", "new", "throughput", "0.16"),
    ("0.19.0", "old", "throughput", "0.19"), ("1.2.0", "new", "throughput", "0.20+"),
    ("0.19.0", "new", "latency", "latency-0.16"), ("1.2.0", "new", "latency", "0.20+"),
])
def test_stand_in_prints_every_generation(tmp_path, version, labels, command, generation) -> None:
    dataset = tmp_path / "ds.jsonl"
    dataset.write_text("".join(f'{{"task_id": {i}, "input_ids": [5, 6, 7], "output_tokens": 9}}\n' for i in range(6)))
    (tmp_path / "weights").mkdir()
    argv = [str(FAKE_TRTLLM / "trtllm-bench"), "-m", "DeepSeek-R1", "--model_path", str(tmp_path / "weights"),
            command, "--dataset", str(dataset), "--backend", "pytorch", "--tp", "2"]
    env = python_env(FAKE_TRTLLM_VERSION=version, FAKE_TRTLLM_LABELS=labels)
    # --eos_id -1 as the plugin always passes it: from 1.2 the stand-in (like the real one) resolves EOS otherwise
    done = subprocess.run(argv + (["--streaming", "--eos_id", "-1"] if command == "throughput" else []),
                          capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    out = tmp_path / "bench.out"
    out.write_text(done.stdout)
    rep = scan_logs(out).report
    assert rep is not None and rep.complete and rep.generation == generation, rep
    assert rep.request_details["num_requests"] == 6 and rep.request_details["avg_output_len"] == 9
    assert rep.world["tp"] == 2


def test_stand_in_has_no_latency_before_0_15(tmp_path) -> None:
    done = subprocess.run([str(FAKE_TRTLLM / "trtllm-bench"), "-m", "DeepSeek-R1", "latency"], capture_output=True,
                          text=True, env=python_env(FAKE_TRTLLM_VERSION="0.12.0"), timeout=60)
    assert done.returncode == 2 and "No such command 'latency'" in done.stderr
