"""`lcasr-jax data` command line: convert, build, inspect, errors."""

import json

import numpy as np
import soundfile as sf

from lcasr_jax.data.cli import main


def test_convert_build_inspect(tmp_path, capsys):
    src = tmp_path / "src"
    src.mkdir()
    sf.write(src / "a.wav", (0.1 * np.random.default_rng(0).standard_normal(32000)).astype(
        np.float32), 16000)
    (tmp_path / "a.ctm").write_text("a 1 0.10 0.30 hello\na 1 0.50 0.40 world\n")
    assert main(["convert", str(tmp_path / "a.ctm"), str(src / "a.wav"), str(src / "a.json")]) == 0
    rec = json.loads((src / "a.json").read_text())
    assert [w["word"] for w in rec["words"]] == ["hello", "world"] and rec["duration"] == 2.0
    assert main(["inspect", str(src / "a.json")]) == 0
    assert '"words": 2' in capsys.readouterr().out
    (src / "b.json").write_text(json.dumps({**rec, "id": "b"}))  # second recording, same audio
    assert main(["build", "--src", str(src), "--out", str(tmp_path / "ds"), "--workers", "2",
                 "--resampler", "torchaudio"]) == 0
    assert main(["inspect", str(tmp_path / "ds" / "lcasr_recordings" / "1.0.0")]) == 0
    out = capsys.readouterr().out
    assert "train: 2 recordings" in out and "features (201, 80) float16" in out

    # A rebuild never silently reuses the old dataset, and --overwrite swaps in the new one.
    rec["words"][0]["word"] = "goodbye"
    (src / "a.json").write_text(json.dumps(rec))
    (src / "b.json").write_text(json.dumps({**rec, "id": "b"}))
    assert main(["build", "--src", str(src), "--out", str(tmp_path / "ds")]) == 1
    assert "already exists" in capsys.readouterr().err
    assert main(["build", "--src", str(src), "--out", str(tmp_path / "ds"), "--overwrite"]) == 0
    assert main(["inspect", str(tmp_path / "ds" / "lcasr_recordings" / "1.0.0")]) == 0
    assert "goodbye" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "ds").iterdir()) == ["lcasr_recordings"]


def test_errors_are_one_line(tmp_path, capsys):
    assert main(["inspect", str(tmp_path / "missing.json")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "missing.json" in err and "\n" not in err
    (tmp_path / "empty").mkdir()
    assert main(["build", "--src", str(tmp_path / "empty"), "--out", str(tmp_path / "o")]) == 1
    assert "no recording JSONs" in capsys.readouterr().err
