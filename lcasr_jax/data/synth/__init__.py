"""Offline synthetic long-form English speech with exact word times (issue 5, item 6).

`lcasr-jax data synth --out DIR --hours H --split train|dev|test --seed S` (or
`generate.generate`) writes `<id>.flac` + `<id>.json` (the recording format of
`data.alignments`, with sample_rate and every word's speaker) and `manifest.json`.
Engines: espeak-ng and flite through ctypes, festival through a pipe (opt-in); text: Austen
novels from Debian r-cran-janeaustenr.
Modules: text (novels, normalisation), numbers, voices (catalogue, reserved voices/books),
espeak / flite / festival (engines), room (echo, noise), recording (plan, render, write),
generate (the resumable corpus), cli (its command line). Set-up:
scripts/install_synth_deps.sh; GPU machine: scripts/device_synth.sh.
"""
