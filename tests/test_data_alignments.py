"""Recording format, validation/repairs and the podcast-JSON / CTM / TextGrid converters."""

import json

import numpy as np
import pytest
import soundfile as sf

from lcasr_jax.data import alignments as AL


def _words(items):
    return AL.Words.from_dicts([{"word": w, "start": s, "end": e} for w, s, e in items])


def test_roundtrip(tmp_path):
    sf.write(tmp_path / "r.flac", np.zeros(32000, np.float32), 16000)
    words = AL.Words(("hi", "there"), np.array([0.1, 0.6]), np.array([0.5, 1.0]), ("A", None))
    rec = AL.Recording("r", tmp_path / "r.flac", words, 2.0, {"split": "dev"})
    AL.write_recording(tmp_path / "r.json", rec)
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["format"] == AL.FORMAT and data["audio"] == "r.flac" and data["split"] == "dev"
    assert data["words"][0] == {"word": "hi", "start": 0.1, "end": 0.5, "speaker": "A"}
    back = AL.read_recording(tmp_path / "r.json", check_audio=True)
    assert back.id == "r" and back.audio == tmp_path / "r.flac" and back.duration == 2.0
    assert back.words.text == ("hi", "there") and back.words.speaker == ("A", None)
    np.testing.assert_array_equal(back.words.end, [0.5, 1.0])
    assert back.meta == {"split": "dev"}
    assert AL.find_recordings(tmp_path) == [tmp_path / "r.json"]


def test_errors():
    with pytest.raises(AL.AlignmentError, match="f.json: empty transcript"):
        AL.validate_words(_words([]), source="f.json")
    with pytest.raises(AL.AlignmentError, match="ends .* before it starts"):
        AL.validate_words(_words([("a", 1.0, 0.5)]))
    with pytest.raises(AL.AlignmentError, match="outside the audio"):
        AL.validate_words(_words([("a", 0.1, 0.2), ("b", 5.0, 5.2)]), duration=5.0)
    with pytest.raises(AL.AlignmentError, match="outside the audio"):
        AL.validate_words(_words([("a", 4.0, 5.6)]), duration=5.0)
    with pytest.raises(AL.AlignmentError, match="negative"):
        AL.validate_words(_words([("a", -1.0, 0.2)]))
    with pytest.raises(AL.AlignmentError, match="NaN"):
        AL.validate_words(_words([("a", float("nan"), 0.2)]))
    with pytest.raises(AL.AlignmentError, match="empty text"):
        AL.validate_words(_words([("  ", 0.0, 0.2)]))


def test_repairs_and_strict():
    w = _words([("b", 1.0, 1.5), ("a", -0.01, 0.5), ("c", 1.4, 5.3), ("d e", 2.0, 3.0)])
    with pytest.raises(AL.AlignmentError, match="not sorted"):
        AL.validate_words(w, 5.0, strict=True)
    r = AL.validate_words(w, 5.0)
    assert r.text == ("a", "b", "c", "d", "e")
    np.testing.assert_allclose(r.start, [0.0, 1.0, 1.4, 2.0, 2.5])
    np.testing.assert_allclose(r.end, [0.5, 1.5, 5.0, 2.5, 3.0])  # end clipped to duration
    ov = _words([("a", 0.0, 1.0), ("b", 0.8, 1.2)])
    assert AL.validate_words(ov).text == ("a", "b")  # overlap kept
    with pytest.raises(AL.AlignmentError, match="overlap"):
        AL.validate_words(ov, strict=True)


def test_podcast_json(tmp_path):
    doc = {"results": [
        {"alternatives": [{"transcript": "Hi there", "words": [
            {"startTime": "0.100s", "endTime": "0.400s", "word": "Hi"}]}]},
        {"alternatives": [{"words": [
            {"startTime": "0.100s", "endTime": "0.400s", "word": "Hi", "speakerTag": 1},
            {"startTime": "0.400s", "endTime": "1s", "word": "there", "speakerTag": 2}]}]}]}
    p = tmp_path / "pod.json"
    p.write_text(json.dumps(doc))
    w = AL.words_from_podcast_json(p)
    assert w.text == ("Hi", "there") and w.speaker == ("1", "2")
    np.testing.assert_allclose(w.start, [0.1, 0.4])
    np.testing.assert_allclose(w.end, [0.4, 1.0])
    with pytest.raises(AL.AlignmentError, match="bad.json: not a podcast"):
        AL.words_from_podcast_json({"nope": 1}, source="bad.json")
    sf.write(tmp_path / "pod.wav", np.zeros(16000 * 2, np.float32), 16000)
    rec = AL.convert(p, tmp_path / "pod.wav", tmp_path / "out.json")
    assert AL.read_recording(tmp_path / "out.json").words.text == rec.words.text


