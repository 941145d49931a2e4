"""One synthetic long-form recording: plan (from a seed), render (speech), write (audio+json).

A plan is a JSON-able dict drawn from `default_rng([seed, split code, index])`, so a
recording depends only on (seed, split, index, minutes, dry) and the engines' own
determinism. Output: `<id>.flac` (16 kHz, 16 bit; speed, formant warp, gain, room echo and
noise applied) or, for a dry plan, `<id>.wav` (16 kHz PCM 16, the synthesisers' output
resampled and nothing else: the variety is drawn per epoch on the accelerator,
`lcasr_jax.data.augment`), and `<id>.json`, a recording JSON (`lcasr_jax.data.alignments`,
written through its codec) with `sample_rate` kept as an extra field and every word's speaker.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import numpy as np

from lcasr_jax.data.alignments import Recording, Words, write_recording

from . import room
from .perturb import formant_warp
from .text import words as word_spans
from .voices import (
    DEFAULT_ENGINES,
    ENGINE_WEIGHTS,
    SPLIT_CODE,
    Voice,
    assert_allowed_book,
    books,
    voices,
)

SR = 16000
MAX_GROUP_WORDS = 80  # paragraphs are synthesised in sentence groups of at most this


def plan(split: str, seed: int, index: int, minutes: float, book_sizes: dict[str, int],
         engines: tuple[str, ...] = DEFAULT_ENGINES, dry: bool = False) -> dict:
    """Draw everything random about recording `index` except the noise samples.

    dry: the same draws (same voices, text and turns as the wet plan), with the speed,
    formant warp, gain, echo and noise set to none; the engines' own rate and pitch stay."""
    rng = np.random.default_rng([seed, SPLIT_CODE[split], index])
    pool = voices(split)
    unknown = set(engines) - set(ENGINE_WEIGHTS)
    if unknown or not engines:
        raise ValueError(f"unknown engines {sorted(unknown)}; choose from {list(ENGINE_WEIGHTS)}")
    weights = np.array([ENGINE_WEIGHTS[e] for e in engines])
    n_spk = int(rng.choice([1, 2, 3], p=[0.25, 0.45, 0.3]))
    speakers, used = [], set()
    while len(speakers) < n_spk:
        engine = str(rng.choice(list(engines), p=weights / weights.sum()))
        v = pool[engine][int(rng.integers(len(pool[engine])))]
        if v.key in used:
            continue
        used.add(v.key)
        # Speaker perturbation: speed (tempo and pitch, by resampling), formant warp
        # (vocal-tract length, perturb.formant_warp) and each engine's own pitch/rate.
        s = {"speaker": v.key, "engine": v.engine, "voice": v.name,
             "speed": float(rng.uniform(0.9, 1.1)), "gain_db": float(rng.uniform(-6, 0)),
             "warp": float(rng.uniform(0.88, 1.12))}
        if engine == "espeak":
            s.update(rate=int(rng.integers(140, 211)), pitch=int(rng.integers(25, 76)),
                     range=int(rng.integers(30, 81)))
        elif engine == "festival":
            s.update(stretch=float(rng.uniform(0.85, 1.2)))
        else:
            s.update(stretch=float(rng.uniform(0.85, 1.2)), pitch=float(rng.uniform(0.85, 1.2)))
        speakers.append(s)
    names = [b for b in books(split) if b in book_sizes]
    if not names:
        raise ValueError(f"no text for split {split}: books {books(split)} missing from cache")
    sizes = np.array([book_sizes[b] for b in names], float)
    book = names[int(rng.choice(len(names), p=sizes / sizes.sum()))]
    assert_allowed_book(book)
    echo = bool(rng.random() < 0.8)
    out = {
        "id": f"{split}-s{seed}-{index:05d}", "split": split, "seed": seed, "index": index,
        "target_s": float(minutes * 60 * rng.uniform(0.8, 1.2)), "speakers": speakers,
        "book": book, "start_paragraph": int(rng.integers(book_sizes[book])),
        "rt60": float(rng.uniform(0.15, 0.8)) if echo else 0.0,
        "wet": float(rng.uniform(0.1, 0.7)) if echo else 0.0,
        "noise": str(rng.choice(["white", "pink", "brown"])), "snr_db": float(rng.uniform(10, 35)),
        "level_db": float(rng.uniform(-28, -18)), "render_seed": int(rng.integers(2**31)),
    }
    if dry:
        for s in speakers:
            s.update(speed=1.0, gain_db=0.0, warp=1.0)
        out.update(dry=True, rt60=0.0, wet=0.0, noise="none", snr_db=None, level_db=0.0)
    return out


def audio_name(p: dict) -> str:
    """The audio file name of plan p: <id>.wav when dry, else <id>.flac."""
    return f"{p['id']}.{'wav' if p.get('dry') else 'flac'}"


