"""Text normalisation for scoring, as the original does it.

Every reference and hypothesis goes through openai-whisper's own `EnglishTextNormalizer`
(the one the original imports) and is lower-cased. Only its `whisper/normalizers`
subpackage is loaded, under a private module name, so `whisper/__init__.py` (torch, numba,
tiktoken) never runs: `pip install --no-deps openai-whisper` plus `regex` and
`more-itertools` is all it needs. Dataset-specific cleanups run first:
  * Earnings-22: lower-case, drop the tags <silence> <inaudible> <laugh> <noise>
    <affirmative> <crosstalk>, drop '…' ',' '.' '?', turn '-' into a space, squeeze spaces
    (`eval/earnings22_full/run.py: preprocess_transcript`).
  * TED-LIUM: join split contractions (" 's" -> "'s") and squeeze spaces
    (`eval/tedlium/run.py: proc_stm_and_timings`).
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
import re
import sys
from pathlib import Path

EARNINGS22_TAGS = ("<silence>", "<inaudible>", "<laugh>", "<noise>", "<affirmative>",
                   "<crosstalk>")


_PRIVATE_NAME = "_lcasr_whisper_normalizers"


def whisper_normalizers_dir() -> Path:
    """The installed openai-whisper's `whisper/normalizers` folder (found from the
    distribution's metadata, so another top-level `whisper` module cannot shadow it)."""
    try:
        dist = importlib.metadata.distribution("openai-whisper")
    except importlib.metadata.PackageNotFoundError:
        raise ImportError("scoring needs openai-whisper's text normaliser: "
                          "pip install --no-deps openai-whisper regex more-itertools") from None
    folder = Path(dist.locate_file("whisper/normalizers"))
    if not (folder / "english.py").is_file():
        raise ImportError(f"openai-whisper {dist.version}: {folder}/english.py not found")
    return folder


@functools.cache
def _whisper():
    """openai-whisper's EnglishTextNormalizer, without executing whisper/__init__.py."""
    module = sys.modules.get(_PRIVATE_NAME)
    if module is None:
        folder = whisper_normalizers_dir()
        spec = importlib.util.spec_from_file_location(
            _PRIVATE_NAME, folder / "__init__.py", submodule_search_locations=[str(folder)])
        module = importlib.util.module_from_spec(spec)
        sys.modules[_PRIVATE_NAME] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[_PRIVATE_NAME]
            raise
    return module.EnglishTextNormalizer()


def whisper_normalize(text: str) -> str:
    """openai-whisper's English normaliser, then lower-case (what the original's eval/run.py
    does to every hypothesis)."""
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
