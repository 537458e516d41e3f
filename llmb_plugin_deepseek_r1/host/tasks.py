"""`llmb-run submit` as NVIDIA's llmb-run 1.15 reads it: the command line (comma lists, scale discovery, --force)
or a job file (YAML or the simple text format) -> a list of Tasks; and the Slurm flags -> sbatch parameters.

Pure functions over the workloads' metadata: nothing here submits, prints or reads the environment.
"""

from __future__ import annotations

import ast
import itertools
import re
from pathlib import Path
from types import MappingProxyType
from typing import Any, Iterable, Mapping, NamedTuple, Sequence

from . import safety
from .contract import is_secret_name
from .errors import ValidationError

FIRST_CLASS_SLURM_KEYS = ("nodelist", "exclude", "reservation", "segment", "nice")
ADDITIONAL_SLURM_PARAMS = "ADDITIONAL_SLURM_PARAMS"
_SIZE_SUFFIX = re.compile(r"^\d+(?:\.\d+)?[bt]$", re.IGNORECASE)
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SLURM_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")
DISCOVERY_TYPES = ("pretrain", "finetune")  # what bare discovery submits; other types only when named with -w


NO_ENV: Mapping[str, str] = MappingProxyType({})


class Task(NamedTuple):
    """One job request: what `llmb-run single` would be asked, plus per-task environment from a job file."""

    workload: str
    model_size: str
    dtype: str
    scale: int
    profile: bool = False
    env: Mapping[str, str] = NO_ENV

    def label(self) -> str:
        """NVIDIA's task column layout (format_task_output), which scripts parse."""
        text = (f"{f'{self.workload}_{self.model_size}':<30} {f'dtype={self.dtype}':<12} {f'scale={self.scale}':<12} "
                f"{f'profile={self.profile}':<15} {'proxy=False':<12}")
        return text + (f" env={dict(self.env)}" if self.env else "")


def comma_list(value: str | None) -> list[str]:
    return [item.strip() for item in (value or "").split(",") if item.strip()]


def split_workload_name(name: str) -> tuple[str, str | None]:
    """'inference_deepseek-r1_671b' -> ('inference_deepseek-r1', '671b'); no size suffix -> (name, None)."""
    if "_" in name:
        base, last = name.rsplit("_", 1)
        if _SIZE_SUFFIX.match(last):
            return base, last.lower()
    return name, None


def _int_list(value: str | None, flag: str) -> list[int]:
    result = []
    for item in comma_list(value):
        if not item.isdigit() or int(item) <= 0:
            raise ValidationError(f"{flag} {item!r} is not valid: expected positive GPU counts, comma-separated "
                                  f"(e.g. --scale 4,8)")
        result.append(int(item))
    return result


def _model_configs(metadata: Mapping[str, Any], gpu_type: str) -> list[Mapping[str, Any]]:
    gpu_configs = (metadata.get("run") or {}).get("gpu_configs") or {}
    return list((gpu_configs.get(gpu_type) or {}).get("model_configs") or [])


def _dtype_scales(config: Mapping[str, Any]) -> dict[str, tuple[list[int], bool]]:
    """dtype -> (scales, exact) for both metadata forms (a dtype list with shared scales, or a dtype mapping)."""
    dtypes = config.get("dtypes")
    exact = bool(config.get("exact_scales", False))
    if isinstance(dtypes, dict):
        result = {}
        for dtype, value in dtypes.items():
            if isinstance(value, list):
                result[str(dtype)] = ([int(s) for s in value], exact)
            elif isinstance(value, dict):
                result[str(dtype)] = ([int(s) for s in value.get("scales") or []],
                                      bool(value.get("exact_scales", exact)))
        return result
    names = [dtypes] if isinstance(dtypes, str) else list(dtypes or [])
    return {str(d): ([int(s) for s in config.get("scales") or []], exact) for d in names}


