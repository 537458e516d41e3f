"""Classify why a trtllm-bench run failed, from its stdout/stderr text (and Slurm's lines in the job's own log).

Signatures come from TensorRT-LLM 0.12-1.3 outputs, Open MPI/PRTE, PyTorch, NCCL and Slurm messages as users
publish them. Several usually appear together: a rank that runs out of memory makes NCCL abort, mpirun print
"MPI_ABORT was invoked on rank N", the executor "Executor worker returned error" and Slurm, after the hang, the
time limit. The first root cause wins: the category ranked first in FAILURE_CATEGORIES, and within a category the
first line. Every failure quotes its line, names the rank and node when the line does, and carries a remedy.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from .model import FAILURE_CATEGORIES, OOM_REMEDY, Failure

_R_CUDA = ("a GPU kernel faulted: run again once to rule out a transient fault; if it repeats with these settings, "
           "try without CUDA graphs or with another MoE backend and report it to TensorRT-LLM with this log")
_R_NCCL = ("NCCL failed between GPUs: rerun with NCCL_DEBUG=INFO, check `nvidia-smi topo -m` and that TP x PP "
           "matches the GPUs Slurm gave the job")
_R_WATCHDOG = ("a collective hung past NCCL's watchdog timeout: usually another rank died or stalled first (look "
               "above for its error); otherwise check the GPU interconnect")
_R_MPI = ("MPI failed between ranks: start every rank through trtllm-llmapi-launch under `srun --mpi=pmix`, and "
          "check the container's MPI/PMIx matches the cluster's")
_R_DATASET = "the dataset is missing or malformed: delete it and let the job (or `llmb-run setup`) generate it again"
_R_WEIGHTS = ("the model checkpoint is missing or incomplete: check MODEL_PATH, then download/verify the weights "
              "again (`llmb-run setup`)")
_R_SLOTS = ("mpirun found fewer slots than ranks: ask Slurm for TP x PP tasks (nodes x ntasks-per-node), or start "
            "the ranks with srun and trtllm-llmapi-launch")
_R_WORLD = ("the MPI world is not TP x PP ranks: start trtllm-bench through trtllm-llmapi-launch in one srun of "
            "nodes x ntasks-per-node = TP x PP tasks (the plugin's launch does this)")
_R_LAUNCH = "every rank must start through trtllm-llmapi-launch under srun (the plugin's launch does this)"
_R_MODEL = "-m takes a model name (DeepSeek-R1); the checkpoint folder goes to --model_path"
_R_ASSERT = "TensorRT-LLM rejected the configuration: the assertion names the setting to change"
_R_BENCH = "trtllm-bench stopped with an error: its message above names the cause"
_R_SEQ = "the dataset's longest ISL + OSL exceeds the engine's max sequence length: rebuild the engine or shorten them"
_R_SEGV = "a rank crashed (segmentation fault): run again; if it repeats, report it to TensorRT-LLM with this log"
_R_BUS = ("a bus error usually means /dev/shm is too small inside the container: give it more shared memory "
          "(enroot/pyxis mount the host's /dev/shm; docker needs --shm-size or --ipc=host)")
_R_RANK = "a rank died: its own error is above this line; if there is none, look at that rank's node (dmesg, Xid)"
_R_HOST_OOM = ("the node ran out of host memory (the kernel's OOM killer): ask Slurm for the node's whole memory "
               "(--mem=0) or run fewer ranks per node")
_R_TIMEOUT = "the job hit its Slurm time limit: raise SBATCH_TIMELIMIT or lower NUM_REQUESTS"
_R_CANCEL = "the job was cancelled (scancel, preemption or a node failure): run it again"


@dataclass(frozen=True)
class Signature:
    """A failure as some tool prints it; a named group `detail` in the pattern becomes the detail."""

    category: str
    detail: str | None
    pattern: re.Pattern[str]
    remedy: str
    example: str  # a real line of this kind (README table, tests)


def _sig(category: str, detail: str | None, pattern: str, remedy: str, example: str) -> Signature:
    return Signature(category, detail, re.compile(pattern), remedy, example)


# Checked in this order on every line; the first match of a line counts (so "Assertion failed: Failed: MPI error"
# is an MPI error, not an assertion).
SIGNATURES: tuple[Signature, ...] = (
    _sig("oom", "startup", r"Executor creation failed (?:due to|with an error which might indicate) insufficient "
         r"GPU memory", OOM_REMEDY, "Executor creation failed due to insufficient GPU memory."),
    _sig("oom", "runtime", r"CUDA out of memory|torch\.(?:cuda\.)?OutOfMemoryError|CUDA error: out of memory",
         OOM_REMEDY, "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB."),
    _sig("host_oom", None, r"Detected \d+ oom[_-]kill event|oom-kill|Out of memory: Killed process",
         _R_HOST_OOM, "slurmstepd: error: Detected 1 oom_kill event in StepId=42.0."),
    _sig("cuda_error", "illegal memory access", r"an illegal memory access was encountered", _R_CUDA,
         "RuntimeError: CUDA error: an illegal memory access was encountered"),
    _sig("cuda_error", None, r"CUDA error: (?P<detail>device-side assert triggered|unspecified launch failure"
         r"|misaligned address|an illegal instruction was encountered)", _R_CUDA,
         "RuntimeError: CUDA error: unspecified launch failure"),
    _sig("cuda_error", None, r"CUDA runtime error in (?P<detail>[\w:]+)|CUBLAS_STATUS_EXECUTION_FAILED", _R_CUDA,
         "[TensorRT-LLM][ERROR] CUDA runtime error in cublasLtMatmul(...): CUBLAS_STATUS_EXECUTION_FAILED"),
    _sig("nccl", "watchdog timeout", r"Watchdog caught collective operation timeout|NCCL watchdog|"
         r"ProcessGroupNCCL.*(?:timed? ?out|Timeout)", _R_WATCHDOG,
         "[Rank 1] Watchdog caught collective operation timeout: WorkNCCL(SeqNum=7, OpType=ALLREDUCE) ran for "
         "600000 milliseconds before timing out."),
    _sig("nccl", "backtrace", r"libnccl\.so|ncclCommInitRank", _R_NCCL,
         "[node01:81234] [ 4] /usr/lib/x86_64-linux-gnu/libnccl.so.2(ncclCommInitRank+0x1f)[0x7f3a9c]"),
    _sig("nccl", None, r"Executor creation failed with NCCL error|NCCL error|"
         r"nccl(?:InternalError|SystemError|UnhandledCudaError|RemoteError|InvalidUsage)", _R_NCCL,
         "RuntimeError: Executor creation failed with NCCL error: unhandled cuda error"),
    _sig("mpi_error", None, r"MPI error|MPI_ERR_\w+", _R_MPI,
         "what():  [TensorRT-LLM][ERROR] Assertion failed: Failed: MPI error mpiUtils.cpp:211 '6'"),
    _sig("dataset_error", "missing file", r"Invalid value for '--dataset'|No such file or directory: '[^']*"
         r"(?:dataset|\.jsonl?|\.txt)'", _R_DATASET,
         "Error: Invalid value for '--dataset': Path '/w/dataset_chat_128_128.txt' does not exist."),
    _sig("dataset_error", None, r"KeyError: '(?:task_id|output_tokens)'|JSONDecodeError"
         r"|validation errors? for InferenceRequest", _R_DATASET, "KeyError: 'task_id'"),
    _sig("weights_error", "missing file", r"Incorrect path_or_model_id|does not appear to have (?:a )?files? named"
         r"|No such file or directory: '[^']*(?:\.safetensors|config\.json|tokenizer[^']*)'"
         r"|Error no file named \S+ found", _R_WEIGHTS,
         "OSError: Incorrect path_or_model_id: '/w/DeepSeek-R1-FP4'. Please provide either the path to a local "
         "folder or the repo_id of a model on the Hub."),
    _sig("launch_error", "not enough slots", r"There are not enough slots available", _R_SLOTS,
         "There are not enough slots available in the system to satisfy the 4"),
    _sig("launch_error", "prte/orte", r"PRTE ERROR|ORTE_ERROR_LOG|ORTE was unable|PRRTE|prterun was unable",
         _R_SLOTS, "[worker:15806] PRTE ERROR: Bad parameter in file base/odls_base_default_fns.c at line 962"),
    _sig("launch_error", None, r"All nodes which are allocated for this job are already filled", _R_LAUNCH,
         "All nodes which are allocated for this job are already filled."),
    _sig("launch_error", "model name", r"Model is a file or directory, please provide a model name", _R_MODEL,
         "Value error, Model is a file or directory, please provide a model name."),
    _sig("launch_error", "world size", r"world_size must equal to pp_size \* cp_size \* tp_size", _R_WORLD,
         "ValueError: world_size must equal to pp_size * cp_size * tp_size, but got 8 != 2 * 1 * 8"),
    _sig("benchmark_error", None, r"Failed to initialize executor on rank \d+:.*?Assertion failed: (?P<detail>.*)",
         _R_ASSERT, "[E] Failed to initialize executor on rank 0: [TensorRT-LLM][ERROR] Assertion failed: "
         "maxNumTokens must be at least maxBatchSize"),
    _sig("benchmark_error", None, r"\[TensorRT-LLM\]\[ERROR\] Assertion failed: (?P<detail>.*)", _R_ASSERT,
         "what():  [TensorRT-LLM][ERROR] Assertion failed: mSeqSlotManager->hasFreeSlots()"),
    _sig("benchmark_error", "dataset longer than the engine", r"Engine supports a max sequence of \d+", _R_SEQ,
         "RuntimeError: Engine supports a max sequence of 2048. Provided dataset contains a maximum sequence of 4096."),
    _sig("benchmark_error", "no request completed", r"ZeroDivisionError", _R_BENCH,
         "ZeroDivisionError: division by zero"),
    _sig("benchmark_error", None, r"Error during benchmarking:", _R_BENCH,
         "[TRT-LLM] [E] Error during benchmarking: Executor worker returned error"),
    _sig("rank_crash", "bus error", r"Bus error|Signal: Bus error", _R_BUS, "Signal: Bus error (7)"),
    _sig("rank_crash", "segmentation fault", r"Segmentation fault", _R_SEGV,
         "[node01:81234] *** Process received signal *** Signal: Segmentation fault (11)"),
    _sig("rank_crash", "mpi abort", r"MPI_ABORT was invoked on rank \d+", _R_RANK,
         "MPI_ABORT was invoked on rank 3 in communicator MPI_COMM_WORLD"),
    _sig("rank_crash", None, r"(?:Child|Primary) job\s+\d*\s*terminated normally, but \d+ process(?:es)?"
         r" returned|mpirun noticed that process rank \d+|srun: error: \S+: tasks? [\d,\-]+: (?:Exited|Killed|Segm)",
         _R_RANK, "Child job 2 terminated normally, but 1 process returned a non-zero exit code"),
    _sig("timeout", None, r"\*\*\* (?:JOB|STEP) \S+ ON \S+ CANCELLED AT \S+ DUE TO TIME LIMIT", _R_TIMEOUT,
         "slurmstepd: error: *** JOB 4242 ON node01 CANCELLED AT 2026-12-01T08:00:00 DUE TO TIME LIMIT ***"),
    _sig("cancelled", None, r"\*\*\* (?:JOB|STEP) \S+ ON \S+ CANCELLED AT", _R_CANCEL,
         "slurmstepd: error: *** STEP 4242.0 ON node01 CANCELLED AT 2026-12-01T08:00:00 ***"),
    _sig("unknown", "worker", r"Executor worker returned error", _R_BENCH,
         "RuntimeError: Executor worker returned error"),
    _sig("unknown", "TllmException", r"terminate called after throwing an instance of '[\w:]*TllmException'",
         _R_BENCH, "terminate called after throwing an instance of 'tensorrt_llm::common::TllmException'"),
)
_RANK_ORDER = {name: index for index, name in enumerate(FAILURE_CATEGORIES)}
# Every signature contains one of these; plain substring tests keep multi-GB iteration logs cheap to scan.
_QUICK = ("rror", "memory", "NCCL", "nccl", "allocated", "Model is a", "terminated normally", "oom", "OutOfMemory",
          "MPI", "slots", "CANCELLED", "Exception", "Assertion", "fault", "Watchdog", "watchdog", "No such file",
          "path_or_model_id", "does not appear", "noticed that process", "illegal", "Killed", "PRRTE", "prterun",
          "launch failure", "misaligned", "CUBLAS", "ZeroDivision", "Engine supports", "world_size")
# srun's line for a task that ended badly: the node, the task ids (Slurm ranks) and how it ended.
SRUN_TASK_FAILED = re.compile(r"srun: error: (?P<node>[\w.-]+): tasks? (?P<ranks>[\d,\-]+): (?P<how>[^\r\n]+)")
# Consequences of another rank's failure or of the time limit (srun --kill-on-bad-exit ends the rest), never causes.
_CONSEQUENCES = ("Killed", "Terminated")
_RANK_RES = (re.compile(r"\bon rank (\d+)"), re.compile(r"\[Rank (\d+)\]", re.IGNORECASE),
             re.compile(r"process rank (\d+)"), re.compile(r"\btask (\d+)\b"), re.compile(r"\brank[ =:]+(\d+)"))
_NODE_RES = (re.compile(r"\bON (\S+) CANCELLED"), re.compile(r"srun: error: ([\w.-]+): tasks?"),
             re.compile(r"on node ([\w.-]+)"), re.compile(r"^\[([\w.-]+):\d+\]"),
             re.compile(r"^([\w.-]+):\d+:\d+ \[\d+\] NCCL"))
_MAX_LINE = 500


def _first(patterns: tuple[re.Pattern[str], ...], text: str) -> str | None:
    for pattern in patterns:
        match = pattern.search(text)
        if match:
            return match.group(1)
    return None


def match_line(line: str, lineno: int | None = None) -> Failure | None:
    """The failure one line proves, or None (pure: used by the scanner and by tests).

    TensorRT-LLM's info-level logger lines (most of a long log: the iteration lines) never prove a failure.
    """
    if "] [I] " in line[:64]:
        return None
    for needle in _QUICK:
        if needle in line:
            break
    else:
        return None
    for sig in SIGNATURES:
        match = sig.pattern.search(line)
        if match is None:
            continue
        detail = sig.detail
        if "detail" in sig.pattern.groupindex and match.group("detail"):
            detail = match.group("detail").strip()[:200]
        text = line.strip()[:_MAX_LINE]
        rank = _first(_RANK_RES, text)
        return Failure(sig.category, text, lineno, detail, sig.remedy,
                       int(rank) if rank is not None else None, _first(_NODE_RES, text))
    return None


class FailureScanner:
    """Feed lines one at a time; `result()` is the root-cause failure seen so far, or None."""

    def __init__(self) -> None:
        self._best: Failure | None = None
        self._lineno = 0
        self._last = ""

    @property
    def last_line(self) -> str | None:
        """The last non-blank line fed (the evidence when no signature explains a failure)."""
        return self._last.strip()[:_MAX_LINE] or None

    def feed(self, line: str) -> None:
        self._lineno += 1
        if line and not line.isspace():
            self._last = line
        found = match_line(line, self._lineno)
        if found is None:
            return
        best = self._best
        if best is None or _RANK_ORDER[found.category] < _RANK_ORDER[best.category]:
            self._best = found

    def result(self) -> Failure | None:
        return self._best


def classify_failure(texts: Iterable[str]) -> Failure | None:
    """The root-cause failure in the given texts (each item a line or a whole multi-line text), or None.

    Returns None when no failure signature appears; a report can still be missing (check the parser). lineno
    counts lines across all items in order.
    """
    scanner = FailureScanner()
    for text in texts:
        if "\n" in text:
            for line in text.splitlines():
                scanner.feed(line)
        else:
            scanner.feed(text)
    return scanner.result()


def failed_rank(texts: Iterable[str]) -> dict[str, object] | None:
    """The node and rank that failed first, from srun's "srun: error: NODE: task N: HOW" lines. Tasks srun killed
    or terminated (the consequence of another rank's failure, or of the time limit) never count; None when no
    task ended on its own."""
    for text in texts:
        for match in SRUN_TASK_FAILED.finditer(text):
            how = match["how"].strip()
            if how.startswith(_CONSEQUENCES):
                continue
            ranks = match["ranks"]
            return {"node": match["node"], "rank": int(re.split(r"[,\-]", ranks)[0]), "ranks": ranks, "how": how,
                    "line": match[0].strip()}
    return None
