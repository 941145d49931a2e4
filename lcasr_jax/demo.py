"""`lcasr-jax demo`, the README's main job: WER against context length on held-out speech.

1. Generates (or reuses) a small held-out test piece of the synthetic corpus
   (`lcasr-jax data synth --split test`: two recordings of about 7 minutes, from voice
   families and a book that the training split never uses) under
   runs/demo/data-<seed>-<hours>h-<minutes>m (one folder per set of options).
2. Evaluates the shipped default model (`checkpoints.shipped.DEFAULT_MODEL`) on it with
   the paper's moving-window mode at several context lengths (default 10, 40, 160, 320 s).
3. Prints the WER table and whether WER falls with context (for the shipped model, also
   why it does not), and writes runs/demo/results.csv and runs/demo/wer_vs_context.png.

If that model is missing, the random-weight parity fixture stands in and the demo says so
(`checkpoints.shipped.resolve_default_model`).
"""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
import time
from pathlib import Path

from lcasr_jax.eval.windows import MODES


def held_out_data(out: Path, hours: float, minutes: float, seed: int) -> Path:
    """Held-out synthetic test recordings under `out` (generated once, then reused)."""
    from lcasr_jax.data.synth.generate import generate

    if not (out / "manifest.json").is_file():
        print(f"demo: generating about {hours * 60:.0f} min of held-out test speech in {out}",
              file=sys.stderr)
        generate(str(out), hours, split="test", seed=seed, minutes=minutes,
                 workers=min(2, os.cpu_count() or 1), progress=False)
    return out


def features_once(recordings: list) -> list:
    """The recordings with their features computed on first use and kept (read-only): the
    demo evaluates every recording at each context."""
    import dataclasses

    from lcasr_jax.data.audio import DEFAULT_RESAMPLER
    from lcasr_jax.eval.datasets.base import EvalRecording

    @dataclasses.dataclass(frozen=True)
    class FeaturesOnce(EvalRecording):
        cache: dict = dataclasses.field(default_factory=dict, compare=False, repr=False)

        def features(self, resampler: str = DEFAULT_RESAMPLER):
            if resampler not in self.cache:
                spec = super().features(resampler)
                spec.flags.writeable = False
                self.cache[resampler] = spec
            return self.cache[resampler]

    return [FeaturesOnce(**{f.name: getattr(r, f.name) for f in dataclasses.fields(r)})
            for r in recordings]


def relative_reduction(rows: list[dict], row: dict) -> float:
    """Relative WER reduction (%) of `row` from the shortest context's WER (positive: better)."""
    short = min(rows, key=lambda r: r["seconds"])
    return 100 * (short["wer"] - row["wer"]) / max(short["wer"], 1e-12)


def format_table(rows: list[dict]) -> str:
    """The WER table, with each context's relative reduction from the shortest ('red. %')."""
    head = f"{'context':>9} {'WER %':>7} {'red. %':>7} {'ins %':>6} {'del %':>6} {'sub %':>6} " \
           f"{'words':>6} {'time s':>7}"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r['seconds']:>8g}s {100 * r['wer']:>7.2f} "
                     f"{relative_reduction(rows, r):>+7.1f} {100 * r['ins_rate']:>6.2f} "
                     f"{100 * r['del_rate']:>6.2f} {100 * r['sub_rate']:>6.2f} "
                     f"{r['words']:>6d} {r['wall']:>7.1f}")
    return "\n".join(lines)