def sentence_groups(par: str, limit: int = MAX_GROUP_WORDS) -> list[str]:
    """Split a paragraph at sentence ends into groups of at most ~limit words."""
    sents = re.split(r"(?<=[.?!;])\s+", par)
    out, cur, n = [], [], 0
    for s in sents:
        k = len(word_spans(s))
        if cur and n + k > limit:
            out.append(" ".join(cur))
            cur, n = [], 0
        cur.append(s)
        n += k
    if cur:
        out.append(" ".join(cur))
    return out


def align_tokens(tokens: list[str], engine_words: list[str]) -> list[tuple[int, int]] | None:
    """Map each token to the [first, last] engine items it was read as; None when they
    cannot be matched. flite drops apostrophes, splits off "'s" and respells homographs
    ("read" -> "red"): items starting with an apostrophe join the previous one, and equal
    counts then match one to one."""
    groups: list[tuple[int, int]] = []
    for j, w in enumerate(engine_words):
        if w.startswith("'") and groups:
            groups[-1] = (groups[-1][0], j)
        else:
            groups.append((j, j))
    if len(groups) == len(tokens):
        return groups
    out, j = [], 0
    for tok in tokens:
        key, acc, first = tok.replace("'", ""), "", j
        while j < len(engine_words) and len(acc) < len(key):
            acc += engine_words[j].lower().replace("'", "")
            j += 1
        if acc != key:
            return None
        out.append((first, j - 1))
    return out if j == len(engine_words) else None


class Engines:
    """Per-process synthesiser instances, created on first use."""

    def __init__(self) -> None:
        self._espeak = self._flite = self._festival = None

    def speak(self, spk: dict, text: str) -> tuple[np.ndarray, list[str], np.ndarray] | None:
        """(audio at 16 kHz, words, (words, 2) times in samples) or None if unalignable."""
        import soxr

        spans = word_spans(text)
        tokens = [text[a:b] for a, b in spans]
        if spk["engine"] == "espeak":
            if self._espeak is None:
                from .espeak import Espeak
                self._espeak = Espeak()
            self._espeak.set_voice(spk["voice"], spk["rate"], spk["pitch"], spk["range"])
            audio, times = self._espeak.synth(text, spans)
            sr = self._espeak.sample_rate
        elif spk["engine"] in ("flite", "festival"):
            if spk["engine"] == "flite":
                if self._flite is None:
                    from .flite import Flite
                    self._flite = Flite()
                self._flite.set_voice(spk["voice"], spk["stretch"], spk["pitch"])
                audio, sr, ewords, etimes = self._flite.synth(text)
            else:
                if self._festival is None:
                    from .festival import Festival
                    self._festival = Festival()
                audio, sr, ewords, etimes = self._festival.synth(text, spk["voice"],
                                                                 spk["stretch"])
            idx = align_tokens(tokens, ewords)
            if idx is None:
                return None
            times = np.array([(etimes[a, 0], etimes[a:b + 1, 1].max()) for a, b in idx],
                             np.int64)
        else:
            raise ValueError(f"unknown engine {spk['engine']}")
        in_rate = sr * spk["speed"]
        out = soxr.resample(audio, in_rate, SR, quality="MQ").astype(np.float32)
        out = formant_warp(out, spk.get("warp", 1.0))
        t = np.round(times.reshape(-1, 2) * (SR / in_rate)).astype(np.int64)
        if spk["gain_db"]:
            out *= np.float32(10 ** (spk["gain_db"] / 20))
        return out, tokens, np.clip(t, 0, len(out))


def render(p: dict, corpus: dict[str, list[str]], engines: Engines):
    """Speech of plan p: (dry audio (samples,) float32 16 kHz, [(word, start, end, speaker)]
    in samples, number of sentence groups skipped as unalignable)."""
    rng = np.random.default_rng(p["render_seed"])
    pars = corpus[p["book"]]
    spks = p["speakers"]
    target = int(p["target_s"] * SR)
    pieces = [np.zeros(int(rng.uniform(0.2, 1.0) * SR), np.float32)]
    pos, cur, i, skipped = len(pieces[0]), int(rng.integers(len(spks))), p["start_paragraph"], 0
    out_words: list[tuple[str, int, int, str]] = []
    while pos < target:
        for k in range(int(rng.integers(1, 5))):
            if k:
                gap = np.zeros(int(rng.uniform(0.15, 0.6) * SR), np.float32)
                pieces.append(gap)
                pos += len(gap)
            for group in sentence_groups(pars[i % len(pars)]):
                res = engines.speak(spks[cur], group)
                if res is None:
                    skipped += 1
                    continue
                audio, toks, t = res
                out_words += [(w, pos + int(a), pos + int(b), spks[cur]["speaker"])
                              for w, (a, b) in zip(toks, t, strict=True)]
                pieces.append(audio)
                pos += len(audio)
            i += 1
            if pos >= target:
                break
        if len(spks) > 1:
            cur = (cur + int(rng.integers(1, len(spks)))) % len(spks)
        gap = np.zeros(int(rng.uniform(0.25, 1.2) * SR), np.float32)
        pieces.append(gap)
        pos += len(gap)
    return np.concatenate(pieces), out_words, skipped


