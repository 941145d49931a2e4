"""Import the original's exp/train.py from a checkout outside this repository, unmodified.

Only packages that the training path never calls are stubbed when absent: wandb (logging is
off in the replay config), librosa and torchaudio (feature extraction and SpecAugment, both
unused: the corpus is spectrograms and the replay config has no spec_augment).
"""
from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from pathlib import Path

STUBBABLE = ("wandb", "librosa", "torchaudio", "torchaudio.functional")


def _stub_missing() -> list[str]:
    """Insert empty modules for the STUBBABLE packages that cannot be imported; returns them."""
    stubbed = []
    for name in STUBBABLE:
        if name in sys.modules:
            continue
        try:
            importlib.import_module(name)
        except ImportError:
            mod = types.ModuleType(name)
            mod.__path__ = []  # a package, so that submodules can be stubbed under it
            sys.modules[name] = mod
            parent, _, child = name.rpartition(".")
            if parent:
                setattr(sys.modules[parent], child, mod)
            stubbed.append(name)
    return stubbed


def import_original_train(original: str | Path) -> tuple[types.ModuleType, list[str]]:
    """The original's exp/train.py as a module (name `original_train`), and the stubbed names."""
    original = Path(original).resolve()
    script = original / "exp" / "train.py"
    if not (original / "lcasr" / "__init__.py").is_file() or not script.is_file():
        raise SystemExit(f"{original}: not a checkout of robflynnyh/long-context-asr "
                         "(needs lcasr/ and exp/train.py)")
    sys.path.insert(0, str(original))
    stubbed = _stub_missing()
    spec = importlib.util.spec_from_file_location("original_train", script)
    module = importlib.util.module_from_spec(spec)
    sys.modules["original_train"] = module
    spec.loader.exec_module(module)
    return module, stubbed
