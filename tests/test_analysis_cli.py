"""`lcasr-jax analyze attention / attribution / figures` end to end on tiny inputs."""

import csv

import numpy as np

from lcasr_jax import cli as top
from lcasr_jax.analysis import cli
from lcasr_jax.eval import cli as eval_cli

PNG = b"\x89PNG\r\n\x1a\n"


def test_attention_and_attribution_write_arrays_csv_and_pngs(tmp_path, parity_dir, synth_dir):
    data = synth_dir(tmp_path / "data", (3.83, 2.55))
    ckpt = str(parity_dir / "rotary_ln" / "checkpoint.pt")
    common = ["--checkpoint", ckpt, "--dataset", "synth", "--data-dir", str(data), "--quiet"]
    out = tmp_path / "att"
    assert top.main(["analyze", "attention", *common, "--seq-len", "256", "--windows", "2",
                     "--out", str(out)]) == 0
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
    assert arrays["test-s0-00001/wer"].shape == (3, 3)
    assert arrays["curve_logp"].shape == (4,)
    rows = list(csv.DictReader((out / "attribution.csv").read_text().splitlines()))
    assert len(rows) == 16 + 9 and rows[1]["distance_s"] == "1.0"
    assert (out / "attribution.png").read_bytes()[:8] == PNG

    assert cli.main(["attention", "--checkpoint", ckpt, "--out", str(out)]) == 1


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
              "--dataset", "synth", "--data-dir", str(data), "--quiet", "--window", "100"]

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