def discovered_scales(scales: Sequence[int], exact: bool, *, max_scale: int | None, min_scale: bool,
                      asked: Sequence[int] | None) -> list[int]:
    """NVIDIA's scale selection: asked scales that the metadata allows, the minimum, or all up to --max-scale
    (adding powers of two beyond the largest listed scale unless exact)."""
    listed = sorted(scales)
    if not listed:
        return []
    if asked is not None:
        return [s for s in asked if s in listed or (not exact and s > listed[-1])]
    if min_scale:
        fitting = [s for s in listed if max_scale is None or s <= max_scale]
        return fitting[:1]
    if max_scale is None:
        return listed
    chosen = [s for s in listed if s <= max_scale]
    if not exact and max_scale > listed[-1]:
        power = 1
        while power <= listed[-1]:
            power *= 2
        while power <= max_scale:
            chosen.append(power)
            power *= 2
    return sorted(set(chosen))


class SubmitRequest(NamedTuple):
    """The selection flags of `submit` (file mode is handled by parse_job_file)."""

    workload: str | None = None
    model_size: str | None = None
    dtype: str | None = None
    scale: str | None = None
    max_scale: int | None = None
    min_scale: bool = False
    exact_scales: bool = False
    repeats: int = 1
    profile: bool = False
    force: bool = False


def check_combination(req: SubmitRequest, file_mode: bool) -> None:
    """llmb-run 1.15's rules for which selection flags go together; each refusal says what to write instead."""
    if file_mode and (req.workload or req.model_size or req.max_scale or req.min_scale):
        raise ValidationError("cannot mix -f/--file with -w/-s/--max-scale/--min-scale: use either "
                              "`llmb-run submit -f FILE` or `llmb-run submit -w W -s S --dtype D --scale N`")
    if req.model_size and not req.workload:
        raise ValidationError("--model-size needs --workload")
    if req.model_size and "," in (req.workload or ""):
        raise ValidationError("-s/--model-size cannot be used with several workloads: append the size to each name "
                              "instead, e.g. -w inference_deepseek-r1_671b,pretrain_x_70b")
    if req.scale and (req.max_scale or req.min_scale):
        raise ValidationError("cannot use --scale with --max-scale or --min-scale: give exact scales "
                              "(--scale 4,8) or discover them (--max-scale 8)")
    if not file_mode and not (req.scale or req.max_scale or req.min_scale):
        raise ValidationError("a scale is needed: --scale 4[,8...], or discovery with --max-scale N or --min-scale")
    if req.repeats < 1:
        raise ValidationError(f"--repeats {req.repeats} must be at least 1")
    if req.force:
        size = req.model_size or (split_workload_name(req.workload or "")[1])
        if file_mode or req.max_scale or req.min_scale or not (req.workload and size and req.dtype and req.scale):
            raise ValidationError("--force is only for one explicit task: llmb-run submit -w WORKLOAD -s SIZE "
                                  "--dtype DTYPE --scale N --force")
        many = [flag for flag, value in (("--workload", req.workload), ("--dtype", req.dtype),
                                         ("--scale", req.scale)) if len(comma_list(value)) != 1]
        if many:
            raise ValidationError(f"--force only supports a single explicit task: {', '.join(many)} must be "
                                  f"single values")


