"""Seeded noise corruption (eval.noise) against its definition, and through `eval --noise`."""

import csv

import numpy as np
import pytest
import soundfile as sf

from lcasr_jax.eval import cli
from lcasr_jax.eval.noise import add_noise, corrupt, parse_noise, valid_mask

SR = 16000


def _speechlike(seconds=2.0, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    env = 0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)
    return (0.2 * env * np.sin(2 * np.pi * 220 * t) + 0.01 * rng.normal(size=t.size)).astype("f4")


def _measured(clean, noisy, valid=None):
    """10 log10(P_signal / P_noise) from the definition, float64."""
    c, n = clean.astype(np.float64), noisy.astype(np.float64) - clean.astype(np.float64)
    if valid is not None:
        c, n = c[valid], n[valid]
    return 10 * np.log10(np.mean(c ** 2) / np.mean(n ** 2))


@pytest.mark.parametrize("snr", [-5.0, 0.0, 7.5, 30.0])
def test_gaussian_hits_the_requested_snr(snr):
    clean = _speechlike()
    noisy, reported = add_noise(clean, parse_noise(f"gaussian:{snr}"), 0, "rec-a")
    assert noisy.dtype == np.float32 and noisy.shape == clean.shape
    assert abs(_measured(clean, noisy) - snr) < 0.1
    assert abs(reported - _measured(clean, noisy)) < 1e-6
    noise = noisy.astype(np.float64) - clean
    assert abs(noise.mean()) < 5 * noise.std() / np.sqrt(noise.size)  # zero-mean white noise
    assert abs(np.corrcoef(noise[1:], noise[:-1])[0, 1]) < 0.02


def test_same_seed_bit_identical_other_recording_or_seed_differs():
    clean = _speechlike()
    spec = parse_noise("gaussian:5")
    a, _ = add_noise(clean, spec, 7, "rec-a")
    b, _ = add_noise(clean.copy(), spec, 7, "rec-a")
    assert a.tobytes() == b.tobytes()
    other_rec, _ = add_noise(clean, spec, 7, "rec-b")
    other_seed, _ = add_noise(clean, spec, 8, "rec-a")
    for other in (other_rec, other_seed):
        d1, d2 = a - clean, other - clean
        assert abs(np.corrcoef(d1, d2)[0, 1]) < 0.05  # independent draws, not a shifted copy


def test_snr_range_drawn_per_recording():
    clean = _speechlike(1.0)
    spec = parse_noise("gaussian:0:20")
    snrs = [add_noise(clean, spec, 0, f"rec-{i}")[1] for i in range(20)]
    assert all(0 - 0.1 <= s <= 20 + 0.1 for s in snrs)
    assert np.std(snrs) > 3  # drawn, not fixed
    assert snrs[3] == add_noise(clean, spec, 0, "rec-3")[1]


