"""Bad-input catalogue (issue 16), training: a run Ctrl-C'd and resumed, a second trainer
refused, config fields out of range named, an epoch that ends when every chunk was trained."""

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from catalogue import REPO, fails, noise, run
from compile_cache import persistent_cache
from waits import HANG_S


def _tiny_config(corpus: Path):
    from ml_collections import config_flags  # noqa: F401 - the config file's loader needs it

    spec = __import__("importlib.util").util.spec_from_file_location(
        "tiny", REPO / "experiments" / "tiny.py")
    module = __import__("importlib.util").util.module_from_spec(spec)
    spec.loader.exec_module(module)
    cfg = module.get_config()
    cfg.model.n_layers = 1
    cfg.data.update(kind="recordings", path=str(corpus))
    cfg.train.update(max_steps=-1, max_epochs=1)
    cfg.sequence.update(batch_size=8, increase_every=10**6)
    cfg.log.update(tensorboard=False, sample_every_steps=0, progress=False)
    cfg.checkpoint.update(export_dtype="", every_steps=1000)
    return cfg


def _corpus(root: Path, seconds) -> Path:
    from lcasr_jax.data.alignments import Recording, Words, write_recording

    for i, sec in enumerate(seconds):
        audio = noise(root / "train" / f"r{i}.flac", sec)
        st = np.arange(0.2, sec - 0.5, 0.6)
        words = Words(tuple(f"hello{j}" for j in range(len(st))), st, st + 0.3)
        write_recording(root / "train" / f"r{i}.json", Recording(f"r{i}", audio, words))
    return root


def _steps_in_one_epoch(cfg) -> int:
    """Independent count: batches a one-epoch loader yields (every chunk of every recording)."""
    from lcasr_jax.data.loader import Loader
    from lcasr_jax.data.sources.recordings import RecordingsSource

    src = RecordingsSource.from_dir(cfg.data.path, "train")
    loader = Loader(src, cfg.sequence.length, cfg.sequence.batch_size, seed=cfg.seed,
                    num_epochs=1, process_index=0, process_count=1)
    return sum(1 for _ in loader)


class _InterruptAt:
    """A batch source that, at batch `at`, runs a second trainer on the same workdir (it
    must be refused) and then sends the main thread SIGINT (Ctrl-C): delivered to that
    thread, its handler runs before the batch is returned, whatever the machine's load."""

    def __init__(self, source, at: int, workdir: Path):
        self.source, self.at, self.workdir, self.n = source, at, workdir, 0
        self.second = None

    def next_batch(self, frames, batch_size):
        self.n += 1
        if self.n == self.at:
            self.second = subprocess.run(
                [sys.executable, "-m", "lcasr_jax.cli", "train",
                 f"--config={REPO / 'experiments' / 'tiny.py'}", f"--workdir={self.workdir}"],
                cwd=REPO, capture_output=True, text=True, timeout=HANG_S,
                env=dict(os.environ, JAX_PLATFORMS="cpu"))
            signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)
        return self.source.next_batch(frames, batch_size)

    def __getattr__(self, name):
        return getattr(self.source, name)


def _interrupt_at_call(fn, at: int):
    """`fn` that sends the main thread SIGINT at its `at`-th call (handled on return of
    pthread_kill, before `fn` runs)."""
    calls = []

    def wrapped(*args, **kwargs):
        calls.append(1)
        if len(calls) == at:
            signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)
        return fn(*args, **kwargs)
    return wrapped


@pytest.fixture(scope="module")
def training(tmp_path_factory):
    """One recordings corpus (6 recordings, 9 steps an epoch at batch 8): a run that is
    Ctrl-C'd at step 3 (with a second trainer tried meanwhile), resumed and Ctrl-C'd at step
    5 (during the step, after its batch was read), then resumed to the end."""
    from lcasr_jax.train import loop

    root = tmp_path_factory.mktemp("train")
    cfg = _tiny_config(_corpus(root / "corpus", [14.0, 9.0, 22.0, 6.5, 17.0, 11.0]))
    workdir = root / "workdir"
    real, real_put = loop.make_source, loop.put_batch
    box = {}
    # A suite started in the background (`make test &`) inherits SIGINT ignored, and the
    # trainer rightly keeps an ignored SIGINT ignored: give this process Ctrl-C back.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    cache = contextlib.ExitStack()  # the resumed runs load the first run's programs
    cache.enter_context(persistent_cache(root / "jax_cache"))
    try:
        loop.make_source = lambda c: box.setdefault("src", _InterruptAt(real(c), 3, workdir))
        said = io.StringIO()
        with pytest.raises(KeyboardInterrupt), contextlib.redirect_stdout(said), \
                contextlib.redirect_stderr(said):
            loop.train(cfg, workdir)
        loop.make_source = real
        interrupted = sorted(p.name for p in (workdir / "checkpoints").iterdir())
        # resumed at 3, Ctrl-C while step 5 is handed to the devices (its batch read): no
        # step 6 starts
        loop.put_batch = _interrupt_at_call(real_put, 2)
        with pytest.raises(KeyboardInterrupt), contextlib.redirect_stdout(said), \
                contextlib.redirect_stderr(said):
            loop.train(cfg, workdir)
        loop.put_batch = real_put
        interrupted_again = sorted(p.name for p in (workdir / "checkpoints").iterdir())
        summary = loop.train(cfg, workdir)
    finally:
        loop.make_source, loop.put_batch = real, real_put
        signal.signal(signal.SIGINT, previous)
        cache.close()
    return {"cfg": cfg, "workdir": workdir, "second": box["src"].second, "summary": summary,
            "said": said.getvalue(),
            "interrupted": interrupted, "interrupted_again": interrupted_again,
            "expected_steps": _steps_in_one_epoch(cfg)}


