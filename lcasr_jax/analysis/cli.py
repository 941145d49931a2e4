"""`lcasr-jax analyze`: how much context the model uses.

  analyze attention    each recording's attention weights in one pass, every layer and
                       head (the original's get_attention_weights), and attended distance
  analyze attribution  context attribution: the original's WER matrix (run_context_
                       attribution.py, 2,048-frame windows) or log-prob drops
  analyze figures      WER against SNR and loss against context from results tables

Examples:
  lcasr-jax analyze attention --dataset synth --data-dir runs/demo/data --limit 1
  lcasr-jax analyze attention --audio talk.wav --capture chunked --seq-len 4096
  lcasr-jax analyze attribution --dataset synth --data-dir runs/demo/data --limit 1
  lcasr-jax analyze attribution --audio talk.wav --measure logp --max-seconds 120
  lcasr-jax analyze figures runs/noise/results.csv --out runs/figures
Inputs are audio files (--audio) or a dataset (--dataset/--data-dir, e.g. 'manifest');
--noise SPEC corrupts their audio first, with eval --noise's specs (lcasr_jax/eval/noise.py).
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from lcasr_jax.data.features import FRAME_SECONDS, FRAMES_PER_SECOND


def _inputs(args) -> Iterator[tuple[str, np.ndarray, str | None]]:
    """(id, features (80, frames), reference or None), from the audio corrupted by --noise
    (in --noise-mode with --noise-seed, as `eval --noise`), cropped to --max-seconds (the
    reference then keeps only the words that end inside; None without word times)."""
    from lcasr_jax.eval.noise import parse_noise
    from lcasr_jax.eval.runner import recording_features

    noise = parse_noise(args.noise)
    if args.audio:
        from lcasr_jax.eval.datasets.base import EvalRecording

        recs = [EvalRecording(Path(a).stem, Path(a), "") for a in args.audio]
    else:
        from lcasr_jax.eval.datasets import load_dataset

        recs = load_dataset(args.dataset, args.data_dir, args.split)[: args.limit]
    for rec in recs:
        spec, _ = recording_features(rec, noise, args.noise_seed, mode=args.noise_mode)
        reference = None if args.audio else rec.reference
        if args.max_seconds and spec.shape[1] > args.max_seconds * FRAMES_PER_SECOND:
            spec = spec[:, : int(args.max_seconds * FRAMES_PER_SECOND)]
            if reference is not None:
                from lcasr_jax.eval.normalize import normalize_hypothesis

                reference = None if rec.words is None else normalize_hypothesis(" ".join(
                    w["word"] for w in rec.words if w["end"] <= args.max_seconds))
        yield rec.id, np.ascontiguousarray(spec), reference


def _savez(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """np.savez_compressed to a temporary file, then renamed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.npz")
    np.savez_compressed(tmp, **arrays)
    tmp.replace(path)


def _csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def _model(args):
    """(model, variables) of --checkpoint (a path or hf:// name; default the shipped one)."""
    from lcasr_jax.checkpoints.hub import resolve_checkpoint
    from lcasr_jax.eval.cli import load

    resolved = None if args.checkpoint is None else str(resolve_checkpoint(args.checkpoint))
    model, variables, _ = load(resolved, args.dtype)
    return model, variables


def _save_weights(path: Path, weights: np.ndarray, fmt: str) -> Path:
    """One layer's (1, heads, tokens, tokens) weights: 'pt' = a bfloat16 torch tensor (the
    original's `{id}_{layer}.pt` files), 'npy' = float32 numpy. Written then renamed."""
    path = path.with_suffix("." + fmt)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    if fmt == "pt":
        import torch

        torch.save(torch.from_numpy(weights).to(torch.bfloat16), tmp)
    else:
        with open(tmp, "wb") as f:
            np.save(f, weights.astype(np.float32))
    tmp.replace(path)
    return path


def _attention_pieces(args, rid: str, spec: np.ndarray) -> Iterator[np.ndarray]:
    """The inputs (1, feat, frames) captured for one recording: the whole recording in one
    pass (--capture recording, the original's) or up to --windows windows of --seq-len."""
    if args.capture == "recording":
        yield spec[None]
        return
    for w, start in enumerate(list(range(0, spec.shape[1], args.seq_len))[: args.windows]):
        chunk = spec[None, :, start:start + args.seq_len]
        if w and chunk.shape[-1] < args.seq_len // 2:
            return  # a short tail window says little about long distances
        yield chunk


