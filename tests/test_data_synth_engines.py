"""Synthetic corpus with the real engines: word times agree with the audio; resume; determinism.

Skipped when libespeak-ng / libflite are missing (scripts/install_synth_deps.sh installs them).
"""

import gzip
import json
import os

import numpy as np
import pytest

from lcasr_jax.data import cli
from lcasr_jax.data.synth import festival, recording
from lcasr_jax.data.synth.lib import available

pytestmark = pytest.mark.skipif(
    not (available("libespeak-ng.so.1") and available("libflite.so.1")),
    reason="espeak-ng/flite libraries not installed (run scripts/install_synth_deps.sh)")

PARS = [
    "it is a truth universally acknowledged, that a single man in possession of a good "
    "fortune, must be in want of a wife.",
    "however little known the feelings or views of such a man may be on his first entering "
    "a neighbourhood, this truth is so well fixed in the minds of the surrounding families.",
    "my dear mister bennet, said his lady to him one day, have you heard that netherfield "
    "park is let at last?",
    "mister bennet replied that he had not. but it is, returned she; for missus long has just "
    "been here, and she told me all about it.",
]


@pytest.fixture()
def corpus_file(tmp_path):
    path = tmp_path / "austen.json.gz"
    books = {b: PARS for b in ("emma", "mansfieldpark", "prideprejudice", "northangerabbey",
                               "sensesensibility")}
    with gzip.open(path, "wt") as f:
        json.dump({"version": 2, "books": books}, f)
    return str(path)


def _frame_energy(x, hop=160):
    n = len(x) // hop
    return (x[: n * hop].reshape(n, hop).astype(np.float64) ** 2).mean(1)


def _speaker(split, engine):
    v = recording.voices(split)[engine][0]
    s = {"speaker": v.key, "engine": engine, "voice": v.name, "speed": 1.0, "gain_db": 0.0}
    if engine == "espeak":
        return {**s, "rate": 175, "pitch": 50, "range": 50}
    return {**s, "stretch": 1.0, "pitch": 1.0}


@pytest.mark.parametrize("split,engines", [("train", ("espeak", "flite")),
                                           ("dev", ("espeak", "flite")),
                                           ("train", ("festival",))])
def test_word_times_agree_with_audio(tmp_path, split, engines):
    import soundfile as sf

    if "festival" in engines and not festival.available():
        pytest.skip("festival not installed (scripts/install_synth_deps.sh)")
    corpus = {b: PARS for b in recording.books(split)}
    p = recording.plan(split, 0, 0, 0.25, {b: len(PARS) for b in corpus})
    p["speakers"] = [_speaker(split, e) for e in engines]
    p.update(rt60=0.0, snr_db=80.0, start_paragraph=0, target_s=20.0 + 40.0 * len(engines))
    entry = recording.make(p, corpus, recording.Engines(), str(tmp_path))
    x, sr = sf.read(tmp_path / entry["audio"], dtype="float32")
    rec = json.loads((tmp_path / entry["words"]).read_text())
    assert sr == rec["sample_rate"] == 16000 and abs(rec["duration"] - len(x) / sr) < 1e-3
    assert set(rec) == {"format", "id", "audio", "sample_rate", "duration", "words"}
    words = rec["words"]
    assert [w["word"] for w in words[:6]] == ["it", "is", "a", "truth", "universally",
                                             "acknowledged"]
    assert {w["speaker"] for w in words} == {s["speaker"] for s in p["speakers"]}
    starts, ends = np.array([w["start"] for w in words]), np.array([w["end"] for w in words])
    assert (ends > starts).all() and (starts[1:] >= ends[:-1] - 1e-9).all()
    assert ends[-1] <= rec["duration"]
    en = _frame_energy(x)
    inside = np.zeros(len(en), bool)
    for s, e in zip(starts, ends, strict=True):
        inside[int(s * 100): int(np.ceil(e * 100))] = True
    ratio_db = 10 * np.log10(en[inside].mean() / en[~inside].mean())
    assert ratio_db > 20, ratio_db
    # Every word carries speech: its mean energy is within 30 dB of the average word's.
    per_word = np.array([en[int(s * 100): max(int(s * 100) + 1, int(e * 100))].mean()
                         for s, e in zip(starts, ends, strict=True)])
    assert (per_word > en[inside].mean() * 1e-3).mean() > 0.97
    # The teammate's reader accepts the file as it is.
    alignments = pytest.importorskip("lcasr_jax.data.alignments")
    got = alignments.read_recording(tmp_path / entry["words"], strict=True, check_audio=True)
    assert len(got.words) == len(words)


