"""Bad-input catalogue, issue 24: audio, corpora and output folders. Colliding output
names, a full disk found before the work, truncated and header-only WAVs, symbolic link
loops, a bad file in a batch, damaged recording JSONs, demo options checked first. Test
names carry issue 24's case numbers."""

import collections
import json
import shutil
import struct

import pytest
import soundfile as sf
from catalogue import eval_argv, fails, manifest, noise, run

_Usage = collections.namedtuple("_Usage", "total used free")


def _full_disk(monkeypatch, full_under):
    """shutil.disk_usage reports no free space for paths under `full_under`."""
    real = shutil.disk_usage

    def usage(path):
        if str(path).startswith(str(full_under)):
            return _Usage(10**9, 10**9, 0)
        return real(path)

    monkeypatch.setattr(shutil, "disk_usage", usage)


def test_01_transcribe_every_input_gets_its_own_file(tmp_path, released, capsys):
    a, b = noise(tmp_path / "a" / "take.wav"), noise(tmp_path / "b" / "take.wav", 3.0)
    c = noise(tmp_path / "a__take.wav.wav", 2.5)  # its stem is a's path-based name
    code, _, err = run(["transcribe", a, b, c, "--checkpoint", released, "--format", "json",
                        "--out-dir", tmp_path / "O", "--seq-len", "128", "--quiet"], capsys)
    assert code == 0, err
    docs = {p.name: json.loads(p.read_text())["audio"] for p in (tmp_path / "O").iterdir()}
    assert sorted(docs.values()) == sorted(map(str, (a, b, c)))


def test_05_eval_out_on_a_full_disk_fails_before_the_work(tmp_path, released, capsys,
                                                          monkeypatch):
    from lcasr_jax.eval import runner

    data = manifest(tmp_path / "d", [{"audio": "x.wav", "text": "good morning"}])
    _full_disk(monkeypatch, tmp_path)
    monkeypatch.setattr(runner, "evaluate", lambda *a, **k: pytest.fail("evaluated"))
    fails(eval_argv(released, data, tmp_path / "out"), capsys, tmp_path / "out", "--out",
          "0 bytes free", "disk full")
    assert not (tmp_path / "out").exists()


def test_05_transcribe_out_dir_on_a_full_disk(tmp_path, released, capsys, monkeypatch):
    _full_disk(monkeypatch, tmp_path)
    fails(["transcribe", noise(tmp_path / "a.wav"), "--checkpoint", released, "--out-dir",
           tmp_path / "O"], capsys, tmp_path / "O", "--out-dir", "disk full")


def test_05_a_write_that_fails_late_names_the_file_and_keeps_the_wer(tmp_path, released,
                                                                     capsys, monkeypatch):
    import errno
    from pathlib import Path

    data = manifest(tmp_path / "d", [{"audio": "x.wav", "text": "good morning"}])
    write_text = Path.write_text

    def no_space(self, *args, **kwargs):
        if self.parent == tmp_path / "out" and self.name.endswith(".tmp"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return write_text(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", no_space)
    code, out, err = run(eval_argv(released, data, tmp_path / "out"), capsys)
    assert code == 1 and len(err) == 1 and "Traceback" not in err[0], err
    assert str(tmp_path / "out") in err[0] and "No space left on device" in err[0], err
    assert out.startswith("WER "), out


def _pcm16(path, seconds: float = 2.0):
    """A 16-bit PCM WAV of noise (its data chunk is the last thing in the file)."""
    audio, rate = sf.read(noise(path.with_suffix(".flac"), seconds))
    sf.write(path, audio, rate, subtype="PCM_16")
    return path


def test_14_truncated_wav_is_transcribed_with_a_warning(tmp_path, released, capsys):
    whole = _pcm16(tmp_path / "whole.wav").read_bytes()
    cut = tmp_path / "cut.wav"
    cut.write_bytes(whole[: len(whole) // 2])
    code, out, err = run(["transcribe", cut, "--checkpoint", released, "--seq-len", "128",
                          "--quiet"], capsys)
    assert code == 0, err
    assert any(str(cut) in line and "truncated" in line for line in err), err


@pytest.mark.parametrize("follows", [False, True])
def test_16_wav_header_with_no_data_says_so(tmp_path, released, capsys, follows):
    whole = bytearray(_pcm16(tmp_path / "whole.wav").read_bytes())
    at = whole.find(b"data")
    whole[at + 4:at + 8] = struct.pack("<I", 0)
    bad = tmp_path / "bad.wav"
    bad.write_bytes(bytes(whole if follows else whole[:at + 8]))
    fails(["transcribe", bad, "--checkpoint", released], capsys, bad,
          "declares 0 bytes of audio data")


def test_16_symbolic_link_loop_is_named(tmp_path, released, capsys):
    (tmp_path / "a.wav").symlink_to(tmp_path / "b.wav")
    (tmp_path / "b.wav").symlink_to(tmp_path / "a.wav")
    fails(["transcribe", tmp_path / "a.wav", "--checkpoint", released], capsys,
          tmp_path / "a.wav", "loop of symbolic links")


def test_16_a_bad_file_in_a_batch_does_not_stop_the_others(tmp_path, released, capsys):
    a, c = noise(tmp_path / "a.wav"), noise(tmp_path / "c.wav")
    (tmp_path / "b.wav").write_bytes(b"not audio at all" * 64)
    code, _, err = run(["transcribe", a, tmp_path / "b.wav", c, "--checkpoint", released,
                        "--out-dir", tmp_path / "O", "--seq-len", "128", "--quiet"], capsys)
    assert code == 1
    assert sorted(p.name for p in (tmp_path / "O").iterdir()) == ["a.txt", "c.txt"]
    assert any(str(tmp_path / "b.wav") in line and "unreadable" in line for line in err), err
    assert f"1 of 3 files not transcribed: {tmp_path / 'b.wav'}" in err[-1], err


@pytest.mark.parametrize("argv, needle", [(["--contexts", "0"], "--contexts must be a finite "
                                                                "number > 0 (got 0.0)"),
                                          (["--mode", "bogus"], "invalid choice: 'bogus'")])
def test_16_demo_options_are_checked_first(tmp_path, capsys, monkeypatch, argv, needle):
    from lcasr_jax import demo

    monkeypatch.setattr(demo, "held_out_data", lambda *a: pytest.fail("generated data"))
    code, _, err = run(["demo", "--out", tmp_path / "demo", *argv], capsys)
    assert code == 2 and needle in err[-1] and "--seq-len" not in "".join(err), err


def test_09_damaged_recording_json_is_named(tmp_path, capsys):
    from lcasr_jax.data.alignments import Recording, Words, find_recordings, write_recording

    for i in range(3):
        audio = noise(tmp_path / f"r{i}.flac")
        write_recording(tmp_path / f"r{i}.json",
                        Recording(f"r{i}", audio, Words(("hello",), [0.2], [0.5])))
    text = (tmp_path / "r1.json").read_text()
    (tmp_path / "r1.json").write_text(text[: len(text) // 2])  # cut while copied
    (tmp_path / "notes.json").write_text(json.dumps({"kind": "not a recording"}))
    assert [p.name for p in find_recordings(tmp_path)] == ["r0.json", "r2.json"]
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and str(tmp_path / "r1.json") in err[0] and "skipped" in err[0], err