def run_attention(args) -> list[Path]:
    from lcasr_jax.analysis import attention, figures
    from lcasr_jax.eval.report import atomic_write

    model, variables = _model(args)
    cfg = model.config
    spt = cfg.subsampling_factor * FRAME_SECONDS
    longest = args.seq_len if args.capture == "chunked" else 0
    summary = None
    probs, written = None, []
    out = args.out
    for rid, spec, _ in _inputs(args):
        for w, chunk in enumerate(_attention_pieces(args, rid, spec)):
            cap = attention.capture(model, variables, chunk)
            tokens = cap.q[0].shape[1]
            if summary is None:  # distance edges up to the longest input's tokens
                span = max(longest, spec.shape[1]) // cfg.subsampling_factor
                summary = attention.DistanceSummary.empty(
                    cfg.n_layers, cfg.n_heads, attention.default_edges(span), spt)
            summary.add(cap)
            if args.capture == "recording" and args.weights != "none":
                for i, layer in enumerate(attention.layer_weights(cap, args.weights)):
                    written.append(_save_weights(out / "weights" / f"{rid}_{i}", layer,
                                                 args.weights_format))
            if probs is None and tokens <= args.full_max_tokens:
                probs = np.stack([np.asarray(attention.probabilities(
                    q, k, cap.lengths, cap.window))[0] for q, k in zip(cap.q, cap.k,
                                                                     strict=True)])
            if not args.quiet:
                print(f"{rid} {'recording' if args.capture == 'recording' else f'window {w}'}:"
                      f" {tokens} tokens", file=sys.stderr)
    if summary is None or not summary.queries:
        raise ValueError("no recordings to analyse")
    arrays = summary.arrays()
    if probs is not None:
        arrays["probs"] = probs.astype(np.float16)
    _savez(out / "attention.npz", arrays)
    rows = [{"layer": i, "head": h,
             "mean_distance_s": round(float(arrays["mean_distance_s"][i, h]), 4),
             **{f"beyond_{s:g}s": f"{arrays[f'beyond_{s:g}s'][i, h]:.6f}"
                for s in attention.THRESHOLDS_S}}
            for i in range(cfg.n_layers) for h in range(cfg.n_heads)]
    atomic_write(out / "attention.csv", _csv(rows))
    written += [out / "attention.npz", out / "attention.csv",
                figures.attention_distance(arrays, out / "attention_distance.png")]
    if probs is not None:
        written.append(figures.attention_heatmaps(probs, spt, out / "attention_heatmaps.png"))
    return written


def run_attribution(args) -> list[Path]:
    from lcasr_jax.analysis import attribution, figures
    from lcasr_jax.eval.report import atomic_write

    if args.measure == "wer" and args.audio:
        raise ValueError("--measure wer (the original's WER matrix) needs references: give "
                         "--dataset and --data-dir, or use --measure logp with --audio")
    model, variables = _model(args)
    factor = model.config.subsampling_factor
    forward, n_devices = attribution.make_forward(model, variables, args.seq_len)
    arrays, rows, curves = {}, [], []
    first = None
    for rid, spec, reference in _inputs(args):
        if args.measure == "wer" and reference is None:
            raise ValueError(f"{rid}: no reference for --measure wer (cropped by --max-seconds "
                             "without word times?); use --measure logp")
        res = attribution.attribute(forward, n_devices, spec, args.window, factor=factor,
                                    batch_size=args.batch_size, reference=reference,
                                    recording_id=rid)
        first = first or res
        arrays |= {f"{rid}/{k}": v for k, v in res.arrays().items()}
        curves.append(attribution.by_distance(res.wer if args.measure == "wer" else res.logp))
        n = res.logp.shape[0]
        for i in range(n):
            for j in range(n):
                rows.append({"recording": rid, "i": i, "j": j,
                             "distance_s": abs(i - j) * args.window / FRAMES_PER_SECOND,
                             "wer": "" if res.wer is None else f"{res.wer[i, j]:.4f}",
                             "wer_unmasked": "" if res.wer is None else f"{res.wer_base:.4f}",
                             "logp": f"{res.logp[i, j]:.6g}",
                             "changed": f"{res.changed[i, j]:.6g}"})
        if not args.quiet:
            print(f"{rid}: {n} windows", file=sys.stderr)
    if first is None:
        raise ValueError("no recordings to analyse")
    longest = max(len(c) for c in curves)
    curve = np.array([np.mean([c[d] for c in curves if d < len(c)]) for d in range(longest)])
    arrays[f"curve_{args.measure}"] = curve
    out = args.out
    _savez(out / "attribution.npz", arrays)
    atomic_write(out / "attribution.csv", _csv(rows))
    matrix = first.wer[:, :-1] if args.measure == "wer" else first.logp
    what = ("WER (%) with output window i from the run with window j masked"
            if args.measure == "wer" else "log-prob drop of the unmasked path")
    png = figures.attribution(matrix, curve, args.window / FRAMES_PER_SECOND,
                              out / "attribution.png", what=what)
    return [out / "attribution.npz", out / "attribution.csv", png]


