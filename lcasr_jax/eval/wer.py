"""Word error rate with insertion/deletion/substitution rates, as the original's
`lcasr.eval.wer.word_error_rate_detail` (from NeMo) defines them.

Counts are summed over recordings, then divided by the total reference words. A recording
with an empty reference counts every hypothesis word as an insertion. With no reference
words at all every rate is inf. Words are whitespace-separated tokens.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence


@dataclasses.dataclass(frozen=True)
class WERDetail:
    wer: float
    words: int  # reference words
    ins_rate: float
    del_rate: float
    sub_rate: float
    insertions: int
    deletions: int
    substitutions: int

    def as_row(self) -> dict[str, float | int]:
        return {"wer": self.wer, "words": self.words, "ins_rate": self.ins_rate,
                "del_rate": self.del_rate, "sub_rate": self.sub_rate}


def edit_counts(reference: str, hypothesis: str) -> tuple[int, int, int]:
    """(insertions, deletions, substitutions) aligning hypothesis words to reference words."""
    ref, hyp = reference.split(), hypothesis.split()
    if not ref:
        return len(hyp), 0, 0
    if not hyp:
        return 0, len(ref), 0
    import jiwer

    out = jiwer.process_words(" ".join(ref), " ".join(hyp))
    return out.insertions, out.deletions, out.substitutions


def word_error_rate_detail(hypotheses: Sequence[str], references: Sequence[str]) -> WERDetail:
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references")
    ins = dels = subs = words = 0
    for hyp, ref in zip(hypotheses, references, strict=True):
        i, d, s = edit_counts(ref, hyp)
        ins, dels, subs = ins + i, dels + d, subs + s
        words += len(ref.split())
    if words == 0:
        inf = float("inf")
        return WERDetail(inf, 0, inf, inf, inf, ins, dels, subs)
    return WERDetail((ins + dels + subs) / words, words, ins / words, dels / words,
                     subs / words, ins, dels, subs)