def context_statement(rows: list[dict], shipped_model: bool) -> str:
    """One paragraph: does WER fall from the shortest to the longest context? A relative
    change within 1% counts as flat. For the shipped model, a flat or rising WER is
    followed by why (`checkpoints.shipped.NO_CONTEXT_GAIN`)."""
    from lcasr_jax.checkpoints.shipped import NO_CONTEXT_GAIN

    short = min(rows, key=lambda r: r["seconds"])
    long = max(rows, key=lambda r: r["seconds"])
    change = (long["wer"] - short["wer"]) / max(short["wer"], 1e-12)
    span = (f"{100 * short['wer']:.2f}% at {short['seconds']:g} s to {100 * long['wer']:.2f}% "
            f"at {long['seconds']:g} s ({100 * change:+.1f}% relative)")
    if change < -0.01:
        text = f"WER falls with context: {span}."
    else:
        text = (f"WER does NOT fall with context here: {span}, " + (
            "the opposite of the paper's finding." if change > 0.01 else
            "flat, where the paper finds it falling."))
        if shipped_model:
            text += " " + NO_CONTEXT_GAIN
    return textwrap.fill(text, 88)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lcasr-jax demo", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", help="model to evaluate (default: DEFAULT_MODEL)")
    p.add_argument("--contexts", type=float, nargs="+", default=[10, 40, 160, 320],
                   help="context lengths in seconds")
    p.add_argument("--overlap-ratio", type=float, default=0.875)
    p.add_argument("--mode", choices=MODES, default="averaged_moving_window")
    p.add_argument("--hours", type=float, default=0.2, help="test audio to generate")
    p.add_argument("--minutes", type=float, default=7.0,
                   help="mean recording length (each is 0.8-1.2 times it)")
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--out", type=Path, default=Path("runs/demo"))
    p.add_argument("--quiet", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    from lcasr_jax import validate

    p = parser()
    args = validate.parse_args(p, argv)
    for seconds in args.contexts:  # before generating data and loading the model
        try:
            validate.check("--contexts", seconds, validate.number_above(0))
        except ValueError as e:
            p.exit(2, f"{p.prog}: error: {e}\n")
    try:
        return _run(args)
    except (ValueError, FileNotFoundError, ImportError, RuntimeError) as e:
        print(f"lcasr-jax demo: error: {e}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace) -> int:
    from lcasr_jax.checkpoints import shipped
    from lcasr_jax.checkpoints.load import load_model
    from lcasr_jax.data.features import FRAMES_PER_SECOND
    from lcasr_jax.eval import report
    from lcasr_jax.eval.datasets import load_dataset
    from lcasr_jax.eval.runner import EvalSettings, evaluate
    from lcasr_jax.eval.windows import overlap_frames
    from lcasr_jax.figures.context import write_report
    from lcasr_jax.files import atomic_write

    t0 = time.perf_counter()
    data = held_out_data(args.out / f"data-{args.seed}-{args.hours:g}h-{args.minutes:g}m",
                     args.hours, args.minutes, args.seed)
    recordings = features_once(load_dataset("synth", data, "test"))
    audio_s = sum(r.words[-1]["end"] for r in recordings if r.words)
    model, variables, checkpoint = load_model(args.checkpoint, "float32")
    factor = model.config.subsampling_factor
    for seconds in args.contexts:
        if round(seconds * FRAMES_PER_SECOND) < factor:
            raise ValueError(f"--contexts: {seconds:g} s is shorter than one output frame of "
                             f"this model ({factor / FRAMES_PER_SECOND:g} s)")
    stand_in = args.checkpoint is None and Path(checkpoint) != shipped.DEFAULT_MODEL
    name = "stand-in (random weights)" if stand_in else Path(checkpoint).stem
    print(f"demo: {len(recordings)} recordings, {audio_s / 60:.1f} min of speech; model "
          f"{checkpoint} ({model.config.n_layers} layers, d_model {model.config.d_model})",
          file=sys.stderr)
    rows, table_rows = [], []
    for seconds in args.contexts:
        context = int(round(seconds * FRAMES_PER_SECOND))
        overlap = overlap_frames(context, None, args.overlap_ratio,
                                 model.config.subsampling_factor)
        settings = EvalSettings(args.mode, context, overlap, args.batch_size)
        result = evaluate(recordings, model, variables, settings, progress=not args.quiet)
        rows.append({"seconds": seconds, **result.overall.as_row(),
                     "wall": result.wall_seconds})
        table_rows += report.rows_for(result, {
            "dataset": "synth", "split": "test", "name": name, "checkpoint": str(checkpoint),
            "repeat": 1, "seq_len": context, "overlap_ratio": overlap / context,
            "model_class": "SCConformerXL", "evaluation_mode": args.mode, "overlap": overlap})
    table = args.out / "results.csv"
    atomic_write(table, report.to_csv(table_rows))
    png, *_ = write_report(
        table_rows, args.out / "wer_vs_context.png",
        f"Held-out synthetic speech: {audio_s / 60:.0f} min, unseen voice families and book"
        + (" (random-weight stand-in)" if stand_in else ""))
    print()
    how = args.mode if args.mode == "windowed_attention" else \
        f"{args.mode}, overlap {args.overlap_ratio:g}"
    print(f"WER against context ({how}) on "
          f"{audio_s / 60:.1f} min of held-out synthetic speech, model: {name}")
    print(format_table(rows))
    if len(rows) > 1:
        short, long = (f(rows, key=lambda r: r["seconds"]) for f in (min, max))
        print(f"relative WER reduction from {short['seconds']:g} s to {long['seconds']:g} s: "
              f"{relative_reduction(rows, long):+.1f}% (the figure's lower panel)")
    if stand_in:
        print("NOTE: random-weight stand-in model; these WERs say nothing about accuracy.")
    elif len(rows) > 1:
        shipped_model = Path(checkpoint).resolve() == shipped.DEFAULT_MODEL.resolve()
        print("\n" + context_statement(rows, shipped_model))
    print(f"\nwrote {table} and {png} ({time.perf_counter() - t0:.0f} s total)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
