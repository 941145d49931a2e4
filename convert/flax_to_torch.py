"""Write a model dir back in the released format: `python convert/flax_to_torch.py DIR OUT.pt`.

Same as `lcasr-jax export`; the logic lives in lcasr_jax.checkpoints.
"""

import sys

from lcasr_jax.checkpoints.cli import export_main

if __name__ == "__main__":
    sys.exit(export_main())
