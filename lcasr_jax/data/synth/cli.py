"""`lcasr-jax data synth`: generate a synthetic long-form multi-speaker English corpus.

    lcasr-jax data synth --out DIR --hours H --split train|dev|test --seed S [--workers N]

Resumable: a recording is finished when both <id>.flac and <id>.json exist; finished
recordings are skipped, partial ones (temp files) are redone. Writes DIR/manifest.json.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
import sys
import time

from .text import CACHE_VERSION
from .voices import DEFAULT_ENGINES, ENGINE_WEIGHTS, SPLITS

DEFAULT_TEXT = os.path.join(".cache", "synth", f"austen-v{CACHE_VERSION}.json.gz")
_STATE: dict = {}


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="lcasr-jax data synth", description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="output folder")
    ap.add_argument("--hours", type=float, default=1.0, help="hours of audio to generate")
    ap.add_argument("--split", choices=SPLITS, default="train")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--minutes", type=float, default=10.0,
                    help="mean recording length in minutes (each is 0.8-1.2x this, "
                         "rounded up to whole paragraphs)")
    ap.add_argument("--engines", default=",".join(DEFAULT_ENGINES),
                    help=f"comma-separated synthesisers from {','.join(ENGINE_WEIGHTS)} "
                         "(festival: Debian festival festvox-kallpc16k festvox-kdlpc16k)")
    ap.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)),
                    help="processes (default: the usable cores)")
    ap.add_argument("--text", default=os.environ.get("LCASR_SYNTH_TEXT", DEFAULT_TEXT),
                    help="gzip JSON text cache; built from the janeaustenr package if missing")
    ap.add_argument("--prepare-text", action="store_true",
                    help="only build the text cache (to carry it elsewhere) and exit")
    ap.add_argument("--no-progress", action="store_true")
    return ap


def _init(text: str) -> None:
    from .recording import Engines
    from .text import load_corpus

    _STATE["corpus"] = load_corpus(text)
    _STATE["engines"] = Engines()


def _work(job: tuple[dict, str]) -> dict:
    from .recording import make

    p, out = job
    return make(p, _STATE["corpus"], _STATE["engines"], out)


def _finished(out: str, rid: str) -> bool:
    return all(os.path.exists(os.path.join(out, f"{rid}{ext}")) for ext in (".flac", ".json"))


def _entry_from_disk(p: dict, out: str) -> dict:
    with open(os.path.join(out, f"{p['id']}.json")) as f:
        rec = json.load(f)
    return {"id": p["id"], "audio": rec["audio"], "words": f"{p['id']}.json",
            "duration": rec["duration"], "n_words": len(rec["words"]), "book": p["book"],
            "speakers": [s["speaker"] for s in p["speakers"]]}


def _progress(total: int, disable: bool):
    try:
        import tqdm
    except ImportError:  # the GPU machine may lack tqdm
        return None
    tqdm.tqdm.monitor_interval = 0  # no monitor thread in the parent
    return tqdm.tqdm(total=total, unit="s", desc="synth", disable=disable, dynamic_ncols=True)


def _check_same_settings(out: str, split: str, seed: int, minutes: float,
                         engines: tuple[str, ...]) -> None:
    """Recording ids depend on split, seed and index only: refuse to resume a folder that a
    finished run made with other settings, rather than mixing two corpora."""
    path = os.path.join(out, "manifest.json")
    if not os.path.isfile(path):
        return
    with open(path) as f:
        old = json.load(f)
    want = {"split": split, "seed": seed, "minutes": minutes, "engines": list(engines)}
    have = {k: old.get(k) for k in want}
    if have != want:
        diff = ", ".join(f"{k} {have[k]!r} (now {want[k]!r})" for k in want if have[k] != want[k])
        raise ValueError(f"{out}: made with other settings: {diff}; use another --out")


def recording_minutes(hours: float, minutes: float) -> float:
    """Mean recording length: `minutes`, shortened to the whole request when less than one
    recording is asked for (--hours 0.05 makes one ~3 min recording, not one of 10 min)."""
    return min(minutes, hours * 60)


def make_plans(hours: float, minutes: float, split: str, seed: int,
               book_sizes: dict[str, int], engines: tuple[str, ...]) -> list[dict]:
    """Plans of the recordings that make about `hours` of `minutes`-long recordings."""
    from .recording import plan

    n = max(1, math.ceil(hours * 60 / minutes - 1e-9))
    return [plan(split, seed, i, minutes, book_sizes, engines) for i in range(n)]


def run(args: argparse.Namespace) -> dict:
    """Generate the missing recordings of the requested set; returns the manifest."""
    from .text import load_corpus

    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise ValueError(f"{args.out}: --out exists and is not a folder")
    corpus = load_corpus(args.text)
    sizes = {k: len(v) for k, v in corpus.items()}
    del corpus
    engines = tuple(e.strip() for e in args.engines.split(",") if e.strip())
    minutes = recording_minutes(args.hours, args.minutes)
    plans = make_plans(args.hours, minutes, args.split, args.seed, sizes, engines)
    os.makedirs(args.out, exist_ok=True)
    _check_same_settings(args.out, args.split, args.seed, minutes, engines)
    todo = [p for p in plans if not _finished(args.out, p["id"])]
    entries = {p["id"]: _entry_from_disk(p, args.out) for p in plans if p not in todo}
    print(f"synth: {len(plans)} recordings ({args.split}, seed {args.seed}), "
          f"{len(entries)} already done, {len(todo)} to make", file=sys.stderr)
    t0, made = time.time(), 0.0
    bar = _progress(round(sum(p["target_s"] for p in todo)), args.no_progress)
    jobs = [(p, args.out) for p in todo]
    # One fresh process per recording: espeak-ng keeps synthesis state (e.g. its flutter
    # phase) across calls, so only a fresh library gives the same audio for the same seed
    # whatever the order. forkserver forks each from a process with the modules imported.
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["lcasr_jax.data.synth.recording", "soxr", "soundfile"])
    pool = ctx.Pool(max(1, min(args.workers, len(jobs))), _init, (args.text,),
                    maxtasksperchild=1)
    results = pool.imap_unordered(_work, jobs)
    try:
        for e in results:
            entries[e["id"]] = e
            made += e["duration"]
            if bar is not None:
                step = round(e["duration"])
                bar.total = max(bar.total, bar.n + step)  # recordings end on whole paragraphs
                bar.update(step)
            else:
                print(f"synth: {e['id']} {e['duration']:.0f} s", file=sys.stderr)
    finally:
        pool.terminate()
        if bar is not None:
            bar.close()
    wall = time.time() - t0
    manifest = {"split": args.split, "seed": args.seed, "minutes": minutes,
                "engines": list(engines),
                "hours": round(sum(e["duration"] for e in entries.values()) / 3600, 4),
                "recordings": [entries[p["id"]] for p in plans]}
    tmp = os.path.join(args.out, ".manifest.json.tmp")
    with open(tmp, "w") as f:
        json.dump(manifest, f, indent=1)
    os.replace(tmp, os.path.join(args.out, "manifest.json"))
    if made:
        print(f"synth: made {made / 3600:.3f} h in {wall:.1f} s = {made / wall:.1f}x real time "
              f"with {args.workers} workers", file=sys.stderr)
    return manifest


def main(argv: list[str] | None = None) -> int:
    from lcasr_jax import validate

    args = validate.parse_args(_parser(), argv)
    if args.prepare_text:
        from .text import load_corpus

        books = load_corpus(args.text)
        print(f"synth: text cache {args.text}: {', '.join(sorted(books))}")
        return 0
    try:
        run(args)
    except (OSError, ValueError, RuntimeError) as e:
        print(f"synth: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
