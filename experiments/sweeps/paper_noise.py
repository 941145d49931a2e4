"""The paper's noise analysis: the main model (6L-768D-6H, rotary 1.5M, 3 repeats) on Rev16
at the paper's contexts, clean and with the original's noise grids (its
eval/rev16_gaussian_noise and rev16_background_noise runs: audiomentations, p=1, numpy and
random reseeded with 17925 before every recording, so a range means one SNR drawn for all
recordings; `eval --noise-mode original`, the default):

- `gaussian:0`: white noise at 0 dB (the original's results/evals_rb_rev16_gnoise_0SNR);
- `gaussian:-10:10`: one draw in [-10, 10] dB (results/evals_rb_rev16_gnoise_m10_10SNR);
- background music at -7.5 dB (results/evals_rb_rev16_bnoise_m7p5_SNR): its music file is not
  public, so this axis value needs your own file or folder of music:
  --config.options.noise="('none','gaussian:0','gaussian:-10:10','background:MUSIC:-7.5')".

    lcasr-jax sweep --config experiments/sweeps/paper_noise.py --out runs/paper/noise \
        --config.datasets.rev16.data_dir=~/data/rev16
    lcasr-jax plot runs/paper/noise/results.csv --figure noise --out runs/paper/noise/fig.png

The figure is the paper's: WER reduction from the shortest context against context, one
line per noise setting.
"""

from lcasr_jax.sweeps.config import PAPER_CONTEXTS, base_config, dataset, released


def get_config():
    cfg = base_config()
    cfg.models.rb_6l_768d_6h = released("rb_6l_768d_6h")
    cfg.datasets.rev16 = dataset("data/rev16")
    cfg.contexts = PAPER_CONTEXTS
    cfg.options.noise = ("none", "gaussian:0", "gaussian:-10:10")
    return cfg
