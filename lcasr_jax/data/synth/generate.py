"""Generate a synthetic long-form multi-speaker English corpus (`generate`).

Resumable: a recording is finished when both its audio (<id>.flac, or <id>.wav when dry)
and <id>.json exist; finished recordings are skipped, partial ones (temp files) are redone.
Writes DIR/manifest.json. The command line is `synth/cli.py` (`lcasr-jax data synth`).

Each recording is made in a fresh process (espeak-ng keeps synthesis state across calls), forked
from a forkserver that has already imported the modules and loaded the text (`preload`), so a
recording costs a fork, not an interpreter start and a text load.
"""

from __future__ import annotations

import contextlib
import json
import math
import multiprocessing as mp
import os
import sys
import time

from . import preload
from .text import CACHE_VERSION
from .voices import DEFAULT_ENGINES

DEFAULT_TEXT = os.path.join(".cache", "synth", f"austen-v{CACHE_VERSION}.json.gz")
_STATE: dict = {}


def default_text() -> str:
    """The text cache: $LCASR_SYNTH_TEXT, else DEFAULT_TEXT."""
    return os.environ.get("LCASR_SYNTH_TEXT", DEFAULT_TEXT)


# One BLAS/OpenMP thread per worker: the formant warp's matmul would otherwise start one
# OpenBLAS thread per core in every worker (cores x cores spinning threads on a many-core
# machine). Set where the forkserver starts, so its workers inherit it; a value the user
# set is kept.
_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


@contextlib.contextmanager
def one_blas_thread():
    """os.environ with each of _THREAD_VARS set to "1" unless already set; restored after."""
    added = [k for k in _THREAD_VARS if k not in os.environ]
    os.environ.update({k: "1" for k in added})
    try:
        yield
    finally:
        for k in added:
            os.environ.pop(k, None)


def _init(text: str) -> None:
    from . import preload
    from .recording import Engines
    from .text import load_corpus

    _STATE["corpus"] = preload.corpus(text) or load_corpus(text)
    _STATE["engines"] = Engines()


def _work(job: tuple[dict, str]) -> dict:
    from .recording import make

    p, out = job
    return make(p, _STATE["corpus"], _STATE["engines"], out)


def _finished(out: str, p: dict) -> bool:
    from .recording import audio_name

    return all(os.path.exists(os.path.join(out, f)) for f in (audio_name(p), f"{p['id']}.json"))


def _entry_from_disk(p: dict, out: str) -> dict:
    from lcasr_jax.data.alignments import read_recording

    rec = read_recording(os.path.join(out, f"{p['id']}.json"))
    return {"id": p["id"], "audio": rec.audio.name, "words": f"{p['id']}.json",
            "duration": rec.duration, "n_words": len(rec.words), "book": p["book"],
            "speakers": [s["speaker"] for s in p["speakers"]]}


def _progress(total: int, disable: bool):
    try:
        import tqdm
    except ImportError:  # the GPU machine may lack tqdm
        return None
    tqdm.tqdm.monitor_interval = 0  # no monitor thread in the parent
    return tqdm.tqdm(total=total, unit="s", desc="synth", disable=disable, dynamic_ncols=True)


def _check_same_settings(out: str, split: str, seed: int, minutes: float,
                         engines: tuple[str, ...], dry: bool) -> None:
    """Recording ids depend on split, seed and index only: refuse to resume a folder that a
    finished run made with other settings, rather than mixing two corpora."""
    path = os.path.join(out, "manifest.json")
    if not os.path.isfile(path):
        return
    with open(path) as f:
        old = json.load(f)
    want = {"split": split, "seed": seed, "minutes": minutes, "engines": list(engines),
            "dry": dry}
    have = {k: old.get(k, False if k == "dry" else None) for k in want}
    if have != want:
        diff = ", ".join(f"{k} {have[k]!r} (now {want[k]!r})" for k in want if have[k] != want[k])
        raise ValueError(f"{out}: made with other settings: {diff}; use another --out")


def recording_minutes(hours: float, minutes: float) -> float:
    """Mean recording length: `minutes`, shortened to the whole request when less than one
    recording is asked for (hours=0.05 makes one ~3 min recording, not one of 10 min)."""
    return min(minutes, hours * 60)


def make_plans(hours: float, minutes: float, split: str, seed: int,
               book_sizes: dict[str, int], engines: tuple[str, ...],
               dry: bool = False) -> list[dict]:
    """Plans of the recordings that make about `hours` of `minutes`-long recordings."""
    from .recording import plan

    n = max(1, math.ceil(hours * 60 / minutes - 1e-9))
    return [plan(split, seed, i, minutes, book_sizes, engines, dry) for i in range(n)]


def generate(out: str, hours: float, *, split: str = "train", seed: int = 0,
             minutes: float = 10.0, engines: tuple[str, ...] = DEFAULT_ENGINES,
             workers: int | None = None, text: str | None = None,
             progress: bool = True, dry: bool = False) -> dict:
    """Generate the missing recordings of about `hours` of `minutes`-long recordings of
    `split` under `out`; returns the manifest. workers: processes (default: usable cores);
    text: the gzip JSON text cache (default `default_text()`; built from the janeaustenr
    package if missing); dry: speech only, as WAV (`recording.plan`)."""
    from lcasr_jax.validate import check, number_above

    from .text import load_corpus

    check("--hours", hours, number_above(0))
    check("--minutes", minutes, number_above(0))
    if os.path.exists(out) and not os.path.isdir(out):
        raise ValueError(f"{out}: --out exists and is not a folder")
    workers = workers or len(os.sched_getaffinity(0))
    text = text or default_text()
    corpus = load_corpus(text)
    sizes = {k: len(v) for k, v in corpus.items()}
    del corpus
    engines = tuple(engines)
    minutes = recording_minutes(hours, minutes)
    plans = make_plans(hours, minutes, split, seed, sizes, engines, dry)
    os.makedirs(out, exist_ok=True)
    _check_same_settings(out, split, seed, minutes, engines, dry)
    todo = [p for p in plans if not _finished(out, p)]
    entries = {p["id"]: _entry_from_disk(p, out) for p in plans if p not in todo}
    print(f"synth: {len(plans)} recordings ({split}, seed {seed}), "
          f"{len(entries)} already done, {len(todo)} to make", file=sys.stderr)
    t0, made = time.time(), 0.0
    bar = _progress(round(sum(p["target_s"] for p in todo)), not progress)
    jobs = [(p, out) for p in todo]
    # One fresh process per recording: espeak-ng keeps synthesis state (e.g. its flutter
    # phase) across calls, so only a fresh library gives the same audio for the same seed
    # whatever the order. forkserver forks each from a process with the modules imported
    # and the text loaded (`preload`).
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["lcasr_jax.data.synth.preload", "soxr", "soundfile"])
    with one_blas_thread(), preload.text_for_forkserver(text):
        pool = ctx.Pool(max(1, min(workers, len(jobs))), _init, (text,), maxtasksperchild=1)
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
    manifest = {"split": split, "seed": seed, "minutes": minutes,
                "engines": list(engines), "dry": dry,
                "hours": round(sum(e["duration"] for e in entries.values()) / 3600, 4),
                "recordings": [entries[p["id"]] for p in plans]}
    tmp = os.path.join(out, ".manifest.json.tmp")
    with open(tmp, "w") as f:
        json.dump(manifest, f, indent=1)
    os.replace(tmp, os.path.join(out, "manifest.json"))
    if made:
        print(f"synth: made {made / 3600:.3f} h in {wall:.1f} s = {made / wall:.1f}x real time "
              f"with {workers} workers", file=sys.stderr)
    return manifest

