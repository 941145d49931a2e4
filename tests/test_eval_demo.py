"""`lcasr-jax demo` on a tiny prepared test set with the random-weight stand-in model."""

import json

import numpy as np
import soundfile as sf

from lcasr_jax import demo
from lcasr_jax.checkpoints import shipped


def test_demo_prints_table_and_writes_plot(tmp_path, parity_dir, monkeypatch, capsys):
    data = tmp_path / "data"
    data.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        rid = f"test-s1234-{i:05d}"
        sf.write(data / f"{rid}.flac", (0.1 * rng.normal(size=40000)).astype("f4"), 16000)
        words = [{"word": "hello", "start": 0.2, "end": 0.6},
                 {"word": "there", "start": 0.7, "end": 1.1}]
        (data / f"{rid}.json").write_text(json.dumps({"audio": f"{rid}.flac", "words": words}))
    monkeypatch.setattr(demo, "test_data", lambda out, *a: data)
    monkeypatch.setattr(shipped, "DEFAULT_MODEL", tmp_path / "no_model")
    monkeypatch.setenv("LCASR_SHARED", str(parity_dir.parents[1]))
    code = demo.main(["--out", str(tmp_path / "demo"), "--contexts", "1", "2.56",
                      "--overlap-ratio", "0.5", "--quiet"])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "RANDOM-WEIGHT stand-in" in out.err
    lines = out.out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:2] == ["context", "WER"])
    rows = [line.split() for line in lines[header + 2:header + 4]]
    assert [r[0] for r in rows] == ["1s", "2.56s"]
    assert all(r[5] == "4" for r in rows)  # reference words
    assert (tmp_path / "demo" / "wer_vs_context.png").stat().st_size > 1000
    table = (tmp_path / "demo" / "results.csv").read_text().splitlines()
    assert len(table) == 1 + 2 * 3  # two contexts x (2 recordings + all)
