"""`lcasr-jax analyze`: how much context the model uses.

  analyze attention    attended distance per layer and head (npz, CSV, PNGs)
  analyze attribution  context attribution matrices (npz, CSV, PNG)
  analyze figures      WER against SNR and loss against context from results tables

Examples:
  lcasr-jax analyze attention --dataset synth --data-dir runs/demo/data --seq-len 4096
  lcasr-jax analyze attribution --audio talk.wav --window 1000 --max-seconds 120
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
    (seeded by (--noise-seed, id), as `eval --noise`), cropped to --max-seconds (the
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
        spec, _ = recording_features(rec, noise, args.noise_seed)
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
    from lcasr_jax.checkpoints.load import load_model

    model, variables, _ = load_model(args.checkpoint, args.dtype)
    return model, variables


def run_attention(args) -> list[Path]:
    from lcasr_jax.analysis import attention, figures
    from lcasr_jax.eval.report import atomic_write

    model, variables = _model(args)
    cfg = model.config
    spt = cfg.subsampling_factor * FRAME_SECONDS
    summary = attention.DistanceSummary.empty(
        cfg.n_layers, cfg.n_heads, attention.default_edges(args.seq_len // cfg.subsampling_factor),
        spt)
    probs = None
    for rid, spec, _ in _inputs(args):
        starts = range(0, spec.shape[1], args.seq_len)
        for w, start in enumerate(list(starts)[: args.windows]):
            chunk = spec[None, :, start:start + args.seq_len]
            if w and chunk.shape[-1] < args.seq_len // 2:
                break  # a short tail window says little about long distances
            cap = attention.capture(model, variables, chunk)
            summary.add(cap)
            tokens = cap.q[0].shape[1]
            if probs is None and tokens <= args.full_max_tokens:
                probs = np.stack([np.asarray(attention.probabilities(
                    q, k, cap.lengths, cap.window))[0] for q, k in zip(cap.q, cap.k,
                                                                     strict=True)])
            if not args.quiet:
                print(f"{rid} window {w}: {tokens} tokens", file=sys.stderr)
    if not summary.queries:
        raise ValueError("no recordings to analyse")
    arrays = summary.arrays()
    out = args.out
    if probs is not None:
        arrays["probs"] = probs.astype(np.float16)
    _savez(out / "attention.npz", arrays)
    rows = [{"layer": i, "head": h,
             "mean_distance_s": round(float(arrays["mean_distance_s"][i, h]), 4),
             **{f"beyond_{s:g}s": f"{arrays[f'beyond_{s:g}s'][i, h]:.6f}"
                for s in attention.THRESHOLDS_S}}
            for i in range(cfg.n_layers) for h in range(cfg.n_heads)]
    atomic_write(out / "attention.csv", _csv(rows))
    written = [out / "attention.npz", out / "attention.csv",
               figures.attention_distance(arrays, out / "attention_distance.png")]
    if probs is not None:
        written.append(figures.attention_heatmaps(probs, spt, out / "attention_heatmaps.png"))
    return written


def run_attribution(args) -> list[Path]:
    from lcasr_jax.analysis import attribution, figures
    from lcasr_jax.eval.report import atomic_write

    model, variables = _model(args)
    factor = model.config.subsampling_factor
    forward, n_devices = attribution.make_forward(model, variables, args.seq_len)
    arrays, rows, curves = {}, [], []
    first = None
    for rid, spec, reference in _inputs(args):
        res = attribution.attribute(forward, n_devices, spec, args.window, factor=factor,
                                    batch_size=args.batch_size, reference=reference,
                                    recording_id=rid)
        first = first or res
        arrays |= {f"{rid}/{k}": v for k, v in res.arrays().items()}
        curves.append(attribution.by_distance(res.logp))
        n = res.logp.shape[0]
        for i in range(n):
            for j in range(n):
                rows.append({"recording": rid, "i": i, "j": j,
                             "distance_s": abs(i - j) * args.window / FRAMES_PER_SECOND,
                             "logp": f"{res.logp[i, j]:.6g}", "changed": f"{res.changed[i, j]:.6g}",
                             "wer": "" if res.wer is None else f"{res.wer[i, j]:.4f}"})
        if not args.quiet:
            print(f"{rid}: {n} windows", file=sys.stderr)
    if first is None:
        raise ValueError("no recordings to analyse")
    longest = max(len(c) for c in curves)
    curve = np.array([np.mean([c[d] for c in curves if d < len(c)]) for d in range(longest)])
    arrays["curve_logp"] = curve
    out = args.out
    _savez(out / "attribution.npz", arrays)
    atomic_write(out / "attribution.csv", _csv(rows))
    png = figures.attribution(first.logp, curve, args.window / FRAMES_PER_SECOND,
                              out / "attribution.png")
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
    p.add_argument("--noise", default="none", help="corrupt the audio first, as eval --noise: "
                   "none | gaussian:SNR[:HIGH] | background:FOLDER:SNR[:HIGH] (dB)")
    p.add_argument("--noise-seed", type=int, default=0,
                   help="with each recording id, seeds its noise (as eval --noise-seed)")
    p.add_argument("--quiet", action="store_true")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lcasr-jax analyze", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="what", required=True)
    a = sub.add_parser("attention", help="attended distance per layer and head")
    _add_inputs(a)
    a.add_argument("--seq-len", type=int, default=4096, help="window in frames (10 ms)")
    a.add_argument("--windows", type=int, default=1, help="windows per recording")
    a.add_argument("--full-max-tokens", type=int, default=512,
                   help="keep the full probabilities of the first window up to this length")
    a.add_argument("--out", type=Path, default=Path("runs/analysis/attention"))
    b = sub.add_parser("attribution", help="context attribution matrices")
    _add_inputs(b)
    b.add_argument("--window", type=int, default=1000, help="attribution window in frames")
    b.add_argument("--seq-len", type=int,
                   help="limit attention as windowed_attention at this context (frames)")
    b.add_argument("--out", type=Path, default=Path("runs/analysis/attribution"))
    f = sub.add_parser("figures", help="WER vs SNR and loss vs context from results tables")
    f.add_argument("tables", nargs="+", type=Path)
    f.add_argument("--noise", default="none", help="loss against context of runs with this "
                   "noise spec (default: clean)")
    f.add_argument("--out", type=Path, default=Path("runs/analysis/figures"))
    return p


RUNS = {"attention": run_attention, "attribution": run_attribution, "figures": run_figures}


def main(argv: list[str] | None = None) -> int:
    from lcasr_jax.eval.noise import parse_noise

    args = parser().parse_args(argv)
    try:
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
