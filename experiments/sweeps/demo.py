"""Demo sweep on the embedded synthetic corpus with the shipped model (CPU, minutes).

    lcasr-jax sweep --config experiments/sweeps/demo.py --out runs/sweep-demo

Generates (once) a small held-out test set (about 8 minutes of speech, seed 1234, under
runs/demo/; `lcasr-jax demo` itself uses two 7-minute recordings and 10-320 s), then
evaluates the shipped model at 10, 40 and 160 s of context with the paper's moving window
(overlap 0.875).

Repeats: there is one shipped model, so "repeats" 1 and 2 both load it (the checkpoint has
no {repeat} placeholder). Evaluation is deterministic, so their spread is 0: this config
exercises the repeat, resume and summary machinery; the paper's configs load a separately
trained checkpoint per repeat.
"""

from lcasr_jax.sweeps.config import base_config, dataset, model


def get_config():
    cfg = base_config()
    cfg.models.shipped = model(checkpoint="", repeats=(1, 2))  # '' = the shipped model
    cfg.datasets.synth = dataset(
        data_dir="runs/demo/data-1234-0.1h-3m", splits=("test",),
        generate_hours=0.1, generate_minutes=3.0, generate_seed=1234)
    cfg.contexts = (10.0, 40.0, 160.0)
    cfg.context_unit = "seconds"
    cfg.batch_size = 4
    return cfg
