"""The job body, run once per Slurm job (in the batch step): for each use case, preflight -> weights ->
dataset -> extra-options YAML -> benchmark -> collect -> verdict. Each failure stops the job with a clear reason
and a FAILED status; nothing already written is ever overwritten."""

from __future__ import annotations

import os
import socket
import sys
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from llmb_plugin_deepseek_r1 import __version__
from llmb_plugin_deepseek_r1 import document as result_document
from llmb_plugin_deepseek_r1.planning import runtime
from llmb_plugin_deepseek_r1.host import records, slurm
from .benchmark import BenchOutcome, JobTerminated, TimeLimitReached, run_benchmark
from .collect import Verdict, asked_document, failed, judge, measured_document, name_failed_rank, summary_line
from llmb_plugin_deepseek_r1.host.contract import is_secret_name
from .nodes import preflight_all_nodes, world_document
from .preflight import Check, check_checkpoint, check_gpu_type, check_gpus, check_image, query_node_gpus, visible
from llmb_plugin_deepseek_r1.planning.describe import profile_document
from llmb_plugin_deepseek_r1.planning.profiles import gpu_type_info
from llmb_plugin_deepseek_r1.planning.spec import RunSpec, with_overrides
from llmb_plugin_deepseek_r1.recipe import load_metadata
from llmb_plugin_deepseek_r1.weights.identity import checkpoint_identity
from llmb_plugin_deepseek_r1.planning.trtllm import bench_argv, extra_llm_api_options
from llmb_plugin_deepseek_r1.planning.versions import yaml_generation

KV_STEP = 0.05
#: The body stops this long before Slurm's time limit: past submitit's warning (SIGUSR2, 60 s before it), so that a
#: run cut short by its own deadline is judged by the body, not interrupted by the signal.
TIME_MARGIN_S = 90.0


def terminated_verdict(exc: JobTerminated, when: str) -> Verdict:
    """The verdict of a body stopped by a signal: Slurm's time-limit warning (timeout) or a cancel/interrupt."""
    if isinstance(exc, TimeLimitReached):
        return failed("timeout", f"Slurm's time limit was about to end the allocation (its SIGUSR2 warning came) "
                                 f"{when}: give the job a longer time limit (SBATCH_TIMELIMIT)")
    return failed("cancelled", f"the job was cancelled or interrupted (SIGTERM or SIGINT) {when}")


class JobFailed(RuntimeError):
    """Raised at the end of a job with a FAILED use case, so that Slurm and submitit record it as failed."""


def current_job_id(environ: Mapping[str, str]) -> str:
    if environ.get("SLURM_ARRAY_JOB_ID") and environ.get("SLURM_ARRAY_TASK_ID"):
        return f"{environ['SLURM_ARRAY_JOB_ID']}_{environ['SLURM_ARRAY_TASK_ID']}"
    if environ.get("SLURM_JOB_ID"):
        return runtime.safe_job_id(environ["SLURM_JOB_ID"])
    from llmb_plugin_deepseek_r1.host.local_jobs import job_id_from_environ, local_job_id, new_token

    local = job_id_from_environ(environ)  # submitted by llmb-run: unique across machines and PID namespaces
    if local:
        return local
    if environ.get("LLMB_JOB_ID"):
        return runtime.safe_job_id(environ["LLMB_JOB_ID"])
    return local_job_id(new_token(), os.getpid())  # never a bare pid: two containers may share one


def slurm_time_left_s(environ: Mapping[str, str]) -> float | None:
    """What is left of this allocation, from squeue; None outside Slurm or when squeue cannot tell."""
    job_id = environ.get("SLURM_JOB_ID")
    return slurm.time_left_s(job_id) if job_id else None


def benchmark_environment(environ: Mapping[str, str], asked: Sequence[str]) -> dict[str, str]:
    """The job's environment without secrets, except those named in CONTAINER_ENV."""
    return {k: v for k, v in environ.items() if not is_secret_name(k) or k in asked}


