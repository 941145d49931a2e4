"""End-to-end loop on CPU: loss falls, SIGKILL + resume is bit-identical, torn checkpoints
are skipped with a message."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

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


def _cmd(workdir: Path) -> list[str]:
    return [sys.executable, "-m", "lcasr_jax.cli", "train",
            f"--config={REPO / 'experiments' / 'tiny.py'}", f"--workdir={workdir}", *ARGS]


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
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    ref = _losses(ref_dir)
    assert sorted(ref) == list(range(1, STEPS + 1))
    first, last = ref[1][0], np.mean([ref[s][0] for s in range(STEPS - 2, STEPS + 1)])
    assert last < 0.8 * first, (first, last)  # loss falls on the tiny synthetic task

    proc = subprocess.Popen(_cmd(run_dir), env=_env(cache), cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while time.time() < deadline and not _finalized(run_dir):  # kill after a complete save
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = max(_losses(run_dir), default=0)
    assert 2 <= killed_at < STEPS, f"kill landed at step {killed_at}"

    resumed = subprocess.run(_cmd(run_dir), env=_env(cache), cwd=REPO, capture_output=True,
                             text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resumed from" in resumed.stdout
    got = _losses(run_dir)
    assert sorted(got) == list(range(1, STEPS + 1))
    for step, values in got.items():  # every (re)computation of a step agrees bit for bit
        assert all(v == ref[step][0] for v in values), (step, values, ref[step])

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
