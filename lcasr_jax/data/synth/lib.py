"""Locate and load the synthesisers' shared libraries."""

from __future__ import annotations

import ctypes


def load_library(soname: str, package: str) -> ctypes.CDLL:
    """dlopen `soname` (honours LD_LIBRARY_PATH); one-line error naming the Debian package."""
    try:
        return ctypes.CDLL(soname, mode=ctypes.RTLD_GLOBAL)
    except OSError as e:
        raise RuntimeError(
            f"{soname}: cannot load ({e}); install the Debian package {package} "
            "(scripts/install_synth_deps.sh)") from None


def available(soname: str) -> bool:
    """Whether `soname` can be loaded in this process."""
    try:
        ctypes.CDLL(soname)
    except OSError:
        return False
    return True
