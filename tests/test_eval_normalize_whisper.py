"""Scoring text equals the original's: openai-whisper's EnglishTextNormalizer (imported here by
an independent route: the real `whisper.normalizers` package under a stub parent) after the
original's dataset cleanups (re-written here from eval/earnings22*/run.py and
eval/tedlium/run.py), on a few hundred varied cases."""

import importlib
import importlib.util
import itertools
import re
import subprocess
import sys
import types

import pytest

from lcasr_jax.eval import normalize

FILLERS = ["um", "uh", "hmm", "mm", "mhm", "ah", "er", "eh", "oh", "huh", "uh-huh", "mm-hmm"]
SLANG = ["kinda", "sorta", "dunno", "gonna", "wanna", "gotta", "'cause", "cause", "cos",
         "y'all", "ain't", "lemme", "gimme", "outta", "whaddya"]
CONTRACTIONS = ["it's", "don't", "won't", "can't", "I'm", "you're", "they've", "we'd",
                "she'll", "shouldn't've", "let's", "o'clock", "ma'am", "'90s", "rock 'n' roll",
                "y'know", "isn't", "wasn't", "he's been", "she's here", "that'd", "who's"]
BRITISH = ["colour", "favourite", "organisation", "realise", "centre", "theatre", "analyse",
           "programme", "travelling", "defence", "licence", "grey", "catalogue", "behaviour",
           "aeroplane", "cheque", "neighbour", "honour", "mould", "aluminium", "recognised"]
NUMBERS = ["0", "1", "7", "twelve", "twenty one", "one hundred and five", "1,000", "2,500,000",
           "3.14", "0.5", "1st", "2nd", "3rd", "21st", "100th", "first", "twenty third",
           "one million", "two point five", "1990s", "nineteen ninety nine", "2024",
           "1/2", "3/4", "10%", "50 percent", "minus 5", "-5", "+3", "1e6", "007", "0.05%",
           "one and a half", "a hundred", "hundreds", "millions", "twos", "sixes", "1,5",
           "123,456.789", "9:30", "10:15 am", "24/7", "No. 5", "#1", "3x", "4 x 4"]
CURRENCIES = ["$5", "$5.50", "$1,000,000", "$2.5 million", "£10", "€20", "¢50", "5 dollars",
              "five dollars and fifty cents", "$0.99", "USD 100", "100 bucks", "£3bn",
              "$4.2B", "€1.50", "twenty pounds", "a dollar", "$ 7", "3 cents"]
EARNINGS_TAGS = ["<silence>", "<inaudible>", "<laugh>", "<noise>", "<affirmative>",
                 "<crosstalk>", "<SILENCE>", "<Laugh>", "<unk>", "[noise]", "(applause)"]
UNICODE = ["café", "naïve", "résumé", "Zoë", "Straße", "smørrebrød", "Łódź", "œuvre",
           "Ærø", "façade", "jalapeño", "Þór", "ﬁnance", "½", "²", "“quoted”", "‘single’",
           "em—dash", "en–dash", "ellipsis…", "tab\there", "non\u00a0breaking", "x\u200by",
           "Ⅻ", "ｆｕｌｌ", "São Paulo", "Dvořák", "Ångström", "ğ", "đ"]
PUNCT = ["Hello, world!", "What?!", "Wait... no.", "(aside) text", "[bracketed] words",
         "a/b", "well-known", "e-mail", "U.S.A.", "Mr. Smith", "Mrs. Jones", "Dr. Who",
         "St. Paul", "Jr.", "vs.", "etc.", "i.e.", "e.g.", "semi;colon", "colon: yes",
         "quote \"this\"", "it's 'quoted'", "A & B", "AT&T", "50/50", "C++", "#hashtag",
         "@handle", "x_y", "back\\slash", "{braces}", "<tag> inside", "1-800-555-0199"]
SENTENCES = [
    "the root cause of it, kinda",
    "I dunno, it was sorta weird",
    "we're gonna grow revenue by 12% in Q3",
    "Our EBITDA margin was 23.5% versus 21.0% last year.",
    "Thank you, operator. Good morning, everyone, and welcome to our third quarter call.",
    "So, um, you know, I think that, uh, it's like, yeah",
    "he said 'cause it's the 21st century",
    "It 's what they 're doing , isn 't it ?",
    "I can 't believe it 's already nineteen ninety nine",
    "The colour of the theatre's centre was grey.",
    "We delivered $1.2 billion in free cash flow, up 15 percent year-over-year.",
    "Mr. and Mrs. Smith went to Washington D.C. on the 4th of July.",
    "In 2019 we had 3,456 employees; in 2020, 4,000.",
    "Let's talk about the second half of fiscal '22.",
    "Ladies and gentlemen, thank you for standing by. <silence> Welcome.",
    "Our next question comes from the line of John Doe with Goldman Sachs. Please go ahead.",
    "yeah yeah yeah okay OK ok o.k.",
    "She was like, 'whatever', and I was like, 'no way'.",
    "two thousand and twenty three was a good year",
    "The ratio is 3:1 and the score was 2-1.",
    "It costs about $3-4 million, maybe £2m.",
    "Hmm. Mm-hmm. Uh-huh. Right.",
    "we had one hundred and one dalmatians and 1001 nights",
    "The 1st, 2nd, and 3rd places went to the 22nd, 33rd and 101st runners.",
    "Call me at 555-1234 after 5 p.m.",
    "THIS IS ALL UPPER CASE",
    "  leading and trailing spaces  ",
    "multiple    internal     spaces",
    "",
    " ",
    "…",
    "- - -",
]


