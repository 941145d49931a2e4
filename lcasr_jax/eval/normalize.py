"""Text normalisation for scoring, as the original does it.

Every reference and hypothesis goes through Whisper's English normaliser (the maintained
`whisper_normalizer` package) and is lower-cased. Dataset-specific cleanups run first:
  * Earnings-22: lower-case, drop the tags <silence> <inaudible> <laugh> <noise>
    <affirmative> <crosstalk>, drop '…' ',' '.' '?', turn '-' into a space, squeeze spaces
    (`eval/earnings22_full/run.py: preprocess_transcript`).
  * TED-LIUM: join split contractions (" 's" -> "'s") and squeeze spaces
    (`eval/tedlium/run.py: proc_stm_and_timings`).
"""

from __future__ import annotations

import functools
import re

EARNINGS22_TAGS = ("<silence>", "<inaudible>", "<laugh>", "<noise>", "<affirmative>",
                   "<crosstalk>")


@functools.cache
def _whisper():
    from whisper_normalizer.english import EnglishTextNormalizer

    return EnglishTextNormalizer()


def whisper_normalize(text: str) -> str:
    """Whisper English normaliser, then lower-case (what eval/run.py does to hypotheses)."""
    return _whisper()(text).lower()


def earnings22_clean(text: str) -> str:
    """The original's Earnings-22 reference cleanup, before the Whisper normaliser."""
    text = text.lower()
    for tag in EARNINGS22_TAGS:
        text = text.replace(tag, "")
    text = text.replace("…", "").replace(",", "").replace("-", " ")
    text = text.replace(".", "").replace("?", "")
    return re.sub(" +", " ", text)


def tedlium_join(text: str) -> str:
    """Join TED-LIUM's split contractions ("it 's" -> "it's") and squeeze spaces."""
    text = re.sub(r" '([a-z])", r"'\1", text)
    return re.sub(r" +", r" ", text)


def normalize_reference(text: str, dataset: str = "generic") -> str:
    """Reference text as the original scores it for `dataset`."""
    if dataset in ("earnings22", "earnings22_full"):
        text = earnings22_clean(text)
    elif dataset == "tedlium":
        text = tedlium_join(text.strip())
    return whisper_normalize(text)


def normalize_hypothesis(text: str) -> str:
    return whisper_normalize(text)
