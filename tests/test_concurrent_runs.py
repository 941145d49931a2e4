"""Fault test for concurrent runs (issue 16): processes appending to one results table at
once keep every row; a trainer on a workdir that another process holds is refused."""

import multiprocessing as mp
import os
import subprocess
import sys
from pathlib import Path

from waits import HANG_S

from lcasr_jax.eval import report

REPO = Path(__file__).resolve().parents[1]
ROWS = 40


def _append_many(table: str, writer: int, start) -> None:
    start.wait()
    for i in range(ROWS):
        row = {c: "" for c in report.COLUMNS}
        report.append_table(Path(table), [row | {"dataset": f"w{writer}", "recording": str(i),
                                                 "wer": 0.5}])


def test_two_processes_appending_keep_all_rows(tmp_path):
    table = tmp_path / "results.csv"
    ctx = mp.get_context("spawn")  # fresh interpreters, as two `eval` commands would be
    start = ctx.Event()
    procs = [ctx.Process(target=_append_many, args=(str(table), w, start)) for w in range(2)]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(timeout=HANG_S)
        assert p.exitcode == 0
    rows = report.read_table(report.recordings_table(table))  # per-recording rows go there
    got = sorted((r["dataset"], int(r["recording"])) for r in rows)
    assert got == sorted((f"w{w}", i) for w in range(2) for i in range(ROWS))
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_trainer_on_a_busy_workdir_is_refused_and_touches_nothing(tmp_path):
    workdir = tmp_path / "w"
    # Another process holds the workdir as a trainer does, until its stdin is closed (not
    # for some seconds, which a slow machine could outlast).
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from lcasr_jax.files import hold_lock; "
         f"f = hold_lock({str(workdir / 'train.lock')!r}, 'w'); print('held', flush=True); "
         "sys.stdin.read()"], cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        done = subprocess.run([sys.executable, "-m", "lcasr_jax.cli", "train",
                               f"--config={REPO / 'experiments' / 'tiny.py'}",
                               f"--workdir={workdir}"], cwd=REPO, capture_output=True,
                              text=True, timeout=HANG_S,
                              env=dict(os.environ, JAX_PLATFORMS="cpu"))
    finally:
        holder.stdin.close()
        holder.wait(timeout=HANG_S)
    err = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 1 and len(err) == 1, done.stderr
    assert f"PID {holder.pid}" in err[0] and str(workdir) in err[0]
    assert sorted(p.name for p in workdir.iterdir()) == ["train.lock"]
