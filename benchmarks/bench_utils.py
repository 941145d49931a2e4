"""Timing, memory, environment header, table and model-size helpers for the benchmarks."""

from __future__ import annotations

import datetime
import statistics
import time

import jax


def header() -> str:
    dev = jax.devices()[0]
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"device: {dev.device_kind} ({dev.platform}); jax {jax.__version__}; {now}"


def time_ms(fn, *args, warmup: int = 2, reps: int = 10) -> float:
    """Median wall time of fn(*args) in ms, synchronising on the result each call."""
    for _ in range(warmup):
        jax.block_until_ready(fn(*args))
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def temp_bytes(jitted, *args) -> int | None:
    """XLA's temporary-buffer size of the compiled function (peak scratch), if reported."""
    try:
        analysis = jitted.lower(*args).compile().memory_analysis()
        return int(analysis.temp_size_in_bytes)
    except Exception:  # noqa: BLE001 - not every backend reports it
        return None


def table(rows: list[dict], columns: list[str]) -> str:
    """Markdown table of `rows` (dicts) with the given column order."""
    fmt = lambda v: f"{v:.3g}" if isinstance(v, float) else str(v)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(fmt(row.get(c, "")) for c in columns) + " |")
    return "\n".join(lines)


def bench_config(small: bool):
    """The paper's 6L-768D model config, or (`small`) a tiny one for CPU smoke runs."""
    from lcasr_jax.model import ModelConfig

    if small:
        return ModelConfig(n_layers=2, d_model=64, n_heads=2, head_dim=32,
                           subsampling_conv_channels=16)
    return ModelConfig()