class _Log:
    """Writes the job's own messages to its log (stdout) and to the use case's .err file."""

    def __init__(self, err_path: Path) -> None:
        self.err_path = err_path

    def __call__(self, message: str) -> None:
        print(message, flush=True)
        with open(self.err_path, "a") as handle:
            handle.write(message + "\n")


def _claim(paths: Sequence[Path]) -> None:
    """Create the job's log files exclusively: an existing file means a clash, and it is left untouched."""
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "x"):
            pass


def _preflight(spec: RunSpec, gpu_info: tuple[Any, str], log: Callable[[str], None]) -> tuple[list[Check],
                                                                                             Verdict | None, Any]:
    gpus, how = gpu_info
    weights_report = None
    model_bytes = None
    if spec.weight_check != "skip":
        from llmb_plugin_deepseek_r1.weights import check_weights

        log(f"[llmb] weight check ({spec.weight_check}) of {spec.model_dir}")
        weights_report = check_weights(spec.model_dir, dtype=spec.dtype, full=spec.weight_check == "full")
        if not weights_report.ok:
            log(weights_report.format_text())
            return [], failed("weights_error", f"the weight check found {len(weights_report.problems)} problem(s) in "
                                               f"{spec.model_dir}", "see the .err file for which files to fix"), \
                weights_report
        model_bytes = weights_report.total_bytes
    # Across nodes, the GPUs are checked on every node once the dataset exists (nodes.preflight_all_nodes).
    checks = [] if spec.nodes > 1 else check_gpus(gpus, how, scale=spec.scale, dtype=spec.dtype,
                                                    model_bytes=model_bytes)
    checks.append(check_gpu_type(gpus, spec.gpu_type, gpu_type_info(load_metadata(), spec.gpu_type)))
    checks.append(check_checkpoint(checkpoint_identity(spec.model_dir), spec.checkpoint_repo,
                                   spec.checkpoint_revision, spec.profile))
    checks.append(check_image(spec.image, spec.runtime))
    for check in checks:
        log(f"[llmb] preflight {check.name}: {check.status}: {check.detail}")
    bad = [c for c in checks if c.status == "failed"]
    if bad:
        return checks, failed("preflight_error", bad[0].detail), weights_report
    return checks, None, weights_report


def _dataset(spec: RunSpec, log: Callable[[str], None]) -> tuple[dict[str, Any] | None, Verdict | None]:
    from llmb_plugin_deepseek_r1.dataset.store import DatasetError, DatasetRequest, ensure_dataset, vocab_or_default

    vocab_size, eos_id, note = vocab_or_default(spec.model_dir)
    if note:
        log(f"[llmb] dataset: {note}; using DeepSeek-R1's vocab {vocab_size} and EOS {eos_id}")
    request = DatasetRequest(isl=spec.isl, osl=spec.osl, num_requests=spec.num_requests, vocab_size=vocab_size,
                             eos_id=eos_id)
    try:
        info, action = ensure_dataset(spec.dataset, request)
    except (DatasetError, OSError) as exc:
        return None, failed("dataset_error", str(exc).splitlines()[0])
    log(f"[llmb] dataset {spec.dataset}: {action}")
    return {"path": str(spec.dataset), "action": action, **info.to_dict()}, None


def _scan(spec: RunSpec, out: Path, err: Path, report_json: Path) -> Any:
    from llmb_plugin_deepseek_r1.report import parse_report_json, scan_logs

    scan = scan_logs(out, err)
    if report_json.is_file():
        try:
            from_json = parse_report_json(report_json)
        except (OSError, ValueError):
            from_json = None
        if from_json is not None and from_json.complete:
            scan.report = from_json
    return scan


def _attempt_token(job_id: str, attempt: int) -> str:
    return job_id if attempt == 1 else f"{job_id}_try{attempt}"


