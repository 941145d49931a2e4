"""Bad-input catalogue, issue 24: model files. Non-finite weights, config.json edits the
arrays cannot show, an empty checksum list, half a model dir, two converts into one new
destination, the folder mode of a converted dir. Test names carry issue 24's case numbers."""

import json
import os
import shutil

import numpy as np
import pytest
from catalogue import fails, noise, run


def _with_nan(released, tmp_path):
    """The released fixture with one NaN in one weight (as a broken training leaves it)."""
    import torch

    ckpt = torch.load(released, weights_only=False)
    ckpt["model"]["layers.1.ff1.fn.fn.fc1.weight"][3, 5] = float("nan")
    torch.save(ckpt, tmp_path / "nan.pt")
    return tmp_path / "nan.pt"


def test_10_nan_weight_is_refused_by_convert_naming_the_tensor(released, tmp_path, capsys):
    bad = _with_nan(released, tmp_path)
    fails(["convert", bad, tmp_path / "m"], capsys, bad, "layers.1.ff1.fn.fn.fc1.weight",
          "1 non-finite value(s) (nan)")
    assert not (tmp_path / "m").exists()
    fails(["transcribe", noise(tmp_path / "a.wav"), "--checkpoint", bad], capsys,
          "layers.1.ff1.fn.fn.fc1.weight", "non-finite")


def test_10_nan_in_a_model_dir_is_refused_by_transcribe_and_eval(model_dir, tmp_path, capsys):
    import jax
    from catalogue import eval_argv, manifest

    from lcasr_jax.checkpoints import store

    cfg, variables = store.load_model_dir(model_dir)
    variables = jax.tree.map(np.array, variables)  # writable copies
    variables["params"]["layer_0"]["attn"]["qkv"]["kernel"].reshape(-1)[7] = np.inf
    bad = store.save_model_dir(tmp_path / "bad", cfg, variables)
    fails(["transcribe", noise(tmp_path / "a.wav"), "--checkpoint", bad], capsys,
          bad / "variables", "params/layer_0/attn/qkv/kernel", "(inf)")
    data = manifest(tmp_path / "d", [{"audio": "x.wav", "text": "good morning"}])
    fails(eval_argv(bad, data, tmp_path / "out"), capsys, "params/layer_0/attn/qkv/kernel")
    assert not (tmp_path / "out" / "results.csv").exists()


def test_10_non_finite_posteriors_name_the_recording(model_dir, tmp_path):
    """Finite weights can still give non-finite posteriors (here: a feed-forward weight so
    large that float32 overflows); the transcript is refused, naming the audio."""
    import jax

    from lcasr_jax import load_pretrained
    from lcasr_jax.eval.transcribe import transcribe

    model, variables = load_pretrained(model_dir)
    variables = jax.tree.map(np.array, variables)
    variables["params"]["layer_0"]["ff1_fn"]["fc1"]["kernel"][:] = 3e38
    audio = noise(tmp_path / "a.wav")
    with pytest.raises(ValueError, match=f"{audio}: the model's posteriors are not finite"):
        transcribe([str(audio)], model, variables, 128, 64, "averaged_moving_window")


@pytest.mark.parametrize("field, value", [("self_conditioning", False),
                                          ("rotary_base_freq", 10000.0),
                                          ("rotary_interpolation_factor", 2.0)])
def test_13_config_json_edits_the_arrays_cannot_show_are_refused(model_copy, tmp_path, capsys,
                                                                 field, value):
    cfg_file = model_copy / "config.json"
    doc = json.loads(cfg_file.read_text())
    assert doc["model"][field] != value
    doc["model"][field] = value
    cfg_file.write_text(json.dumps(doc))
    fails(["transcribe", noise(tmp_path / "a.wav"), "--checkpoint", model_copy], capsys,
          cfg_file, f"model.{field} is {json.dumps(value)} but the arrays were saved with")


def test_13_attention_window_stays_editable(model_copy, tmp_path, capsys):
    cfg_file = model_copy / "config.json"
    doc = json.loads(cfg_file.read_text())
    doc["model"]["attention_window"] = [16, 16]
    cfg_file.write_text(json.dumps(doc))
    code, _, err = run(["transcribe", noise(tmp_path / "a.wav"), "--checkpoint", model_copy,
                        "--seq-len", "128", "--quiet"], capsys)
    assert code == 0, err


def test_14_empty_checksum_list_is_refused(model_copy, tmp_path, capsys):
    listing = model_copy / "checksums.json"
    doc = json.loads(listing.read_text())
    listing.write_text(json.dumps({**doc, "files": {}}))
    fails(["transcribe", noise(tmp_path / "a.wav"), "--checkpoint", model_copy], capsys,
          listing, "names no file")


@pytest.mark.parametrize("remove, needle", [("config.json", "config.json is missing"),
                                            ("variables", "variables/ is missing")])
def test_16_half_a_model_dir_says_what_is_missing(model_copy, tmp_path, capsys, remove, needle):
    victim = model_copy / remove
    shutil.rmtree(victim) if victim.is_dir() else victim.unlink()
    text = fails(["transcribe", noise(tmp_path / "a.wav"), "--checkpoint", model_copy], capsys,
                 model_copy, needle)
    assert ".pt" not in text


def test_16_converted_dir_follows_the_umask(released, tmp_path):
    from lcasr_jax.checkpoints import convert

    old = os.umask(0o022)
    try:
        dest = convert.torch_to_flax(released, tmp_path / "m")
    finally:
        os.umask(old)
    assert dest.stat().st_mode & 0o777 == 0o755


def test_04_two_converts_into_one_new_destination(released, tmp_path, capsys, monkeypatch):
    """Convert B finishes into DEST while convert A (started when DEST did not exist) is
    still writing: A must not replace B's model without --overwrite."""
    from lcasr_jax.checkpoints import convert, integrity

    dest = tmp_path / "m"
    write = integrity.write_checksums
    other = []

    def another_convert_finishes_meanwhile(root, *args, **kwargs):
        if not other:  # convert A's last file: convert B runs to the end in between
            other.append("B")
            convert.torch_to_flax(released, dest)
            (dest / "marker").write_text("B")
        return write(root, *args, **kwargs)

    monkeypatch.setattr(integrity, "write_checksums", another_convert_finishes_meanwhile)
    fails(["convert", released, dest], capsys, dest, "written by another process meanwhile")
    assert (dest / "marker").read_text() == "B"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # no temporary folder left
