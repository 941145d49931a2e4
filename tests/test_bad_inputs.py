"""Bad-input catalogue (issue 16): each case runs the real command and checks the exit code,
an error of at most three lines naming the file or field, and that nothing was half-written
or lost. Models: the tiny random-weight parity fixture (converted once per module). The
training cases: test_bad_inputs_training.py; issue 24's: test_bad_inputs_*.py."""

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from catalogue import REPO, eval_argv, fails, manifest, noise, run
from waits import HANG_S


# ------------------------------------------------------------ 1. lost output
def test_01_transcribe_same_stem_keeps_both(tmp_path, released, capsys):
    a, b = noise(tmp_path / "a" / "take.wav"), noise(tmp_path / "b" / "take.wav", 3.0)
    c = noise(tmp_path / "a" / "take.flac", 2.5)
    code, _, err = run(["transcribe", a, b, c, "--checkpoint", released, "--format", "json",
                        "--out-dir", tmp_path / "O", "--seq-len", "128", "--quiet"], capsys)
    assert code == 0, err
    docs = {p.name: json.loads(p.read_text())["audio"] for p in (tmp_path / "O").iterdir()}
    assert docs == {"a__take.wav.json": str(a), "b__take.wav.json": str(b),
                    "a__take.flac.json": str(c)}


def test_01_eval_two_manifests_into_one_out_keeps_both(tmp_path, released, capsys):
    one = manifest(tmp_path / "one", [{"audio": "x.wav", "text": "good morning"}])
    two = manifest(tmp_path / "two", [{"audio": "y.wav", "text": "good evening"}])
    out = tmp_path / "out"
    for data in (one, two):
        code, _, err = run(eval_argv(released, data, out, "--name", "m"), capsys)
        assert code == 0, err
    refs = sorted(json.loads(p.read_text())["recordings"][0]["reference"]
                  for p in out.glob("*.json"))
    assert refs == ["good evening", "good morning"] and len(list(out.glob("*.csv"))) == 6
    table = (out / "results.csv").read_text().splitlines()
    assert len(table) == 1 + 2  # header + the 'all' row of each run
    assert len((out / "results_recordings.csv").read_text().splitlines()) == 1 + 2


# ------------------------------------------------------------ 2, 4, 12. option ranges
@pytest.mark.parametrize("extra, needle", [
    (["--limit", "-1"], "--limit must be an integer >= 1 (got -1)"),
    (["--limit", "0"], "--limit must be an integer >= 1 (got 0)"),
    (["--batch-size", "0"], "--batch-size must be an integer >= 1 (got 0)"),
    (["--seq-len", "5"], "--seq-len must be >= 8 frames"),
    (["--overlap-ratio", "1.5"], "--overlap-ratio must be a number in [0, 1)"),
])
def test_02_04_12_eval_option_out_of_range(tmp_path, released, capsys, extra, needle):
    data = manifest(tmp_path / "d", [{"audio": "x.wav", "text": "hello"}])
    argv = eval_argv(released, data, tmp_path / "out", *extra)
    if "--seq-len" in extra:
        argv.remove("128"), argv.remove("--seq-len")
    fails(argv, capsys, needle)
    assert not (tmp_path / "out").exists()  # no row appended, no file written


@pytest.mark.parametrize("extra, needle", [
    (["--seq-len", "7"], "--seq-len must be >= 8 frames"),
    (["--batch-size", "0"], "--batch-size must be an integer >= 1"),
])
def test_04_12_transcribe_option_out_of_range(tmp_path, released, capsys, extra, needle):
    fails(["transcribe", noise(tmp_path / "a.wav"), "--checkpoint", released,
           "--out-dir", tmp_path / "O", *extra], capsys, needle)
    assert not list((tmp_path / "O").glob("*.txt")) if (tmp_path / "O").exists() else True


# ------------------------------------------------------------ 3. references and plots
@pytest.mark.parametrize("text, needle", [("", 'empty reference text ("")'),
                                          (None, "'text' must be a string (got null)")])
