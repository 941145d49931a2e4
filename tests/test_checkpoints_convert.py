"""The converter: exact round trip, safe unpickling, and one-line errors on bad input."""

from __future__ import annotations

import collections
import os
import runpy
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from lcasr_jax.checkpoints import convert, torch_format
from lcasr_jax.checkpoints.torch_format import CheckpointError

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def released(parity_dir):
    """The trusted fixture checkpoint as a dict (to derive broken variants from)."""
    path = parity_dir / "rotary_ln" / "checkpoint.pt"
    return path, torch.load(path, map_location="cpu", weights_only=False)


def _save(ckpt, path: Path) -> Path:
    torch.save(ckpt, path)
    return path


@pytest.mark.parametrize("name", ["rotary_ln", "nopos_ln"])
def test_round_trip_torch_flax_torch_is_exact(parity_dir, tmp_path, name):
    src = parity_dir / name / "checkpoint.pt"
    model_dir = convert.torch_to_flax(src, tmp_path / "model")
    out = convert.flax_to_torch(model_dir, tmp_path / "back.pt")
    original = torch.load(src, map_location="cpu", weights_only=False)
    back = torch.load(out, map_location="cpu", weights_only=False)
    assert list(back["model"]) == list(original["model"])  # same keys, same order
    for key, tensor in original["model"].items():
        assert back["model"][key].dtype == tensor.dtype, key
        assert torch.equal(back["model"][key], tensor), key
    # The config travels back as an omegaconf DictConfig the original loader understands.
    from omegaconf import DictConfig, OmegaConf

    assert isinstance(back["config"], DictConfig)
    assert OmegaConf.to_container(back["config"]) == OmegaConf.to_container(original["config"])
    assert back["podcast_step"] == original["podcast_step"]


def test_cli_scripts_convert_and_export(parity_dir, tmp_path, monkeypatch, capsys):
    """The scripts in convert/ run as __main__ (in this process: no interpreter start-up)."""
    src = parity_dir / "nopos_ln" / "checkpoint.pt"
    monkeypatch.chdir(tmp_path)

    def run(script, *args):
        monkeypatch.setattr(sys, "argv", [script, *args])
        with pytest.raises(SystemExit) as info:
            runpy.run_path(str(REPO / "convert" / script), run_name="__main__")
        out, err = capsys.readouterr()
        return info.value.code, out, err

    code, out, err = run("torch_to_flax.py", str(src), "m")
    assert code == 0 and "wrote" in out, err
    assert (tmp_path / "m" / "config.json").is_file()
    code, _, err = run("torch_to_flax.py", str(src), "m")
    assert code == 1 and "not empty" in err and len(err.splitlines()) == 1
    code, _, err = run("torch_to_flax.py", "absent.pt", "m")  # dest checked before reading
    assert code == 1 and "not empty" in err and len(err.splitlines()) == 1
    code, out, err = run("flax_to_torch.py", "m", "out.pt")
    assert code == 0 and "wrote" in out, err
    assert (tmp_path / "out.pt").is_file()


class _Exploit:
    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    exploit = _Exploit()
    exploit.marker = marker
    path = _save({"model": {}, "config": exploit}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="refused to load: it references"):
        torch_format.load_released(path)
    assert not marker.exists()


def _expect_error(path: Path, dest: Path, pattern: str) -> None:
    with pytest.raises(CheckpointError, match=pattern) as info:
        convert.torch_to_flax(path, dest)
    assert str(path) in str(info.value) and "\n" not in str(info.value)
    assert not dest.exists()
    assert not [p for p in dest.parent.iterdir() if ".partial-" in p.name]


def test_missing_key(released, tmp_path):
    _, ckpt = released
    ckpt = dict(ckpt, model=collections.OrderedDict(ckpt["model"]))
    del ckpt["model"]["layers.1.attend.fn.out_proj.weight"]
    _expect_error(_save(ckpt, tmp_path / "c.pt"), tmp_path / "out",
                  "missing key 'layers.1.attend.fn.out_proj.weight'")


def test_unexpected_key(released, tmp_path):
    _, ckpt = released
    ckpt = dict(ckpt, model=collections.OrderedDict(ckpt["model"]))
    ckpt["model"]["layers.0.extra.weight"] = torch.zeros(3)
    _expect_error(_save(ckpt, tmp_path / "c.pt"), tmp_path / "out",
                  "unexpected key 'layers.0.extra.weight'")


def test_shape_mismatch(released, tmp_path):
    _, ckpt = released
    ckpt = dict(ckpt, model=collections.OrderedDict(ckpt["model"]))
    ckpt["model"]["decoder.ff.weight"] = torch.zeros(4096, 65)
    _expect_error(_save(ckpt, tmp_path / "c.pt"), tmp_path / "out",
                  r"shape mismatch for 'decoder.ff.weight': got \(4096, 65\)")


