"""festival (diphone voices) through one `festival --pipe` process with per-word times.

Word times come from the Word relation like flite's (start = end of the segment before
the first segment, end = end of the last); possessive "'s" items carry zero times and are
merged into the previous word by the caller. Audio goes through a temporary RIFF file.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile

import numpy as np

_TIMES = ('(mapcar (lambda (w) (format t "W %l %l %l\\n" (item.name w) '
          '(item.feat w "R:SylStructure.daughter1.daughter1.R:Segment.p.end") '
          '(item.feat w "R:SylStructure.daughtern.daughtern.R:Segment.end"))) '
          "(utt.relation.items utt 'Word))")


def available() -> bool:
    """Whether the festival program is on PATH."""
    return shutil.which("festival") is not None


class Festival:
    """A festival process fed Scheme commands on stdin, one utterance at a time."""

    def __init__(self) -> None:
        exe = shutil.which("festival")
        if exe is None:
            raise RuntimeError("festival: program not found; install the Debian packages "
                               "festival festvox-kallpc16k festvox-kdlpc16k")
        self._dir = tempfile.mkdtemp(prefix="lcasr-festival-")
        # festival block-buffers stdout into a pipe; stdbuf makes it line-buffered.
        cmd = [exe, "--pipe"]
        if shutil.which("stdbuf"):
            cmd = ["stdbuf", "-oL", *cmd]
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      text=True, bufsize=1)
        self._n = 0

    def _run(self, script: str) -> list[str]:
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write(script + '\n(format t "DONE\\n")\n')
        self._proc.stdin.flush()
        out = []
        for line in self._proc.stdout:
            if line.strip() == "DONE":
                return out
            out.append(line.rstrip("\n"))
        raise RuntimeError(f"festival: process ended: {' | '.join(out[-3:])}")

    def synth(self, text: str, voice: str, stretch: float
              ) -> tuple[np.ndarray, int, list[str], np.ndarray]:
        """Speak ASCII `text` ([a-z' .,;:?!] only) with e.g. voice 'kal_diphone'.

        Returns (audio float32, rate Hz, word names, (words, 2) times in samples)."""
        import soundfile as sf

        if '"' in text or "\\" in text:
            raise ValueError(f"festival: text must not hold quotes: {text[:40]!r}")
        self._n += 1
        wav = os.path.join(self._dir, f"u{self._n % 2}.wav")
        lines = self._run(f"(voice_{voice})\n(Parameter.set 'Duration_Stretch {stretch:.4f})\n"
                          f'(set! utt (utt.synth (Utterance Text "{text}")))\n'
                          f"(utt.save.wave utt \"{wav}\" 'riff)\n{_TIMES}")
        words, times = [], []
        for line in lines:
            if not line.startswith("W "):
                continue
            parts = line.split()
            words.append(parts[1].strip('"'))
            times.append((float(parts[2]), float(parts[3])))
        audio, sr = sf.read(wav, dtype="float32")
        t = np.round(np.array(times, np.float64).reshape(-1, 2) * sr).astype(np.int64)
        return audio, int(sr), words, np.clip(t, 0, len(audio))

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.stdin.close()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:  # slow to exit (a loaded machine): not an error
                self._proc.kill()
                self._proc.wait()
        shutil.rmtree(self._dir, ignore_errors=True)
