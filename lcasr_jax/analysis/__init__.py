"""Analyses of context use: attention distance (attention), context attribution
(attribution), their figures (figures) and the `lcasr-jax analyze` command (cli)."""
