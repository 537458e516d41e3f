"""Benchmark of the synthetic dataset generator and validator against TensorRT-LLM's algorithm.

The reference is TensorRT-LLM's ``benchmarks/cpp/prepare_dataset.py --stdout token-norm-dist`` as published
(reimplemented here without the tokenizer, which only supplies vocab size and EOS): lengths from
``np.random.normal`` rounded up, ids from ``random.sample(range(vocab), isl)`` with EOS rewritten to EOS+1, all
requests kept in lists, then one ``json.dumps(..., separators=(",", ":"))`` per line.

Generation is timed as whole processes, as a user runs them: ours is the real command
``python -m llmb_plugin_deepseek_r1 prepare-dataset ... --force`` (interpreter start, imports, generation, the
write and the sidecar's sha256); the reference is a fresh interpreter that imports numpy and runs the algorithm
above (no tokenizer or click/pydantic imports: a lower bound for TensorRT-LLM's script). Each child's peak memory
is its ``ru_maxrss`` and its CPU time user+sys (os.wait4); CPU time is printed because it barely moves when other
work shares the cores, wall time does. Validation compares the work alone (imports excluded).
Targets (the issue): ours at least 40x faster (whole processes) for 7680 x 8000/512, same bytes for a seed as
before (tests/test_dataset.py golden hashes), under 300 MB peak at any request count (checked at 50,000).

    python bench/bench_dataset.py [--workdir DIR] [--cases summarization] [--repeat 9] [--scale-requests 50000]
                                  [--skip-scale] [--skip-validate] [--keep]

Cases: reasoning 1000/1000, chat 128/128, summarization 8000/512, generation 512/8000 (7680 requests each), or
"all". Files go to a temporary folder under --workdir (default: the system temp dir) and are removed after.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CASES = {"reasoning": (1000, 1000), "chat": (128, 128), "summarization": (8000, 512), "generation": (512, 8000)}
VOCAB, EOS, SEED, REQUESTS = 129280, 1, 420, 7680
RATIO_TARGET, MEMORY_TARGET_MB = 40.0, 300.0


# --- what runs in the children --------------------------------------------------------------------------------


def reference_generate(path: str, isl: int, osl: int, n: int, vocab: int, eos: int, seed: int) -> None:
    """TensorRT-LLM's token-norm-dist with --stdout (stdev 0), as published."""
    import json as _json
    import math
    import random

    import numpy as np

    np.random.seed(seed)
    input_lens = [max(1, math.ceil(x)) for x in np.random.normal(loc=isl, scale=0, size=n).tolist()]
    np.random.seed(seed)
    output_lens = [max(1, math.ceil(x)) for x in np.random.normal(loc=osl, scale=0, size=n).tolist()]
    random.seed(seed)
    population = range(0, vocab)  # noqa: PIE808 - as published
    eos_ids = [eos]
    input_ids = []
    for ip_len in input_lens:
        start_ids = random.sample(population, ip_len) if ip_len < len(population) else \
            random.choices(population, k=ip_len)
        while set(eos_ids).issubset(start_ids):
            tmp_id = (eos_ids[0] + 1) % vocab
            start_ids = [tmp_id if element == eos_ids[0] else element for element in start_ids]
        input_ids.append(start_ids)
    with open(path, "w") as out:
        for i, tokens in enumerate(input_ids):
            line = {"task_id": i, "input_ids": tokens, "output_tokens": output_lens[i]}
            print(_json.dumps(line, separators=(",", ":"), ensure_ascii=False), file=out)


def reference_validate(path: str, isl: int, osl: int, vocab: int, eos: int) -> None:
    """The obvious validator: json.loads per line, then the same checks in Python."""
    with open(path, "rb") as handle:
        for index, line in enumerate(handle):
            obj = json.loads(line)
            ids = obj["input_ids"]
            if obj["task_id"] != index or obj["output_tokens"] != osl or len(ids) != isl or \
                    min(ids) < 0 or max(ids) >= vocab or eos in ids:
                raise SystemExit(f"line {index + 1} is bad")