def run_use_case(spec: RunSpec, job_id: str, environ: Mapping[str, str], deadline: float,
                 gpu_info: tuple[Any, str]) -> dict[str, Any]:
    """Run one use case to a written result file; returns the result document."""
    import yaml

    under_slurm = bool(environ.get("SLURM_JOB_ID"))
    result_path = spec.job_file(".json", job_id)
    out, err = spec.job_file(".out", job_id), spec.job_file(".err", job_id)
    _claim([out, err])
    log = _Log(err)
    if environ.get("LLMB_DUMP_ENV", "").lower() == "true":  # llmb-run submit --dump-env
        _dump_environment(spec.job_file(".env", job_id), environ)
    started = time.time()
    provenance: dict[str, Any] = {
        "job_id": job_id, "host": socket.gethostname(), "nodes": environ.get("SLURM_JOB_NODELIST"),
        "world": world_document(spec.nodes, spec.ranks_per_node, spec.tp, spec.pp, spec.ep, environ),
        "image": spec.image, "runtime": spec.runtime, "trtllm_version_expected": spec.trtllm_version,
        "plugin_version": __version__, "knobs": dict(spec.knobs), "started": started,
        "gpus": [g.__dict__ for g in (gpu_info[0] or [])],
    }
    provenance.update(profile_document(spec))
    provenance["checkpoint"]["held"] = checkpoint_identity(spec.model_dir)
    checks, verdict, weights_report = _preflight(spec, gpu_info, log)
    provenance["preflight"] = [c.to_dict() for c in checks]
    if weights_report is not None:
        provenance["weights"] = {k: v for k, v in weights_report.to_dict().items() if k != "problems"}
    dataset_info = None
    if verdict is None:
        dataset_info, verdict = _dataset(spec, log)
    provenance["dataset"] = dataset_info
    if verdict is None and spec.nodes > 1 and under_slurm:
        node_checks = preflight_all_nodes(spec.nodes, spec.ranks_per_node, spec.dtype, spec.model_dir, spec.dataset,
                                          environ)
        for check in node_checks:
            log(f"[llmb] preflight {check.name}: {check.status}: {check.detail}")
        provenance["preflight"] += [c.to_dict() for c in node_checks]
        bad = [c for c in node_checks if c.status == "failed"]
        if bad:
            verdict = failed("preflight_error", bad[0].detail)
            verdict.node = bad[0].name.split()[1]
    attempts: list[dict[str, Any]] = []
    report = None
    terminated: JobTerminated | None = None
    attempt = 1
    current = spec
    while verdict is None:
        token = _attempt_token(job_id, attempt)
        out_i, err_i = current.job_file(".out", token), current.job_file(".err", token)
        if attempt > 1:
            _claim([out_i, err_i])
        options = extra_llm_api_options(current)
        yaml_path = current.job_file(".config.yml", token)
        records.write_text_atomic(yaml_path, yaml.safe_dump(options, sort_keys=False), overwrite=False)
        argv = bench_argv(current, token)
        env = {**benchmark_environment(environ, current.container_env), **runtime.profile_environment(current)}
        if current.nsys_profile:
            (current.result_dir / runtime.PROFILE_DIR).mkdir(parents=True, exist_ok=True)
        launch = runtime.launch_argv(current, argv, under_slurm=under_slurm,
                                     env_names=sorted(runtime.container_environment(env, current.container_env)),
                                     job_token=token)
        log(f"[llmb] running {current.use_case} (attempt {attempt}, KV_CACHE_FRACTION={current.kv_cache_fraction:g})")
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            verdict = failed("timeout", "no time left in the allocation for the benchmark")
            break
        try:
            outcome: BenchOutcome = run_benchmark(launch, out_i, err_i, env, timeout_s=remaining,
                                                  hang_grace_s=current.hang_grace_s)
        except JobTerminated as exc:
            terminated = exc
            verdict = terminated_verdict(exc, "during the benchmark; its process group was killed")
            attempts.append({"attempt": attempt, "stdout": str(out_i), "stderr": str(err_i), "command": argv,
                             "launch_command": launch, "verdict": verdict.to_dict()})
            break
        scan = _scan(current, out_i, err_i, current.job_file(".report.json", token))
        verdict = judge(current, outcome, scan)
        if verdict.status == "FAILED":
            name_failed_rank(verdict, err_i)
            if verdict.classification == "timeout" and current.nodes > 1 and verdict.node is None:
                verdict.reasons.append(f"no rank reported a failure: a rank on one of the nodes "
                                       f"{', '.join(provenance['world']['nodes'])} hung; each node's output is kept "
                                       f"in {out_i.name} / {err_i.name}")
        report = scan.report
        if verdict.status != "FAILED" and report is not None:
            reported = report.engine.get("trtllm_version")
            if reported and _generation_or_none(reported) not in (None, yaml_generation(current.trtllm_version)):
                verdict.status = "INVALID"
                verdict.reasons.append(f"the report says TensorRT-LLM {reported}, but the YAML was written for "
                                       f"{current.trtllm_version}: set TRTLLM_VERSION={reported}")
        attempts.append({"attempt": attempt, "kv_cache_free_gpu_mem_fraction": current.kv_cache_fraction,
                         "stdout": str(out_i), "stderr": str(err_i), "extra_llm_api_options_file": str(yaml_path),
                         "extra_llm_api_options": options, "command": argv, "launch_command": launch,
                         "outcome": outcome.to_dict(), "verdict": verdict.to_dict()})
        next_kv = round(current.kv_cache_fraction - KV_STEP, 4)
        if (verdict.classification == "oom" and attempt <= current.oom_retries and next_kv > 0
                and deadline - time.monotonic() > TIME_MARGIN_S):
            log(f"[llmb] out of memory: retrying with KV_CACHE_FRACTION={next_kv:g} "
                f"({attempt}/{current.oom_retries} retries used)")
            current = with_overrides(current, kv_cache_fraction=next_kv)
            attempt += 1
            verdict = None
            continue
        break
    assert verdict is not None
    if verdict.classification == "oom" and not verdict.remedy:
        from llmb_plugin_deepseek_r1.report import OOM_REMEDY

        verdict.remedy = OOM_REMEDY
    if verdict.remedy:
        log(f"[llmb] remedy: {verdict.remedy}")
    provenance["finished"] = time.time()
    provenance["trtllm_version_reported"] = report.engine.get("trtllm_version") if report is not None else None
    document = result_document.build(
        workload=spec.workload, use_case=spec.use_case, job_id=job_id, result_name=spec.result_name,
        asked=asked_document(spec), effective=asked_document(current) if current is not spec else None,
        measured=measured_document(current, report) if verdict.status != "FAILED" else None,
        verdict=verdict.to_dict(), provenance=provenance, attempts=attempts,
        files={"stdout": str(out), "stderr": str(err)}, nsys_profile=_profile_document(spec, job_id))
    result_document.write(result_path, document)
    log(summary_line(spec, job_id, verdict, report, result_path))
    if terminated is not None:
        raise terminated
    return document


