"""Long-form evaluation: window modes, batched/sharded execution, decoding, scoring,
dataset readers, reports (see lcasr_jax.eval.cli)."""
