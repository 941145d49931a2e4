"""`lcasr-jax eval / transcribe / plot` end to end with the random-weight parity fixture."""

import csv
import json

import numpy as np
import pytest
import soundfile as sf

from lcasr_jax.eval import cli, transcribe
from lcasr_jax.figures import cli as plot
from lcasr_jax.figures import summary

SR = 16000
# Two recordings of 384 and 256 frames: with 128-frame windows every 64 frames, one window
# shape (the 64-frame tails are padded to it).
SECONDS = (383 * 0.01, 255 * 0.01)
HEADER = ["", "dataset", "split", "wer", "recording", "words", "ins_rate", "del_rate",
          "sub_rate", "name", "checkpoint", "repeat", "seq_len", "overlap_ratio", "model_class",
          "evaluation_mode", "overlap", "run"]


@pytest.fixture(scope="module")
def checkpoint(parity_dir):
    return str(parity_dir / "rotary_ln" / "checkpoint.pt")


def test_eval_writes_original_columns_and_appends(tmp_path, checkpoint, capsys, synth_dir):
    data = synth_dir(tmp_path / "data", SECONDS)
    argv = ["--checkpoint", checkpoint, "--dataset", "synth", "--data-dir", str(data),
            "--seq-len", "128", "--overlap-ratio", "0.5", "--out", str(tmp_path / "out"),
            "--name", "fixture", "--quiet"]
    assert cli.main(argv) == 0
    assert "WER " in capsys.readouterr().out
    csvs = sorted((tmp_path / "out").glob("synth_test_fixture_*[0-9a-f].csv"))
    assert [p.name[:-11] for p in csvs] == ["synth_test_fixture_averaged_moving_window_128_64_data"]
    per_recording = csvs[0].with_name(f"{csvs[0].stem}_recordings.csv")
    rows = list(csv.reader(csvs[0].read_text().splitlines()))
    assert rows[0] == HEADER and list(csv.reader(per_recording.read_text().splitlines()))[0] \
        == HEADER
    assert [r[4] for r in rows[1:]] == ["all"]  # the overall row only, as the original's
    assert [r[4] for r in list(csv.reader(per_recording.read_text().splitlines()))[1:]] == \
        ["test-s0-00000", "test-s0-00001"]
    assert rows[1][-1] == csvs[0].stem  # the run's identity
    overall = rows[-1]
    assert overall[5] == "4" and overall[12] == "128" and float(overall[13]) == 0.5
    wer, ins, dele, sub = map(float, overall[3:4] + overall[6:9])
    assert wer == pytest.approx(ins + dele + sub)
    doc = json.loads(csvs[0].with_suffix(".json").read_text())
    assert doc["recordings"][0]["reference"] == "good morning"
    assert cli.main(argv + ["--mode", "buffered"]) == 0
    table = list(csv.reader((tmp_path / "out" / "results.csv").read_text().splitlines()))
    assert table[0] == HEADER and len(table) == 3  # one overall row per run
    assert cli.main(argv + ["--mode", "buffered"]) == 0  # the same run again: no new row
    assert list(csv.reader((tmp_path / "out" / "results.csv").read_text().splitlines())) \
        == table
    assert {r[15] for r in table[1:]} == {"averaged_moving_window", "buffered"}

    png = tmp_path / "out" / "wer.png"
    assert plot.main([str(tmp_path / "out" / "results.csv"), "--out", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


BAD_AUDIO = {  # file contents -> the error
    "empty": (lambda path: path.write_bytes(b""), "empty file"),
    "junk": (lambda path: path.write_bytes(b"not audio at all" * 64), "unreadable audio"),
    "no samples": (lambda path: sf.write(path, np.zeros(0, "f4"), SR, format="WAV"),
                   "the WAV header declares 0 bytes of audio data"),
    "too short": (lambda path: sf.write(path, np.zeros(100, "f4"), SR), "audio too short"),
}


def test_eval_one_line_errors(tmp_path, checkpoint, capsys, synth_dir):
    data = synth_dir(tmp_path, SECONDS)
    argv = ["--checkpoint", checkpoint, "--dataset", "synth", "--data-dir", str(tmp_path),
            "--out", str(tmp_path / "out"), "--quiet"]
    for write, message in BAD_AUDIO.values():
        write(tmp_path / "test-s0-00001.flac")
        assert cli.main(argv) == 1
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and f"test-s0-00001.flac: {message}" in err, err
    assert not (tmp_path / "out").exists()
    assert cli.main(["--checkpoint", str(tmp_path / "none.pt"), "--dataset", "synth",
                     "--data-dir", str(data)]) == 1
    assert "checkpoint not found" in capsys.readouterr().err


def test_checkpoint_tokenizer_mismatch_names_the_checkpoint(tmp_path, capsys, synth_dir):
    import flax.linen as nn
    import jax
    import jax.numpy as jnp

    from lcasr_jax.checkpoints.store import save_model_dir
    from lcasr_jax.model import ModelConfig, SCConformerXL

    cfg = ModelConfig(n_layers=1, d_model=32, n_heads=2, head_dim=16,
                      subsampling_conv_channels=8, vocab_size=100)
    shapes = jax.eval_shape(SCConformerXL(cfg).init, jax.random.PRNGKey(0),
                            jnp.zeros((1, 80, 64)))  # only the shapes matter: no init compiles
    variables = jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), nn.meta.unbox(shapes))
    model_dir = save_model_dir(tmp_path / "vocab100", cfg, variables)
    data = synth_dir(tmp_path / "data", SECONDS[:1])
    wav = data / "test-s0-00000.flac"
    for main, argv in ((cli.main, ["--dataset", "synth", "--data-dir", str(data)]),
                       (cli.transcribe_main, [str(wav)])):
        assert main(argv + ["--checkpoint", str(model_dir), "--quiet"]) == 1
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and f"{model_dir} has 101 output classes" in err, err
        assert "checkpoint/tokenizer mismatch" in err and "4095 pieces + blank" in err


