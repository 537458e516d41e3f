"""Command-line options + environment + workload metadata -> validated SetupOptions (no I/O but reading
the machine's architecture), so that every bad value is reported before any step starts."""

from __future__ import annotations

import argparse
import platform
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from llmb_plugin_deepseek_r1 import WORKLOAD_KEY
from llmb_plugin_deepseek_r1.planning import knobs
from llmb_plugin_deepseek_r1.host import safety
from llmb_plugin_deepseek_r1.host.errors import ValidationError
from .model import HEAVY_STEPS, STEPS, SetupOptions, SlurmOptions, UseCaseData
from .download import hub_cache_dir, is_offline
from llmb_plugin_deepseek_r1.planning import profiles as prof
from llmb_plugin_deepseek_r1.planning.spec import parse_use_cases, requested_use_cases
from llmb_plugin_deepseek_r1.planning.versions import trtllm_version_from_image
from llmb_plugin_deepseek_r1.paths import WorkloadPaths, workload_paths
from llmb_plugin_deepseek_r1.host.contract import HostContext
from llmb_plugin_deepseek_r1.host.tracking import WAIT_SLACK_S

DEFAULT_WORKERS = 8
DEFAULT_LOCK_TIMEOUT_S = 4 * 3600.0
DEFAULT_TIME = "04:00:00"
ARCH_ALIASES = {"aarch64": "aarch64", "arm64": "aarch64", "x86_64": "x86_64", "amd64": "x86_64"}
REQUEST_VARS = ("PROMPT_REQUESTS", "PROMT_REQUESTS", "NUM_REQUESTS")  # first set wins; PROMT_: the recipe's spelling
_REVISION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")
_IMAGE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-/#:@]*$")


def parse_steps(value: str) -> tuple[str, ...]:
    """``--steps weights,image`` -> the named steps in canonical order; unknown or empty names are errors."""
    names = [n.strip().lower() for n in value.split(",")]
    bad = [n for n in names if n not in STEPS]
    if bad or not names:
        raise ValidationError(f"--steps {value!r} is not valid: expected a comma-separated list of "
                              f"{', '.join(STEPS)}")
    return tuple(s for s in STEPS if s in names)


def is_image_uri(value: str) -> bool:
    """An image reference (``nvcr.io#org/name:tag``) rather than a file path (``/x/y.sqsh``, ``./y.sqsh``)."""
    return not value.startswith(("/", ".", "~")) and not value.endswith((".sqsh", ".squashfs"))


def resolve_image_uri(option: str | None, env: Mapping[str, str], metadata: Mapping[str, Any]) -> str:
    """--image, else RUN_CONF_IMAGE when it is a URI, else the image of the profile PROFILE names, else the
    recipe's image."""
    recipe = str(((metadata.get("container") or {}).get("images") or [""])[0])
    requested = (env.get("PROFILE") or "").strip()
    if requested:
        recipe = prof.default_profile_image(prof.choose_profile(metadata, "0", requested)) or recipe
    override = (env.get("RUN_CONF_IMAGE") or "").strip()
    value = option if option is not None else (override if override and is_image_uri(override) else recipe)
    value = value.strip()
    if value.startswith("docker://"):
        value = value[len("docker://"):]
    if not value or not _IMAGE_RE.match(value) or not is_image_uri(value):
        what = "--image" if option is not None else "the image"
        raise ValidationError(f"{what} {value!r} is not valid: expected an image URI such as "
                              f"nvcr.io#nvidia/tensorrt-llm/release:1.0.0rc1 (an image file is set with "
                              f"RUN_CONF_IMAGE instead)")
    return value


def resolve_arch(option: str | None, gpu_type: str, machine: str | None = None,
                 metadata: Mapping[str, Any] | None = None) -> str:
    """--arch, else the GPU type's CPU architecture where it is fixed (aarch64: Grace on GB200/GB300), else this
    machine's architecture."""
    if option is None:
        if metadata is None:
            from llmb_plugin_deepseek_r1.recipe import load_metadata

            metadata = load_metadata()
        if prof.gpu_type_info(metadata, gpu_type).get("cpu_arch") == "aarch64":
            return "aarch64"
        option = machine or platform.machine()
    arch = ARCH_ALIASES.get(option.strip().lower())
    if arch is None:
        raise ValidationError(f"--arch {option!r} is not valid: expected aarch64 or x86_64")
    return arch


