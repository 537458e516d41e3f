"""Every trtllm-bench report generation this plugin reads, in ONE table: a new generation is one entry.

Each generation says which sections and labels it prints and which stable metric each label is (an old label maps
to the same metric, with the same definition, as the new one). Sources: TensorRT-LLM's bench code at each
release (`tensorrt_llm/bench/run/run.py` 0.12, `bench/dataclasses/reporting.py` 0.16 to 1.3,
`bench/benchmark/low_latency.py` for `latency`) and the outputs published in its docs and issues.

Definitions kept across generations (what the old label really computed, not what it says):
- ``total_output_throughput_tok_s``: output tokens / wall time. 0.12-0.17 print it as "Token Throughput", the old
  `latency` report as "Total Token Throughput" (its code divides output tokens only, unlike 0.20+'s row of that
  name, which counts input tokens too).
- ``total_latency_ms``: first request start to last request end; 0.12 prints it in seconds.
- ``avg_tpot_ms``: the per-request average time between output tokens after the first; "Average inter-token
  latency (ms)" in 0.16-0.17 and the old `latency` report.
- ``per_user_output_speed_tok_s_user``: average per-request generation-phase tokens/s; "Generation Token
  Throughput (tokens/sec)" in the old `latency` report.
- ``acceptance_length`` (decoding): output tokens per decoding step; the old `latency` report calls it
  "Acceptance Rate (Speculative)" (1.00 without speculative decoding).
"""

from __future__ import annotations

from dataclasses import dataclass

PERF = "PERFORMANCE OVERVIEW"
STATS = "STATISTICS"
STREAM = "STREAMING STATISTICS"
GENERAL = "GENERAL OVERVIEW"
THROUGHPUT = "THROUGHPUT OVERVIEW"
LATENCY = "LATENCY OVERVIEW"
REQUEST = "REQUEST DETAILS"
WORLD = "WORLD + RUNTIME INFORMATION"
DATASET = "DATASET DETAILS"
DECODING = "DECODING STATISTICS"
MACHINE = "MACHINE DETAILS"
BACKENDS = ("PYTORCH BACKEND", "ENGINE DETAILS")
# Old `latency` breakdown sections: rows "MIN (ms): 1.0" -> percentile block; their "P90" row prints p50 (a bug in
# low_latency.py 0.16-0.19), so it is stored as p50, its real definition.
BREAKDOWNS = {
    "GENERATION LATENCY BREAKDOWN": ("generation_latency_ms", {"P90": "p50"}),
    "ACCEPTANCE BREAKDOWN": ("acceptance_length", {"P90": "p50"}),
}


@dataclass(frozen=True)
class Row:
    """One printed `Label: value` row: where it is printed and what it is."""

    section: str
    label: str
    target: str  # ParsedReport attribute: metrics, request_details, world, engine, dataset, decoding
    key: str
    kind: str = "float"  # float, int, str, percent (85.00% -> 0.85), seconds (-> ms)


@dataclass(frozen=True)
class Generation:
    """One report generation: how to recognise it, its rows, and what a complete report of it carries."""

    name: str
    versions: str
    subcommand: str
    markers: tuple[tuple[str, str | None], ...]  # (section, label) only it prints; label None: the section itself
    rows: tuple[Row, ...]
    required: tuple[str, ...]  # metric keys every complete report has
    streaming: tuple[str, ...] = ()  # metric keys required once any streaming row appears
    blocks: tuple[str, ...] = ()  # percentile blocks always printed
    streaming_blocks: tuple[str, ...] = ()
    label_generation: str | None = None  # the 0.19/0.20 "old"/"new" names earlier results used


def _requests(section: str) -> tuple[Row, ...]:
    return (
        Row(section, "Number of requests", "request_details", "num_requests", "int"),
        Row(section, "Number of concurrent requests", "request_details", "num_concurrent_requests"),
        Row(section, "Average Input Length (tokens)", "request_details", "avg_input_len"),
        Row(section, "Average Output Length (tokens)", "request_details", "avg_output_len"),
    )