def test_07_recordings_epoch_ends_when_every_chunk_was_trained(training):
    assert training["expected_steps"] >= 6  # the corpus is several batches long
    assert training["summary"]["step"] == training["expected_steps"]
    assert training["summary"]["stopped"] == "max_epochs"


def test_07_one_recording_corpus_epoch_is_all_its_chunks():
    """The source counts an epoch done only after the recording's last chunk (1000 frames
    in chunks of 256: 4 batches), not when the recording has started (the first batch)."""
    from lcasr_jax.data.sources.chunked import ChunkedSource

    rng = np.random.default_rng(0)
    example = {"features": rng.standard_normal((1000, 80)).astype(np.float16),
               "num_frames": 1000, "word_start": np.array([0.5, 5.0]),
               "word_end": np.array([0.8, 5.5]), "token_offsets": np.array([0, 1, 2]),
               "token_ids": np.array([5, 6], np.int32)}
    for rows, epochs in ((1, 1), (8, 8)):  # 8 rows: every row walks its own epoch
        source = ChunkedSource([example], seed=0)
        done = [source.next_batch(256, rows)[1]["epochs_done"] for _ in range(4)]
        assert done == [0, 0, 0, epochs]


def test_06_second_trainer_on_a_busy_workdir_is_refused(training):
    second = training["second"]
    err = [line for line in second.stderr.splitlines() if line.strip()]
    assert second.returncode != 0 and 1 <= len(err) <= 3, second.stderr
    assert f"PID {os.getpid()}" in err[-1] and str(training["workdir"]) in err[-1]


def test_11_sigint_checkpoints_and_says_how_to_resume(training, capsys):
    # Ctrl-C comes while batch 3 is read (its handler has run when pthread_kill returns, in
    # the loader call, so no timing is involved): step 3 is the step in flight, it finishes
    # and nothing after it starts; the checkpoint named is the one on disk.
    assert training["interrupted"] == ["3"]
    assert training["interrupted_again"] == ["3", "5"]  # keep=2
    assert training["said"].count("SIGINT: stopping after this step") == 2
    for step in ("3", "5"):
        assert (f"checkpoint of step {step} saved in {training['workdir'] / 'checkpoints'}; "
                "run the same command again to resume") in training["said"]
    lines = (training["workdir"] / "metrics.jsonl").read_text().splitlines()
    steps = [json.loads(line)["step"] for line in lines]
    assert steps == list(range(1, training["expected_steps"] + 1))  # nothing twice, no gap


def test_09_resume_with_changed_config_names_the_fields(training, capsys):
    from lcasr_jax.train import loop

    cfg = training["cfg"].copy_and_resolve_references()
    cfg.model.n_layers = 2
    cfg.optim.lr = 1e-2
    with pytest.raises(ValueError) as e:
        loop.train(cfg, training["workdir"])
    msg = str(e.value)
    assert "\n" not in msg and "model.n_layers: 1 -> 2" in msg and "optim.lr: 0.003 -> 0.01" in msg
    assert "another --workdir" in msg and "torn" not in capsys.readouterr().out


def _train_cli(tmp_path, capsys, *args):
    """(exit code, stdout, stderr lines) of `lcasr-jax train` on tiny.py, in-process (the
    command run as a process: the second trainer of `training`)."""
    return run(["train", f"--config={REPO / 'experiments' / 'tiny.py'}",
                f"--workdir={tmp_path / 'w'}", *args], capsys)


