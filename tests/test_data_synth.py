"""Synthetic corpus generator: text, numbers, catalogue/reservations, room DSP, time mapping.

These need no synthesiser; tests/test_data_synth_engines.py runs espeak-ng and flite.
"""

import gzip
import json
import struct
import zlib

import numpy as np
import pytest

from lcasr_jax.data.synth import espeak, recording, room, text, voices
from lcasr_jax.data.synth.numbers import cardinal, ordinal, spell_numbers


def test_numbers_hand_checked():
    assert cardinal(0) == "zero"
    assert cardinal(21) == "twenty one"
    assert cardinal(105) == "one hundred and five"
    assert cardinal(10000) == "ten thousand"
    assert cardinal(1_234_567) == ("one million two hundred and thirty four thousand five hundred "
                                   "and sixty seven")
    assert ordinal(23) == "twenty third" and ordinal(12) == "twelfth"
    assert ordinal(40) == "fortieth" and ordinal(100) == "one hundredth"
    got = " ".join(spell_numbers("the 8th of June 1811, 10,000 pounds").split())
    assert got == "the eighth of June eighteen eleven , ten thousand pounds"
    got = " ".join(spell_numbers("in 1805 and 1900").split())
    assert got == "in eighteen oh five and one thousand nine hundred"


def test_normalise_hand_checked():
    got = text.normalise('"Mr. Knightley--and 2 _Mrs._ Weston," said she; "is it so?"')
    assert got == "mister knightley, and two missus weston, said she; is it so?"
    got = text.normalise("Caf\u00e9 \u00a35 'tis well-known!")
    assert got == "cafe five pounds tis well known!"
    assert text.normalise("...") == ""
    assert text.normalise("gloves, &c. & hats") == "gloves, et cetera. and hats."
    t = "it's a truth, isn't it."
    assert [t[a:b] for a, b in text.words(t)] == ["it's", "a", "truth", "isn't", "it"]


def test_catalogue_excludes_reserved_and_splits_are_disjoint():
    keys = {s: {v.key for vs in voices.voices(s).values() for v in vs} for s in voices.SPLITS}
    for s in voices.SPLITS:
        bases = {k.split("+")[0] for k in keys[s]}
        assert not bases & voices.RESERVED_VOICES and not keys[s] & voices.RESERVED_VOICES
        assert not set(voices.books(s)) & text.RESERVED_BOOKS
    assert not keys["train"] & keys["dev"] and keys["dev"] == keys["test"]
    variants = {s: {k.split("+")[1] for k in keys[s] if "+" in k} for s in ("train", "dev")}
    assert not variants["train"] & variants["dev"]
    books = {s: set(voices.books(s)) for s in voices.SPLITS}
    assert not books["train"] & books["dev"] and not books["train"] & books["test"]
    assert not books["dev"] & books["test"]


def test_train_and_heldout_share_no_voice_family():
    fam = {s: set().union(*(voices.family(v) for vs in voices.voices(s).values() for v in vs))
           for s in ("train", "test")}
    assert not fam["train"] & fam["test"]
    reserved = set().union(*(voices.family(voices.Voice(*k.split(":", 1)))
                             for k in voices.RESERVED_VOICES))
    assert not (fam["train"] | fam["test"]) & reserved
    # The catalogue covers every listed espeak variant, klatt ones on both sides.
    used = {v.name.split("+")[1] for s in ("train", "test") for v in voices.voices(s)["espeak"]}
    assert used == set(voices.ESPEAK_VARIANTS)
    assert {"klatt", "klatt3"} <= used
    # One recorded speaker across engines is one family; numbered variants are one family.
    assert voices.family(voices.Voice("flite", "kal16")) == voices.family(
        voices.Voice("festival", "kal_diphone"))
    assert voices.family(voices.Voice("espeak", "en+steph2")) & voices.family(
        voices.Voice("espeak", "en-us+steph"))
    assert not voices.family(voices.Voice("espeak", "en+m5")) & voices.family(
        voices.Voice("espeak", "en+m6")) - {"accent:en"}


def test_formant_warp_moves_the_envelope_and_keeps_length():
    from lcasr_jax.data.synth.perturb import formant_warp

    sr, f0 = 16000, 125.0
    t = np.arange(sr) / sr
    # Harmonics of f0 under one formant at 1 kHz.
    x = sum(np.exp(-((k * f0 - 1000) / 300) ** 2) * np.sin(2 * np.pi * k * f0 * t)
            for k in range(1, 40)).astype(np.float32)

    def peak(y):
        mag = np.abs(np.fft.rfft(y[2000:-2000] * np.hanning(len(y) - 4000)))
        return np.fft.rfftfreq(len(y) - 4000, 1 / sr)[np.argmax(mag)]

    assert np.array_equal(formant_warp(x, 1.0), x)
    up, down = formant_warp(x, 1.2), formant_warp(x, 0.8)
    assert len(up) == len(down) == len(x)
    assert peak(x) == pytest.approx(1000, abs=70)
    assert peak(up) == pytest.approx(1200, abs=f0)  # formant moves, harmonics stay
    assert peak(down) == pytest.approx(800, abs=f0)
    assert min(abs(peak(up) / f0 - k) for k in range(40)) < 0.05