_M = "metrics"
_STREAMING = ("avg_ttft_ms", "avg_tpot_ms", "per_user_output_speed_tok_s_user")
_COMMON_PERF = (
    Row(PERF, "Request Throughput (req/sec)", _M, "request_throughput_req_s"),
    Row(PERF, "Total Output Throughput (tokens/sec)", _M, "total_output_throughput_tok_s"),
    Row(PERF, "Total Token Throughput (tokens/sec)", _M, "total_token_throughput_tok_s"),
    Row(PERF, "Total Latency (ms)", _M, "total_latency_ms"),
    Row(PERF, "Average request latency (ms)", _M, "avg_request_latency_ms"),
    Row(PERF, "Average time-to-first-token [TTFT] (ms)", _M, "avg_ttft_ms"),
    Row(PERF, "Average time-per-output-token [TPOT] (ms)", _M, "avg_tpot_ms"),
) + _requests(PERF)  # very old builds printed the request rows inside the overview
_NEW_ONLY = (
    Row(PERF, "Per User Output Throughput [w/ ctx] (tps/user)", _M, "per_user_output_throughput_tok_s_user"),
    Row(PERF, "Per GPU Output Throughput (tps/gpu)", _M, "per_gpu_output_throughput_tok_s_gpu"),
    Row(PERF, "Per User Output Speed (tps/user)", _M, "per_user_output_speed_tok_s_user"),
)
_OLD_ONLY = (
    Row(PERF, "Per User Output Throughput (tokens/sec/user)", _M, "per_user_output_throughput_tok_s_user"),
    Row(PERF, "Per GPU Output Throughput (tokens/sec/gpu)", _M, "per_gpu_output_throughput_tok_s_gpu"),
    Row(PERF, "Per User Output Speed [1/TPOT] (tokens/sec/user)", _M, "per_user_output_speed_tok_s_user"),
)
_PERF_BASE = ("request_throughput_req_s", "total_output_throughput_tok_s", "total_latency_ms",
              "avg_request_latency_ms", "per_user_output_throughput_tok_s_user", "per_gpu_output_throughput_tok_s_gpu")


def _markers(rows: tuple[Row, ...]) -> tuple[tuple[str, str | None], ...]:
    return tuple((row.section, row.label) for row in rows)


# Newest first: when a log's rows fit several generations, the first listed wins.
GENERATIONS: tuple[Generation, ...] = (
    Generation(
        name="0.20+", versions="0.20 to 1.3", subcommand="throughput or latency",
        markers=_markers(_NEW_ONLY), rows=_COMMON_PERF + _NEW_ONLY,
        required=_PERF_BASE + ("total_token_throughput_tok_s",), streaming=_STREAMING,
        blocks=("latency_ms",), streaming_blocks=("tpot_ms", "ttft_ms", "gtps_tok_s_user"), label_generation="new"),
    Generation(
        name="0.19", versions="0.18 to 0.19", subcommand="throughput",
        markers=_markers(_OLD_ONLY), rows=_COMMON_PERF + _OLD_ONLY,
        required=_PERF_BASE, streaming=_STREAMING, label_generation="old"),
    Generation(
        name="0.16", versions="0.16 to 0.17", subcommand="throughput",
        markers=((PERF, "Token Throughput (tokens/sec)"),),
        rows=_requests(PERF) + (
            Row(PERF, "Token Throughput (tokens/sec)", _M, "total_output_throughput_tok_s"),
            Row(PERF, "Request Throughput (req/sec)", _M, "request_throughput_req_s"),
            Row(PERF, "Total Latency (ms)", _M, "total_latency_ms"),
            Row(STREAM, "Average request latency (ms)", _M, "avg_request_latency_ms"),
            Row(STREAM, "Average time-to-first-token (ms)", _M, "avg_ttft_ms"),
            Row(STREAM, "Average inter-token latency (ms)", _M, "avg_tpot_ms"),
        ),
        required=("request_throughput_req_s", "total_output_throughput_tok_s", "total_latency_ms"),
        streaming=("avg_request_latency_ms", "avg_ttft_ms", "avg_tpot_ms")),
    Generation(
        name="0.12", versions="0.12", subcommand="throughput",
        markers=((STATS, None),),
        rows=_requests(STATS) + (
            Row(STATS, "Token Throughput (tokens/sec)", _M, "total_output_throughput_tok_s"),
            Row(STATS, "Request Throughput (req/sec)", _M, "request_throughput_req_s"),
            Row(STATS, "Total Latency (seconds)", _M, "total_latency_ms", "seconds"),
        ),
        required=("request_throughput_req_s", "total_output_throughput_tok_s", "total_latency_ms")),
    Generation(
        name="latency-0.16", versions="0.16 to 0.19",
        subcommand="latency",
        markers=((GENERAL, None), (LATENCY, None)),
        rows=_requests(GENERAL) + (
            Row(GENERAL, "Average request latency (ms)", _M, "avg_request_latency_ms"),
            Row(THROUGHPUT, "Request Throughput (req/sec)", _M, "request_throughput_req_s"),
            Row(THROUGHPUT, "Total Token Throughput (tokens/sec)", _M, "total_output_throughput_tok_s"),
            Row(THROUGHPUT, "Generation Token Throughput (tokens/sec)", _M, "per_user_output_speed_tok_s_user"),
            Row(LATENCY, "Total Latency (ms)", _M, "total_latency_ms"),
            Row(LATENCY, "Average time-to-first-token (ms)", _M, "avg_ttft_ms"),
            Row(LATENCY, "Average inter-token latency (ms)", _M, "avg_tpot_ms"),
            Row(LATENCY, "Acceptance Rate (Speculative)", "decoding", "acceptance_length"),
        ),
        required=("request_throughput_req_s", "total_output_throughput_tok_s", "total_latency_ms",
                  "avg_request_latency_ms", "avg_ttft_ms", "avg_tpot_ms", "per_user_output_speed_tok_s_user"),
        blocks=("generation_latency_ms",)),
)