def test_03_manifest_text_empty_or_null(tmp_path, released, capsys, text, needle):
    data = manifest(tmp_path / "d", [{"audio": "x.wav", "text": "fine"},
                                     {"audio": "y.wav", "text": text}])
    fails(eval_argv(released, data, tmp_path / "out"), capsys, f"{data} entry 1", needle)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("wer", ["inf", "nan"])
def test_03_plot_refuses_rows_it_cannot_draw(tmp_path, capsys, wer):
    from lcasr_jax.eval.report import COLUMNS, to_csv

    row = {c: "" for c in COLUMNS} | {"recording": "all", "name": "r", "seq_len": 256,
                                      "wer": 0.5, "dataset": "d"}
    table = tmp_path / "results.csv"
    table.write_text(to_csv([row, row | {"seq_len": 512, "wer": wer}]))
    fails(["plot", table, "--out", tmp_path / "p.png"], capsys, str(table), f"wer {wer}")
    assert not (tmp_path / "p.png").exists()


# ------------------------------------------------------------ 5, 11, 12. model dirs
def _largest_array_file(model: Path) -> Path:
    files = [p for p in (model / "variables").rglob("*") if p.is_file()]
    return max(files, key=lambda p: p.stat().st_size)


def test_05_flipped_bit_names_the_file(model_copy, tmp_path, capsys):
    victim = _largest_array_file(model_copy)
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0x10
    victim.write_bytes(bytes(data))
    fails(["transcribe", noise(tmp_path / "a.wav"), "--checkpoint", model_copy], capsys,
          victim, "sha256 mismatch")


def test_11_truncated_file_names_the_file_in_one_line(model_copy, tmp_path, capsys):
    victim = _largest_array_file(model_copy)
    victim.write_bytes(victim.read_bytes()[:100])
    text = fails(["transcribe", noise(tmp_path / "a.wav"), "--checkpoint", model_copy],
                 capsys, victim, "truncated")
    assert "Event loop" not in text


@pytest.mark.parametrize("edit, needle", [
    (lambda m: m.update(n_layers=m["n_layers"] - 1), "n_layers=2 but the stored arrays have "
                                                      "n_layers=3"),
    (lambda m: m.update(n_heads=m["n_heads"] * 2), "n_heads="),
    (lambda m: m.pop("n_heads"), "model field 'n_heads' is missing"),
    (lambda m: m.update(n_layers="three"), "n_layers must be an integer >= 1 (got 'three')"),
])
def test_05_12_config_json_checked_against_arrays(model_copy, tmp_path, capsys, edit, needle):
    cfg_file = model_copy / "config.json"
    doc = json.loads(cfg_file.read_text())
    assert doc["model"]["n_layers"] == 3  # the fixture the needles are written for
    edit(doc["model"])
    cfg_file.write_text(json.dumps(doc))
    fails(["transcribe", noise(tmp_path / "a.wav"), "--checkpoint", model_copy], capsys,
          "config.json", needle)


def test_05_flipped_bit_in_an_exported_checkpoint_names_the_record(model_dir, tmp_path,
                                                                     capsys):
    import zipfile

    code, _, err = run(["export", model_dir, tmp_path / "back.pt"], capsys)
    assert code == 0, err
    with zipfile.ZipFile(tmp_path / "back.pt") as z:
        info = max(z.infolist(), key=lambda i: i.file_size)
    data = bytearray((tmp_path / "back.pt").read_bytes())
    name_len, extra_len = (int(n) for n in np.frombuffer(data[info.header_offset + 26:][:4], "<u2"))
    data[info.header_offset + 30 + name_len + extra_len + info.file_size // 2] ^= 0x01
    (tmp_path / "back.pt").write_bytes(bytes(data))
    fails(["convert", tmp_path / "back.pt", tmp_path / "m"], capsys, tmp_path / "back.pt",
          f"{info.filename} fails its CRC-32 check")
    assert not (tmp_path / "m").exists()


def test_05_shipped_model_and_written_models_carry_checksums(model_dir):
    from lcasr_jax.checkpoints import integrity
    from lcasr_jax.checkpoints.shipped import DEFAULT_MODEL

    for d in (DEFAULT_MODEL, model_dir):
        assert integrity.verify_checksums(d)  # False would mean: no list to check against
        listed = json.loads((d / integrity.CHECKSUMS).read_text())["files"]
        on_disk = {p.relative_to(d).as_posix() for p in (d / "variables").rglob("*")
                   if p.is_file()}
        assert set(listed) == on_disk


# ------------------------------------------------------------ 8. interrupted --overwrite
def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


@pytest.mark.parametrize("left", ["old only", "old and finished new"])
def test_08_interrupted_overwrite_is_recovered(model_dir, tmp_path, capsys, left):
    """A crash between the two renames of --overwrite leaves DEST missing; the next load
    puts a model back (the finished new one if its checksums verify, else the old one)."""
    dest = tmp_path / "model"
    pid = _dead_pid()
    shutil.copytree(model_dir, tmp_path / f".model.old-{pid}")
    if left != "old only":
        new = shutil.copytree(model_dir, tmp_path / f".model.partial-{pid}-x1")
        (new / "marker").write_text("new")
    code, _, err = run(["transcribe", noise(tmp_path / "a.wav"), "--checkpoint", dest,
                        "--seq-len", "128", "--quiet"], capsys)
    assert code == 0, err
    assert (dest / "marker").exists() == (left != "old only")
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".model")) == []
    assert any("interrupted --overwrite" in line for line in err)


