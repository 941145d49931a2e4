"""Austen novels as normalised paragraphs: read from Debian r-cran-janeaustenr or a cache.

The R package stores each novel as a character vector (one element per printed line) in
`data/Rdata.rdb`: a sequence of blocks, each a 4-byte big-endian length and a zlib
stream holding an XDR-serialised STRSXP. Blocks are in the alphabetical order of the
object names. Persuasion is reserved for independent evaluation and is never read out.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import struct
import unicodedata
import zlib

from .numbers import spell_numbers

RESERVED_BOOKS = frozenset({"persuasion", "mobydick"})
# Object names in the R package, in the order of their blocks in Rdata.rdb.
_R_OBJECTS = ("emma", "mansfieldpark", "northangerabbey", "persuasion", "prideprejudice",
              "sensesensibility")
R_PACKAGE_DIRS = ("/usr/lib/R/site-library/janeaustenr", "/usr/share/R/site-library/janeaustenr",
                  "/opt/lcasr-jax/janeaustenr/usr/lib/R/site-library/janeaustenr")
CACHE_VERSION = 3  # bump when normalise() changes (cache file name carries it)

_ABBREV = {"mr": "mister", "mrs": "missus", "dr": "doctor", "st": "saint", "esq": "esquire",
           "capt": "captain", "col": "colonel", "messrs": "messieurs", "no": "number"}
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)*")


def _strsxp(buf: bytes, what: str) -> list[str]:
    """Decode an XDR-serialised R character vector (version 2 or 3 header)."""
    if buf[:2] != b"X\n":
        raise ValueError(f"{what}: not an XDR R serialisation")
    version = struct.unpack(">i", buf[2:6])[0]
    pos = 14
    if version == 3:
        nlen = struct.unpack(">i", buf[pos:pos + 4])[0]
        pos += 4 + nlen
    flags, n = struct.unpack(">ii", buf[pos:pos + 8])
    if flags & 0xFF != 16:
        raise ValueError(f"{what}: expected a character vector, got R type {flags & 0xFF}")
    pos += 8
    out = []
    for _ in range(n):
        _, ln = struct.unpack(">ii", buf[pos:pos + 8])
        pos += 8
        if ln < 0:
            out.append("")
            continue
        out.append(buf[pos:pos + ln].decode("utf-8", "replace"))
        pos += ln
    return out


def read_r_package(pkg_dir: str) -> dict[str, list[str]]:
    """Lines of each non-reserved novel from an installed janeaustenr package folder."""
    path = os.path.join(pkg_dir, "data", "Rdata.rdb")
    with open(path, "rb") as f:
        data = f.read()
    books, pos = {}, 0
    for name in _R_OBJECTS:
        if pos + 4 > len(data):
            raise ValueError(f"{path}: ends before the block of {name}")
        d = zlib.decompressobj()
        raw = d.decompress(data[pos + 4:])
        if not d.eof:
            raise ValueError(f"{path}: truncated block for {name}")
        pos = len(data) - len(d.unused_data)
        if name in RESERVED_BOOKS:
            continue
        books[name] = _strsxp(raw, f"{path}:{name}")
    return books


def _is_heading(par: str) -> bool:
    letters = re.sub(r"[^A-Za-z]", "", par)
    return (not letters or letters.isupper() or par.lower().startswith(("chapter", "by jane"))
            or par.strip().lower() in ("finis", "the end"))


def paragraphs(lines: list[str]) -> list[str]:
    """Join printed lines into paragraphs (blank-line separated), dropping headings."""
    out, cur = [], []
    for line in lines + [""]:
        if line.strip():
            cur.append(line.strip())
        elif cur:
            par = " ".join(cur)
            cur = []
            if not _is_heading(par):
                out.append(par)
    return out


def normalise(par: str) -> str:
    """Lowercase ASCII text for synthesis: numbers spelled out, abbreviations expanded,
    keeping only letters, apostrophes inside words and . , ; : ? ! as prosody marks."""
    s = re.sub("\u00a3\\s*([\\d,]+)", r"\1 pounds", par)
    s = unicodedata.normalize("NFKD", s).replace("\u00a3", " pounds ")
    s = s.encode("ascii", "ignore").decode()
    s = s.replace("_", "").replace("&c", " et cetera").replace("&", " and ")
    s = re.sub(r"-{2,}", ", ", s).replace("-", " ")
    s = spell_numbers(s)
    s = re.sub(r"\b([A-Za-z]+)\.", lambda m: _ABBREV.get(m[1].lower(), m[0]) if m[1].lower()
               in _ABBREV and m[1][0].isupper() else m[0], s)
    s = s.lower()
    s = re.sub(r"(?<![a-z])'|'(?![a-z])", " ", s)
    s = re.sub(r"[^a-z' .,;:?!]", " ", s)
    s = re.sub(r"\s+([.,;:?!])", r"\1", s)
    s = re.sub(r"([.,;:?!])[.,;:?!]+", r"\1", s)
    s = re.sub(r"\s+", " ", s).strip().lstrip(".,;:?! ")
    if s and s[-1] not in ".?!":
        s = s.rstrip(",;: ") + "."
    return s


def words(text: str) -> list[tuple[int, int]]:
    """(start, end) character spans of the words of a normalised text."""
    return [m.span() for m in _WORD.finditer(text)]


def build_corpus(pkg_dir: str) -> dict[str, list[str]]:
    """{book: [normalised paragraph, ...]} from the R package, reserved books excluded."""
    corpus = {}
    for name, lines in read_r_package(pkg_dir).items():
        pars = [normalise(p) for p in paragraphs(lines)]
        corpus[name] = [p for p in pars if words(p)]
    return corpus


def find_r_package() -> str | None:
    """The installed janeaustenr folder ($LCASR_JANEAUSTENR, else the usual places)."""
    for d in filter(None, (os.environ.get("LCASR_JANEAUSTENR"), *R_PACKAGE_DIRS)):
        if os.path.isfile(os.path.join(d, "data", "Rdata.rdb")):
            return d
    return None


def load_corpus(cache: str) -> dict[str, list[str]]:
    """Read the gzip JSON cache; create it from the R package first if it is missing."""
    if not os.path.exists(cache):
        pkg = find_r_package()
        if pkg is None:
            raise FileNotFoundError(
                f"{cache}: no text cache and no janeaustenr package "
                "(run scripts/install_synth_deps.sh or pass --text)")
        corpus = build_corpus(pkg)
        os.makedirs(os.path.dirname(os.path.abspath(cache)), exist_ok=True)
        tmp = f"{cache}.tmp{os.getpid()}"
        with gzip.open(tmp, "wt", encoding="ascii") as f:
            json.dump({"version": CACHE_VERSION, "source": "janeaustenr", "books": corpus}, f)
        os.replace(tmp, cache)
    try:
        with gzip.open(cache, "rt", encoding="ascii") as f:
            data = json.load(f)
        books = data["books"]
    except (OSError, ValueError, KeyError) as e:
        raise ValueError(f"{cache}: unreadable text cache ({e})") from None
    bad = RESERVED_BOOKS & set(books)
    if bad:
        raise ValueError(f"{cache}: holds reserved books {sorted(bad)}")
    return books