def repair_times(words: list[tuple[str, int, int, str]]) -> list[tuple[str, int, int, str]]:
    """Make times non-decreasing and every word at least 1 ms long."""
    out, prev_end = [], 0
    for w, a, b, s in words:
        a = max(a, prev_end)
        b = max(b, a + SR // 1000)
        out.append((w, a, b, s))
        prev_end = b
    return out


def write(p: dict, dry: np.ndarray, words, out_dir: str) -> dict:
    """Add echo and noise block by block, write <id>.flac then <id>.json atomically.

    `words`: (word, start, end, speaker) with times in samples."""
    import soundfile as sf

    rng = np.random.default_rng(p["render_seed"] + 1)
    ir = (room.impulse_response(rng, p["rt60"], p["wet"]) if p["rt60"] > 0
          else np.ones(1, np.float32))
    # Active-speech power from 10 ms frame energies inside the words.
    hop = SR // 100
    nfr = len(dry) // hop + 1
    fe = np.zeros(nfr)
    frames = dry[: len(dry) // hop * hop].reshape(-1, hop)
    fe[: len(frames)] = np.einsum("ij,ij->i", frames, frames, dtype=np.float64)
    c = np.concatenate([[0.0], np.cumsum(fe)])
    idx = np.array([(a // hop, -(-b // hop)) for _, a, b, _ in words], np.int64).reshape(-1, 2)
    idx = np.minimum(idx, nfr)
    n_in = max(int(np.sum(idx[:, 1] - idx[:, 0])) * hop, 1)
    p_speech = max(float(np.sum(c[idx[:, 1]] - c[idx[:, 0]])) / n_in, 1e-10)
    p_speech *= float(np.sum(ir.astype(np.float64) ** 2))
    noise_rms = float(np.sqrt(p_speech / 10 ** (p["snr_db"] / 10)))
    gain = np.float32(10 ** (p["level_db"] / 20) / np.sqrt(p_speech))
    rid = p["id"]
    tmp = os.path.join(out_dir, f".{rid}.flac.tmp")
    with sf.SoundFile(tmp, "w", SR, 1, "PCM_16", format="FLAC") as f:
        for y in room.convolve_blocks(dry, ir, noise=p["noise"], noise_rms=noise_rms, rng=rng):
            y *= gain
            f.write(np.clip(y, -1.0, 1.0, out=y))
    os.replace(tmp, os.path.join(out_dir, f"{rid}.flac"))
    return _write_json(p, words, len(dry), out_dir)


def write_dry(p: dict, dry: np.ndarray, words, out_dir: str) -> Recording:
    """Write <id>.wav (16 kHz PCM 16, the dry speech clipped to [-1, 1]: a memory copy, no
    encoder) then <id>.json."""
    import soundfile as sf

    tmp = os.path.join(out_dir, f".{p['id']}.wav.tmp")
    sf.write(tmp, np.clip(dry, -1.0, 1.0), SR, "PCM_16", format="WAV")
    os.replace(tmp, os.path.join(out_dir, audio_name(p)))
    return _write_json(p, words, len(dry), out_dir)


def _write_json(p: dict, words, n_samples: int, out_dir: str) -> Recording:
    """<id>.json for plan p's audio of `n_samples` samples; words as in `write`."""
    rid = p["id"]
    text, starts, ends, speakers = zip(*words, strict=True) if words else ((),) * 4
    rec = Recording(rid, Path(out_dir) / audio_name(p),
                    Words(text, np.array(starts) / SR, np.array(ends) / SR, speakers),
                    round(n_samples / SR, 4), {"sample_rate": SR})
    write_recording(Path(out_dir) / f"{rid}.json", rec)
    return rec


def make(p: dict, corpus: dict[str, list[str]], engines: Engines, out_dir: str) -> dict:
    """Render and write one recording; returns its manifest entry."""
    dry, words, skipped = render(p, corpus, engines)
    if skipped:
        print(f"synth: {p['id']}: skipped {skipped} sentence groups flite could not align",
              file=sys.stderr)
    words = repair_times(words)
    rec = (write_dry if p.get("dry") else write)(p, dry, words, out_dir)
    return {"id": p["id"], "audio": rec.audio.name, "words": f"{p['id']}.json",
            "duration": rec.duration, "n_words": len(words), "book": p["book"],
            "speakers": [s["speaker"] for s in p["speakers"]]}


__all__ = ["Engines", "Voice", "audio_name", "make", "plan", "render", "write", "write_dry"]