def test_ctm(tmp_path):
    p = tmp_path / "a.ctm"
    p.write_text(";; comment\nrecA 1 0.50 0.20 hello 0.9\nrecA 1 0.80 0.30 world\n"
                 "recB A 1.00 0.10 x\n")
    got = AL.read_ctm(p)
    assert set(got) == {"recA", "recB"} and got["recA"].text == ("hello", "world")
    np.testing.assert_allclose(got["recA"].end, [0.7, 1.1])
    p.write_text("r 1 0 1 a\nr 2 0 1 b\n")
    with pytest.raises(AL.AlignmentError, match="several channels"):
        AL.read_ctm(p)
    assert AL.read_ctm(p, channel="2")["r"].text == ("b",)
    p.write_text("r 1 zero 1 a\n")
    with pytest.raises(AL.AlignmentError, match=r"a.ctm:1: bad CTM line"):
        AL.read_ctm(p)


LONG_TG = '''File type = "ooTextFile"
Object class = "TextGrid"

xmin = 0
xmax = 2.5
tiers? <exists>
size = 2
item []:
    item [1]:
        class = "IntervalTier"
        name = "phones"
        xmin = 0
        xmax = 2.5
        intervals: size = 1
        intervals [1]:
            xmin = 0
            xmax = 2.5
            text = "x"
    item [2]:
        class = "IntervalTier"
        name = "words"
        xmin = 0
        xmax = 2.5
        intervals: size = 3
        intervals [1]:
            xmin = 0
            xmax = 0.7
            text = ""
        intervals [2]:
            xmin = 0.7
            xmax = 1.25
            text = "say ""hi"""
        intervals [3]:
            xmin = 1.25
            xmax = 2.5
            text = "sil"
'''

SHORT_TG = '''File type = "ooTextFile"
Object class = "TextGrid"

0
2
<exists>
2
"TextTier"
"marks"
0
2
1
1.0
"m"
"IntervalTier"
"Words"
0
2
2
0
1e0
"one"
1
2
"two"
'''


def test_textgrid_long_and_short(tmp_path):
    p = tmp_path / "a.TextGrid"
    p.write_text(LONG_TG)
    w = AL.read_textgrid(p)
    assert w.text == ('say "hi"',)
    np.testing.assert_allclose([w.start[0], w.end[0]], [0.7, 1.25])
    assert AL.read_textgrid(p, tier="phones").text == ("x",)
    p.write_text(SHORT_TG)
    w = AL.read_textgrid(p)
    assert w.text == ("one", "two")
    np.testing.assert_allclose(w.end, [1.0, 2.0])
    p.write_bytes(LONG_TG.encode("utf-16"))
    assert len(AL.read_textgrid(p)) == 1
    p.write_text("garbage")
    with pytest.raises(AL.AlignmentError, match="not a TextGrid"):
        AL.read_textgrid(p)


def test_read_recording_errors(tmp_path):
    p = tmp_path / "x.json"
    p.write_text("{not json")
    with pytest.raises(AL.AlignmentError, match="x.json: unreadable"):
        AL.read_recording(p)
    p.write_text(json.dumps({"audio": "x.wav", "duration": 1.0, "words": []}))
    with pytest.raises(AL.AlignmentError, match="x.json: empty transcript"):
        AL.read_recording(p)
    p.write_text(json.dumps({"audio": "x.wav", "duration": 1.0,
                             "words": [{"word": "a", "start": 2.0, "end": 2.1}]}))
    with pytest.raises(AL.AlignmentError, match="x.json: word 0 .* outside the audio"):
        AL.read_recording(p)