def test_assertions_fire_on_reserved():
    for v in (voices.Voice("espeak", "en-gb-scotland+m1"), voices.Voice("espeak", "en-gb-x-gbcwmd"),
              voices.Voice("flite", "slt"), voices.Voice("festival", "cmu_us_slt_arctic_hts")):
        with pytest.raises(AssertionError, match="reserved voice"):
            voices.assert_allowed_voice(v)
    for b in ("persuasion", "mobydick", "Moby Dick"):
        with pytest.raises(AssertionError, match="reserved book"):
            voices.assert_allowed_book(b)


def test_plans_never_choose_reserved_and_are_deterministic():
    sizes = {b: 50 for s in voices.SPLITS for b in voices.books(s)}
    sizes["persuasion"] = 10_000  # even if a cache held it, no plan may pick it
    for split in voices.SPLITS:
        allowed = {v.key for vs in voices.voices(split).values() for v in vs}
        for i in range(200):
            p = recording.plan(split, 3, i, 5.0, sizes)
            assert p["book"] in voices.books(split)
            assert {s["speaker"] for s in p["speakers"]} <= allowed
            assert len({s["speaker"] for s in p["speakers"]}) == len(p["speakers"])
            assert 240 <= p["target_s"] <= 360
    assert recording.plan("dev", 3, 7, 5.0, sizes) == recording.plan("dev", 3, 7, 5.0, sizes)
    assert recording.plan("dev", 3, 7, 5.0, sizes) != recording.plan("dev", 4, 7, 5.0, sizes)


def _xdr_strsxp(lines):
    out = b"X\n" + struct.pack(">iii", 3, 0x040201, 0x030500) + struct.pack(">i", 5) + b"UTF-8"
    out += struct.pack(">ii", 16, len(lines))
    for s in lines:
        if s is None:
            out += struct.pack(">ii", 9, -1)
        else:
            b = s.encode()
            out += struct.pack(">ii", 0x40009, len(b)) + b
    return out


def test_r_package_reader_on_hand_built_rdb(tmp_path):
    books = {name: [name.upper(), "", "CHAPTER 1", "", f"The {name} has 2 lines", "of text.",
                    None, f"Mr. {name} said so."] for name in text._R_OBJECTS}
    blob = b""
    for name in text._R_OBJECTS:
        raw = _xdr_strsxp(books[name])
        blob += struct.pack(">I", len(raw)) + zlib.compress(raw)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "Rdata.rdb").write_bytes(blob)
    corpus = text.build_corpus(str(tmp_path))
    assert set(corpus) == set(text._R_OBJECTS) - {"persuasion"}
    assert corpus["emma"] == ["the emma has two lines of text.", "mister emma said so."]
    bad = tmp_path / "bad.json.gz"
    with gzip.open(bad, "wt") as f:
        json.dump({"books": {"persuasion": ["x."]}}, f)
    with pytest.raises(ValueError, match="reserved"):
        text.load_corpus(str(bad))


def test_installed_janeaustenr():
    pkg = text.find_r_package()
    if pkg is None:
        pytest.skip("r-cran-janeaustenr not installed (scripts/install_synth_deps.sh)")
    corpus = text.build_corpus(pkg)
    assert set(corpus) == {"emma", "mansfieldpark", "northangerabbey", "prideprejudice",
                           "sensesensibility"}
    assert corpus["prideprejudice"][0].startswith("it is a truth universally acknowledged")
    n = sum(len(text.words(p)) for ps in corpus.values() for p in ps)
    assert 600_000 < n < 700_000


def test_sentence_groups_and_token_alignment():
    par = "one two three. four five; six seven eight. nine."
    assert recording.sentence_groups(par, limit=4) == ["one two three.", "four five;",
                                                       "six seven eight. nine."]
    assert recording.align_tokens(["don't", "darcy's", "house"],
                                  ["dont", "darcy", "'s", "house"]) == [(0, 0), (1, 2), (3, 3)]
    assert recording.align_tokens(["she", "read", "it"], ["she", "red", "it"]) == [
        (0, 0), (1, 1), (2, 2)]
    assert recording.align_tokens(["twenty", "one"], ["twenty", "one", "x"]) is None
    assert recording.align_tokens(["ab", "c"], ["a", "b", "c"]) == [(0, 1), (2, 2)]
    w = recording.repair_times([("a", 10, 10, "s"), ("b", 5, 40, "s"), ("c", 60, 70, "s")])
    assert [(a, b) for _, a, b, _ in w] == [(10, 26), (26, 42), (60, 76)]


