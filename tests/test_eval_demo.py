"""`lcasr-jax demo` on a tiny prepared test set with the random-weight stand-in model."""

import json

import numpy as np
import pytest
import soundfile as sf

from lcasr_jax import demo
from lcasr_jax.checkpoints import shipped
from lcasr_jax.data.synth.lib import available


def test_demo_prints_table_and_writes_plot(tmp_path, monkeypatch, capsys):
    data = tmp_path / "data"
    data.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        rid = f"test-s1234-{i:05d}"
        sf.write(data / f"{rid}.flac", (0.1 * rng.normal(size=40000)).astype("f4"), 16000)
        words = [{"word": "hello", "start": 0.2, "end": 0.6},
                 {"word": "there", "start": 0.7, "end": 1.1}]
        (data / f"{rid}.json").write_text(json.dumps({"audio": f"{rid}.flac", "words": words}))
    monkeypatch.setattr(demo, "held_out_data", lambda out, *a: data)
    monkeypatch.setattr(shipped, "DEFAULT_MODEL", tmp_path / "no_model")
    code = demo.main(["--out", str(tmp_path / "demo"), "--contexts", "1", "2.56",
                      "--overlap-ratio", "0.5", "--quiet"])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "RANDOM-WEIGHT stand-in" in out.err
    lines = out.out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:2] == ["context", "WER"])
    rows = [line.split() for line in lines[header + 2:header + 4]]
    assert [r[0] for r in rows] == ["1s", "2.56s"]
    assert all(r[6] == "4" for r in rows)  # reference words (after WER % and red. %)
    assert (tmp_path / "demo" / "wer_vs_context.png").stat().st_size > 1000
    table = (tmp_path / "demo" / "results.csv").read_text().splitlines()
    assert len(table) == 1 + 2 * 3  # two contexts x (2 recordings + all)


def _flat(text: str) -> str:
    return " ".join(text.split())


def test_context_statement_says_whether_wer_falls():
    def rows(short, long):
        return [{"seconds": 320, "wer": long}, {"seconds": 10, "wer": short}]

    falls = _flat(demo.context_statement(rows(0.5, 0.4), shipped_model=True))
    assert falls.startswith("WER falls with context: 50.00% at 10 s to 40.00% at 320 s")
    assert "(-20.0% relative)" in falls and shipped.NO_CONTEXT_GAIN[:60] not in falls
    rises = _flat(demo.context_statement(rows(0.5, 0.55), shipped_model=True))
    assert rises.startswith("WER does NOT fall with context here")
    assert "(+10.0% relative), the opposite of the paper's finding." in rises
    assert _flat(shipped.NO_CONTEXT_GAIN) in rises
    flat = _flat(demo.context_statement(rows(0.5, 0.502), shipped_model=False))
    assert "(+0.4% relative), flat, where the paper finds it falling." in flat
    assert shipped.NO_CONTEXT_GAIN[:60] not in flat
    assert all(len(line) <= 88 for line in demo.context_statement(
        rows(0.5, 0.55), True).splitlines())


@pytest.mark.skipif(
    not (available("libespeak-ng.so.1") and available("libflite.so.1")),
    reason="espeak-ng/flite libraries not installed (run scripts/install_synth_deps.sh)")
def test_demo_table_is_the_shipped_models_wer(tmp_path, capsys):
    """From a clean clone: the demo generates held-out speech and its table is the shipped
    model's WER, equal to greedy decoding of one whole-recording forward pass scored with
    jiwer (a context longer than the recording is one window)."""
    import jiwer

    import lcasr_jax
    from lcasr_jax.data.features import audio_to_features
    from lcasr_jax.decode import greedy_decode
    from lcasr_jax.eval.normalize import whisper_normalize

    assert (shipped.DEFAULT_MODEL / "config.json").is_file(), "shipped model missing"
    out = tmp_path / "demo"
    code = demo.main(["--out", str(out), "--hours", "0.005", "--minutes", "0.5",
                      "--contexts", "5", "90", "--quiet"])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert "stand-in" not in printed.err + printed.out
    assert "model: default_model" in printed.out
    lines = printed.out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:2] == ["context", "WER"])
    table = {r[0]: float(r[1]) for r in (line.split() for line in lines[header + 2:header + 4])}
    assert set(table) == {"5s", "90s"}
    assert "WER falls with context" in printed.out or "does NOT fall" in printed.out

    data = next(out.glob("data-*"))
    [rec] = [json.loads(p.read_text()) for p in data.glob("test-*.json")]
    assert rec["duration"] < 90
    model, variables = lcasr_jax.load_pretrained(shipped.DEFAULT_MODEL)
    spec = audio_to_features(data / rec["audio"])[None]
    result = model.apply(variables, spec)
    hyp = greedy_decode(np.asarray(result["final_posteriors"][0]), int(result["length"][0]))
    ref = " ".join(w["word"] for w in rec["words"])
    expected = 100 * jiwer.wer(whisper_normalize(ref), whisper_normalize(hyp))
    assert table["90s"] == pytest.approx(expected, abs=0.006)
    assert expected < 95  # a trained model: the random-weight stand-in scores ~100%


def test_table_prints_the_relative_reduction_from_the_shortest_context():
    def row(s, wer):
        return {"seconds": s, "wer": wer, "ins_rate": 0.0, "del_rate": 0.0, "sub_rate": wer,
                "words": 100, "wall": 1.0}

    rows = [row(10, 0.50), row(40, 0.45), row(320, 0.40)]
    lines = demo.format_table(rows).splitlines()
    assert lines[0].split()[:4] == ["context", "WER", "%", "red."]
    assert [ln.split()[2] for ln in lines[2:]] == ["+0.0", "+10.0", "+20.0"]
    assert demo.relative_reduction(rows, rows[-1]) == pytest.approx(20.0)