def test_transcribe_formats(tmp_path, checkpoint, capsys):
    wav = tmp_path / "talk.wav"
    sf.write(wav, (0.1 * np.random.default_rng(1).normal(size=2 * SR)).astype("f4"), SR)
    base = [str(wav), "--checkpoint", checkpoint, "--seq-len", "128", "--quiet"]
    assert cli.transcribe_main(base + ["--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["audio"] == str(wav) and isinstance(doc["words"], list)
    for w in doc["words"]:
        assert 0 <= w["start"] < w["end"] <= 2.0 + 0.08
    assert cli.transcribe_main(base + ["--format", "txt", "--out-dir", str(tmp_path)]) == 0
    assert (tmp_path / "talk.txt").read_text().strip() == doc["text"]
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    assert cli.transcribe_main([str(empty), "--checkpoint", checkpoint]) == 1
    assert "empty.wav: empty file" in capsys.readouterr().err


def test_srt_rendering_hand_checked():
    from lcasr_jax.decode import Transcript, Word

    t = Transcript("a b c", (Word("a", 0.08, 0.4), Word("b", 0.48, 0.8), Word("c", 3.0, 3661.5)))
    assert transcribe.srt_time(3661.5) == "01:01:01,500"
    assert transcribe.to_srt(t) == ("1\n00:00:00,080 --> 00:00:00,800\na b\n\n"
                                    "2\n00:00:03,000 --> 01:01:01,500\nc\n")


def test_plot_reads_original_results_csv(tmp_path):
    original = tmp_path / "evals_rb.csv"
    original.write_text(
        ",dataset,split,wer,recording,words,ins_rate,del_rate,sub_rate,name,checkpoint,"
        "repeat,seq_len,overlap_ratio,model_class\n"
        "0,tedlium,test,0.07,all,27500,0.01,0.02,0.04,rb,/x/a.pt,1,1024,0.875,SCConformerXL\n"
        "0,tedlium,test,0.05,all,27500,0.01,0.02,0.02,rb,/x/b.pt,2,1024,0.875,SCConformerXL\n"
        "0,tedlium,test,0.04,all,27500,0.01,0.01,0.02,rb,/x/c.pt,1,4096,0.875,SCConformerXL\n")
    points = summary.aggregate(plot.read_rows([original], "tedlium"))
    assert [(p.series, p.seconds, p.wers) for p in points] == [
        ("rb", 10.24, (0.07, 0.05)), ("rb", 40.96, (0.04,))]
    assert plot.main([str(original), "--out", str(tmp_path / "p.png")]) == 0
    assert (tmp_path / "summary.md").is_file() and (tmp_path / "summary.csv").is_file()
    broken = tmp_path / "broken.csv"
    broken.write_text("dataset,split,wer,recording\ntedlium,test,0.1,all\n")  # no seq_len
    assert plot.main([str(broken), "--out", str(tmp_path / "q.png")]) == 1


def test_beam_decoder_selectable(tmp_path, checkpoint, capsys, synth_dir):
    """--decoder beam (pyctcdecode, width 1 as the original's per-dataset scripts) in eval
    and transcribe; LM weights without an LM are a one-line error."""
    pytest.importorskip("pyctcdecode")
    data = synth_dir(tmp_path / "data", SECONDS[:1])
    argv = ["--checkpoint", checkpoint, "--dataset", "synth", "--data-dir", str(data),
            "--seq-len", "128", "--overlap-ratio", "0.5", "--out", str(tmp_path / "out"),
            "--name", "fx", "--quiet"]
    assert cli.main(argv + ["--decoder", "beam", "--beam-width", "1"]) == 0
    csvs = [p.name for p in (tmp_path / "out").glob("*.csv")
            if not p.name.startswith("results") and not p.stem.endswith("_recordings")]
    assert [c[:-11] for c in csvs] == ["synth_test_fx_averaged_moving_window_128_64_beam1_data"]
    for extra, message in ((["--decoder", "beam", "--lm-alpha", "0.3"], "give --kenlm too"),
                           (["--kenlm", "lm.arpa"], "need --decoder beam")):
        assert cli.main(argv + extra) == 1
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and message in err, err
    wav = data / "test-s0-00000.flac"
    capsys.readouterr()
    assert cli.transcribe_main([str(wav), "--checkpoint", checkpoint, "--seq-len", "128",
                            "--decoder", "beam", "--format", "json", "--quiet"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert all(0 <= w["start"] <= w["end"] for w in doc["words"])