# Rows every generation prints the same way (or that only some print, with one meaning).
SHARED_ROWS: tuple[Row, ...] = _requests(REQUEST) + tuple(
    Row(WORLD, label, "world", key, kind) for label, key, kind in (
        ("TP Size", "tp", "int"), ("PP Size", "pp", "int"), ("EP Size", "ep", "int"),
        ("Max Runtime Batch Size", "max_batch_size", "int"), ("Max Runtime Tokens", "max_num_tokens", "int"),
        ("Scheduling Policy", "scheduling_policy", "str"), ("KV Memory Percentage", "kv_cache_fraction", "percent"),
    )
) + tuple(
    Row(section, label, "engine", key, "str") for section in BACKENDS for label, key in (
        ("Model", "model"), ("Model Path", "model_path"), ("Engine Directory", "engine_dir"),
        ("TensorRT-LLM Version", "trtllm_version"), ("TensorRT LLM Version", "trtllm_version"), ("Dtype", "dtype"),
        ("KV Cache Dtype", "kv_cache_dtype"), ("Quantization", "quantization"),
        ("Max Input Length", "max_input_len"), ("Max Sequence Length", "max_seq_len"),
    )
) + (
    Row(DATASET, "Dataset Path", "dataset", "path", "str"),
    Row(DATASET, "Number of Sequences", "dataset", "num_sequences", "int"),
)

# Sections whose rows are read (plus DATASET, MACHINE and DECODING, handled apart).
OVERVIEWS = frozenset({PERF, STATS, STREAM, GENERAL, THROUGHPUT, LATENCY})
# Sections that appear once per report: seeing one again means a new report began.
ONCE = frozenset({MACHINE, REQUEST, WORLD, PERF, STATS, GENERAL, THROUGHPUT, LATENCY})


def normalise(label: str) -> str:
    return " ".join(label.lower().split())


def _index() -> dict[tuple[str, str], Row]:
    table: dict[tuple[str, str], Row] = {}
    for row in SHARED_ROWS + tuple(row for gen in GENERATIONS for row in gen.rows):
        key = (row.section, normalise(row.label))
        known = table.setdefault(key, row)
        if (known.target, known.key, known.kind) != (row.target, row.key, row.kind):
            raise AssertionError(f"{row.section}/{row.label} means two things: {known} and {row}")
    return table


ROWS = _index()
BY_NAME = {gen.name: gen for gen in GENERATIONS}
