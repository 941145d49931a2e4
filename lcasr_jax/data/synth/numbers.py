"""Spell out numbers in English text ("1811" -> "eighteen eleven", "23rd" -> "twenty third")."""

from __future__ import annotations

import re

_ONES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
         "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
         "eighteen", "nineteen")
_TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
_SCALES = ((10**9, "billion"), (10**6, "million"), (1000, "thousand"), (100, "hundred"))
_ORD = {"one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth",
        "nine": "ninth", "twelve": "twelfth"}


def cardinal(n: int) -> str:
    """English words for a non-negative integer."""
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    for value, name in _SCALES:
        if n >= value:
            head, rest = divmod(n, value)
            tail = "" if rest == 0 else (" and " if rest < 100 else " ") + cardinal(rest)
            return f"{cardinal(head)} {name}{tail}"
    raise AssertionError(n)


def ordinal(n: int) -> str:
    """English ordinal words ("twenty third")."""
    words = cardinal(n).split()
    last = words[-1]
    if last in _ORD:
        words[-1] = _ORD[last]
    elif last.endswith("y"):
        words[-1] = last[:-1] + "ieth"
    else:
        words[-1] = last + "th"
    return " ".join(words)


def year_or_cardinal(n: int) -> str:
    """Years 1100-1999 as pairs ("eighteen eleven"), everything else as a cardinal."""
    if 1100 <= n <= 1999 and n % 100:
        hi, lo = divmod(n, 100)
        return f"{cardinal(hi)} {'oh ' + cardinal(lo) if lo < 10 else cardinal(lo)}"
    return cardinal(n)


def spell_numbers(text: str) -> str:
    """Replace digit runs (with thousands commas, ordinal suffixes) by words."""
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text)

    def repl(m: re.Match) -> str:
        n = int(m[1])
        return f" {ordinal(n) if m[2] else year_or_cardinal(n)} "

    return re.sub(r"(\d+)(st|nd|rd|th)?\b", repl, text)