def child(kind: str, args: dict) -> None:
    """Run one measurement and print {"seconds": ...} as JSON (imports happen before the clock starts)."""
    import time

    import numpy  # noqa: F401 - both sides use numpy; load it before timing

    if kind == "reference":  # a whole process: nothing of ours imported
        reference_generate(args["path"], args["isl"], args["osl"], args["n"], VOCAB, EOS, SEED)
        return
    from llmb_plugin_deepseek_r1.dataset.store import DatasetRequest, generate_dataset, validate_dataset
    from llmb_plugin_deepseek_r1.tuning import bulk_work

    tuned = bulk_work(numpy=True) if kind.endswith("ours") else contextlib.nullcontext()
    with tuned:  # what prepare-/validate-dataset apply for their duration (llmb_plugin_deepseek_r1.tuning)
        start = time.perf_counter()
        if kind == "reference":
            reference_generate(args["path"], args["isl"], args["osl"], args["n"], VOCAB, EOS, SEED)
        elif kind == "ours":
            generate_dataset(Path(args["path"]), DatasetRequest(isl=args["isl"], osl=args["osl"], num_requests=args["n"],
                                                                vocab_size=VOCAB, eos_id=EOS, seed=SEED))
        elif kind == "validate-reference":
            reference_validate(args["path"], args["isl"], args["osl"], VOCAB, EOS)
        elif kind == "validate-ours":
            result = validate_dataset(Path(args["path"]), isl=args["isl"], osl=args["osl"], num_requests=args["n"],
                                      vocab_size=VOCAB, eos_id=EOS)
            if not result.ok:
                raise SystemExit(result.message)
        print(json.dumps({"seconds": time.perf_counter() - start}))


# --- the parent -----------------------------------------------------------------------------------------------


def _wait(argv: list[str]) -> tuple[float, float, float, bytes]:
    """(wall seconds, CPU seconds, peak RSS in MB, stdout) of one fresh process, start to exit.

    Dirty pages of earlier runs are written out first (``os.sync``, not timed): otherwise the kernel's writeback
    of the reference's 378 MB competes for the cores with the next runs and makes their times depend on order.
    """
    os.sync()
    start = time.perf_counter()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}  # with bytecode caches
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, env=dict(env, PYTHONPATH=str(ROOT)))
    assert proc.stdout is not None
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:6])} ... failed with exit code {proc.returncode}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, output


def measure(kind: str, **args) -> tuple[float, float]:
    """(work seconds, peak RSS in MB) of one fresh child."""
    _, _, peak, output = _wait([sys.executable, __file__, "--child", kind, json.dumps(args)])
    return json.loads(output)["seconds"], peak


def whole_reference(path: Path, isl: int, osl: int, n: int) -> tuple[float, float, float]:
    """(wall, CPU, peak MB) of TensorRT-LLM's algorithm as a whole process."""
    wall, cpu, peak, _ = _wait([sys.executable, __file__, "--child", "reference",
                                json.dumps({"path": str(path), "isl": isl, "osl": osl, "n": n})])
    return wall, cpu, peak


def whole_ours(path: Path, isl: int, osl: int, n: int) -> tuple[float, float, float]:
    """(wall, CPU, peak MB) of the prepare-dataset command, as a user runs it."""
    wall, cpu, peak, _ = _wait([sys.executable, "-m", "llmb_plugin_deepseek_r1", "prepare-dataset", "--isl",
                                str(isl), "--osl", str(osl), "--num-requests", str(n), "--vocab-size", str(VOCAB),
                                "--eos-id", str(EOS), "--seed", str(SEED), "--output", str(path), "--force"])
    return wall, cpu, peak


def check_semantics(path: Path, isl: int, osl: int, n: int) -> str:
    from llmb_plugin_deepseek_r1.dataset.store import validate_dataset

    result = validate_dataset(path, isl=isl, osl=osl, num_requests=n, vocab_size=VOCAB, eos_id=EOS)
    return "valid" if result.ok and result.lines == n else f"INVALID: {result.message}"


