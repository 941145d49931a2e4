"""`lcasr-jax analyze attention / attribution / figures` end to end on tiny inputs."""

import csv

import numpy as np
import pytest

from lcasr_jax import cli as top
from lcasr_jax.analysis import cli
from lcasr_jax.eval import cli as eval_cli

PNG = b"\x89PNG\r\n\x1a\n"


def test_attention_and_attribution_write_arrays_csv_and_pngs(tmp_path, parity_dir, synth_dir):
    data = synth_dir(tmp_path / "data", (3.83, 2.55))
    ckpt = str(parity_dir / "rotary_ln" / "checkpoint.pt")
    common = ["--checkpoint", ckpt, "--dataset", "synth", "--data-dir", str(data), "--quiet"]
    out = tmp_path / "att"
    assert top.main(["analyze", "attention", *common, "--capture", "chunked", "--seq-len",
                     "256", "--windows", "2", "--out", str(out)]) == 0
    arrays = np.load(out / "attention.npz")
    layers, heads = 3, 2
    assert arrays["far_share"].shape[:2] == (layers, heads)
    assert arrays["probs"].shape == (layers, heads, 32, 32)  # first window: 256 frames
    assert int(arrays["queries"]) == 32 + 16 + 32  # 384 frames: 256 + 128; 256 frames: one
    np.testing.assert_allclose(arrays["histogram"].sum(-1), 1, atol=1e-5)
    assert not arrays["beyond_10s"].any()  # windows of 2.56 s
    rows = list(csv.DictReader((out / "attention.csv").read_text().splitlines()))
    assert len(rows) == layers * heads and float(rows[0]["mean_distance_s"]) > 0
    for png in ("attention_distance.png", "attention_heatmaps.png"):
        assert (out / png).read_bytes()[:8] == PNG

    out = tmp_path / "attr"
    assert cli.main(["attribution", *common, "--window", "100", "--batch-size", "2",
                     "--out", str(out)]) == 0
    arrays = np.load(out / "attribution.npz")
    assert arrays["test-s0-00000/logp"].shape == (4, 4)  # 383 frames / 100
    assert arrays["test-s0-00001/wer"].shape == (3, 4)  # the original's n x (n + 1)
    assert (arrays["test-s0-00001/wer"][:, 3] == arrays["test-s0-00001/wer_base"]).all()
    assert arrays["curve_wer"].shape == (4,)
    rows = list(csv.DictReader((out / "attribution.csv").read_text().splitlines()))
    assert len(rows) == 16 + 9 and rows[1]["distance_s"] == "1.0"
    assert (out / "attribution.png").read_bytes()[:8] == PNG

    assert cli.main(["attention", "--checkpoint", ckpt, "--out", str(out)]) == 1


def test_attention_whole_recording_writes_the_originals_weight_files(tmp_path, parity_dir,
                                                                     synth_dir):
    torch = pytest.importorskip("torch")
    data = synth_dir(tmp_path / "data", (3.83, 2.55))
    ckpt = str(parity_dir / "rotary_ln" / "checkpoint.pt")
    out = tmp_path / "att"
    assert cli.main(["attention", "--checkpoint", ckpt, "--dataset", "synth", "--data-dir",
                     str(data), "--quiet", "--out", str(out)]) == 0
    for rid, tokens in (("test-s0-00000", 48), ("test-s0-00001", 32)):  # 383, 255 frames
        for layer in range(3):
            w = torch.load(out / "weights" / f"{rid}_{layer}.pt")
            assert w.dtype == torch.bfloat16 and tuple(w.shape) == (1, 2, tokens, tokens)
    assert int(np.load(out / "attention.npz")["queries"]) == 48 + 32  # one pass each
    probs = tmp_path / "probs"
    assert cli.main(["attention", "--checkpoint", ckpt, "--dataset", "synth", "--data-dir",
                     str(data), "--quiet", "--limit", "1", "--weights", "probs",
                     "--weights-format", "npy", "--out", str(probs)]) == 0
    p = np.load(probs / "weights" / "test-s0-00000_2.npy")
    assert p.dtype == np.float32 and p.shape == (1, 2, 48, 48)
    np.testing.assert_allclose(p.sum(-1), 1, atol=1e-5)


