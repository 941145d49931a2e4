"""`lcasr-jax eval` as a real two-process jax.distributed run on CPU (4 devices each, gloo
collectives): the same results as one process, and only process 0 writes files."""

import json
import os
import socket
import subprocess
import sys

import pytest
from waits import HANG_S

from lcasr_jax.eval import cli

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKER = """
import sys
import jax
patience = int(sys.argv[3])  # tests/waits.py: peers may start and stop far apart under load
jax.distributed.initialize(sys.argv[1], 2, int(sys.argv[2]), initialization_timeout=patience,
                           shutdown_timeout_seconds=patience)
from lcasr_jax.eval import cli
sys.exit(cli.main(sys.argv[4:]))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_match_one_and_only_process_0_writes(tmp_path, parity_dir, synth_dir):
    data = synth_dir(tmp_path / "data", (383 * 0.01, 255 * 0.01, 191 * 0.01))
    argv = ["--checkpoint", str(parity_dir / "rotary_ln" / "checkpoint.pt"), "--dataset",
            "synth", "--data-dir", str(data), "--seq-len", "128", "--overlap-ratio", "0.5",
            "--name", "fixture", "--quiet"]
    assert cli.main(argv + ["--out", str(tmp_path / "one")]) == 0

    env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": os.pathsep.join(
        [REPO, os.environ.get("PYTHONPATH", "")]),
        "XLA_FLAGS": "--xla_force_host_platform_device_count=4"}
    env.pop("JAX_COORDINATOR_ADDRESS", None)
    address = f"localhost:{_free_port()}"
    procs = [subprocess.Popen(
        [sys.executable, "-c", WORKER, address, str(p), str(HANG_S), *argv, "--out",
         str(tmp_path / f"p{p}")],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for p in (0, 1)]
    outs = [p.communicate(timeout=HANG_S) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err[-3000:]
    assert "WER " in outs[0][0] and "WER " not in outs[1][0]  # (gloo logs to stdout)
    assert not (tmp_path / "p1").exists()
    def outputs(d):  # the results table's lock file (eval.report) is not an output
        return sorted(f for f in d.iterdir() if f.suffix != ".lock")

    one, two = outputs(tmp_path / "one"), outputs(tmp_path / "p0")
    assert [f.name for f in one] == [f.name for f in two] and len(one) == 5  # the run's csv,
    # its per-recording csv and json; the table and its per-recording table
    for a, b in zip(one, two, strict=True):
        if a.suffix == ".csv":
            assert a.read_text() == b.read_text()
        else:  # transcripts in recording order (wall time differs)
            assert json.loads(a.read_text())["recordings"] == json.loads(b.read_text())[
                "recordings"]
