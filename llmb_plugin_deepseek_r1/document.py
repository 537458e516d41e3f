"""The result document: one JSON file per use case and job (``<result_dir>/<stem>_<jobid>.json``).

The one module that knows its shape: the job body writes it through :func:`build` and :func:`write`; the
results table, the job summaries (``llmb-run jobs show``) and the archive read it through :func:`read`.

Schema 2 (written now)::

    {"schema_version": 2, "workload", "use_case", "job_id", "result_name",
     "asked":      the settings asked for (use case, ISL/OSL, batch, tokens, KV fraction, TP/EP/PP, ...),
     "effective":  the settings of the last attempt when an OOM retry changed them, else null,
     "measured":   {"headline", "definitions", "metrics", "percentiles", "request_details", "world", "engine",
                    "source", "complete", and after 0.1.0 "machine", "generation" (report generation, see
                    report/generations.py), "subcommand", "metric_labels" (metric -> label it was read from),
                    "report_selection" (which report when a log held several), "decoding" (speculative decoding:
                    mode, draft_acceptance_rate, acceptance_length, representative)} or null when FAILED,
     "verdict":    {"status": VALID|INVALID|FAILED, "reasons", "classification", "remedy", "failure_line", and after
                    0.1.0 "failure_lineno", "rank", "node", "caveats"} (older files lack the later keys),
     "provenance": job id, host, image, versions, knobs, GPUs, preflight, weights, dataset, started, finished,
                   and what planning decided: profile {name, gpu_table, notes}, sources {value: where from},
                   checkpoint {repo_id, revision, model_dir, held: what the folder holds}, cuda_graphs, time_limit,
     "attempts":   one entry per benchmark attempt (command, YAML, outcome, verdict),
     "files":      {"stdout", "stderr"},
     "nsys_profile": {"tool": "nsys", "directory", "reports", "iterations", "gpu_metrics"} or null when not
                   profiled (ENABLE_PROFILE / llmb-run -p)}

Schema 1 (0.1 files on disk) is the same document with ``"schema": 1`` instead of ``"schema_version": 2``;
:func:`read` upgrades it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Mapping

SCHEMA_VERSION = 2
REQUIRED = ("asked", "verdict")
# <result_name>_streaming-<on|off>_<jobid>.json; attempts (`_try2`) and `.report.json` files are not results.
FILE_NAME = re.compile(r"^(?P<stem>.+_streaming-(?:on|off))_(?P<job>[^.]+)\.json$")
_ATTEMPT = re.compile(r"_try\d+$")


class DocumentError(ValueError):
    """A result file that cannot be read as a result document; the message names what is wrong."""


def is_result_file(path: Path) -> bool:
    """Whether ``path`` is named like a result document (the results table and the archive ask here)."""
    match = FILE_NAME.match(Path(path).name)
    return match is not None and not _ATTEMPT.search(match.group("job"))


def build(*, workload: str, use_case: str, job_id: str, result_name: str, asked: Mapping[str, Any],
          effective: Mapping[str, Any] | None, measured: Mapping[str, Any] | None, verdict: Mapping[str, Any],
          provenance: Mapping[str, Any], attempts: list[Mapping[str, Any]],
          files: Mapping[str, str], nsys_profile: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A schema-2 result document."""
    return {
        "schema_version": SCHEMA_VERSION, "workload": workload, "use_case": use_case, "job_id": job_id,
        "result_name": result_name, "asked": dict(asked), "effective": None if effective is None else dict(effective),
        "measured": None if measured is None else dict(measured), "verdict": dict(verdict),
        "provenance": dict(provenance), "attempts": [dict(a) for a in attempts], "files": dict(files),
        "nsys_profile": None if nsys_profile is None else dict(nsys_profile),
    }


def write(path: Path, document: Mapping[str, Any]) -> Path:
    """Write atomically; an existing result file is never replaced (FileExistsError)."""
    from llmb_plugin_deepseek_r1.host.records import write_json_atomic

    return write_json_atomic(path, dict(document), overwrite=False)


def upgrade(document: Any) -> dict[str, Any]:
    """Any known schema -> schema 2; DocumentError for anything else."""
    if not isinstance(document, dict):
        raise DocumentError("not a JSON object")
    version = document.get("schema_version", document.get("schema"))
    if version == 1:
        document = {"schema_version": SCHEMA_VERSION, **{k: v for k, v in document.items() if k != "schema"}}
    elif version != SCHEMA_VERSION:
        raise DocumentError(f"unsupported schema {version!r} (this version reads 1 and {SCHEMA_VERSION})")
    missing = [key for key in REQUIRED if not isinstance(document.get(key), dict)]
    if missing or "status" not in document["verdict"]:
        raise DocumentError(f"no {' or '.join(missing) or 'verdict status'} in the result document")
    return document


def read(path: Path) -> dict[str, Any]:
    """The result document at ``path`` in schema 2; OSError when unreadable, DocumentError when not a result."""
    try:
        data = json.loads(Path(path).read_text())
    except ValueError as exc:
        raise DocumentError(f"not valid JSON: {exc}") from None
    except RecursionError:
        raise DocumentError("JSON nested too deeply") from None
    return upgrade(data)
