"""Training batch sources behind one protocol (`BatchSource`), chosen by `cfg.data.kind`.

- `synthetic`: deterministic token-pattern spectrograms, no audio (`synthetic.py`);
- `corpus`: a built TFDS ArrayRecord dataset (`tfds.py`), chunked by the data loader;
- `recordings`: a folder of recording JSONs + audio, features computed on first use
  (`recordings.py`; no tfds needed), chunked by the data loader;
- `original_pairs`: a corpus in the original's training format, `data.path` its
  audio_txt_pairs.json (`original_pairs.py`; spectrograms as .pt files, needs torch).
- `dry`: a folder of dry recordings (`data synth --dry`), augmented and featurised on the
  accelerator afresh every epoch (`dry.py`, `cfg.augment`), chunked by the data loader.

The loader-backed kinds share `chunked.ChunkedSource`, the adapter from random-access
recordings to the protocol.
"""

from __future__ import annotations

from typing import Any

from lcasr_jax.data.sources.base import BatchSource
from lcasr_jax.data.sources.chunked import ChunkedSource
from lcasr_jax.data.sources.tfds import open_split

KINDS = ("synthetic", "corpus", "recordings", "original_pairs", "dry")


def make_source(cfg: Any, process: tuple[int, int] | None = None) -> BatchSource:
    """The batch source named by cfg.data.kind, reading cfg.data.split: the share of process
    `process` = (index, count), by default jax's (each process its own; (0, 1): all of it)."""
    kind, (index, count) = cfg.data.kind, process or (None, None)
    if kind == "synthetic":
        from lcasr_jax.data.sources.synthetic import SyntheticSource

        return SyntheticSource(seed=cfg.seed, recordings_per_epoch=cfg.data.synthetic_recordings,
                               tokens_per_second=cfg.data.synthetic_tokens_per_second,
                               feat_in=cfg.model.feat_in, process_index=index,
                               process_count=count)
    if kind not in KINDS:
        raise ValueError(f"data.kind={kind!r} is not supported ({', '.join(KINDS)})")
    if not cfg.data.path:
        raise ValueError("data.path is empty: pass --config.data.path=DIR")

    if kind == "original_pairs":
        from lcasr_jax.data.sources.original_pairs import OriginalPairs

        examples = OriginalPairs.from_json(cfg.data.path)
    elif kind == "dry":
        from lcasr_jax.data.augment import AugmentConfig
        from lcasr_jax.data.sources.dry import DryRecordingsSource

        examples = DryRecordingsSource.from_dir(
            cfg.data.path, cfg.data.split, AugmentConfig.from_dict(dict(cfg.augment)), cfg.seed)
    elif kind == "recordings":
        from lcasr_jax.data.sources.recordings import RecordingsSource

        examples = RecordingsSource.from_dir(cfg.data.path, cfg.data.split,
                                             cfg.data.get("resampler", "soxr"))
    else:
        examples = open_split(cfg.data.path, cfg.data.split)
    return ChunkedSource(examples, seed=cfg.seed, process=process)


__all__ = ["KINDS", "BatchSource", "make_source"]