def test_unknown_config_key(released, tmp_path):
    from omegaconf import OmegaConf

    _, ckpt = released
    cfg = OmegaConf.to_container(ckpt["config"])
    cfg["model"]["mystery_option"] = True
    ckpt = dict(ckpt, config=OmegaConf.create(cfg))
    _expect_error(_save(ckpt, tmp_path / "c.pt"), tmp_path / "out",
                  "unknown model config key 'mystery_option'")


def test_missing_config_and_not_a_checkpoint(released, tmp_path):
    _, ckpt = released
    _expect_error(_save({"model": ckpt["model"]}, tmp_path / "c.pt"), tmp_path / "out",
                  "missing top-level entry 'config'")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"definitely not a checkpoint")
    _expect_error(junk, tmp_path / "out2", "not a torch checkpoint")
    _expect_error(tmp_path / "absent.pt", tmp_path / "out3", "absent.pt: checkpoint not found")


def test_dest_not_half_written_when_saving_fails(parity_dir, tmp_path, monkeypatch):
    from lcasr_jax.checkpoints import store

    def broken_dumps(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(store.json, "dumps", broken_dumps)
    with pytest.raises(OSError):
        convert.torch_to_flax(parity_dir / "nopos_ln" / "checkpoint.pt", tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_converted_dir_loads_with_readable_config(parity_dir, tmp_path):
    from lcasr_jax.checkpoints import store

    dest = convert.torch_to_flax(parity_dir / "rotary_ln" / "checkpoint.pt", tmp_path / "m")
    cfg = store.load_config(dest)
    assert cfg.model.n_layers == 3 and cfg.model.rotary_base_freq == 1_500_000.0
    assert cfg.original_config.model.use_rotary is True
    _, variables = store.load_model_dir(dest)
    inv_freq = variables["buffers"]["rotary"]["inv_freq"]
    sd, _, _ = torch_format.load_released(parity_dir / "rotary_ln" / "checkpoint.pt")
    np.testing.assert_array_equal(inv_freq, sd["rotary_pos_emb.inv_freq"])  # buffer wins


def test_options_that_change_the_computation_are_refused_when_on(released, tmp_path):
    from omegaconf import OmegaConf

    _, ckpt = released
    cfg = OmegaConf.to_container(ckpt["config"])
    cfg["model"]["self_condition_subsampling"] = False  # off: accepted, as in released configs
    convert.torch_to_flax(_save(dict(ckpt, config=OmegaConf.create(cfg)), tmp_path / "ok.pt"),
                          tmp_path / "ok")
    cfg["model"]["self_condition_subsampling"] = True
    _expect_error(_save(dict(ckpt, config=OmegaConf.create(cfg)), tmp_path / "c.pt"),
                  tmp_path / "out", "unsupported model config option self_condition_subsampling")


def test_destination_of_the_wrong_kind_is_a_one_line_error(parity_dir, tmp_path, capsys):
    from lcasr_jax.checkpoints.cli import export_main, main

    src = parity_dir / "nopos_ln" / "checkpoint.pt"
    (tmp_path / "file").write_text("x")
    assert main([str(src), str(tmp_path / "file")]) == 1
    assert "is not a directory" in capsys.readouterr().err
    model_dir = convert.torch_to_flax(src, tmp_path / "m")
    assert export_main([str(model_dir), str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "is a directory" in err and len(err.strip().splitlines()) == 1


def test_a_model_trained_here_exports_a_checkpoint_the_converter_reads(tmp_path):
    """A trained model dir keeps its training config as `original_config`, whose `model`
    section is this project's: the export writes the released format's `model` section
    instead (the other sections kept), so `convert` reads the file back."""
    import jax

    from lcasr_jax.checkpoints import store

    shipped = REPO / "lcasr_jax" / "assets" / "default_model"
    pt = convert.flax_to_torch(shipped, tmp_path / "model.pt")
    cfg, variables, original, _ = convert.read_released(pt)
    shipped_cfg, shipped_variables = store.load_model_dir(shipped)
    assert (cfg.n_layers, cfg.d_model, cfg.rotary_base_freq) == (
        shipped_cfg.n_layers, shipped_cfg.d_model, shipped_cfg.rotary_base_freq)
    trained = store.load_config(shipped).to_dict()["original_config"]
    assert original["sequence"] == trained["sequence"]
    back = dict(jax.tree_util.tree_flatten_with_path(variables["params"])[0])
    for path, value in jax.tree_util.tree_flatten_with_path(shipped_variables["params"])[0]:
        np.testing.assert_array_equal(np.asarray(back[path], np.float32),
                                      np.asarray(value, np.float32))
