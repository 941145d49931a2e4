"""Word-aligned recordings: the on-disk format, validation and converters.

Recording format: one audio file plus one JSON file (UTF-8) beside it:

    {
      "format": "lcasr-recording/1",
      "id": "rec-0001",                 # optional; default: the JSON file's stem
      "audio": "rec-0001.flac",         # path relative to the JSON's folder (or absolute)
      "duration": 3600.02,              # optional, seconds; checked against the words
      "words": [                        # in time order
        {"word": "hello", "start": 0.53, "end": 0.91, "speaker": "A"},
        {"word": "there", "start": 0.95, "end": 1.30}
      ]
    }

`word` is one whitespace-free token of text, `start`/`end` are seconds from the start of the
audio (start <= end), `speaker` is an optional string. Any other keys are kept in `meta`.

Validation (`validate_words`), with `strict=False` (the default):
- errors: no words (empty transcript), empty word text, NaN/inf times, end < start, a start
  before -0.05 s, a word starting at or after the audio end, a word ending more than
  `END_TOLERANCE_S` after it;
- documented repairs: unsorted words are stably sorted by (start, end); starts in
  [-0.05, 0) are clipped to 0; ends up to `END_TOLERANCE_S` past the audio end are clipped
  to it; words with internal whitespace are split evenly over their interval.
- Overlapping words are kept (speakers overlap in real conversations; chunking uses each
  word's own interval). With `strict=True` unsorted words and overlapping words of one
  speaker are errors too.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from lcasr_jax.data.audio import AudioError, read_sphere

FORMAT = "lcasr-recording/1"
END_TOLERANCE_S = 0.5
START_TOLERANCE_S = 0.05
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".opus", ".mp3", ".sph")


class AlignmentError(ValueError):
    """Bad transcript or alignment; the message names the source file."""


@dataclasses.dataclass(frozen=True)
class Words:
    """Time-aligned words. start/end: (n,) float64 seconds."""

    text: tuple[str, ...]
    start: np.ndarray
    end: np.ndarray
    speaker: tuple[str | None, ...] | None = None

    def __post_init__(self):
        object.__setattr__(self, "start", np.asarray(self.start, np.float64).reshape(-1))
        object.__setattr__(self, "end", np.asarray(self.end, np.float64).reshape(-1))
        n = len(self.text)
        if self.start.shape != (n,) or self.end.shape != (n,) or (
                self.speaker is not None and len(self.speaker) != n):
            raise ValueError("Words: text, start, end and speaker lengths differ")

    def __len__(self) -> int:
        return len(self.text)

    @classmethod
    def from_dicts(cls, items: Iterable[dict[str, Any]], source: str = "") -> Words:
        text, start, end, spk = [], [], [], []
        for i, w in enumerate(items):
            try:
                text.append(str(w["word"]))
                start.append(float(w["start"]))
                end.append(float(w["end"]))
            except (KeyError, TypeError, ValueError) as e:
                raise AlignmentError(f"{source}: word {i} lacks word/start/end ({e})") from None
            s = w.get("speaker")
            spk.append(None if s is None else str(s))
        speaker = None if all(s is None for s in spk) else tuple(spk)
        return cls(tuple(text), np.array(start), np.array(end), speaker)

    def to_dicts(self) -> list[dict[str, Any]]:
        out = []
        for i, w in enumerate(self.text):
            d: dict[str, Any] = {"word": w, "start": round(float(self.start[i]), 4),
                                 "end": round(float(self.end[i]), 4)}
            if self.speaker is not None and self.speaker[i] is not None:
                d["speaker"] = self.speaker[i]
            out.append(d)
        return out

    def take(self, idx: np.ndarray) -> Words:
        idx = np.asarray(idx, np.int64)
        spk = None if self.speaker is None else tuple(self.speaker[i] for i in idx)
        return Words(tuple(self.text[i] for i in idx), self.start[idx], self.end[idx], spk)


@dataclasses.dataclass(frozen=True)
class Recording:
    """One audio file with its aligned words (training data and the recording JSON format;
    an evaluation dataset's scored item is `eval.datasets.EvalRecording`)."""

    id: str
    audio: Path
    words: Words
    duration: float | None = None
    meta: dict[str, Any] = dataclasses.field(default_factory=dict)


def _split_multiword(words: Words) -> Words:
    if not any(len(t.split()) != 1 for t in words.text):
        return words
    text, start, end, spk = [], [], [], []
    for i, t in enumerate(words.text):
        parts = t.split() or [t]
        edges = np.linspace(words.start[i], words.end[i], len(parts) + 1)
        for j, p in enumerate(parts):
            text.append(p)
            start.append(edges[j])
            end.append(edges[j + 1])
            spk.append(None if words.speaker is None else words.speaker[i])
    return Words(tuple(text), np.array(start), np.array(end),
                 None if words.speaker is None else tuple(spk))


def validate_words(words: Words, duration: float | None = None, *, source: str = "",
                   strict: bool = False, allow_empty: bool = False) -> Words:
    """Check (and, unless strict, repair) words; see the module docstring for the rules."""
    src = source or "<words>"
    if len(words) == 0:
        if allow_empty:
            return words
        raise AlignmentError(f"{src}: empty transcript (no words)")
    bad_text = [i for i, t in enumerate(words.text) if not t.strip()]
    if bad_text:
        raise AlignmentError(f"{src}: word {bad_text[0]} has empty text")
    s, e = words.start, words.end
    if not (np.isfinite(s).all() and np.isfinite(e).all()):
        raise AlignmentError(f"{src}: NaN or infinite word time")
    if (bad := np.flatnonzero(e < s)).size:
        i = bad[0]
        raise AlignmentError(f"{src}: word {i} {words.text[i]!r} ends ({e[i]}) before it "
                             f"starts ({s[i]})")
    if (bad := np.flatnonzero(s < -START_TOLERANCE_S)).size:
        raise AlignmentError(f"{src}: word {bad[0]} starts at negative time {s[bad[0]]}")
    outside = np.flatnonzero((s >= duration) | (e > duration + END_TOLERANCE_S)) if (
        duration is not None) else ()
    if len(outside):
        i = outside[0]
        raise AlignmentError(f"{src}: word {i} {words.text[i]!r} [{s[i]}, {e[i]}] s lies "
                             f"outside the audio (duration {duration:.3f} s)")
    order = np.lexsort((e, s))
    unsorted = bool((order != np.arange(len(order))).any())
    if strict:
        if unsorted:
            raise AlignmentError(f"{src}: words are not sorted by start time")
        spk = words.speaker or (None,) * len(words)
        for i in range(len(words) - 1):
            if spk[i] == spk[i + 1] and e[i] > s[i + 1] + 1e-9:
                raise AlignmentError(f"{src}: words {i} and {i + 1} of one speaker overlap "
                                     f"({e[i]} > {s[i + 1]})")
    if unsorted:
        words = words.take(order)
    start = np.maximum(words.start, 0.0)
    end = np.maximum(words.end, 0.0)
    if duration is not None:
        end = np.minimum(end, duration)
    words = Words(words.text, start, end, words.speaker)
    return _split_multiword(words)


# ----------------------------------------------------------------------------- recording JSON

def read_recording(path: str | Path, *, strict: bool = False, check_audio: bool = False,
                   allow_empty: bool = False) -> Recording:
    """Read a recording JSON (format above). check_audio: read the audio's duration."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise AlignmentError(f"{path}: unreadable recording JSON ({e})") from None
    if not isinstance(data, dict) or "words" not in data or not isinstance(data["words"], list):
        raise AlignmentError(f"{path}: not a recording JSON (needs a 'words' list)")
    audio = data.get("audio")
    if audio is None:
        found = [path.with_suffix(x) for x in AUDIO_EXTENSIONS if path.with_suffix(x).is_file()]
        if not found:
            raise AlignmentError(f"{path}: no 'audio' field and no audio file beside it")
        audio_path = found[0]
    else:
        audio_path = Path(audio) if Path(audio).is_absolute() else path.parent / audio
    duration = data.get("duration")
    if check_audio:
        duration = audio_duration(audio_path)
    duration = None if duration is None else float(duration)
    words = Words.from_dicts(data["words"], source=str(path))
    words = validate_words(words, duration, source=str(path), strict=strict,
                           allow_empty=allow_empty)
    meta = {k: v for k, v in data.items()
            if k not in ("format", "id", "audio", "duration", "words")}
    return Recording(str(data.get("id") or path.stem), audio_path, words, duration, meta)


def write_recording(path: str | Path, rec: Recording) -> None:
    """Write a recording JSON atomically; `audio` is stored relative to the JSON when inside."""
    path = Path(path)
    try:
        audio = str(Path(rec.audio).resolve().relative_to(path.parent.resolve()))
    except ValueError:
        audio = str(Path(rec.audio).resolve())
    data: dict[str, Any] = {"format": FORMAT, "id": rec.id, "audio": audio}
    if rec.duration is not None:
        data["duration"] = round(float(rec.duration), 4)
    data.update(rec.meta)
    data["words"] = rec.words.to_dicts()
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
    tmp.replace(path)


def find_recordings(directory: str | Path) -> list[Path]:
    """Recording JSONs under `directory` (recursive, sorted): JSONs with a 'words' list.
    Other JSON documents are not recordings; a file that is not valid JSON, or whose
    'words' is not a list, is a damaged recording: skipped, with a warning naming it."""
    out = []
    for p in sorted(Path(directory).rglob("*.json")):
        try:
            doc = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            print(f"warning: {p}: skipped, not a readable JSON recording "
                  f"({str(e).splitlines()[0][:120]})", file=sys.stderr)
            continue
        if not isinstance(doc, dict) or "words" not in doc:
            continue  # another kind of JSON document (a manifest, dataset_info.json, ...)
        if isinstance(doc["words"], list):
            out.append(p)
        else:
            print(f"warning: {p}: skipped, its 'words' is not a list", file=sys.stderr)
    return out


def audio_duration(path: str | Path) -> float:
    """Duration in seconds from the file header (SPHERE parsed here, others via soundfile)."""

    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path}: audio file not found")
    with open(path, "rb") as f:
        if f.read(7) == b"NIST_1A":
            data, rate = read_sphere(path)
            return data.shape[0] / rate
    import soundfile as sf

    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError) as e:
        raise AudioError(f"{path}: unreadable audio ({e})") from None
    return info.frames / info.samplerate


# ----------------------------------------------------------------------------- converters

def _seconds(v: Any) -> float:
    """'1.200s', '1.2', 1.2 or {'seconds': 1, 'nanos': 2e8} -> seconds."""
    if isinstance(v, dict):
        return float(v.get("seconds", 0)) + float(v.get("nanos", 0)) / 1e9
    if isinstance(v, str):
        return float(v[:-1] if v.endswith("s") else v)
    return float(v)


def words_from_podcast_json(data: dict[str, Any] | str | Path, source: str = "") -> Words:
    """The original's podcast JSON (Google STT style): results[-1].alternatives[0].words with
    word/startTime/endTime ('1.200s') and optional speakerTag. Like the original, the last
    result (which repeats every word with speaker tags) is used; if it has no words, the words
    of all results are concatenated."""
    if not isinstance(data, dict):
        source = source or str(data)
        try:
            data = json.loads(Path(data).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise AlignmentError(f"{source}: unreadable JSON ({e})") from None
    try:
        results = data["results"]
        items = results[-1]["alternatives"][0].get("words") or [
            w for r in results for a in r.get("alternatives", [])[:1] for w in a.get("words", [])]
        dicts = [{"word": w["word"], "start": _seconds(w["startTime"]),
                  "end": _seconds(w["endTime"]), "speaker": w.get("speakerTag")} for w in items]
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as e:
        raise AlignmentError(f"{source}: not a podcast transcript JSON ({e!r})") from None
    return Words.from_dicts(dicts, source)


def read_ctm(path: str | Path, channel: str | None = None) -> dict[str, Words]:
    """CTM ('file channel start duration word [confidence]'; ';;' comments) -> {file: Words}.

    A file with words on several channels needs `channel` to pick one.
    """
    path = Path(path)
    rows: dict[str, list[tuple[str, float, float, str]]] = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.lstrip().startswith(";;"):
            continue
        parts = line.split()
        try:
            utt, ch, start, dur, word = parts[0], parts[1], float(parts[2]), float(parts[3]), \
                parts[4]
        except (IndexError, ValueError):
            raise AlignmentError(f"{path}:{n}: bad CTM line {line!r}") from None
        if channel is None or ch == channel:
            rows.setdefault(utt, []).append((ch, start, start + dur, word))
    out = {}
    for utt, r in rows.items():
        if channel is None and len({x[0] for x in r}) > 1:
            raise AlignmentError(f"{path}: {utt} has several channels; pass channel=")
        out[utt] = Words(tuple(x[3] for x in r), np.array([x[1] for x in r]),
                         np.array([x[2] for x in r]))
    return out


_TG_TOKEN = re.compile(r'"((?:[^"]|"")*)"|([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)|<exists>')
_SILENCE = frozenset({"", "sil", "sp", "spn", "<eps>", "<sil>", "#", "pau"})


def read_textgrid(path: str | Path, tier: str | None = None) -> Words:
    """Praat TextGrid (long or short text format) -> Words of one interval tier.

    tier: the tier's name; default: a tier named 'words' (any case), else the first interval
    tier. Empty and silence labels (sil, sp, spn, <eps>, ...) are skipped.
    """
    path = Path(path)
    raw = path.read_bytes()
    text = raw.decode("utf-16") if raw[:2] in (b"\xff\xfe", b"\xfe\xff") else raw.decode(
        "utf-8-sig")
    text = re.sub(r"\[\s*\d*\s*\]", " ", text)
    toks: list[str | float] = []
    for m in _TG_TOKEN.finditer(text):
        if m.group(1) is not None:
            toks.append(m.group(1).replace('""', '"'))
        elif m.group(2) is not None:
            toks.append(float(m.group(2)))
    try:
        if toks[:2] != ["ooTextFile", "TextGrid"]:
            raise ValueError("missing 'ooTextFile' 'TextGrid' header")
        pos, tiers = 5, {}
        for _ in range(int(toks[4])):
            cls, name, n = toks[pos], toks[pos + 1], int(toks[pos + 4])
            pos += 5
            width = 3 if cls == "IntervalTier" else 2
            items = toks[pos:pos + width * n]
            pos += width * n
            if cls == "IntervalTier":
                tiers.setdefault(str(name), [(float(items[i]), float(items[i + 1]),
                                              str(items[i + 2]).strip())
                                             for i in range(0, len(items), 3)])
    except (IndexError, ValueError, TypeError) as e:
        raise AlignmentError(f"{path}: not a TextGrid ({e})") from None
    if not tiers:
        raise AlignmentError(f"{path}: no interval tier")
    if tier is None:
        tier = next((k for k in tiers if k.lower() == "words"), next(iter(tiers)))
    if tier not in tiers:
        raise AlignmentError(f"{path}: no tier {tier!r} (has {sorted(tiers)})")
    iv = [x for x in tiers[tier] if x[2].lower() not in _SILENCE]
    return Words(tuple(x[2] for x in iv), np.array([x[0] for x in iv]),
                 np.array([x[1] for x in iv]))


def convert(alignment: str | Path, audio: str | Path, out_json: str | Path, *,
            fmt: str | None = None, rec_id: str | None = None,
            tier: str | None = None) -> Recording:
    """Convert a podcast JSON / CTM / TextGrid alignment into a recording JSON (validated
    against the audio's duration). fmt: 'podcast', 'ctm' or 'textgrid' (default: by suffix)."""
    alignment, out_json = Path(alignment), Path(out_json)
    fmt = fmt or {".json": "podcast", ".ctm": "ctm", ".textgrid": "textgrid"}.get(
        alignment.suffix.lower())
    rec_id = rec_id or Path(audio).stem
    if fmt == "podcast":
        words = words_from_podcast_json(alignment)
    elif fmt == "ctm":
        by_file = read_ctm(alignment)
        words = by_file.get(rec_id) or (next(iter(by_file.values())) if len(by_file) == 1
                                         else None)
        if words is None:
            raise AlignmentError(f"{alignment}: no CTM entries for {rec_id!r}")
    elif fmt == "textgrid":
        words = read_textgrid(alignment, tier)
    else:
        raise AlignmentError(f"{alignment}: unknown alignment format (use podcast/ctm/textgrid)")
    duration = audio_duration(audio)
    words = validate_words(words, duration, source=str(alignment))
    rec = Recording(rec_id, Path(audio), words, duration if math.isfinite(duration) else None)
    write_recording(out_json, rec)
    return rec
