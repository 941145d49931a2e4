"""The bad-input catalogue's shared helpers (issues 16 and 24): run a command in-process and
check that it fails with one clear error naming the file or field; small inputs. (The
fixtures `released`, `model_dir` and `model_copy`, the parity model: conftest.py.)"""

import json
from pathlib import Path

import numpy as np
import soundfile as sf

from lcasr_jax import cli

REPO = Path(__file__).resolve().parents[1]
SR = 16000


def run(argv, capsys):
    """(exit code, stdout, stderr lines) of `lcasr-jax ARGV` run in-process."""
    try:
        code = cli.main([str(a) for a in argv])
    except SystemExit as e:  # argparse
        code = e.code
    out, err = capsys.readouterr()
    return code, out, [line for line in err.splitlines() if line.strip()]


def fails(argv, capsys, *needles, code=None):
    """Run a command that must fail with <= 3 error lines containing every needle."""
    got, _, err = run(argv, capsys)
    assert got != 0 and (code is None or got == code), (got, err)
    assert 1 <= len(err) <= 3, err
    text = "\n".join(err)
    assert "Traceback" not in text
    for needle in needles:
        assert str(needle) in text, (needle, err)
    return text


def noise(path: Path, seconds: float = 2.0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(len(str(path)))
    sf.write(path, (0.1 * rng.normal(size=int(seconds * SR))).astype("f4"), SR)
    return path


def manifest(root: Path, entries: list[dict], name: str = "test.jsonl") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for e in entries:
        if not (root / e["audio"]).exists():
            noise(root / e["audio"])
    path = root / name
    path.write_text("".join(json.dumps(e) + "\n" for e in entries))
    return path


def eval_argv(model, data, out, *extra):
    return ["eval", "--checkpoint", model, "--dataset", "manifest", "--data-dir", data,
            "--out", out, "--quiet", "--seq-len", "128", *extra]
