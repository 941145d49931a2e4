"""Per-tensor mean and std of the original's fresh model, as its exp/train.py builds it
(`torch.manual_seed(12345)`, then `SCConformerXL(**config.model, vocab_size=4095)`).

    python3 scripts/original_init_stats.py ORIGINAL_CHECKOUT TEMPLATE.yaml OUT.json

ORIGINAL_CHECKOUT: a checkout of robflynnyh/long-context-asr (outside this repository);
TEMPLATE: one of its exp/configs/paper_templates. Needs torch and pyyaml; the original's
optional packages that building a model never calls (torchaudio, apex, flash_attn, ...) may
be absent: imports of them get empty stand-ins. Writes {"template", "model", "tensors":
{state_dict key: {"shape", "mean", "std"}}} (float tensors; std biased), the fixture of
tests/test_model_init.py.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import json
import sys
import types
from pathlib import Path

# Optional dependencies of the original's package that building its model does not use.
ABSENT_OK = ("torchaudio", "wandb", "sentencepiece", "apex", "flash_attn", "mamba_ssm",
             "madgrad", "timm", "lhotse", "whisper", "jiwer", "soundfile", "librosa",
             "causal_conv1d", "kenlm", "pyctcdecode", "flashfftconv",
             "vector_quantize_pytorch")


class _StandIns(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Empty modules for ABSENT_OK packages that are not installed."""

    def find_spec(self, name, path, target=None):
        top = name.split(".")[0]
        if top not in ABSENT_OK or top in sys.modules and name == top:
            return None
        if name == top:  # installed? ask the other finders (this one comes last)
            others = [f for f in sys.meta_path if f is not self]
            if any(f.find_spec(name, None) for f in others if hasattr(f, "find_spec")):
                return None
        return importlib.machinery.ModuleSpec(name, self, is_package=True)

    def create_module(self, spec):
        module = types.ModuleType(spec.name)
        module.__path__ = []

        def missing(attr):
            raise AttributeError(f"{spec.name}.{attr} (stand-in of an absent package)")

        module.__getattr__ = missing
        return module

    def exec_module(self, module):
        pass


def main(original: str, template: str, out: str) -> None:
    import torch
    import yaml

    sys.dont_write_bytecode = True  # leave the original's checkout as it is
    sys.path.insert(0, original)
    sys.meta_path.append(_StandIns())
    from lcasr.models.sconformer_xl import SCConformerXL

    config = yaml.safe_load(Path(template).read_text())["model"]
    torch.manual_seed(12345)
    model = SCConformerXL(**config, vocab_size=4095)
    tensors = {}
    for key, value in model.state_dict().items():
        if value.is_floating_point():
            v = value.double()
            tensors[key] = {"shape": list(v.shape), "mean": float(f"{float(v.mean()):.6g}"),
                            "std": float(f"{float(v.std(unbiased=False)):.6g}")}
    doc = {"template": str(Path(template).relative_to(original)), "model": config,
           "tensors": tensors}
    Path(out).write_text(json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