def _cases() -> list[str]:
    words = FILLERS + SLANG + CONTRACTIONS + BRITISH + NUMBERS + CURRENCIES + EARNINGS_TAGS \
        + UNICODE + PUNCT
    cases = list(words) + SENTENCES
    cases += [f"so {w}, I think" for w in FILLERS + SLANG + CONTRACTIONS]
    cases += [f"About {n} or {c}." for n, c in zip(NUMBERS, itertools.cycle(CURRENCIES))]
    cases += [f"The {b} of it {t} really." for b, t in zip(BRITISH, itertools.cycle(EARNINGS_TAGS))]
    cases += [s.upper() for s in SENTENCES[:12]]
    cases += [s.replace("'", " '") for s in CONTRACTIONS]  # TED-LIUM's split contractions
    return list(dict.fromkeys(cases))


CASES = _cases()


@pytest.fixture(scope="module")
def whisper_english():
    """whisper.normalizers.english.EnglishTextNormalizer through the normal import system,
    with a stub `whisper` parent package (so whisper/__init__.py's torch import is skipped)."""
    spec = importlib.util.find_spec("whisper")
    assert spec is not None and spec.submodule_search_locations, "openai-whisper not installed"
    saved = {k: v for k, v in sys.modules.items() if k == "whisper" or k.startswith("whisper.")}
    stub = types.ModuleType("whisper")
    stub.__path__ = list(spec.submodule_search_locations)
    sys.modules["whisper"] = stub
    try:
        english = importlib.import_module("whisper.normalizers.english")
        yield english.EnglishTextNormalizer()
    finally:
        for k in [k for k in sys.modules if k == "whisper" or k.startswith("whisper.")]:
            del sys.modules[k]
        sys.modules.update(saved)


def earnings22_original(text: str) -> str:
    text = text.lower()
    text = re.sub(r"<(?:silence|inaudible|laugh|noise|affirmative|crosstalk)>", "", text)
    text = text.translate(str.maketrans({"…": None, ",": None, ".": None, "?": None,
                                         "-": " "}))
    return re.sub(r" {2,}", " ", text)


def tedlium_original(text: str) -> str:
    text = re.sub(r" '(?=[a-z])", "'", text.strip())
    return re.sub(r" {2,}", " ", text)


def test_corpus_is_large_and_varied():
    assert len(CASES) >= 300


def test_hypotheses_and_generic_references_equal_whisper(whisper_english):
    for text in CASES:
        want = whisper_english(text).lower()
        assert normalize.normalize_hypothesis(text) == want, text
        for dataset in ("generic", "rev16", "this_american_life", "synth"):
            assert normalize.normalize_reference(text, dataset) == want, (dataset, text)


@pytest.mark.parametrize("dataset", ["earnings22", "earnings22_full"])
def test_earnings22_references_equal_original(whisper_english, dataset):
    for text in CASES:
        want = whisper_english(earnings22_original(text)).lower()
        assert normalize.normalize_reference(text, dataset) == want, text


def test_tedlium_references_equal_original(whisper_english):
    for text in CASES:
        want = whisper_english(tedlium_original(text)).lower()
        assert normalize.normalize_reference(text, "tedlium") == want, text


@pytest.mark.parametrize("text, want", [
    ("the root cause of it, kinda", "the root cause of it kinda"),
    ("I dunno, it was sorta weird", "i dunno it was sorta weird"),
    ("'cause we're gonna win", "cause we are going to win"),
    ("The colour of the centre", "the color of the center"),
    ("Um, it costs $5.50, uh, I think", "it costs $5.50 i think"),
    ("he came 1st", "he came 1st"),
])
def test_issue_examples(text, want):
    assert normalize.normalize_hypothesis(text) == want


def test_whisper_package_init_never_runs():
    code = ("import sys; from lcasr_jax.eval.normalize import normalize_hypothesis as n; "
            "assert n('Mr. Smith') == 'mister smith'; "
            "bad = [m for m in ('whisper', 'torch', 'numba', 'tiktoken') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_missing_openai_whisper_is_one_clear_error(monkeypatch):
    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", missing)
    with pytest.raises(ImportError, match="pip install --no-deps openai-whisper"):
        normalize.whisper_normalizers_dir()
