"""Default training config (ml_collections) that the files in experiments/ start from.

Units: sequence lengths in spectrogram frames (100 per second), schedule positions in
recordings seen (by all processes), `warmup_steps` in optimizer steps.

Batching (`train.batching`): 'slots' (default) keeps every row of every step busy: a slot
whose recording ends takes the next one of a uniform shuffle, so every step is full and
schedules move per step; 'original' is exp/train.py's walk (`train/original.py`): recordings
in its duration-sorted, group-shuffled batches, chunk k of every recording of a batch in one
step (tail steps have fewer rows and weigh less), empty-text chunks skipped, lr and sequence
stages switched only between recording batches; `lockstep_shapes` 'padded' pads each step to
(batch, chunk) for one compiled shape, 'exact' gives the original's tensors (one compile per
shape: tests). `original_python_seed`: the seed of Python's `random` that draws the later
epochs' loader seeds (exp/train.py `train()`: training.random_seed, 12345 when unset there;
-1 = `seed`, as in every paper template, which sets training.random_seed). `nonfinite`:
'zero' counts a row without an alignment as 0 (targets longer than the loader's
max_target_len truncated); 'skip' skips the optimizer step as GradScaler does.
`compile_ahead` ('auto': on off the CPU, one process): the next `compile_ahead_stages`
sequence stages' steps are compiled on a thread, in schedule order, while this stage trains
(`train/ahead.py`); early stages are short, so one stage ahead does not hide a compile.
`gpu_compile`: the XLA flag preset for the GPU compiler (`train/gpu_compile.py`: 'xla',
XLA's defaults; 'cublas', no Triton GEMMs; 'fast', no autotuning either), applied by the
train CLI before jax starts.

`sequence.batch_size` is per process: each process's source yields that many rows (halved
by the schedule as the length doubles), so the global batch is batch_size x processes and
the loss is normalised by its real rows, as one process with the global batch would be
(the paper's 704 on P processes: batch_size=704 // P).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

import ml_collections

from lcasr_jax import validate
from lcasr_jax.data.audio import RESAMPLERS
from lcasr_jax.data.augment import AugmentConfig
from lcasr_jax.data.sources import KINDS
from lcasr_jax.kernels import attention, ctc
from lcasr_jax.model import depthwise
from lcasr_jax.model.config import ModelConfig
from lcasr_jax.model.runtime import SUBSAMPLING_CHUNK_FRAMES
from lcasr_jax.train import gpu_compile
from lcasr_jax.train.optim import OPTIMIZERS
from lcasr_jax.train.state import DTYPES

# The original's training behaviours (issue 21; README "Fidelity to the original"), selected
# together by the paper variants: dotted field -> value.
FIDELITY = {
    "model.param_init": "torch",  # torch's default init per layer (model/init.py)
    "model.batch_renorm_padding": True,  # batch statistics over padded frames too
    "model.batch_renorm_dtype": "bfloat16",  # ... of the bf16 conv output (autocast)
    "train.position_dtype": "bfloat16",  # rotary/Fourier tables as under CUDA autocast
    "train.batching": "original",  # its batch order, lockstep chunk walk, batch-edge switches
    "train.nonfinite": "skip",  # skip the optimizer step on a non-finite loss (GradScaler)
    "data.resampler": "torchaudio",  # its resampler for non-16 kHz audio ('recordings' kind)
}

def base_config(**model: object) -> ml_collections.ConfigDict:
    """Paper defaults (exp/configs/paper_templates): MADGRAD 3e-3, 512 frames x 704 -> 1 h."""
    cfg = ml_collections.ConfigDict()
    cfg.seed = 1234
    cfg.model = ModelConfig(**model).to_dict()
    cfg.model.attention_window = tuple(cfg.model.attention_window)

    cfg.optim = ml_collections.ConfigDict(dict(
        name="madgrad", lr=3e-3, final_lr=0.0, warmup_steps=1500, momentum=0.9,
        weight_decay=0.0, eps=1e-6, decouple_decay=False, b1=0.9, b2=0.999, clip_value=0.8))

    cfg.sequence = ml_collections.ConfigDict(dict(
        length=512, batch_size=704, increase_every=5000, stop_after=90000, start_after=0,
        max_sequence_length=360000, increase_by_multiplier=2.0, batch_size_multiplier=0.5))

    cfg.train = ml_collections.ConfigDict(dict(
        compute_dtype="bfloat16", position_dtype="float32", remat="none", attention_impl="auto",
        depthwise_impl="auto", ctc_impl="auto", intermediate_loss_weighting=0.0,
        subsampling_chunk_frames=SUBSAMPLING_CHUNK_FRAMES,
        backprop_every=1, max_epochs=1, max_steps=-1, time_limit_s=-1.0,
        spec_augment_after_n_epochs=-1, batching="slots", nonfinite="zero",
        lockstep_shapes="padded", original_python_seed=-1, init_from="", compile_ahead="auto",
        compile_ahead_stages=4, gpu_compile="xla"))

    cfg.spec_augment = ml_collections.ConfigDict(dict(
        n_time_masks=0, time_mask_param=0, n_freq_masks=2, freq_mask_param=18, min_p=0.0,
        max_p=0.0, zero_masking=False))

    # data.kind="dry": acoustic augmentation on the accelerator (lcasr_jax.data.augment).
    cfg.augment = ml_collections.ConfigDict(dataclasses.asdict(AugmentConfig()))

    cfg.mesh = ml_collections.ConfigDict(dict(data=-1, fsdp=1, seq=1))

    cfg.data = ml_collections.ConfigDict(dict(
        kind="corpus", path="", split="train", dev_split="dev", synthetic_recordings=64,
        synthetic_tokens_per_second=3.0, resampler="soxr"))

    cfg.checkpoint = ml_collections.ConfigDict(dict(every_steps=500, keep=3, async_save=True,
                                                    export_dtype="float32"))
    cfg.log = ml_collections.ConfigDict(dict(
        every_steps=10, sample_every_steps=500, tensorboard=True, progress=True,
        dev_every_steps=0, dev_batches=4, dev_frames=4096, dev_batch_size=8))
    return cfg


# The ranges of the fields above (dotted paths; choices read from the tables that use them);
# `model.*` is checked by ModelConfig.validate.
RULES: dict[str, validate.Rule] = {
    "seed": validate.int_at_least(0),
    "optim.name": validate.one_of(*OPTIMIZERS),
    "optim.lr": validate.number_above(0),
    "optim.final_lr": validate.number_at_least(0),
    "optim.warmup_steps": validate.int_at_least(0),
    "sequence.length": validate.int_at_least(1),
    "sequence.batch_size": validate.int_at_least(1),
    "sequence.increase_every": validate.either(-1, validate.int_at_least(1)),  # -1: fixed
    "sequence.max_sequence_length": validate.int_at_least(1),
    "sequence.increase_by_multiplier": validate.number_at_least(1),
    "sequence.batch_size_multiplier": validate.number_above(0),
    "train.max_epochs": validate.int_at_least(1),
    "train.max_steps": validate.either(-1, validate.int_at_least(1)),
    "train.time_limit_s": validate.either(-1, validate.number_above(0)),
    "train.backprop_every": validate.one_of(1),
    "train.compute_dtype": validate.one_of(*DTYPES),
    "train.position_dtype": validate.one_of(*DTYPES),
    "train.batching": validate.one_of("slots", "original"),
    "train.nonfinite": validate.one_of("zero", "skip"),
    "train.lockstep_shapes": validate.one_of("padded", "exact"),
    "train.compile_ahead": validate.one_of("auto", "on", "off"),
    "train.compile_ahead_stages": validate.int_at_least(1),
    "train.gpu_compile": validate.one_of(*gpu_compile.PRESETS),
    "train.original_python_seed": validate.either(-1, validate.int_at_least(0)),
    "train.attention_impl": validate.one_of(*attention.IMPLS),
    "train.depthwise_impl": validate.one_of(*depthwise.IMPLS),
    "train.ctc_impl": validate.one_of(*ctc.IMPLS),
    "checkpoint.every_steps": validate.int_at_least(1),
    "checkpoint.keep": validate.int_at_least(1),
    "checkpoint.export_dtype": validate.one_of("", *DTYPES),
    "log.every_steps": validate.int_at_least(1),
    "log.sample_every_steps": validate.int_at_least(0),
    "log.dev_every_steps": validate.int_at_least(0),
    "data.kind": validate.one_of(*KINDS),
    "data.synthetic_recordings": validate.int_at_least(1),
    "data.resampler": validate.one_of(*RESAMPLERS),
}


def check(cfg: Mapping[str, Any]) -> None:
    """Raise ValueError naming the first field of a training config outside `RULES`."""
    validate.check_config(cfg, RULES)


# Fields a resumed run may change: when and how long to run, logging, checkpointing, the
# device layout and implementation choices that compute the same function, the data's place.
RESUMABLE_CHANGES = ("train.max_steps", "train.max_epochs", "train.time_limit_s",
                     "train.attention_impl", "train.depthwise_impl", "train.ctc_impl",
                     "train.remat", "log.", "checkpoint.", "mesh.", "data.path")


def _flat(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, Mapping):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def config_changes(saved: Mapping[str, Any], now: Mapping[str, Any]) -> list[str]:
    """'field: saved -> now' for each field (dotted) that differs between a checkpoint's
    config and this run's, except RESUMABLE_CHANGES and fields that the checkpoint predates
    and this run leaves at their default."""
    norm = lambda d: _flat(json.loads(json.dumps(d)))  # noqa: E731 - tuples -> lists
    a, b, default = norm(saved), norm(now), norm(base_config().to_dict())
    return [f"{k}: {a.get(k, '(absent)')!r} -> {b.get(k, '(absent)')!r}"
            for k in sorted(set(a) | set(b))
            if a.get(k) != b.get(k) and not k.startswith(RESUMABLE_CHANGES)
            and not (k not in a and k in default and b.get(k) == default[k])]