def row(*cells: object) -> str:
    widths = (22, 12, 12, 9, 11, 11, 10)
    pairs = enumerate(zip(cells, widths, strict=False))
    return "  ".join(str(c).rjust(w) if i else str(c).ljust(w) for i, (c, w) in pairs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--cases", default="summarization", help="comma-separated use cases, or 'all'")
    parser.add_argument("--repeat", type=int, default=9, help="runs of ours per case (median reported)")
    parser.add_argument("--scale-requests", type=int, default=50_000)
    parser.add_argument("--skip-scale", action="store_true", help="skip the memory run at --scale-requests")
    parser.add_argument("--skip-validate", action="store_true", help="skip the validator comparison")
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    args = parser.parse_args()
    if args.child:
        child(args.child[0], json.loads(args.child[1]))
        return 0
    names = list(CASES) if args.cases == "all" else args.cases.split(",")
    unknown = [n for n in names if n not in CASES]
    if unknown:
        parser.error(f"unknown case(s) {unknown}; choose from {', '.join(CASES)} or all")
    work = Path(tempfile.mkdtemp(prefix="bench-dataset-", dir=args.workdir))
    failures = []
    try:
        print(f"files in {work}; vocab {VOCAB}, EOS {EOS}, seed {SEED}; whole processes; load average "
              f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
        print(row("generate", "reference s", "ours s", "ratio", "ref peak MB", "ours peak MB", "MB out"))
        for name in names:
            isl, osl = CASES[name]
            ref_path, our_path = work / f"ref_{name}.jsonl", work / f"ours_{name}.jsonl"
            runs = []
            for _ in range(args.repeat):  # each run writes a new file, as the reference does
                our_path.unlink(missing_ok=True)
                runs.append(whole_ours(our_path, isl, osl, REQUESTS))
            # The reference last: after its 25 s at full load this VM runs the next seconds measurably slower.
            ref_s, ref_cpu, ref_mb = whole_reference(ref_path, isl, osl, REQUESTS)
            ours_s = statistics.median(s for s, _, _ in runs)
            ours_cpu = statistics.median(c for _, c, _ in runs)
            ours_mb = max(mb for _, _, mb in runs)
            ratio = ref_s / ours_s
            label = f"{name} {REQUESTS}x{isl}/{osl}"
            print(row(label, f"{ref_s:.2f}", f"{ours_s:.3f}", f"{ratio:.1f}x", f"{ref_mb:.0f}", f"{ours_mb:.0f}",
                      f"{our_path.stat().st_size / 1e6:.0f}"))
            print(f"  CPU seconds (user+sys): reference {ref_cpu:.2f}, ours {ours_cpu:.2f} (median) -> "
                  f"{ref_cpu / ours_cpu:.1f}x; ours wall runs: {', '.join(f'{s:.3f}' for s, _, _ in runs)} s "
                  f"(best {min(s for s, _, _ in runs):.3f} s -> {ref_s / min(s for s, _, _ in runs):.1f}x)")
            print(f"  semantics: reference {check_semantics(ref_path, isl, osl, REQUESTS)}, "
                  f"ours {check_semantics(our_path, isl, osl, REQUESTS)}")
            if name == "summarization" and ratio < RATIO_TARGET:
                failures.append(f"summarization ratio {ratio:.1f}x < {RATIO_TARGET:.0f}x")
            if not args.skip_validate:
                v_ref, v_ref_mb = measure("validate-reference", path=str(our_path), isl=isl, osl=osl, n=REQUESTS)
                v_ours, v_ours_mb = measure("validate-ours", path=str(our_path), isl=isl, osl=osl, n=REQUESTS)
                print(row(f"  validate {name}", f"{v_ref:.2f}", f"{v_ours:.3f}", f"{v_ref / v_ours:.1f}x",
                          f"{v_ref_mb:.0f}", f"{v_ours_mb:.0f}", ""))
            if not args.keep:
                ref_path.unlink(missing_ok=True)
                for path in work.glob(f"ours_{name}.jsonl*"):
                    path.unlink()
        if not args.skip_scale:
            n, (isl, osl) = args.scale_requests, CASES["summarization"]
            path = work / "ours_scale.jsonl"
            seconds, _, peak = whole_ours(path, isl, osl, n)
            print(f"scale: ours {n}x{isl}/{osl}: {seconds:.2f} s, peak {peak:.0f} MB "
                  f"(target < {MEMORY_TARGET_MB:.0f} MB), {path.stat().st_size / 1e9:.2f} GB written")
            if peak >= MEMORY_TARGET_MB:
                failures.append(f"peak {peak:.0f} MB at {n} requests >= {MEMORY_TARGET_MB:.0f} MB")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print("targets: " + ("met" if not failures else "MISSED: " + "; ".join(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