def tasks_from_flags(req: SubmitRequest, workloads: Mapping[str, Mapping[str, Any]], gpu_type: str,
                     installed: Sequence[str] | None) -> list[Task]:
    """Explicit, comma-list and discovery selection. ``workloads`` maps keys to metadata; validation of the
    chosen tasks (the same as `single`) happens afterwards, per task."""
    check_combination(req, file_mode=False)
    dtype_filter = [d.lower() for d in comma_list(req.dtype)] or None
    asked = _int_list(req.scale, "--scale") or None
    if req.force:
        name = comma_list(req.workload)[0]
        key, size = (name, req.model_size.lower()) if req.model_size else split_workload_name(name)
        return [Task(key, str(size), dtype_filter[0], asked[0], req.profile)] * req.repeats
    if req.model_size:
        key, implied = split_workload_name(req.workload or "")
        if implied and implied != req.model_size.lower():
            raise ValidationError(f"workload name implies size {implied!r} but --model-size is {req.model_size!r}: "
                                  f"use -w {key} -s {req.model_size} or -w {req.workload}")
        filters = [f"{key}_{req.model_size.lower()}"]
    else:
        filters = comma_list(req.workload) or []
    explicit_single = bool(req.model_size) and bool(dtype_filter) and asked is not None
    tasks: list[Task] = []
    for key in sorted(workloads):
        metadata = workloads[key]
        matching = [f for f in filters if f == key or f.startswith(key + "_")]
        if filters and not matching:
            continue
        if not filters:
            if installed is not None and key not in installed:
                continue
            if str((metadata.get("general") or {}).get("workload_type", "")) not in DISCOVERY_TYPES:
                continue  # NVIDIA: inference workloads only when named with -w
        for config in _model_configs(metadata, gpu_type):
            size = str(config.get("model_size", "")).lower()
            if filters and not any(f == key or f == f"{key}_{size}" for f in matching):
                continue
            for dtype, (scales, exact) in _dtype_scales(config).items():
                if dtype_filter and dtype.lower() not in dtype_filter:
                    continue
                chosen = discovered_scales(scales, exact or req.exact_scales, max_scale=req.max_scale,
                                           min_scale=req.min_scale, asked=asked)
                for scale in chosen:
                    tasks.extend([Task(key, size, dtype, scale, req.profile)] * req.repeats)
    if not tasks and explicit_single:
        # Let the per-task validation say precisely what is wrong (unknown size, dtype or scale).
        key = split_workload_name(req.workload or "")[0]
        return [Task(key, req.model_size.lower(), dtype_filter[0], s, req.profile)  # type: ignore[union-attr]
                for s in asked for _ in range(req.repeats)]  # type: ignore[union-attr]
    return tasks


def _env_overrides(values: Mapping[Any, Any], where: str) -> dict[str, str]:
    result = {}
    for key, value in values.items():
        if not isinstance(key, str) or not _ENV_NAME.match(key):
            raise ValidationError(f"{where}: {key!r} is not an environment variable name")
        if isinstance(value, (dict, list)) or value is None:
            raise ValidationError(f"{where}.{key} must be a string, number or boolean, got {value!r}")
        result[key] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return result


def _as_list(value: Any, what: str, where: str) -> list[Any]:
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        return [value]
    if isinstance(value, list) and value:
        return value
    raise ValidationError(f"{where}: '{what}' must be a value or a non-empty list, got {value!r}")


