"""What the generator's forkserver loads once, so each per-recording worker forks ready.

The forkserver imports this module (`set_forkserver_preload`); it reads the text cache named
by $LCASR_SYNTH_PRELOAD_TEXT (set by `text_for_forkserver` around the pool's start) and
imports the synthesis modules, so a worker costs a fork instead of imports and a text load
(~0.3 s here, 10-20 % of a 10-minute dry recording's work).
"""

from __future__ import annotations

import contextlib
import os

from . import recording  # noqa: F401  (imported here so that forked workers have it)

ENV = "LCASR_SYNTH_PRELOAD_TEXT"
_TEXT = os.environ.get(ENV)
_CORPUS: dict[str, list[str]] | None = None
if _TEXT:
    from .text import load_corpus

    _CORPUS = load_corpus(_TEXT)


def corpus(text: str) -> dict[str, list[str]] | None:
    """The preloaded paragraphs when they came from `text`, else None."""
    return _CORPUS if text == _TEXT else None


@contextlib.contextmanager
def text_for_forkserver(text: str):
    """os.environ[ENV] = text while the pool (and with it the forkserver) starts."""
    old = os.environ.get(ENV)
    os.environ[ENV] = text
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(ENV, None)
        else:
            os.environ[ENV] = old