def request_count(env: Mapping[str, str]) -> tuple[int | None, str]:
    """(requests per dataset, where from): PROMPT_REQUESTS, PROMT_REQUESTS, then NUM_REQUESTS (a sweep list
    such as ``128,256`` gives its largest value: the bigger dataset serves every point). None: the table's."""
    for var in REQUEST_VARS:
        value = (env.get(var) or "").strip()
        if value:
            counts = [knobs.positive_int(var, part) for part in value.split(",")]
            return max(counts), f"{var}={value}"
    return None, "each use case's num_requests"


def setup_profile(env: Mapping[str, str], metadata: Mapping[str, Any], image_uri: str) -> prof.ProfileChoice:
    """The profile the jobs will run (PROFILE, else the image's TensorRT-LLM version), so that setup fetches
    that profile's checkpoint and datasets of its request counts."""
    requested = (env.get("PROFILE") or "").strip() or None
    version = (env.get("TRTLLM_VERSION") or "").strip() or str(trtllm_version_from_image(image_uri) or "1.0.0rc1")
    return prof.choose_profile(metadata, version, requested)


def gpu_dtype(metadata: Mapping[str, Any], gpu_type: str) -> str:
    """The dtype a GPU type runs (the first its gpu_configs list): which checkpoint setup fetches."""
    configs = ((metadata.get("run") or {}).get("gpu_configs") or {}).get(gpu_type) or {}
    model_configs = configs.get("model_configs") or [{}]
    return str((model_configs[0].get("dtypes") or ["nvfp4"])[0])


def workload_checkpoint(env: Mapping[str, str], metadata: Mapping[str, Any], gpu_type: str, install_dir: Path,
                        image_uri: str | None = None) -> tuple[prof.Checkpoint, WorkloadPaths, str]:
    """(checkpoint, the install's paths with its folder, dtype) for this GPU type under the profile the image (or
    PROFILE) picks: what setup fetches and what `llmb-run verify` checks."""
    choice = setup_profile(env, metadata, image_uri or resolve_image_uri(None, env, metadata))
    dtype = gpu_dtype(metadata, gpu_type)
    checkpoint = prof.checkpoint_for(metadata, choice, dtype, env)
    return checkpoint, workload_paths(install_dir, env, folder=checkpoint.folder), dtype


def use_case_data(env: Mapping[str, str], metadata: Mapping[str, Any], where: WorkloadPaths,
                  choice: prof.ProfileChoice, gpu_type: str) -> tuple[tuple[UseCaseData, ...], str]:
    """One dataset per USE_CASE(S) entry (default: every use case of the profile's table), as the jobs name it,
    with the profile's request count for it."""
    mode = knobs.choice("MODE", env["MODE"], knobs.MODES) if (env.get("MODE") or "").strip() else "max_throughput"
    table = prof.choose_table(metadata, choice, gpu_type, mode)
    count, source = request_count(env)
    multiplier = prof.Sourced(int(choice.data.get("concurrency_multiplier") or 10), f"profile {choice.name}")
    out = []
    for uc in parse_use_cases(requested_use_cases(env), prof.known_use_cases(table.table)):
        values = prof.row_values(choice, table, mode, uc.name, uc.isl)
        prof.derive_load(choice, values, set(), multiplier)
        n = count if count is not None else int(values["num_requests"].value)
        out.append(UseCaseData(uc.name, uc.isl, uc.osl, n, where.dataset(uc.name, uc.isl, uc.osl)))
    return tuple(out), source


def run_command(metadata: Mapping[str, Any], gpu_type: str, use_cases: tuple[UseCaseData, ...]) -> str:
    """The benchmark command users know, for the first use case set up."""
    configs = ((metadata.get("run") or {}).get("gpu_configs") or {})
    config = (configs.get(gpu_type) or configs.get("gb200") or {}).get("model_configs", [{}])[0]
    size, dtype, scale = config.get("model_size", "671b"), (config.get("dtypes") or ["nvfp4"])[0], \
        (config.get("scales") or [4])[0]
    prefix = f"USE_CASES={use_cases[0].name}:{use_cases[0].isl}/{use_cases[0].osl} " if use_cases else ""
    return f"{prefix}llmb-run single -w {WORKLOAD_KEY} -s {size} --dtype {dtype} --scale {scale}"