def parse_yaml_job_file(data: Any, path: Path) -> list[Task]:
    """NVIDIA's YAML job file: `<workload>_<size>:` with defaults.env, top-level dtypes/scales/repeats and tasks[]
    (dtypes, scales, repeats, profile, add_profile, overrides.env)."""
    if not isinstance(data, dict) or not data:
        raise ValidationError(f"{path}: expected `<workload>_<size>:` headers with tasks, got {type(data).__name__}")
    tasks: list[Task] = []
    for header, spec in data.items():
        key, size = split_workload_name(str(header))
        if size is None:
            raise ValidationError(f"{path}: header {header!r} has no model size: write <workload>_<size>, "
                                  f"e.g. inference_deepseek-r1_671b")
        if not isinstance(spec, dict):
            raise ValidationError(f"{path}: {header} must be a mapping with tasks:")
        defaults = spec.get("defaults") or {}
        default_env = _env_overrides(defaults.get("env") or {}, f"{path}: {header}.defaults.env")
        if (defaults.get("params") or any((t or {}).get("overrides", {}).get("params") for t in spec.get("tasks") or [])):
            raise ValidationError(f"{path}: {header}: overrides.params (model overrides) are not supported by this "
                                  f"workload: use overrides.env with its knobs (e.g. MAX_BATCH_SIZE)")
        entries = spec.get("tasks") or []
        if not isinstance(entries, list):
            raise ValidationError(f"{path}: {header}.tasks must be a list")
        for number, entry in enumerate(entries, 1):
            where = f"{path}: {header}.tasks[{number}]"
            if not isinstance(entry, dict):
                raise ValidationError(f"{where} must be a mapping")
            dtypes = _as_list(entry.get("dtypes", spec.get("dtypes")), "dtypes", where)
            scales = _as_list(entry.get("scales", spec.get("scales")), "scales", where)
            repeats = entry.get("repeats", spec.get("repeats", 1))
            profile = bool(entry.get("profile", False))
            add_profile = bool(entry.get("add_profile", spec.get("add_profile", False)))
            if entry.get("proxy"):
                raise ValidationError(f"{where}: proxy runs need proxy_scales, which this workload does not define")
            if profile and add_profile:
                raise ValidationError(f"{where}: give either profile or add_profile, not both")
            if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
                raise ValidationError(f"{where}: repeats must be a positive whole number, got {repeats!r}")
            env = {**default_env, **_env_overrides((entry.get("overrides") or {}).get("env") or {},
                                                   f"{where}.overrides.env")}
            for dtype, scale in itertools.product(dtypes, scales):
                if isinstance(scale, bool) or not isinstance(scale, int) or scale <= 0:
                    raise ValidationError(f"{where}: scale {scale!r} is not a positive GPU count")
                tasks.extend([Task(key, size, str(dtype).lower(), scale, profile, env)] * repeats)
                if add_profile:
                    tasks.append(Task(key, size, str(dtype).lower(), scale, True, env))
    if not tasks:
        raise ValidationError(f"{path}: no tasks generated: put at least one entry under tasks: "
                              f"(e.g. - dtypes: nvfp4\\n  scales: [4])")
    return tasks


def parse_text_job_file(text: str, path: Path) -> list[Task]:
    """NVIDIA's simple format: a `<workload>_<size>:` line, then `(dtype(s), [scales], repeats[, profile])` lines."""
    tasks: list[Task] = []
    current: tuple[str, str] | None = None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            if not line:
                current = None
            continue
        if line.endswith(":") and not line.startswith("("):
            key, size = split_workload_name(line[:-1])
            if size is None:
                raise ValidationError(f"{path}:{number}: header {line!r} has no model size: write <workload>_<size>:")
            current = (key, size)
            continue
        if not (line.startswith("(") and line.endswith(")")):
            raise ValidationError(f"{path}:{number}: {line!r} is neither a `<workload>_<size>:` header nor a "
                                  f"(dtype, [scales], repeats[, profile]) line (comments go on their own line)")
        if current is None:
            raise ValidationError(f"{path}:{number}: task line before any `<workload>_<size>:` header")
        try:
            fields = ast.literal_eval(line)
        except (SyntaxError, ValueError):
            raise ValidationError(f"{path}:{number}: {line!r} is not (dtype, [scales], repeats[, profile])") from None
        if not isinstance(fields, tuple) or len(fields) not in (3, 4):
            raise ValidationError(f"{path}:{number}: expected (dtype, [scales], repeats[, profile]), got {line!r}")
        dtypes, scales, repeats = fields[:3]
        profile = bool(fields[3]) if len(fields) == 4 else False
        dtypes = [dtypes] if isinstance(dtypes, str) else list(dtypes)
        if not isinstance(scales, list) or not all(isinstance(s, int) and s > 0 for s in scales) \
                or not isinstance(repeats, int) or repeats < 1:
            raise ValidationError(f"{path}:{number}: scales must be a list of GPU counts and repeats a positive "
                                  f"number, got {line!r}")
        for dtype, scale in itertools.product(dtypes, scales):
            tasks.extend([Task(current[0], current[1], str(dtype).lower(), scale, profile)] * repeats)
    if not tasks:
        raise ValidationError(f"{path}: no tasks generated: write `<workload>_<size>:` then lines such as "
                              f"('nvfp4', [4], 1)")
    return tasks