def test_resume_skips_finished_and_is_deterministic(tmp_path, corpus_file, capsys):
    out = tmp_path / "out"
    argv = ["synth", "--out", str(out), "--hours", str(2 * 0.1 / 60), "--minutes", "0.1", "--split",
            "dev", "--seed", "4", "--workers", "2", "--text", corpus_file, "--no-progress"]
    assert cli.main(argv) == 0
    man = json.loads((out / "manifest.json").read_text())
    ids = [r["id"] for r in man["recordings"]]
    assert ids == ["dev-s4-00000", "dev-s4-00001"] and man["split"] == "dev"
    first = {i: ((out / f"{i}.flac").read_bytes(), (out / f"{i}.json").read_text()) for i in ids}
    mtime0 = os.stat(out / f"{ids[0]}.flac").st_mtime_ns
    # A killed run: the second recording has audio but no JSON, plus a stale temp file.
    (out / f"{ids[1]}.json").unlink()
    (out / f".{ids[1]}.flac.tmp").write_bytes(b"partial")
    assert cli.main(argv) == 0
    assert os.stat(out / f"{ids[0]}.flac").st_mtime_ns == mtime0  # finished one untouched
    for i in ids:  # the redone one is identical (a fresh engine per recording)
        assert (out / f"{i}.flac").read_bytes() == first[i][0]
        assert (out / f"{i}.json").read_text() == first[i][1]
    assert json.loads((out / "manifest.json").read_text())["recordings"] == man["recordings"]
    # Resuming the same folder with other settings is refused instead of mixing corpora.
    other = [a if a != "0.1" else "0.2" for a in argv]
    capsys.readouterr()
    assert cli.main(other) == 1
    assert "made with other settings: minutes 0.1 (now 0.2)" in capsys.readouterr().err
    assert json.loads((out / "manifest.json").read_text())["recordings"] == man["recordings"]


def test_dry_corpus_is_the_same_speech_without_room_noise_or_warps(tmp_path, corpus_file, capsys):
    import soundfile as sf

    base = ["--hours", str(0.1 / 60), "--minutes", "0.1", "--split", "train", "--seed", "5",
            "--workers", "1", "--text", corpus_file, "--no-progress"]
    assert cli.main(["synth", "--out", str(tmp_path / "dry"), "--dry", *base]) == 0
    assert cli.main(["synth", "--out", str(tmp_path / "wet"), *base]) == 0
    rid = "train-s5-00000"
    man = json.loads((tmp_path / "dry" / "manifest.json").read_text())
    assert man["dry"] is True and man["recordings"][0]["audio"] == f"{rid}.wav"
    assert not (tmp_path / "dry" / f"{rid}.flac").exists()
    wet_man = json.loads((tmp_path / "wet" / "manifest.json").read_text())
    # Same voices and book as the wet plan of the same seed: only the acoustics differ.
    for k in ("speakers", "book"):
        assert man["recordings"][0][k] == wet_man["recordings"][0][k]
    x, sr = sf.read(tmp_path / "dry" / f"{rid}.wav", dtype="float32")
    y, _ = sf.read(tmp_path / "wet" / f"{rid}.flac", dtype="float32")
    rec = json.loads((tmp_path / "dry" / f"{rid}.json").read_text())
    assert sr == 16000 and abs(rec["duration"] - len(x) / sr) < 1e-3
    lead = int(0.2 * sr)  # the leading pause (>= 0.2 s): digital silence when dry
    assert rec["words"][0]["start"] > 0.2 and not np.any(x[:lead])
    assert np.sqrt(np.mean(y[:lead] ** 2)) > 1e-3  # noise in the wet one
    # Dry recordings are not wet ones: resuming a wet folder with --dry is refused.
    capsys.readouterr()
    assert cli.main(["synth", "--out", str(tmp_path / "wet"), "--dry", *base]) == 1
    assert "dry False (now True)" in capsys.readouterr().err