@pytest.mark.parametrize("argv, message", [
    (["attention", "--seq-len", "0"], "--seq-len must be an integer >= 1 (got 0)"),
    (["attribution", "--segment", "0"], "--segment must be an integer >= 1 (got 0)"),
    (["attention", "--noise", "gaussian:1e9"], "outside [-50, 100] dB"),
    (["attribution", "--measure", "wer"], "--measure wer (the original's WER matrix) needs"),
])
def test_bad_options_are_one_line(argv, message, tmp_path, capsys):
    audio = tmp_path / "a.wav"
    import soundfile as sf

    sf.write(audio, np.zeros(16000, "f4"), 16000)
    code = None
    try:
        code = cli.main([*argv, "--audio", str(audio), "--out", str(tmp_path / "o")])
    except SystemExit as e:
        code = e.code
    err = capsys.readouterr().err.strip()
    assert code in (1, 2) and message in err and "Traceback" not in err
    assert len(err.splitlines()) <= 2  # argparse: usage line + the error line


def test_figures_from_noise_and_loss_tables(tmp_path, parity_dir, synth_dir, capsys):
    data = synth_dir(tmp_path / "data", (2.55,))
    base = ["--checkpoint", str(parity_dir / "rotary_ln" / "checkpoint.pt"), "--dataset",
            "synth", "--data-dir", str(data), "--overlap-ratio", "0.5", "--out",
            str(tmp_path / "eval"), "--quiet", "--loss"]
    for seq in ("128", "256"):
        for noise in ("none", "gaussian:0", "gaussian:20"):
            assert eval_cli.main(base + ["--seq-len", seq, "--noise", noise]) == 0
    table = tmp_path / "eval" / "results.csv"
    assert cli.main(["figures", str(table), "--out", str(tmp_path / "fig")]) == 0
    for png in ("wer_vs_snr.png", "loss_vs_context.png"):
        assert (tmp_path / "fig" / png).read_bytes()[:8] == PNG
    assert cli.main(["figures", str(tmp_path / "none.csv")]) == 1
    assert "results table not found" in capsys.readouterr().err


def test_attribution_with_noise_differs_and_a_bad_spec_is_one_line(tmp_path, parity_dir,
                                                                   synth_dir, capsys):
    """--noise corrupts the audio as eval --noise does: the same spec and seed give the same
    matrices, another seed or no noise other ones; a bad spec fails in one line, exit 1."""
    data = synth_dir(tmp_path / "data", (2.55,))
    common = ["attribution", "--checkpoint", str(parity_dir / "rotary_ln" / "checkpoint.pt"),
              "--dataset", "synth", "--data-dir", str(data), "--quiet", "--window", "100",
              "--noise-mode", "exact"]

    def logp(name, *extra):
        assert cli.main([*common, "--out", str(tmp_path / name), *extra]) == 0
        return np.load(tmp_path / name / "attribution.npz")["test-s0-00000/logp"]

    clean, noisy = logp("clean"), logp("noisy", "--noise", "gaussian:10")
    assert clean.shape == noisy.shape == (3, 3)
    assert not np.allclose(clean, noisy, rtol=1e-3, atol=1e-3)
    np.testing.assert_array_equal(logp("again", "--noise", "gaussian:10"), noisy)
    assert not np.allclose(logp("seed1", "--noise", "gaussian:10", "--noise-seed", "1"), noisy)
    capsys.readouterr()
    assert cli.main([*common, "--out", str(tmp_path / "bad"), "--noise", "gaussian:loud"]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "gaussian:loud" in err and err.startswith("lcasr-jax analyze:")
    assert not (tmp_path / "bad").exists()