def parse_job_file(path: Path, repeats: int = 1) -> list[Task]:
    """-f FILE: YAML by extension (.yaml/.yml), else the simple text format."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValidationError(f"-f {path}: cannot read the job file: {exc}") from None
    if path.suffix in (".yaml", ".yml"):
        import yaml

        try:
            return parse_yaml_job_file(yaml.safe_load(text), path)
        except yaml.YAMLError as exc:
            raise ValidationError(f"{path}: not valid YAML: {str(exc).splitlines()[0]}") from None
    return parse_text_job_file(text, path)


def parse_env_flags(values: Iterable[str]) -> dict[str, str]:
    """Repeatable --env KEY=VALUE, in order; a bad name or a repeated key is refused."""
    parsed: dict[str, str] = {}
    for raw in values:
        try:
            key, value = safety.key_value(raw)
        except ValueError as exc:  # the message names the key only: the value may be a secret
            raise ValidationError(f"--env is not valid: {exc}") from None
        if key in parsed:
            raise ValidationError(f"--env {key} is given twice: give each variable once")
        parsed[key] = safety.no_control(f"--env {key}", value, secret=is_secret_name(key))
    return parsed


def slurm_parameters(*, nodelist: str | None = None, exclude: str | None = None, reservation: str | None = None,
                     segment: int | None = None, nice: int | None = None,
                     raw: Iterable[str] = ()) -> dict[str, str | bool]:
    """The first-class Slurm flags and --slurm-arg (key=value or a bare flag such as `exclusive`) -> sbatch
    parameters (key -> value, True for a bare flag), refused as llmb-run 1.15 refuses them."""
    params: dict[str, str | bool] = {}
    for key, value in (("nodelist", nodelist), ("exclude", exclude), ("reservation", reservation),
                       ("segment", segment), ("nice", nice)):
        if value is None:
            continue
        text = safety.no_control(f"--{key}", str(value), secret=False)
        if not text:
            raise ValidationError(f"--{key} '' is not valid: expected a non-empty value")
        if key == "segment" and (not text.isdigit() or int(text) <= 0):
            raise ValidationError(f"--segment {text!r} is not valid: expected a positive number of nodes")
        params[key] = text
    for item in raw:
        item = item.strip()
        if not item:
            raise ValidationError("--slurm-arg cannot be empty: give key=value or a bare flag such as exclusive")
        if item.startswith("-"):
            raise ValidationError(f"--slurm-arg {safety.shown(item[:60])}: leave out the leading '--' "
                                  f"(e.g. constraint=gpu, exclusive)")
        key, sep, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not _SLURM_KEY.match(key):
            raise ValidationError(f"--slurm-arg key {safety.shown(key)} is not valid: expected a sbatch option name "
                                  f"such as reservation or qos")
        if sep and not value:
            raise ValidationError(f"--slurm-arg {key}=: expected key=value with a non-empty value")
        safety.no_control(f"--slurm-arg {key}", value, secret=is_secret_name(key))
        if key in FIRST_CLASS_SLURM_KEYS:
            raise ValidationError(f"--slurm-arg {key}: {key} has its own flag: use --{key}")
        if key in params:
            raise ValidationError(f"--slurm-arg {key} is given more than once: give each Slurm option once")
        params[key] = value if sep else True
    return params


def check_no_additional_params(params: Mapping[str, Any], env: Mapping[str, str], source: str) -> None:
    """NVIDIA refuses Slurm flags together with ADDITIONAL_SLURM_PARAMS (two ways to say the same thing)."""
    if params and (env.get(ADDITIONAL_SLURM_PARAMS) or "").strip():
        raise ValidationError(f"cannot combine Slurm flags (--slurm-arg, --nodelist...) with {ADDITIONAL_SLURM_PARAMS} "
                              f"from {source}: use one or the other")
