"""WER of a model on the few real English recordings that Debian packages ship (evaluation
only: never train on them).

Sets (each recording a human voice with its transcript in the package):
  librivox  pocketsphinx-testdata: 5 utterances of LibriVox's "Sense and Sensibility"
            (ch. 1, one reader; 24.7 s, 71 words), transcripts in librivox/transcription
  cards     pocketsphinx-testdata: 5 spoken card names ("ten of clubs"; 9.7 s, 21 words)
  alsa      alsa-utils: the 8 speaker-test voices ("front left"; 11.4 s, 16 words;
            the transcript is the file name; Noise.wav is left out)

  python scripts/packaged_speech.py [--install] [--checkpoint M] [--out runs/packaged]

--install runs apt-get for the missing packages (root). Writes a manifest per set under
--out and runs `lcasr-jax eval --dataset manifest` on each (10.24 s windows: every
recording is shorter, so each is one window), then prints one WER line per set.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

PS = Path("/usr/share/pocketsphinx/test/data")
ALSA = Path("/usr/share/sounds/alsa")
PACKAGES = {"librivox": "pocketsphinx-testdata", "cards": "pocketsphinx-testdata",
            "alsa": "alsa-utils"}
_LINE = re.compile(r"^\s*(?:<s>)?\s*(.*?)\s*(?:</s>)?\s*\(([^()]+)\)\s*$")


def sphinx_transcription(path: Path, audio_dir: Path) -> list[dict]:
    """Manifest entries from a sphinx `transcription` file ("<s> words </s> (id)" lines);
    each id is `<id>.wav` in `audio_dir`."""
    out = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        m = _LINE.match(line)
        if not m:
            raise ValueError(f"{path}:{n}: not a '<s> words </s> (id)' line")
        text, rid = m.group(1), m.group(2)
        audio = audio_dir / f"{rid}.wav"
        if not audio.is_file():
            raise FileNotFoundError(f"{path}:{n}: {audio} is missing")
        out.append({"id": rid, "audio": str(audio), "text": text.lower()})
    return out


def alsa_entries(folder: Path = ALSA) -> list[dict]:
    """alsa-utils' speaker-test voices; the transcript is the file name (Front_Left.wav:
    "front left")."""
    return [{"id": p.stem, "audio": str(p), "text": p.stem.replace("_", " ").lower()}
            for p in sorted(folder.glob("*.wav")) if p.stem != "Noise"]


def entries(name: str) -> list[dict]:
    if name == "librivox":
        return sphinx_transcription(PS / "librivox" / "transcription", PS / "librivox")
    if name == "cards":
        return sphinx_transcription(PS / "cards" / "cards.transcription", PS / "cards")
    if name == "alsa":
        return alsa_entries()
    raise ValueError(f"unknown set {name!r}; expected one of {sorted(PACKAGES)}")


def install(names: list[str]) -> None:
    missing = sorted({PACKAGES[n] for n in names} - {p for p in set(PACKAGES.values())
                     if subprocess.run(["dpkg", "-s", p], capture_output=True).returncode == 0})
    if missing:
        subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],
                       check=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sets", nargs="+", default=list(PACKAGES), choices=list(PACKAGES))
    p.add_argument("--checkpoint", help="model (default: the shipped model)")
    p.add_argument("--out", type=Path, default=Path("runs/packaged"))
    p.add_argument("--install", action="store_true", help="apt-get the missing packages")
    args = p.parse_args(argv)
    from lcasr_jax.eval.job import EvalJob, run_job

    if args.install:
        install(args.sets)
    lines = []
    for name in args.sets:
        try:
            rows = entries(name)
        except FileNotFoundError as e:
            print(f"packaged_speech: {name}: {e} (install {PACKAGES[name]}, or --install)",
                  file=sys.stderr)
            return 1
        folder = args.out / name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        result = run_job(EvalJob("manifest", folder, "test", args.checkpoint, context=1024,
                                 overlap_ratio=0.875, mode="averaged_moving_window",
                                 out=folder / "eval", name=name, progress=False)).result
        for r in result.recordings:
            print(f"{name} {r.id}\n  REF: {r.reference}\n  HYP: {r.hypothesis}")
        o = result.overall
        lines.append(f"{name:9s} {len(result.recordings):2d} recordings {o.words:4d} words  "
                     f"WER {100 * o.wer:6.2f}%  (ins {100 * o.ins_rate:.1f}, del "
                     f"{100 * o.del_rate:.1f}, sub {100 * o.sub_rate:.1f})")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