def test_block_convolution_matches_numpy_and_noise_is_unit_rms():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(30_011).astype(np.float32)
    ir = room.impulse_response(rng, 0.3, 0.5)
    assert ir[0] == 1.0 and len(ir) == 4800
    y = np.concatenate(list(room.convolve_blocks(x, ir, block=4096)))
    ref = np.convolve(x.astype(np.float64), ir.astype(np.float64))[: len(x)]
    np.testing.assert_allclose(y, ref, atol=2e-5)
    for colour, slope in (("white", 0.0), ("pink", -1.0), ("brown", -2.0)):
        z = np.zeros(1 << 17, np.float32)  # noise alone: RMS and spectral slope
        n = np.concatenate(list(room.convolve_blocks(z, ir, noise=colour, noise_rms=0.5,
                                                     rng=rng)))
        assert abs(np.sqrt(np.mean(n.astype(np.float64) ** 2)) - 0.5) < 0.01, colour
        p = np.abs(np.fft.rfft(n[:1 << 16])) ** 2
        f = np.fft.rfftfreq(1 << 16, 1 / 16000)
        band = (f > 100) & (f < 6000)
        fit = np.polyfit(np.log(f[band]), np.log(p[band] + 1e-20), 1)[0]
        assert abs(fit - slope) < 0.15, (colour, fit)


def test_espeak_event_mapping_hand_checked():
    # "of the cat. dog": espeak merges "of the" into one event; a zero-length clause-end word
    # event points backwards; "cat" ends at the pause phoneme.
    w, p, e = 1, 7, 5
    events = [(w, 1, 2, 0, b""), (p, 1, 0, 0, b"V"), (p, 1, 0, 100, b"v"), (p, 1, 0, 200, b"D"),
              (p, 1, 0, 300, b"@"), (w, 8, 3, 400, b""), (p, 8, 0, 400, b"k"),
              (p, 8, 0, 600, b"_:"), (e, 11, 0, 700, b""), (w, 1, 0, 700, b""),
              (w, 13, 3, 700, b""), (p, 13, 0, 700, b"d"), (p, 13, 0, 900, b"_")]
    spans = [(0, 2), (3, 6), (7, 10), (12, 15)]
    got = espeak.word_times(events, spans, 1000)
    # "of"/"the" (2 and 3 chars) split at the phoneme boundary nearest 400*2/5 = 160 -> 200.
    np.testing.assert_array_equal(got, [[0, 200], [200, 400], [400, 600], [700, 900]])


def test_shipped_model_never_heard_the_held_out_voice_families_or_books():
    """The demo evaluates the shipped model on the test split: none of its voice families
    or its book may be among those the shipped model was trained on."""
    from lcasr_jax.checkpoints import shipped

    trained = set().union(*(voices.family(voices.Voice(*k.split(":", 1)))
                            for k in shipped.TRAIN_VOICES))
    assert {"accent:en-us", "variant:klatt", "speaker:kal"} <= trained
    for split in ("dev", "test"):
        held_out = set().union(*(voices.family(v) for vs in voices.voices(split).values()
                                 for v in vs))
        assert not trained & held_out, sorted(trained & held_out)
        assert not set(shipped.TRAIN_BOOKS) & set(voices.books(split))


def test_synth_workers_get_one_blas_thread_unless_set(monkeypatch):
    import os

    from lcasr_jax.data.synth.generate import one_blas_thread

    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    with one_blas_thread():
        assert os.environ["OPENBLAS_NUM_THREADS"] == "1"
        assert os.environ["OMP_NUM_THREADS"] == "3"
    assert "OPENBLAS_NUM_THREADS" not in os.environ and os.environ["OMP_NUM_THREADS"] == "3"


def test_every_installed_english_voice_is_in_the_catalogue_or_reserved():
    """A voice Debian installs that the catalogue lacks (e.g. a new festvox package) fails
    here; so does a catalogue voice that names an accent espeak-ng does not have."""
    inst = voices.installed_english_voices()
    if not any(inst.values()):
        pytest.skip("no synthesiser installed (scripts/install_synth_deps.sh)")
    cat = voices.catalogue()
    accents = {k.split(":", 1)[1].split("+")[0].lower() for k in cat if k.startswith("espeak:")}
    missing = (inst["espeak"] - accents) | {
        f"{e}:{n}" for e in ("flite", "festival") for n in inst[e] if f"{e}:{n}" not in cat}
    assert not missing, f"installed voices missing from the catalogue: {sorted(missing)}"
    if inst["espeak"]:
        assert accents <= inst["espeak"], accents - inst["espeak"]
    # Every voice of the catalogue sits on exactly one side or is reserved.
    sides = [{v.key for vs in voices.voices(s).values() for v in vs} for s in ("train", "test")]
    assert cat == sides[0] | sides[1] | voices.RESERVED_VOICES
    assert not sides[0] & sides[1] and not (sides[0] | sides[1]) & voices.RESERVED_VOICES