def test_snr_is_measured_on_valid_audio_only():
    clean = _speechlike(2.0)
    clean[:SR // 2] *= 20  # a loud ignored region must not count
    valid = valid_mask(clean.size, ((0.0, 0.5),), SR)
    assert valid.sum() == clean.size - SR // 2
    noisy, reported = add_noise(clean, parse_noise("gaussian:10"), 0, "r", valid)
    assert abs(_measured(clean, noisy, valid) - 10) < 0.1 and abs(reported - 10) < 0.1
    assert abs(_measured(clean, noisy) - 10) > 5  # over all samples it is not 10 dB


def test_background_is_a_looped_crop_of_one_file_at_the_snr(tmp_path):
    folder = tmp_path / "music"
    folder.mkdir()
    period = 4001  # samples: the file is shorter than the recording, so it loops
    rng = np.random.default_rng(1)
    files = [rng.uniform(-0.5, 0.5, period).astype("f4") for _ in range(2)]
    for i, x in enumerate(files):
        sf.write(folder / f"n{i}.wav", x, SR, subtype="FLOAT")
    clean = _speechlike(1.5)
    spec = parse_noise(f"background:{folder}:3")
    noisy, reported = add_noise(clean, spec, 0, "rec-a")
    assert abs(_measured(clean, noisy) - 3) < 0.1 and abs(reported - 3) < 0.1
    added = noisy.astype(np.float64) - clean
    matches = []
    for x in files:  # added = gain * x rolled to some offset, tiled
        for offset in range(period):
            tiled = np.resize(np.roll(x, -offset), clean.size).astype(np.float64)
            gain = added @ tiled / (tiled @ tiled)
            if np.abs(added - gain * tiled).max() < 1e-5:
                matches.append(offset)
    assert len(matches) == 1
    again, _ = add_noise(clean, spec, 0, "rec-a")
    assert again.tobytes() == noisy.tobytes()


@pytest.mark.parametrize("text, message", [
    ("pink:10", "kind must be"), ("gaussian", "expected gaussian:SNR"),
    ("gaussian:loud", "expected gaussian:SNR"), ("gaussian:20:10", "is above HIGH"),
    ("background:/no/such/dir:5", "noise file or folder not found"),
    ("gaussian:1e9", "outside"), ("gaussian:-300", "outside"), ("gaussian:-5:300", "outside"),
    ("background:/some/music", "needs an SNR"), ("background:music.wav", "needs an SNR"),
])
def test_bad_specs_are_one_line_errors(text, message):
    with pytest.raises(ValueError, match=message):
        parse_noise(text)


def test_eval_noise_columns_and_stem(tmp_path, parity_dir, synth_dir):
    data = synth_dir(tmp_path / "data", (3.83, 2.55))
    ckpt = str(parity_dir / "rotary_ln" / "checkpoint.pt")
    argv = ["--checkpoint", ckpt, "--dataset", "synth", "--data-dir", str(data),
            "--seq-len", "128", "--overlap-ratio", "0.5", "--out", str(tmp_path / "out"),
            "--name", "fx", "--quiet"]
    assert cli.main(argv + ["--noise", "gaussian:0:10", "--noise-seed", "3",
                            "--noise-mode", "exact"]) == 0
    assert cli.main(argv) == 0
    out = tmp_path / "out"
    (noisy,) = out.glob(
        "synth_test_fx_averaged_moving_window_128_64_gaussian-0-10dB-s3-exact_*[0-9a-f].csv")
    rows = [*csv.DictReader(noisy.with_name(f"{noisy.stem}_recordings.csv").read_text()
                            .splitlines()), *csv.DictReader(noisy.read_text().splitlines())]
    assert [r["noise"] for r in rows] == ["gaussian:0:10"] * 3
    snrs = [float(r["snr_db"]) for r in rows]
    assert all(0 <= s <= 10 for s in snrs) and snrs[0] != snrs[1]
    assert snrs[2] == pytest.approx(np.mean(snrs[:2]))
    (clean,) = out.glob("synth_test_fx_averaged_moving_window_128_64_data-*[0-9a-f].csv")
    assert "noise" not in clean.read_text().splitlines()[0]  # the original's columns only
    table = list(csv.DictReader((tmp_path / "out" / "results.csv").read_text().splitlines()))
    assert [r["noise"] for r in table] == ["gaussian:0:10", "none"]  # overall rows only
    per_recording = (tmp_path / "out" / "results_recordings.csv").read_text().splitlines()
    assert [r["noise"] for r in csv.DictReader(per_recording)] == \
        ["gaussian:0:10"] * 2 + ["none"] * 2
    assert cli.main(argv + ["--noise", "gaussian:x"]) == 1


def test_sweep_noise_axis_reaches_the_results(tmp_path, parity_dir, synth_dir):
    from pathlib import Path

    from lcasr_jax.eval import report
    from lcasr_jax.sweeps import cli as sweep_cli

    data = synth_dir(tmp_path / "data", (2.55,))
    demo = Path(__file__).resolve().parents[1] / "experiments" / "sweeps" / "demo.py"
    argv = ["--config", str(demo), "--out", str(tmp_path / "sw"), "--quiet",
            "--config.contexts=(128,)", "--config.context_unit=frames",
            "--config.overlap_ratios=(0.5,)", f"--config.datasets.synth.data_dir={data}",
            "--config.datasets.synth.generate_hours=0", "--config.models.shipped.repeats=(1,)",
            f"--config.models.shipped.checkpoint={parity_dir / 'rotary_ln' / 'checkpoint.pt'}",
            "--config.options.noise=('none','gaussian:5')"]
    assert sweep_cli.main(argv) == 0
    rows = report.read_table(tmp_path / "sw" / "results.csv")
    assert {r["recording"] for r in rows} == {"all"}  # per-recording rows in their own file
    assert [r["noise"] for r in rows] == ["none", "gaussian:5"]
    assert rows[0]["snr_db"] == "" and abs(float(rows[1]["snr_db"]) - 5) < 0.1


# The original's noise (rev16_gaussian_noise / rev16_background_noise run.py), rebuilt here
# with audiomentations itself: reseed numpy and random with 17925, then the transform, p=1.
am = pytest.importorskip("audiomentations")


def _original_gaussian(x, low, high):
    import random

    np.random.seed(17925)
    random.seed(17925)
    t = am.AddGaussianSNR(min_snr_db=low, max_snr_db=high, p=1.0)
    return t(x[None], sample_rate=16000)[0]  # (1, samples), as the original passes it


def _original_background(x, path, low, high):
    import random

    np.random.seed(17925)
    random.seed(17925)
    t = am.AddBackgroundNoise(sounds_path=str(path), min_snr_db=low, max_snr_db=high, p=1.0)
    return t(x, sample_rate=16000)


def test_original_gaussian_is_audiomentations_reseeded_per_recording():
    import random

    spec = parse_noise("gaussian:-5:30")
    recs = {"a": _speechlike(1.0, seed=1), "b": 3 * _speechlike(2.5, seed=2)}
    added = {}
    for rid, x in recs.items():
        state = np.random.get_state()[1].copy(), random.getstate()
        got, snr = corrupt(x, spec, "original", None, rid)
        assert (np.random.get_state()[1] == state[0]).all() and random.getstate() == state[1]
        want = _original_gaussian(x, -5.0, 30.0)
        assert got.dtype == np.float32 and got.tobytes() == want.tobytes()
        added[rid] = got.astype(np.float64) - x
        assert snr == pytest.approx(_measured(x, got), abs=1e-9)  # on all samples
    # one SNR draw shared by all recordings, and the same noise sequence scaled
    a, b = added["a"], added["b"][:added["a"].size]
    assert np.corrcoef(a, b)[0, 1] > 0.9999  # float32 rounding of the sums aside
    random.seed(17925)
    random.random()  # should_apply
    snr = random.uniform(-5.0, 30.0)
    for rid, x in recs.items():
        assert abs(_measured(x, x + added[rid]) - snr) < 0.1


def test_original_background_is_audiomentations_with_a_file_or_folder(tmp_path):
    folder = tmp_path / "music"
    folder.mkdir()
    rng = np.random.default_rng(3)
    for i, n in enumerate((5 * SR, 3 * SR)):
        sf.write(folder / f"m{i}.wav", rng.uniform(-0.3, 0.3, n).astype("f4"), SR,
                 subtype="FLOAT")
    x = _speechlike(2.0)
    for path in (folder, folder / "m0.wav"):
        got, _ = corrupt(x, parse_noise(f"background:{path}:0:10"), "original", None, "r")
        want = _original_background(x, path, 0.0, 10.0)
        np.testing.assert_array_equal(got, want)
        assert not np.array_equal(got, x)


def test_original_mode_other_seed_differs():
    x = _speechlike(1.0)
    spec = parse_noise("gaussian:5")
    a, _ = corrupt(x, spec, "original", None, "r")
    b, _ = corrupt(x, spec, "original", 17925, "other-id")
    c, _ = corrupt(x, spec, "original", 1, "r")
    assert a.tobytes() == b.tobytes() and a.tobytes() != c.tobytes()


def test_eval_noise_original_mode_shares_one_draw(tmp_path, parity_dir, synth_dir):
    import random

    data = synth_dir(tmp_path / "data", (3.83, 2.55))
    ckpt = str(parity_dir / "rotary_ln" / "checkpoint.pt")
    argv = ["--checkpoint", ckpt, "--dataset", "synth", "--data-dir", str(data),
            "--seq-len", "128", "--out", str(tmp_path / "out"), "--name", "fx", "--quiet",
            "--noise", "gaussian:0:10"]
    assert cli.main(argv) == 0
    (path,) = (tmp_path / "out").glob("synth_test_fx_*_gaussian-0-10dB-s17925_*[0-9a-f].csv")
    rows = [*csv.DictReader(path.with_name(f"{path.stem}_recordings.csv").read_text()
                            .splitlines()), *csv.DictReader(path.read_text().splitlines())]
    assert len(rows) == 3
    random.seed(17925)
    random.random()
    snr = random.uniform(0.0, 10.0)
    assert all(abs(float(r["snr_db"]) - snr) < 0.1 for r in rows)
    assert {r["noise_mode"] for r in rows} == {"original"}
    assert {r["noise_seed"] for r in rows} == {"17925"}
