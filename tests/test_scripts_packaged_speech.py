"""scripts/packaged_speech.py: manifests of the real recordings Debian packages ship."""

import importlib.util
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("packaged_speech",
                                              REPO / "scripts" / "packaged_speech.py")
packaged_speech = importlib.util.module_from_spec(spec)
spec.loader.exec_module(packaged_speech)


def test_sphinx_transcription_lines(tmp_path):
    for rid in ("001", "a-0870"):
        (tmp_path / f"{rid}.wav").write_bytes(b"")
    t = tmp_path / "transcription"
    t.write_text("<s> Ten of clubs  </s> (001)\n\nhe was not an ill disposed man (a-0870)\n")
    got = packaged_speech.sphinx_transcription(t, tmp_path)
    assert got == [{"id": "001", "audio": str(tmp_path / "001.wav"), "text": "ten of clubs"},
                   {"id": "a-0870", "audio": str(tmp_path / "a-0870.wav"),
                    "text": "he was not an ill disposed man"}]
    t.write_text("<s> no id </s>\n")
    with pytest.raises(ValueError, match=r"transcription:1: not a"):
        packaged_speech.sphinx_transcription(t, tmp_path)
    t.write_text("<s> five five </s> (004)\n")
    with pytest.raises(FileNotFoundError, match=r"004.wav is missing"):
        packaged_speech.sphinx_transcription(t, tmp_path)


def test_alsa_names_are_the_transcripts(tmp_path):
    for name in ("Front_Left", "Noise", "Rear_Center"):
        (tmp_path / f"{name}.wav").write_bytes(b"")
    assert [(e["id"], e["text"]) for e in packaged_speech.alsa_entries(tmp_path)] == [
        ("Front_Left", "front left"), ("Rear_Center", "rear center")]


@pytest.mark.skipif(not (packaged_speech.PS / "librivox").is_dir(),
                    reason="pocketsphinx-testdata not installed")
def test_installed_librivox_set():
    got = packaged_speech.entries("librivox")
    assert len(got) == 5 and sum(len(e["text"].split()) for e in got) == 71
    assert got[1]["text"] == "he was not an ill disposed young man"
