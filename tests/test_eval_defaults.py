"""`lcasr-jax eval` defaults as the original's eval/run.py: the context from the checkpoint's
config when --seq-len is not given (its `-seq -1`), no overlap, the paper's 0.875 named."""

import json
import shutil
from pathlib import Path

import pytest

from lcasr_jax.eval import cli

SHIPPED = Path(__file__).resolve().parents[1] / "lcasr_jax" / "assets" / "default_model"


def _model_dir_with(tmp_path: Path, original_config: dict) -> Path:
    """A copy of the shipped model dir whose config.json carries `original_config`."""
    dest = tmp_path / "model"
    shutil.copytree(SHIPPED, dest)
    doc = json.loads((dest / "config.json").read_text())
    doc["original_config"] = {"model": doc["original_config"]["model"], **original_config}
    (dest / "config.json").write_text(json.dumps(doc))
    return dest


def test_help_names_the_originals_and_the_papers_settings(capsys):
    with pytest.raises(SystemExit):
        cli.parser().parse_args(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "0.875" in text and "eval/run.py" in text and "audio_chunking.size" in text


def test_context_read_from_the_released_and_the_converted_config(tmp_path):
    pytest.importorskip("torch")
    from lcasr_jax.checkpoints.context import training_context
    from lcasr_jax.checkpoints.convert import flax_to_torch

    shipped = json.loads((SHIPPED / "config.json").read_text())["original_config"]
    assert training_context(SHIPPED) == shipped["sequence"]["max_sequence_length"]
    model = _model_dir_with(tmp_path, {"audio_chunking": {"size": 4096, "overlap": 0}})
    assert training_context(model) == 4096
    pt = flax_to_torch(model, tmp_path / "model.pt")
    assert training_context(pt) == 4096  # the released format: config['audio_chunking']
    assert training_context(_model_dir_with(tmp_path / "none", {})) is None


def test_eval_without_seq_len_uses_the_checkpoints_context(tmp_path, synth_dir, capsys):
    data = synth_dir(tmp_path / "data", (2.55,))
    model = _model_dir_with(tmp_path, {"audio_chunking": {"size": 1024}})
    argv = ["--checkpoint", str(model), "--dataset", "synth", "--data-dir", str(data),
            "--out", str(tmp_path / "out"), "--name", "fx"]
    assert cli.main(argv) == 0
    assert "--seq-len not given: 1024 frames" in capsys.readouterr().err
    (path,) = (tmp_path / "out").glob("synth_test_fx_averaged_moving_window_1024_0_*[0-9a-f].csv")
    assert path.is_file()