def _dump_environment(path: Path, environ: Mapping[str, str]) -> None:
    """The job's environment at start, secrets redacted (what `env` would show, for debugging a site)."""
    from llmb_plugin_deepseek_r1.host.render import redact_env

    lines = [f"{k}={v}" for k, v in sorted(redact_env(dict(environ)).items())]
    records.write_text_atomic(path, "\n".join(lines) + "\n", overwrite=False)


def _profile_document(spec: RunSpec, job_id: str) -> dict[str, Any] | None:
    """What was profiled and where the nsys reports are (None when the run was not profiled)."""
    if not spec.nsys_profile:
        return None
    folder = spec.result_dir / runtime.PROFILE_DIR
    reports = sorted(str(p) for p in folder.glob(f"profile_{job_id}*")) if folder.is_dir() else []
    return {"tool": "nsys", "directory": str(folder), "reports": reports,
            "iterations": f"{spec.profile_start}-{spec.profile_end}", "gpu_metrics": spec.gpu_metrics}


def _generation_or_none(version: str) -> str | None:
    try:
        return yaml_generation(version)
    except ValueError:
        return None


def _fallback_result(spec: RunSpec, job_id: str, verdict: Verdict) -> bool:
    """A signal before the benchmark started (preflight, dataset) or an unexpected error still leaves a listed
    FAILED result; True when the use case has a result file (this one, or the one it wrote itself)."""
    path = spec.job_file(".json", job_id)
    if path.exists():
        return True
    now = time.time()
    document = result_document.build(
        workload=spec.workload, use_case=spec.use_case, job_id=job_id, result_name=spec.result_name,
        asked=asked_document(spec), effective=None, measured=None, verdict=verdict.to_dict(),
        provenance={"job_id": job_id, "host": socket.gethostname(), "plugin_version": __version__, "finished": now,
                    "knobs": dict(spec.knobs)}, attempts=[], files={})
    try:
        result_document.write(path, document)
    except FileExistsError:
        return True
    except OSError:  # nowhere to write: the status file still records the failure
        return False
    return True