def run_figures(args) -> list[Path]:
    from lcasr_jax.analysis import figures
    from lcasr_jax.eval.report import read_table

    rows = []
    for table in args.tables:
        if not table.is_file():
            raise FileNotFoundError(f"{table}: results table not found")
        rows += read_table(table)
    written = []
    draw = {"wer_vs_snr": figures.wer_vs_snr,
            "loss_vs_context": lambda rows, out: figures.loss_vs_context(rows, out,
                                                                        noise=args.noise)}
    for name, fn in draw.items():
        try:
            written.append(fn(rows, args.out / f"{name}.png"))
        except ValueError as e:
            print(f"skipped {name}: {e}", file=sys.stderr)
    if not written:
        raise ValueError("no noisy or loss rows in the tables: nothing to draw")
    return written


def _add_inputs(p: argparse.ArgumentParser) -> None:
    from lcasr_jax.eval.datasets import READERS

    p.add_argument("--checkpoint", help="released .pt, converted model dir or "
                   "hf://OWNER/REPO/FOLDER (default: the shipped model)")
    p.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32")
    p.add_argument("--batch-size", type=int, default=8, help="forwards per model call")
    p.add_argument("--audio", nargs="+", help="audio files (instead of a dataset)")
    p.add_argument("--dataset", choices=sorted(READERS))
    p.add_argument("--data-dir", type=Path)
    p.add_argument("--split", default="test")
    p.add_argument("--limit", type=int, help="only the first N recordings")
    p.add_argument("--max-seconds", type=float, help="crop each recording to this length")
    from lcasr_jax.eval.cli import add_noise_args

    add_noise_args(p)  # as eval's: corrupt the audio first
    p.add_argument("--quiet", action="store_true")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lcasr-jax analyze", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="what", required=True)
    a = sub.add_parser("attention", help="attention weights of every layer and head, and "
                       "attended distance")
    _add_inputs(a)
    a.add_argument("--capture", choices=("recording", "chunked"), default="recording",
                   help="recording: each whole recording in one pass, as the original's "
                   "get_attention_weights; chunked: up to --windows windows of --seq-len")
    a.add_argument("--weights", choices=("scores", "probs", "none"), default="scores",
                   help="per layer, write <out>/weights/<id>_<layer>.<fmt> (1, heads, tokens, "
                   "tokens): pre-softmax scaled scores (the original's), probabilities, or "
                   "nothing (recording capture only)")
    a.add_argument("--weights-format", choices=("pt", "npy"), default="pt",
                   help="pt: bfloat16 torch tensors as the original saves; npy: float32")
    a.add_argument("--seq-len", type=int, default=4096,
                   help="chunked capture: window in frames (10 ms)")
    a.add_argument("--windows", type=int, default=1, help="chunked capture: windows per "
                   "recording")
    a.add_argument("--full-max-tokens", type=int, default=512,
                   help="keep the full probabilities of the first window up to this length")
    a.add_argument("--out", type=Path, default=Path("runs/analysis/attention"))
    b = sub.add_parser("attribution", help="context attribution matrices")
    _add_inputs(b)
    b.add_argument("--window", type=int, default=2048, help="attribution window in frames "
                   "(the original's 2,048)")
    b.add_argument("--measure", choices=("wer", "logp"), default="wer",
                   help="wer: the original's n x (n+1) WER matrix (needs references); logp: "
                   "the unmasked path's log-prob drop (no reference needed)")
    b.add_argument("--seq-len", type=int,
                   help="limit attention as windowed_attention at this context (frames)")
    b.add_argument("--out", type=Path, default=Path("runs/analysis/attribution"))
    f = sub.add_parser("figures", help="WER vs SNR and loss vs context from results tables")
    f.add_argument("tables", nargs="+", type=Path)
    f.add_argument("--noise", default="none", help="loss against context of runs with this "
                   "noise spec (default: clean)")
    f.add_argument("--out", type=Path, default=Path("runs/analysis/figures"))
    return p


def _check(args) -> None:
    """Raise ValueError naming the first option out of range (beyond validate.CLI_OPTIONS)."""
    from lcasr_jax import validate as v

    rules = {"window": v.int_at_least(1), "windows": v.int_at_least(1),
             "full_max_tokens": v.int_at_least(0), "max_seconds": v.optional(v.number_above(0))}
    for dest, rule in rules.items():
        if hasattr(args, dest):
            v.check("--" + dest.replace("_", "-"), getattr(args, dest), rule)


RUNS = {"attention": run_attention, "attribution": run_attribution, "figures": run_figures}


def main(argv: list[str] | None = None) -> int:
    from lcasr_jax import validate
    from lcasr_jax.eval.noise import parse_noise

    args = validate.parse_args(parser(), argv)
    try:
        _check(args)
        if args.what != "figures" and not args.audio and not (args.dataset and args.data_dir):
            raise ValueError("give --audio FILE... or --dataset and --data-dir")
        if args.what != "figures":
            parse_noise(args.noise)  # a bad spec fails before the model is loaded
        written = RUNS[args.what](args)
    except (ValueError, FileNotFoundError, ImportError, RuntimeError) as e:
        print(f"lcasr-jax analyze: error: {e}", file=sys.stderr)
        return 1
    for path in written:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
