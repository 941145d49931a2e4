"""Where the time goes: device time of the jitted train step and eval forward by op class.

Runs each case (model_step.py's CASE syntax, e.g. step@360000x1+saveattn, fwd@360000x1)
under `jax.profiler.trace` (perfetto JSON), sums the device's kernel events per op class and
prints a table per case: ms per run, share, and the largest ops. A kernel is classed by the
HLO instruction it comes from (the compiled module's text: cuDNN/cuBLAS/Triton custom calls,
Pallas kernels by name, fusions by what they contain), else by its kernel name.

  PYTHONPATH=. python3 benchmarks/profile_step.py --cases step@360000x1+saveattn,fwd@360000x1
"""

from __future__ import annotations

import argparse
import collections
import glob
import gzip
import json
import re
import sys
import tempfile
import time
from pathlib import Path

import jax

sys.path.insert(0, str(Path(__file__).resolve().parent))

# (class, pattern over an instruction's text or a kernel's name), first match wins.
CLASSES = [
    ("attention (cuDNN)", r"cudnn\$fmha|fmha|flash_fprop|flash_bprop|cudnn_sdpa"),
    ("attention (Pallas)", r"lcasr_flash|splash"),
    ("ctc (Pallas)", r"lcasr_ctc"),
    ("matmul", r"cublas|gemm|cutlass|xmma|sm90_|dot\(|dot_general|matmul"),
    ("convolution", r"convolution|conv_|cudnn\$conv"),
    ("reduction", r"reduce|argmax|softmax"),
    ("transpose/copy", r"transpose|copy|memcpy|memset|dynamic-update-slice|concatenate"),
    ("loop control", r"while|condition|conditional"),
    ("elementwise fusion", r"fusion|loop_|input_|wrapped_"),
]


def classify(text: str) -> str:
    for name, pattern in CLASSES:
        if re.search(pattern, text, re.IGNORECASE):
            return name
    return "other"


def instruction_texts(hlo: str) -> dict[str, str]:
    """HLO instruction name -> its text plus the text of the computation it calls (so a
    fusion is classed by what it fuses)."""
    computations: dict[str, str] = {}
    current, body = None, []
    for line in hlo.splitlines():
        head = re.match(r"^(?:ENTRY )?%?([\w.\-]+) .*\{$", line)
        if head:
            current, body = head.group(1), []
        elif line.startswith("}") and current:
            computations[current] = "\n".join(body)
            current = None
        elif current:
            body.append(line)
    out = {}
    for text in computations.values():
        for line in text.splitlines():
            line = re.sub(r",? metadata=\{[^}]*\}", "", line)  # op names would mislead
            m = re.match(r"\s*(?:ROOT )?%?([\w.\-]+) = ", line)
            if not m:
                continue
            called = re.findall(r"calls=%?([\w.\-]+)", line)
            out[m.group(1)] = line + "\n" + "\n".join(computations.get(c, "") for c in called)
    return out


def device_events(trace_dir: str) -> list[dict]:
    """Kernel events ('X') on the device's stream threads of the perfetto trace."""
    files = glob.glob(f"{trace_dir}/**/perfetto_trace.json.gz", recursive=True)
    if not files:
        return []
    with gzip.open(files[0]) as f:
        data = json.load(f)
    events = data["traceEvents"] if isinstance(data, dict) else data
    pids = {e["pid"]: e["args"]["name"] for e in events
            if e.get("ph") == "M" and e.get("name") == "process_name"}
    tids = {(e["pid"], e.get("tid")): e["args"]["name"] for e in events
            if e.get("ph") == "M" and e.get("name") == "thread_name"}
    device = {p for p, n in pids.items() if "/device:" in n}
    stream = [e for e in events if e.get("ph") == "X" and e["pid"] in device
              and tids.get((e["pid"], e.get("tid")), "").lower().startswith("stream")]
    if stream:
        return stream
    return [e for e in events if e.get("ph") == "X" and e["pid"] in device
            and "ops" in tids.get((e["pid"], e.get("tid")), "").lower()]


def breakdown(events: list[dict], texts: dict[str, str], runs: int):
    """{class: [ms per run, Counter(op -> ms per run)]}."""
    table: dict[str, list] = collections.defaultdict(lambda: [0.0, collections.Counter()])
    for e in events:
        args = e.get("args", {})
        op = args.get("hlo_op") or args.get("name") or e["name"]
        key = op if op in texts else re.sub(r"\.\d+$", "", op)
        cls = classify(texts.get(op) or texts.get(key) or e["name"])
        ms = e.get("dur", 0) / 1e3 / runs
        table[cls][0] += ms
        table[cls][1][op] += ms
    return table


def profile_case(case: str, runs: int, top: int, lock: str = "") -> None:
    from model_step import device_turn, prepare_case

    once, state, compiled = prepare_case(case)
    texts = instruction_texts(compiled.as_text())
    with tempfile.TemporaryDirectory() as tmp:
        with device_turn(lock):
            state = once(state)[0]  # warm-up
            t0 = time.perf_counter()
            with jax.profiler.trace(tmp, create_perfetto_trace=True):
                for _ in range(runs):
                    state = once(state)[0]
            wall = (time.perf_counter() - t0) / runs
        events = device_events(tmp)
    table = breakdown(events, texts, runs)
    total = sum(v[0] for v in table.values())
    print(f"\n## {case}: {wall * 1e3:.1f} ms per run wall (profiled), device kernels "
          f"{total:.1f} ms, {len(events) // max(runs, 1)} kernels per run")
    if not events:
        print("(no device kernel events in the trace: no GPU, or no CUPTI)")
        classes = collections.Counter(classify(t) for t in texts.values())
        print("| class | HLO instructions |\n|---|---|")
        for cls, n in classes.most_common():
            print(f"| {cls} | {n} |")
        return
    print("| class | ms/run | share | largest ops (ms) |\n|---|---|---|---|")
    for cls, (ms, ops) in sorted(table.items(), key=lambda kv: -kv[1][0]):
        largest = ", ".join(f"{op[:40]} {t:.1f}" for op, t in ops.most_common(top))
        print(f"| {cls} | {ms:.2f} | {ms / total:.1%} | {largest} |", flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", default="step@360000x1+saveattn,fwd@360000x1")
    p.add_argument("--runs", type=int, default=2, help="profiled runs per case")
    p.add_argument("--top", type=int, default=3, help="largest ops listed per class")
    p.add_argument("--lock", default="", help="run holding this file's lock (model_step.py)")
    args = p.parse_args(argv)
    dev = jax.devices()[0]
    print(f"# profile | {dev.device_kind} | jax {jax.__version__} | "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", flush=True)
    for case in args.cases.split(","):
        try:
            profile_case(case, args.runs, args.top, args.lock)
        except Exception as e:  # noqa: BLE001 - report and go on to the next case
            print(f"\n## {case}: {type(e).__name__}: {str(e).splitlines()[0][:300]}")
        jax.clear_caches()
    return 0


if __name__ == "__main__":
    sys.exit(main())
