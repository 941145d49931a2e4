"""`lcasr-jax data ...`: build the TFDS dataset, generate the synthetic corpus, convert
alignments, inspect recordings and datasets, precompute the training feature cache."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from lcasr_jax.data.synth import cli as synth_cli


def _dataset_complete(folder: Path) -> bool:
    """Whether `folder` is a finished dataset (VERSION/dataset_info.json), not the TFDS
    data_dir that `_build` builds in (lcasr_recordings/VERSION/...)."""
    return any(folder.glob("*/dataset_info.json"))


def _build(args) -> int:
    """Build into a temporary folder beside the destination, then swap it in
    (`files.swap_in`): a failed build leaves any previous dataset untouched, a stale one is
    never reused, and a swap a killed run left half-done is repaired first."""
    import shutil

    from lcasr_jax.data.tfds_builder import build, source_splits
    from lcasr_jax.files import partial_dir, recover_swap, swap_in

    splits = source_splits(args.src)
    print(f"{args.src}: " + ", ".join(f"{k}: {len(v)} recordings" for k, v in splits.items()))
    out = (Path(args.out) / "lcasr_recordings").absolute()
    recover_swap(out, _dataset_complete)
    if out.exists() and not args.overwrite:
        raise FileExistsError(f"{out}: dataset already exists (use --overwrite to rebuild)")
    tmp = partial_dir(out)  # a TFDS data_dir: the build lands in tmp/lcasr_recordings/VERSION
    ready = out.with_name(f"{tmp.name}-ready")  # the finished dataset, beside `out`
    try:
        built = build(args.src, tmp, workers=args.workers, resampler=args.resampler)
        (tmp / "lcasr_recordings").rename(ready)
        swap_in(ready, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(ready, ignore_errors=True)
    print(f"dataset written to {out / built.relative_to(tmp / 'lcasr_recordings')}")
    return 0


def _convert(args) -> int:
    from lcasr_jax.data.alignments import convert

    rec = convert(args.alignment, args.audio, args.out, fmt=args.format, rec_id=args.id,
                  tier=args.tier)
    print(f"{args.out}: {len(rec.words)} words, {rec.duration:.2f} s")
    return 0


def _inspect(args) -> int:
    path = Path(args.path)
    if path.suffix == ".json":
        from lcasr_jax.data.alignments import read_recording

        rec = read_recording(path, check_audio=True)
        w = rec.words
        print(json.dumps({"id": rec.id, "audio": str(rec.audio), "duration_s": rec.duration,
                          "words": len(w), "speakers": sorted({s for s in w.speaker or () if s}),
                          "first": " ".join(w.text[:12])}, indent=1))
        return 0
    import tensorflow_datasets as tfds

    from lcasr_jax.data.sources.tfds import open_split

    info = tfds.builder_from_directory(str(path)).info
    for split in info.splits:
        src = open_split(path, split)
        frames = [int(src[i]["num_frames"]) for i in range(min(len(src), args.limit))]
        hours = sum(frames) / 360000
        print(f"{split}: {len(src)} recordings; first {len(frames)}: {hours:.2f} h, "
              f"longest {max(frames) / 6000:.1f} min")
        ex = {k: v.decode() if isinstance(v, bytes) else v for k, v in src[0].items()}
        text = ex["text"]
        print(f"  e.g. {ex['id']}: features {ex['features'].shape} {ex['features'].dtype}, "
              f"{len(ex['word_start'])} words, {len(ex['token_ids'])} tokens: {text[:80]!r}")
    return 0


def _cache(args) -> int:
    from lcasr_jax.data.sources.feature_cache import precompute

    if not Path(args.dir).is_dir():
        raise FileNotFoundError(f"{args.dir}: no such folder")
    n = precompute(args.dir, args.workers, args.resampler)
    print(f"encoded {n} recordings under {args.dir}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="lcasr-jax data", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="make the TFDS dataset from a folder of recordings")
    b.add_argument("--src", required=True, help="folder of recordings (split sub-folders)")
    b.add_argument("--out", required=True, help="TFDS data_dir")
    b.add_argument("--workers", type=int, default=1)
    b.add_argument("--overwrite", action="store_true")
    b.add_argument("--resampler", choices=["soxr", "torchaudio"], default="soxr",
                   help="torchaudio: the original's resampler (identical features; use it "
                        "for the paper configs' data)")
    synth = sub.add_parser("synth", help="generate the synthetic long-form corpus",
                           description=synth_cli.DESCRIPTION)
    synth_cli.add_arguments(synth)
    c = sub.add_parser("convert", help="podcast JSON / CTM / TextGrid -> recording JSON")
    c.add_argument("alignment")
    c.add_argument("audio")
    c.add_argument("out")
    c.add_argument("--format", choices=["podcast", "ctm", "textgrid"])
    c.add_argument("--id")
    c.add_argument("--tier")
    i = sub.add_parser("inspect", help="summarise a recording JSON or a built dataset folder")
    i.add_argument("path")
    i.add_argument("--limit", type=int, default=1000)
    k = sub.add_parser("cache", help="encode every recording JSON's features beside it "
                       "(what the recordings source reads), skipping fresh ones")
    k.add_argument("dir", help="folder of recording JSONs + audio (searched recursively)")
    k.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    k.add_argument("--resampler", choices=["soxr", "torchaudio"], default="soxr",
                   help="torchaudio: the original's resampler (data.resampler of the paper "
                        "configs)")
    from lcasr_jax import validate

    args = validate.parse_args(p, argv)
    if args.cmd == "synth":
        return synth_cli.command(args)
    try:
        return {"build": _build, "convert": _convert, "inspect": _inspect,
                "cache": _cache}[args.cmd](args)
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
