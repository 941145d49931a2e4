"""Convert a released lcasr checkpoint: `python convert/torch_to_flax.py SRC.pt DEST_DIR`.

Same as `lcasr-jax convert`; the logic lives in lcasr_jax.checkpoints.
"""

import sys

from lcasr_jax.checkpoints.cli import main

if __name__ == "__main__":
    sys.exit(main())
