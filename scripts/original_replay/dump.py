"""Write a replay's records as the fixture files (format: tests/fixtures/original_replay/README.md).

- steps.npz     one entry per optimizer step (arrays of length S, STEP_KEYS)
- rows.npz      one entry per (step, row) (ROW_KEYS, `rec_id` strings, `tokens` concatenated,
                row i's tokens = tokens[token_offset[i]: token_offset[i] + n_tokens[i]])
- batches.json  one entry per recording batch (ids, lengths, chunk size, chunks kept, ...)
- norms.npz     `names` (state_dict names), `init` (N,), `norms` (S, N): L2 norms, float64
- snapshots.npz `step<k>/<name>`: all parameters and buffers after optimizer step k
- init.pt       the fresh model in the released checkpoint layout (model, config, ...)
- init_stats.json  per-tensor mean/std of fresh paper-shaped models (6L-256D, 6L-768D)
- meta.json     the original's commit, versions, command, config, corpus, summary counts
"""
from __future__ import annotations

import json
import platform
import subprocess
from pathlib import Path
from typing import Any

import numpy as np

STEP_KEYS = ("step", "batch", "chunk_index", "kept_chunk", "kept_chunks", "ctc_sum",
             "backprop_loss", "grad_scale", "logged_loss", "frames_in_loss", "grad_norm",
             "skipped", "lr", "warmup", "seq_len", "batch_size", "rows", "cur_podcast", "epoch")
ROW_KEYS = ("step", "row", "batch_row", "chunk_start", "audio_length", "valid_frames",
            "out_length", "row_ctc", "feat_sum")


def _commit(original: Path) -> str:
    """The original's commit: its own checkout's HEAD, or the COMMIT file that
    `device_train_parity.sh --fetch` writes into the copy it carries (a folder inside this
    repository, whose HEAD is this project's, not the original's)."""
    if (original / "COMMIT").is_file():
        return (original / "COMMIT").read_text().strip()
    try:
        top = subprocess.run(["git", "-C", str(original), "rev-parse", "--show-toplevel"],
                             check=True, capture_output=True, text=True).stdout.strip()
        if Path(top).resolve() != original.resolve():
            return "unknown (not a git checkout of the original)"
        return subprocess.run(["git", "-C", str(original), "rev-parse", "HEAD"], check=True,
                              capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"


def _portable_config(cfg) -> dict:  # noqa: ANN001 - an omegaconf DictConfig
    """The run's config with this machine's paths replaced by relative placeholders."""
    from omegaconf import OmegaConf

    doc = OmegaConf.to_container(cfg, resolve=True)
    doc["data"]["path"] = "corpus/audio_txt_pairs.json"
    doc["checkpointing"]["dir"] = "checkpoints"
    return doc


def write_dump(out: Path, recorder, captured: dict, cfg, stats: dict | None,  # noqa: ANN001
               stubbed: list[str], original: Path, argv: list[str]) -> None:
    """Write all fixture files of one replay under out."""
    import torch
    from omegaconf import OmegaConf
    from recorder import state_arrays

    out.mkdir(parents=True, exist_ok=True)
    steps = {k: np.array([s[k] for s in recorder.steps]) for k in STEP_KEYS}
    np.savez_compressed(out / "steps.npz", **steps)
    rows = {k: np.array([r[k] for r in recorder.rows]) for k in ROW_KEYS}
    n_tok = np.array([len(r["tokens"]) for r in recorder.rows], dtype=np.int64)
    rows.update(
        rec_id=np.array([r["rec_id"] for r in recorder.rows]), n_tokens=n_tok,
        token_offset=np.concatenate([[0], np.cumsum(n_tok)[:-1]]).astype(np.int64),
        tokens=np.array([t for r in recorder.rows for t in r["tokens"]], dtype=np.int32))
    np.savez_compressed(out / "rows.npz", **rows)
    (out / "batches.json").write_text(json.dumps(recorder.batches, indent=0))

    names = list(captured["init"])
    init_norms = [float(captured["init"][k].double().norm()) for k in names]
    np.savez_compressed(out / "norms.npz", names=np.array(names), init=np.array(init_norms),
                        norms=np.array([[n[k] for k in names] for n in recorder.norms]))
    last = len(recorder.steps)
    snaps = dict(recorder.snapshots)
    snaps[last] = state_arrays(captured["model"])
    np.savez_compressed(out / "snapshots.npz", **{
        f"step{s}/{k}": v for s, arrs in sorted(snaps.items()) for k, v in arrs.items()})

    portable = _portable_config(captured["config"])
    torch.save({"model": captured["init"], "config": OmegaConf.create(portable),
                "podcast_step": 0, "seen_ids": [], "epoch": 0}, out / "init.pt")
    if stats is not None:
        (out / "init_stats.json").write_text(json.dumps(stats, indent=0))
    skipped = [s["step"] for s in recorder.steps if s["skipped"]]
    meta = {
        "original_commit": _commit(original), "torch": torch.__version__,
        "python": platform.python_version(), "numpy": np.__version__,
        "command": " ".join(["python"] + argv), "stubbed_modules": stubbed,
        "device": "cuda" if torch.cuda.is_available() else "cpu",
        "dtype": cfg.training.dtype, "config": portable,
        "corpus": {"seed": int(argv_value(argv, "--corpus-seed", 0)),
                   "n": int(argv_value(argv, "--corpus-n", 20))},
        "n_steps": last, "n_batches": len(recorder.batches), "skipped_steps": skipped,
        "snapshot_steps": sorted(snaps), "last_step": last,
        "warmup_to_cosine_step": next((s["step"] for s in recorder.steps if not s["warmup"]),
                                      None),
        "seq_len_stages": sorted({s["seq_len"] for s in recorder.steps}),
        "skipped_chunks": [{"batch": b["batch"], "chunk_index": k}
                           for b in recorder.batches
                           for k in range(b.get("n_splits", 0)) if k not in b["used_chunks"]],
    }
    (out / "meta.json").write_text(json.dumps(meta, indent=1))


def argv_value(argv: list[str], flag: str, default: Any) -> Any:
    """The value after flag in argv (or `flag=value`), else default."""
    for i, a in enumerate(argv):
        if a == flag and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith(flag + "="):
            return a.split("=", 1)[1]
    return default
