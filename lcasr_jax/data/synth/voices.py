"""Voice and book catalogue per split; reserved voices and books are never chosen.

A voice is "engine:name". Train and dev/test use disjoint espeak accents, disjoint espeak
variants, disjoint flite voices and disjoint books; dev and test share voices and differ
by book.
"""

from __future__ import annotations

from dataclasses import dataclass

from .text import RESERVED_BOOKS

RESERVED_VOICES = frozenset({
    "espeak:en-gb-scotland", "espeak:en-gb-x-gbcwmd", "flite:slt",
    "festival:cmu_us_slt_arctic_hts",
})
SPLITS = ("train", "dev", "test")
SPLIT_CODE = {"train": 0, "dev": 1, "test": 2}

_ACCENTS = {"train": ("en-us", "en", "en-gb-x-gbclan", "en-us-nyc"),
            "heldout": ("en-gb-x-rp", "en-029")}
_VARIANTS = {"train": ("m1", "m2", "m3", "m4", "m6", "f1", "f2", "f3", "klatt", "klatt2",
                       "klatt4", "klatt6"),
             "heldout": ("m5", "m7", "f4", "f5", "klatt3", "klatt5")}
_FLITE = {"train": ("kal16", "rms"), "heldout": ("awb", "kal")}
_FESTIVAL = {"train": ("kal_diphone",), "heldout": ("ked_diphone",)}
BOOKS = {"train": ("emma", "mansfieldpark", "prideprejudice"),
         "dev": ("northangerabbey",), "test": ("sensesensibility",)}
# Share of speakers per engine (flite's rms/awb are slow: ~65x real time on one core);
# renormalised over the engines in use. festival is opt-in (--engines).
ENGINE_WEIGHTS = {"espeak": 0.55, "flite": 0.35, "festival": 0.1}
DEFAULT_ENGINES = ("espeak", "flite")


@dataclass(frozen=True)
class Voice:
    engine: str
    name: str

    @property
    def key(self) -> str:
        return f"{self.engine}:{self.name}"


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


def books(split: str) -> tuple[str, ...]:
    """Book names usable in `split`."""
    _pool(split)
    out = BOOKS[split]
    for b in out:
        assert_allowed_book(b)
    return out


def assert_allowed_voice(v: Voice) -> None:
    """Fail on a reserved voice (an accent's base name is checked with any variant)."""
    base = v.name.split("+")[0].lower()
    assert f"{v.engine}:{base}" not in RESERVED_VOICES, f"reserved voice {v.key} chosen"
    assert v.engine in ("espeak", "flite", "festival"), f"voice {v.key}: unknown engine"


def assert_allowed_book(book: str) -> None:
    """Fail on a reserved book."""
    assert book.replace(" ", "").lower() not in RESERVED_BOOKS, f"reserved book {book} chosen"