def run_job(specs: Sequence[RunSpec], environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Run every use case of one job in order; stop at the first FAILED one."""
    environ = dict(os.environ if environ is None else environ)
    job_id = current_job_id(environ)
    first = specs[0]
    total_s = first.bench_timeout_s or max(60.0, sum(s.time_limit_min for s in specs) * 60.0 - TIME_MARGIN_S)
    left = slurm_time_left_s(environ)
    if left is not None and not first.bench_timeout_s:
        total_s = min(total_s, max(30.0, left - TIME_MARGIN_S))  # end cleanly before Slurm kills the job
    deadline = time.monotonic() + total_s
    records.write_status(first.workload_dir, job_id, "RUNNING", use_cases=[s.use_case for s in specs],
                         host=socket.gethostname(), nodes=environ.get("SLURM_JOB_NODELIST"))
    gpus, how = query_node_gpus(search_path=environ.get("PATH"))
    gpu_info = (visible(gpus, environ.get("CUDA_VISIBLE_DEVICES")) if gpus is not None else None, how)
    results: list[dict[str, Any]] = []
    for spec in specs:
        try:
            document = run_use_case(spec, job_id, environ, deadline, gpu_info)
        except FileExistsError as exc:
            document = {"use_case": spec.use_case, "verdict": failed(
                "launch_error", f"refusing to overwrite existing result files: {exc.filename}").to_dict()}
        except BaseException as exc:  # JobTerminated, or a bug: the status file must not say RUNNING
            cancelled = isinstance(exc, JobTerminated)
            verdict = terminated_verdict(exc, "before its benchmark finished") if cancelled else \
                failed("unknown", f"the job body failed: {type(exc).__name__}: "
                                  f"{(str(exc).splitlines() or [''])[0][:300]}")
            if _fallback_result(spec, job_id, verdict):
                results.append({"use_case": spec.use_case, "verdict": "FAILED",
                                "classification": verdict.classification,
                                "result_file": str(spec.job_file(".json", job_id))})
            state = ("TIMEOUT" if isinstance(exc, TimeLimitReached) else "CANCELLED") if cancelled else "FAILED"
            records.write_status(first.workload_dir, job_id, state,
                                 error=f"{type(exc).__name__}: {exc}", results=results,
                                 nodes=environ.get("SLURM_JOB_NODELIST"))
            raise
        results.append({"use_case": spec.use_case, "verdict": document["verdict"]["status"],
                        "classification": document["verdict"]["classification"],
                        "result_file": str(spec.job_file(".json", job_id))})
        if document["verdict"]["status"] == "FAILED":
            break
    not_run = [s.use_case for s in specs[len(results):]]
    failed_any = any(r["verdict"] == "FAILED" for r in results)
    summary = {"job_id": job_id, "results": results, "not_run": not_run}
    records.write_status(first.workload_dir, job_id, "FAILED" if failed_any else "COMPLETED", results=results,
                         not_run=not_run, nodes=environ.get("SLURM_JOB_NODELIST"))
    if failed_any:
        first_failed = next(r for r in results if r["verdict"] == "FAILED")
        print(f"[llmb] job {job_id} FAILED in {first_failed['use_case']} ({first_failed['classification']})"
              + (f"; not run: {', '.join(not_run)}" if not_run else ""), file=sys.stderr, flush=True)
        raise JobFailed(f"{first_failed['use_case']}: {first_failed['classification']}")
    return summary
