"""Evaluation sweeps: a config expanded into cells (`grid`, `config`), run resumably (`run`)."""
