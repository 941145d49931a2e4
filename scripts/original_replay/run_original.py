"""Replay the original's training on a tiny model and dump every optimizer step.

Runs robflynnyh/long-context-asr's own exp/train.py `main()` (its SCConformerXL built after
`torch.manual_seed(12345)`, CTC loss and loss scaling, GradScaler, clip_grad_norm_, MADGRAD
from load_optimizer, CosineLRScheduler, SequenceWarmupManager, VariableBatchSimpleDataloader,
chunk_spectogram / chunk_text_json) from a checkout outside this repository, with recording
hooks only (recorder.py), on make_corpus.py's corpus written in the original's format.

    python scripts/original_replay/run_original.py --original /work/original --out DIR \
        [--device cpu|cuda] [--dtype float32|bfloat16] [--steps N] [--corpus-seed 0]

One deliberate difference from a CPU run of exp/train.py: its `torch.cuda.amp.GradScaler()`
is disabled without CUDA (then an infinite CTC loss would poison the weights); the replay
uses `torch.amp.GradScaler(<device>)`, which skips such steps as the published GPU runs did.
Writes under DIR the fixture files (dump.py); the corpus, config and the original's own
checkpoints go to --work (default DIR/work). When train() ends (its last epoch, --steps or
--time-limit-s), the trained model is also written as a checkpoint in the released format,
--released (default WORK/released.pt): {'model': state_dict, 'config': plain dict}, which
`lcasr-jax convert` reads (the original's own step_N.pt pickles its OmegaConf object, which
our safe loader refuses).
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from make_corpus import DEFAULT_N, DEFAULT_SEED, recordings, write_original_format  # noqa: E402

SNAPSHOT_STEPS = {1, 2, 5, 10, 25, 50}  # and the last step
WARMUP_STEPS = 40

TINY_CONFIG = {
    "model_class": "SCConformerXL",
    "model": {
        "feat_in": 80, "n_layers": 2, "d_model": 16, "n_heads": 2, "head_dim": 8,
        "dropout_ff": 0.0, "dropout_attn": 0.0, "dropout_conv": 0.0,
        "subsampling_factor": 8, "subsampling": "dw_striding", "subsampling_act": "silu",
        "subsampling_conv_channels": 8, "self_condition_subsampling": False,
        "subsampling_norm_out": False, "conv_kernel_size": 9, "qk_rms_norm": False,
        "shift_kvs": False, "self_conditioning": True, "gated_sc": False, "decoder_norm": True,
        "use_rotary": True, "encoder_mode": "conformer", "default_norm": "layer_norm",
        "sandwich_norm": False, "bias_in_ff": False, "checkpoint_every_n_layers": 0,
        "rotary_base_freq": 1500000,
    },
    "optimizer": {"name": "madgrad", "args": {"lr": 3e-3}},
    "scheduler": {"warmup_steps": WARMUP_STEPS},
    "audio_chunking": {"size": 128, "overlap": 0},
    "sequence_scheduler": {
        "increase_every": 8, "stop_after": 10**9, "start_after": 0,
        "max_sequence_length": 512, "increase_by_multiplier": 2,
        "batch_size_multiplier": 0.5, "interpolate_rotary": False,
    },
    "wandb": {"use": False, "project_name": "replay", "id": ""},
    "checkpointing": {"dir": "", "save_every_n_steps": 10**9},
    "data": {"path": ""},
    "training": {
        "batch_size": 4, "backprop_every": 1, "backwards_every": 1, "max_seq_len": 0,
        "clip_value": 0.8, "intermediate_loss_weighting": 0.0, "random_seed": 1234,
        "max_epochs": 2, "dtype": "float32",
    },
}
# the paper-shaped configs whose fresh-model statistics init_stats.json holds
PAPER_TEMPLATES = {
    "6L-256D": "exp/configs/paper_templates/exp_set_rot_encodings_6l_256.yaml",
    "6L-768D": "exp/configs/paper_templates/exp_set_seq_rotary_base.yaml",
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--original", required=True, help="checkout of robflynnyh/long-context-asr")
    ap.add_argument("--out", required=True)
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    ap.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32",
                    help="training.dtype: the autocast dtype (the original autocasts on CUDA only)")
    ap.add_argument("--steps", type=int, default=None, help="stop after N optimizer steps")
    ap.add_argument("--max-epochs", type=int, default=2)
    ap.add_argument("--time-limit-s", type=float, default=None,
                    help="stop after this many seconds of training; the model is then saved "
                         "with the original's save_model as at the end of its train()")
    ap.add_argument("--corpus-seed", type=int, default=DEFAULT_SEED)
    ap.add_argument("--corpus-n", type=int, default=DEFAULT_N)
    ap.add_argument("--corpus", default=None,
                    help="an existing audio_txt_pairs.json (e.g. from export_original.py) "
                         "instead of make_corpus's corpus")
    ap.add_argument("--config", default=None,
                    help="an original-format YAML replacing the tiny config (data and "
                         "checkpointing paths are set by this script)")
    ap.add_argument("--work", default=None,
                    help="scratch folder for the corpus, config and the original's own "
                         "checkpoints (default OUT/work)")
    ap.add_argument("--released", default=None,
                    help="where the trained model goes in the released checkpoint format "
                         "(default WORK/released.pt)")
    ap.add_argument("--model-template", default=None,
                    help="take the model section from this original YAML (relative to "
                         "--original), e.g. " + PAPER_TEMPLATES["6L-256D"])
    ap.add_argument("--scaler", choices=("amp", "original"), default="amp",
                    help="amp: torch.amp.GradScaler(device), skipping inf steps as on the GPU; "
                         "original: exp/train.py's torch.cuda.amp.GradScaler() as is "
                         "(disabled without CUDA: an inf loss then reaches the optimizer)")
    ap.add_argument("--no-init-stats", action="store_true", help="skip init_stats.json")
    ap.add_argument("--init-weights", default=None, help="a released-format .pt whose 'model' "
                    "the original's model loads before its first step (make_init.py: both "
                    "trainers from one point); default: the original's own init")
    ap.add_argument("--light", action="store_true", help="record no per-row CTC, feature "
                    "sums or parameter norms (NaN / empty): the steps' curve at full speed")
    ap.add_argument("--snapshots", default=",".join(map(str, sorted(SNAPSHOT_STEPS))),
                    help="steps whose full parameters+buffers go to snapshots.npz (and last)")
    ap.add_argument("--grad-steps", default="",
                    help="steps k whose per-tensor gradients (unscaled, before clipping) go to "
                         "--grad-out as step<k>/grad/<name> (the state before step k is the "
                         "snapshot of step k-1: add it to --snapshots)")
    ap.add_argument("--grad-out", default=None, help="npz for --grad-steps (default "
                    "OUT/grads.npz)")
    ap.add_argument("--grad-optimizer-state", action="store_true",
                    help="with --grad-steps: also MADGRAD's state before each such step "
                         "(step<k>/opt/<name>/grad_sum_sq, .../s, step<k>/opt_k)")
    ap.add_argument("--perturb-ulps", type=float, default=0.0,
                    help="an experiment, not a fixture: multiply every initial parameter by "
                         "1 + u·2^-24·N, u uniform in [-1, 1] (numpy seed 0), before train() "
                         "(float32 rounding-size noise, to measure the run's own sensitivity)")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    return ap.parse_args(argv)


def make_config(args: argparse.Namespace, work: Path, pairs: Path):
    """The OmegaConf config of the replay, saved as work/config.yaml."""
    from omegaconf import OmegaConf

    cfg = OmegaConf.load(args.config) if args.config else OmegaConf.create(TINY_CONFIG)
    if args.model_template:
        cfg.model = OmegaConf.load(Path(args.original) / args.model_template).model
    if args.device == "cuda" and importlib.util.find_spec("flash_attn") is None:
        # The original's CUDA path assumes flash-attn: without it, a batch of unequal
        # lengths fails in torch's SDPA (a flash-style (batch, time) mask). Its own
        # `flash_attn` model switch selects the masked SDPA path instead.
        cfg.model.flash_attn = False
    cfg.data.path = str(pairs)
    cfg.checkpointing.dir = str(work / "checkpoints")
    cfg.checkpointing.save_every_n_steps = 10**9
    cfg.training.dtype = args.dtype
    cfg.training.max_epochs = args.max_epochs
    cfg.wandb.use = False
    OmegaConf.save(cfg, work / "config.yaml")
    return cfg


def save_released(model, config, path: Path) -> None:
    """The model as a released checkpoint: {'model': state_dict, 'config': plain dict}."""
    import torch
    from omegaconf import OmegaConf

    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    plain = OmegaConf.to_container(config, resolve=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"model": state, "config": plain}, tmp)
    tmp.replace(path)
    print(f"released-format checkpoint -> {path}")


def init_stats(train_module, original: Path) -> dict:
    """Mean and std (float64) of every tensor of fresh paper-shaped models, seeded as main()."""
    import torch
    from omegaconf import OmegaConf

    tok = train_module.lcasr.utils.audio_tools.load_tokenizer()
    out = {}
    for name, rel in PAPER_TEMPLATES.items():
        cfg = OmegaConf.create({"model": OmegaConf.load(original / rel).model,
                                "model_class": "SCConformerXL"})
        torch.manual_seed(12345)
        model = train_module.load_model(cfg, tok.vocab_size(), train_module.get_model_class(cfg))
        params = {k for k, _ in model.named_parameters()}
        out[name] = {
            "template": rel, "model": OmegaConf.to_container(cfg.model),
            "tensors": {k: {"shape": list(v.shape), "parameter": k in params,
                            "mean": float(v.double().mean()),
                            "std": float(v.double().std()) if v.numel() > 1 else 0.0}
                        for k, v in model.state_dict().items()},
        }
    return out


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.device == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = ""  # the original picks cuda whenever available
    import torch
    from dump import write_dump
    from original_import import import_original_train
    from recorder import Recorder, StopReplay

    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: torch sees no CUDA device")
    out, original = Path(args.out).resolve(), Path(args.original).resolve()
    work = Path(args.work).resolve() if args.work else out / "work"
    work.mkdir(parents=True, exist_ok=True)
    pairs = (Path(args.corpus).resolve() if args.corpus else write_original_format(
        work / "corpus", recordings(args.corpus_seed, args.corpus_n)))
    cfg = make_config(args, work, pairs)
    released = Path(args.released).resolve() if args.released else work / "released.pt"
    train_module, stubbed = import_original_train(original)
    if args.threads:
        torch.set_num_threads(args.threads)
    grad_steps = {int(s) for s in args.grad_steps.split(",") if s}
    recorder = Recorder({int(s) for s in args.snapshots.split(",") if s}, args.steps,
                        args.time_limit_s, grad_steps, args.grad_optimizer_state,
                        light=args.light)
    recorder.install(train_module, args.device, args.scaler)
    captured = {}
    orig_train = train_module.train

    def train(**kwargs):
        model = kwargs["model"]
        captured["model"], captured["config"] = model, kwargs["args"].config
        if args.init_weights:  # before any step: MADGRAD takes its anchor at the first
            state = torch.load(args.init_weights, map_location="cpu", weights_only=False)
            model.load_state_dict(state["model"])
        if args.perturb_ulps:
            import numpy as np

            rng = np.random.default_rng(0)
            with torch.no_grad():
                for p in model.parameters():
                    u = torch.from_numpy(rng.uniform(-1, 1, tuple(p.shape)).astype(np.float64))
                    p.copy_((p.double() * (1 + u * args.perturb_ulps * 2.0**-24)).float())
        captured["init"] = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        try:
            result = orig_train(**kwargs)
            save_released(model, kwargs["args"].config, released)
            return result
        except StopReplay as stop:
            print(f"stopped after {stop.args[0]} optimizer steps (--steps / --time-limit-s)")
            last = recorder.steps[-1]
            train_module.save_model(
                model=model, optimizer=kwargs["optimizer"], scheduler=kwargs["scheduler"],
                podcast_step=last["cur_podcast"], config=kwargs["args"].config,
                sequence_scheduler=kwargs["sequence_scheduler"], seen_ids=kwargs["seen_ids"],
                epoch=last["epoch"])
            save_released(model, kwargs["args"].config, released)
            return model

    train_module.train = train
    namespace = argparse.Namespace(
        config=str(work / "config.yaml"), remove_scheduler=False, reset_step=False,
        anomaly=False, num_workers=0, pin_memory=False, prefetch_factor=1, debug_hooks=False)
    train_module.main(namespace)
    stats = None if args.no_init_stats else init_stats(train_module, original)
    write_dump(out, recorder, captured, cfg, stats, stubbed, original, sys.argv)
    if grad_steps:
        import numpy as np

        grad_out = Path(args.grad_out) if args.grad_out else out / "grads.npz"
        np.savez_compressed(grad_out, **{f"step{k}/{name}": v for k, d in
                                         sorted(recorder.grads.items()) for name, v in d.items()})
        print(f"gradients of steps {sorted(recorder.grads)} -> {grad_out}")
    print(f"{len(recorder.steps)} optimizer steps, {len(recorder.batches)} batches -> {out}")


if __name__ == "__main__":
    main()