def _slurm(args: argparse.Namespace, context: HostContext, steps: tuple[str, ...]) -> SlurmOptions | None:
    env = context.env
    if not args.slurm:
        used = [flag for flag, value in (("--partition", args.partition), ("--account", args.account),
                                         ("--time", args.time), ("--wait", args.wait or None),
                                         ("--wait-timeout", args.wait_timeout)) if value is not None]
        if used:
            raise ValidationError(f"{used[0]} only applies with --slurm")
        return None
    if env.get("SLURM_JOB_ID"):
        raise ValidationError(f"--slurm is not valid inside a Slurm job (SLURM_JOB_ID={env['SLURM_JOB_ID']}): "
                              "run setup without --slurm here, or submit from a login node")
    partition = args.partition or context.cluster.cpu_partition
    if not partition:
        raise ValidationError("--slurm needs a CPU partition: pass --partition NAME or set slurm.cpu_partition "
                              "in cluster_config.yaml")
    partition = knobs.name("--partition", partition)
    account = args.account or env.get("SBATCH_ACCOUNT") or context.cluster.account
    if account:
        account = knobs.name("--account", account)
    time_min = knobs.time_limit_minutes("--time", args.time or DEFAULT_TIME)
    if args.cpus < 1:
        raise ValidationError(f"--cpus {args.cpus} is not valid: expected a positive number of CPUs")
    wait_timeout = args.wait_timeout if args.wait_timeout is not None else time_min * 60 + WAIT_SLACK_S
    if wait_timeout <= 0:
        raise ValidationError(f"--wait-timeout {args.wait_timeout} is not valid: expected seconds > 0")
    return SlurmOptions(partition=partition, account=account, time_min=time_min, cpus=args.cpus, wait=args.wait,
                        wait_timeout_s=float(wait_timeout))


def resolve_options(args: argparse.Namespace, context: HostContext, metadata: Mapping[str, Any]) -> SetupOptions:
    """Everything validated up front; ValidationError (one line, naming the value) for anything wrong."""
    env: Mapping[str, str] = context.env
    steps = parse_steps(args.steps)
    install_dir = Path(safety.no_control("LLMB_INSTALL", str(context.install_dir)))  # in #SBATCH lines
    revision = args.revision if args.revision is not None else (env.get("HF_REVISION") or "").strip() or None
    if revision is not None and not _REVISION_RE.match(revision):
        raise ValidationError(f"revision {revision!r} is not valid: expected a branch, tag or commit id")
    if args.workers < 1:
        raise ValidationError(f"--workers {args.workers} is not valid: expected a positive number")
    if not args.lock_timeout > 0:
        raise ValidationError(f"--lock-timeout {args.lock_timeout} is not valid: expected seconds > 0")
    manual = (env.get("MANUAL_INSTALL") or "").strip()
    image_uri = resolve_image_uri(args.image, env, metadata)
    choice = setup_profile(env, metadata, image_uri)
    checkpoint, where, dtype = workload_checkpoint(env, metadata, context.gpu_type, install_dir, image_uri)
    use_cases, requests_source = use_case_data(env, metadata, where, choice, context.gpu_type)
    if revision is None and (env.get("MODEL_REVISION") or "").strip():
        revision = checkpoint.revision
    slurm = _slurm(args, context, steps)
    if slurm is not None and not any(s in HEAVY_STEPS for s in steps):
        slurm = None  # nothing heavy to submit: the layout runs here either way
    manual_install = knobs.boolean("MANUAL_INSTALL", manual) if manual else True
    return SetupOptions(
        steps=steps, dry_run=args.dry_run, install_dir=install_dir, workload_dir=where.workload_dir,
        model_dir=where.model_dir,
        repo_id=checkpoint.repo_id,
        revision=revision, image_uri=image_uri, image_file=where.image_file(image_uri),
        arch=resolve_arch(args.arch, context.gpu_type, metadata=metadata), gpu_type=context.gpu_type,
        workers=args.workers,
        use_cases=use_cases, requests_source=requests_source, offline=is_offline(env), hub_cache=hub_cache_dir(env),
        lock_timeout_s=float(args.lock_timeout), manual_install=manual_install,
        slurm=slurm, workload=WORKLOAD_KEY, run_command=run_command(metadata, context.gpu_type, use_cases),
        dtype=dtype, profile=choice.name,
    )