def _dataset(folder: Path, marker: str) -> Path:
    """A stand-in for a built dataset folder (VERSION/dataset_info.json) tagged `marker`."""
    (folder / "1.0.0").mkdir(parents=True)
    (folder / "1.0.0" / "dataset_info.json").write_text("{}")
    (folder / "marker").write_text(marker)
    return folder


@pytest.mark.parametrize("left", ["old only", "old and finished new"])
def test_08_interrupted_data_build_overwrite_is_recovered(tmp_path, capsys, left):
    """The same for `data build --overwrite`: the next build puts a dataset back (the
    finished new one, else the old one) before it decides whether one exists, and removes
    a dead build's unfinished folder without ever using it."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "r.json").write_text(json.dumps({"id": "r", "audio": "r.wav", "words": []}))
    out = tmp_path / "ds"
    pid = _dead_pid()
    _dataset(out / f".lcasr_recordings.old-{pid}", "old")
    if left != "old only":
        _dataset(out / f".lcasr_recordings.partial-{pid}-x1-ready", "new")
    unfinished = out / f".lcasr_recordings.partial-{pid}-x2" / "lcasr_recordings"
    (unfinished / "1.0.0.incompleteABC").mkdir(parents=True)
    (unfinished / "1.0.0.incompleteABC" / "dataset_info.json").write_text("{}")
    code, _, err = run(["data", "build", "--src", src, "--out", out], capsys)
    assert code == 1 and "already exists" in err[-1], err
    want = "old" if left == "old only" else "new"
    assert (out / "lcasr_recordings" / "marker").read_text() == want
    assert sorted(p.name for p in out.iterdir()) == ["lcasr_recordings"]
    assert any("interrupted --overwrite" in line for line in err)


def test_11_interrupted_convert_leaves_nothing(released, tmp_path, capsys, monkeypatch,
                                               request):
    """SIGTERM (as Ctrl-C) while orbax's writer threads run: the write finishes, then it is
    removed; exit 130, no DEST and no temporary folder; an existing DEST stays as it was."""
    import orbax.checkpoint as ocp

    save = ocp.StandardCheckpointer.save

    def save_then_signal(self, *args, **kwargs):
        save(self, *args, **kwargs)  # asynchronous: its threads are writing now
        os.kill(os.getpid(), signal.SIGTERM)

    def unhandled(signum, frame):  # a command that does not handle SIGTERM fails the test
        raise RuntimeError("SIGTERM reached the test's handler")

    monkeypatch.setattr(ocp.StandardCheckpointer, "save", save_then_signal)
    previous = signal.signal(signal.SIGTERM, unhandled)
    request.addfinalizer(lambda: signal.signal(signal.SIGTERM, previous))
    fails(["convert", released, tmp_path / "m"], capsys, "SIGTERM", "interrupted", code=130)
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "keep").write_text("old")
    fails(["convert", released, tmp_path / "m", "--overwrite"], capsys, "interrupted", code=130)
    assert [p.name for p in tmp_path.iterdir()] == ["m"]
    assert [p.name for p in (tmp_path / "m").iterdir()] == ["keep"]


# ------------------------------------------------------------ 10. malicious checkpoint
def test_10_malicious_checkpoint_names_the_global(tmp_path, capsys):
    import torch

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    torch.save({"model": {}, "config": Evil()}, tmp_path / "evil.pt")
    text = fails(["convert", tmp_path / "evil.pt", tmp_path / "m"], capsys,
                 tmp_path / "evil.pt", "refused", "system")
    assert "weights_only" not in text
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "m").exists()


def test_11_convert_config_with_wrong_type(released, tmp_path, capsys):
    import torch
    from omegaconf import OmegaConf

    ckpt = torch.load(released, weights_only=False)
    cfg = OmegaConf.to_container(ckpt["config"])
    cfg["model"]["n_layers"] = "three"
    ckpt["config"] = OmegaConf.create(cfg)
    torch.save(ckpt, tmp_path / "c.pt")
    fails(["convert", tmp_path / "c.pt", tmp_path / "m"], capsys,
          "n_layers must be an integer >= 1 (got 'three')")
    assert not (tmp_path / "m").exists()


# ------------------------------------------------------------ 11, 12. files and folders
def test_11_transcribe_out_dir_is_a_file(tmp_path, released, capsys):
    (tmp_path / "O").write_text("keep me")
    fails(["transcribe", noise(tmp_path / "a.wav"), "--checkpoint", released,
           "--out-dir", tmp_path / "O"], capsys, tmp_path / "O", "not a directory")
    assert (tmp_path / "O").read_text() == "keep me"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_11_transcribe_out_dir_read_only(tmp_path, released, capsys):
    (tmp_path / "O").mkdir(mode=0o500)
    fails(["transcribe", noise(tmp_path / "a.wav"), "--checkpoint", released,
           "--out-dir", tmp_path / "O"], capsys, tmp_path / "O", "not writable")


def test_12_directory_given_as_audio(tmp_path, released, capsys):
    (tmp_path / "folder.wav").mkdir()
    fails(["transcribe", tmp_path / "folder.wav", "--checkpoint", released], capsys,
          tmp_path / "folder.wav", "is a directory")


def test_11_closed_pipe_exits_quietly(tmp_path, released):
    a, b = noise(tmp_path / "a.wav"), noise(tmp_path / "b.wav")
    proc = subprocess.Popen([sys.executable, "-m", "lcasr_jax.cli", "transcribe", a, b,
                             "--checkpoint", released, "--seq-len", "128", "--quiet"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader is gone before the first line
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=HANG_S) == 141
    assert "Traceback" not in err and "Error" not in err, err


@pytest.mark.parametrize("argv, needle, code", [
    (["--hours", "inf"], "--hours must be a finite number > 0 (got inf)", 2),
    (["--hours", "nan"], "--hours must be a finite number > 0 (got nan)", 2),
    (["--hours", "0"], "--hours must be a finite number > 0 (got 0.0)", 2),
    (["--out", "FILE"], "--out exists and is not a folder", 1),
])
def test_11_synth_bad_values(tmp_path, capsys, argv, needle, code):
    (tmp_path / "FILE").write_text("keep me")
    argv = [str(tmp_path / a) if a == "FILE" else a for a in argv]
    if "--out" not in argv:
        argv += ["--out", str(tmp_path / "o")]
    fails(["data", "synth", *argv], capsys, needle, code=code)
    assert (tmp_path / "FILE").read_text() == "keep me" and not (tmp_path / "o").exists()


def test_12_synth_hours_below_one_recording_makes_about_that_much():
    from lcasr_jax.data.synth import generate as synth

    sizes = {b: 1000 for b in ("emma", "persuasion", "mansfieldpark", "northangerabbey",
                               "prideprejudice", "sensesensibility")}
    for hours in (0.05, 0.5):
        minutes = synth.recording_minutes(hours, 10.0)
        plans = synth.make_plans(hours, minutes, "test", 0, sizes, ("espeak",))
        total = sum(p["target_s"] for p in plans) / 3600
        assert 0.8 * hours <= total <= 1.2 * hours, (hours, total)