@pytest.mark.parametrize("arg, needle", [
    ("--config.sequence.batch_size=0", "config.sequence.batch_size must be an integer >= 1 "
                                       "(got 0)"),
    ("--config.optim.lr=-0.001", "config.optim.lr must be a finite number > 0 (got -0.001)"),
    ("--config.model.n_heads=0", "config.model.n_heads must be an integer >= 1 (got 0)"),
    # choices read from the backend tables themselves (kernels/attention, kernels/ctc)
    ("--config.train.attention_impl=flash", "config.train.attention_impl must be one of "
                                            "'auto', 'xla', 'cudnn', 'pallas_gpu', 'splash'"),
    ("--config.train.ctc_impl=pallas_interpret", "config.train.ctc_impl must be one of 'auto', "
                                                 "'xla', 'pallas_gpu', 'optax'"),
])
def test_11_12_train_config_out_of_range(tmp_path, capsys, arg, needle):
    code, _, err = _train_cli(tmp_path, capsys, arg)
    assert code != 0 and 1 <= len(err) <= 3 and needle in err[-1], err
    assert "Traceback" not in "\n".join(err)
    assert not (tmp_path / "w" / "checkpoints").exists()


@pytest.mark.parametrize("arg, needle", [("--help", "--workdir"),
                                         ("--config.train.bogus=1", "bogus")])
def test_12_train_help_and_unknown_field(tmp_path, capsys, arg, needle):
    code, out, err = _train_cli(tmp_path, capsys, arg)
    if arg == "--help":
        assert code == 0 and needle in out, err
        return
    assert code != 0 and 1 <= len(err) <= 3, err
    assert "Traceback" not in "\n".join(err)
    assert needle in err[-1] and "unknown" in err[-1].lower(), err


def test_12_released_config_missing_n_heads_names_the_field(released, tmp_path, capsys):
    import torch
    from omegaconf import OmegaConf

    ckpt = torch.load(released, weights_only=False)
    cfg = OmegaConf.to_container(ckpt["config"])
    assert cfg["model"].pop("n_heads") != 6  # the original's default, which then applies
    ckpt["config"] = OmegaConf.create(cfg)
    torch.save(ckpt, tmp_path / "c.pt")
    fails(["convert", tmp_path / "c.pt", tmp_path / "m"], capsys, tmp_path / "c.pt",
          "qkv_proj.weight", "n_heads=6")
    assert not (tmp_path / "m").exists()


# ------------------------------------------------------------ issue 24
@pytest.mark.parametrize("value", ["-5", "0", "nan", "inf"])
def test_12_time_limit_out_of_range_is_refused(tmp_path, capsys, value):
    from lcasr_jax.train import cli as train_cli

    code = train_cli.main([f"--config={REPO / 'experiments' / 'tiny.py'}",
                           f"--workdir={tmp_path / 'w'}", f"--time-limit-s={value}"])
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 2 and len(err) == 1, err
    assert f"--time-limit-s must be a finite number > 0 (got {float(value)})" in err[0], err
    assert not (tmp_path / "w").exists()


def test_12_config_time_limit_nan_is_refused():
    from lcasr_jax.train.config import base_config
    from lcasr_jax.train.config import check as check_config

    cfg = base_config()
    cfg.train.time_limit_s = float("nan")
    with pytest.raises(ValueError, match=r"config.train.time_limit_s must be -1 or a finite "):
        check_config(cfg)


def test_15_checkpoint_on_a_full_disk_is_one_line_before_orbax_writes(tmp_path, monkeypatch):
    import collections
    import shutil

    import jax.numpy as jnp

    from lcasr_jax.train.resume import Checkpointer

    ckpt = Checkpointer(tmp_path, keep=2, async_save=True)
    state = {"w": jnp.ones((256, 256)), "step": jnp.asarray(3)}
    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**9, 10**9, 4096))
    with pytest.raises(OSError) as e:
        ckpt.save(3, state, {"step": 3})
    ckpt.close()
    msg = str(e.value)
    assert "\n" not in msg and str(tmp_path / "checkpoints") in msg, msg
    assert "4,096 bytes free" in msg and "the checkpoint of step 3 needs about" in msg, msg
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == []


def test_11_metrics_after_the_resumed_checkpoint_are_dropped(tmp_path):
    """metrics.jsonl as a run killed at step 5 leaves it (checkpoint of step 4; a line torn
    by the kill): resuming from step 4 keeps steps 1-4 only, so each step is logged once."""
    from lcasr_jax.train import loop

    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(json.dumps({"step": s, "loss": 1.0 / s}) + "\n"
                            for s in range(1, 6)) + '{"step": 6, "lo')
    loop._drop_after(path, 4)
    assert [json.loads(line)["step"] for line in path.read_text().splitlines()] == [1, 2, 3, 4]
