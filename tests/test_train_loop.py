"""End-to-end loop on CPU: loss falls, SIGKILL + resume is bit-identical and logs each step
once, torn checkpoints are skipped with a message."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from waits import HANG_S

from lcasr_jax.train.resume import Checkpointer

REPO = Path(__file__).resolve().parents[1]
STEPS = 10
ARGS = [f"--config.train.max_steps={STEPS}", "--config.checkpoint.every_steps=2",
        "--config.checkpoint.async_save=True", "--config.log.sample_every_steps=0",
        # one layer (a third less compilation) at a higher lr still learns in 10 steps
        "--config.model.n_layers=1", "--config.optim.lr=1e-2"]


def _env(cache: Path) -> dict[str, str]:
    return dict(os.environ, JAX_PLATFORMS="cpu",
                XLA_FLAGS="--xla_force_host_platform_device_count=1",
                JAX_COMPILATION_CACHE_DIR=str(cache),  # the resumed run reuses compilations
                JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
                JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")


KILL_STEP = 5  # between the checkpoints of steps 4 and 6
# `lcasr-jax train` that SIGKILLs itself once step KILL_STEP is logged and the checkpoint
# of step 4 is complete: killed at the same point on any machine, however loaded.
KILLED_AT_STEP = f"""
import os, signal, sys
from lcasr_jax import cli
from lcasr_jax.train import loop
from lcasr_jax.train.resume import Checkpointer
made, init, scalars = [], Checkpointer.__init__, loop._Log.scalars
def remember(self, *args, **kwargs):
    init(self, *args, **kwargs)
    made.append(self)
def scalars_then_die(self, step, values, bar=True):
    scalars(self, step, values, bar)
    if step == {KILL_STEP}:
        made[-1].wait()
        os.kill(os.getpid(), signal.SIGKILL)
Checkpointer.__init__, loop._Log.scalars = remember, scalars_then_die
sys.exit(cli.main(sys.argv[1:]))
"""


def _cmd(workdir: Path, killed: bool = False) -> list[str]:
    start = ["-c", KILLED_AT_STEP] if killed else ["-m", "lcasr_jax.cli"]
    return [sys.executable, *start, "train", f"--config={REPO / 'experiments' / 'tiny.py'}",
            f"--workdir={workdir}", *ARGS]


def _losses(workdir: Path) -> dict[int, list[float]]:
    out: dict[int, list[float]] = {}
    path = workdir / "metrics.jsonl"
    if path.exists():
        for line in path.read_text().splitlines():
            if line.strip():
                rec = json.loads(line)
                out.setdefault(rec["step"], []).append(rec["loss"])
    return out


def _finalized(workdir: Path) -> list[str]:
    ckpts = workdir / "checkpoints"
    return [p.name for p in ckpts.iterdir() if p.name.isdigit()] if ckpts.exists() else []


def test_kill_and_resume_is_bit_identical_and_loss_falls(tmp_path):
    cache = tmp_path / "jax_cache"
    ref_dir, run_dir = tmp_path / "ref", tmp_path / "run"
    done = subprocess.run(_cmd(ref_dir), env=_env(cache), cwd=REPO, capture_output=True,
                          text=True, timeout=HANG_S)
    assert done.returncode == 0, done.stderr[-3000:]
    ref = _losses(ref_dir)
    assert sorted(ref) == list(range(1, STEPS + 1))
    first, last = ref[1][0], np.mean([ref[s][0] for s in range(STEPS - 2, STEPS + 1)])
    assert last < 0.8 * first, (first, last)  # loss falls on the tiny synthetic task

    killed = subprocess.run(_cmd(run_dir, killed=True), env=_env(cache), cwd=REPO,
                            capture_output=True, text=True, timeout=HANG_S)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    assert max(_losses(run_dir)) == KILL_STEP and sorted(_finalized(run_dir)) == ["2", "4"]

    resumed = subprocess.run(_cmd(run_dir), env=_env(cache), cwd=REPO, capture_output=True,
                             text=True, timeout=HANG_S)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resumed from {run_dir / 'checkpoints' / '4'}" in resumed.stdout
    got = _losses(run_dir)  # step 5, logged before the kill, is logged once (issue 24 case 11)
    assert {step: len(values) for step, values in got.items()} == dict.fromkeys(
        range(1, STEPS + 1), 1)
    for step, values in got.items():  # the resumed run's steps equal the reference bit for bit
        assert values == ref[step], (step, values, ref[step])

    # the exported model dir holds the final weights of the resumed run (as the reference)
    from lcasr_jax.checkpoints.store import load_model_dir

    (cfg_a, var_a), (cfg_b, var_b) = load_model_dir(ref_dir / "model"), load_model_dir(
        run_dir / "model")
    assert cfg_a == cfg_b and cfg_a.n_layers == 1
    for a, b in zip(jax.tree.leaves(var_a), jax.tree.leaves(var_b), strict=True):
        np.testing.assert_array_equal(a, b)


def test_torn_checkpoint_is_skipped_with_a_message(tmp_path, capsys):
    state = {"w": jnp.arange(6.0).reshape(2, 3), "n": jnp.asarray(3, jnp.int32)}
    ckpt = Checkpointer(tmp_path, keep=3, async_save=False)
    for step in (1, 2):
        ckpt.save(step, jax.tree.map(lambda x, s=step: x * s, state), {"step": step})
    ckpt.wait()
    ckpt.close()
    # tear step 2: remove its array data; leave an unfinished orbax temporary directory
    for f in (tmp_path / "checkpoints" / "2" / "state").rglob("*"):
        if f.is_file() and "metadata" not in f.name:
            f.unlink()
    (tmp_path / "checkpoints" / "3.orbax-checkpoint-tmp-1234").mkdir()
    abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), state)
    step, restored, meta = Checkpointer(tmp_path).restore_latest(abstract)
    out = capsys.readouterr().out
    assert step == 1 and meta == {"step": 1}
    np.testing.assert_array_equal(restored["w"], np.arange(6.0).reshape(2, 3))
    assert "skipping" in out and "/2" in out and "torn or partial" in out
    assert "incomplete save" in out and "3.orbax-checkpoint-tmp" in out
    # a workdir whose checkpoints all fail (here: another state layout) is refused
    other = {"v": jax.ShapeDtypeStruct((5,), jnp.float32)}
    with pytest.raises(ValueError, match="no checkpoint could be restored"):
        Checkpointer(tmp_path).restore_latest(other)


def test_cli_rejects_bad_arguments_in_one_line(capsys, tmp_path):
    from lcasr_jax.train.cli import main

    tiny = str(REPO / "experiments" / "tiny.py")
    cases = [[f"--config={tmp_path / 'missing.py'}", f"--workdir={tmp_path}"],
             [f"--config={tiny}", f"--workdir={tmp_path}", "--config.optim.lrr=1"],
             [f"--config={tiny}", f"--workdir={tmp_path}", "--config.optim.lr=abc"],
             [f"--config={tiny}"]]
    for argv in cases:
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("lcasr-jax train:") and "\n" not in err, err
