"""A persistent compilation cache for the code a test runs in this process.

jax decides once per process whether it uses its persistent cache (at the first compile), so
setting `jax_compilation_cache_dir` later does nothing by itself: `persistent_cache(path)`
also resets that decision, caches every program however quick to compile, and puts the
previous settings back afterwards. A test that builds the same programs again (a resumed
run, a second leg: a fresh `jax.jit` of the same step) then loads them instead.
"""

import contextlib
from pathlib import Path


@contextlib.contextmanager
def persistent_cache(path: Path):
    import jax
    from jax.experimental.compilation_cache import compilation_cache

    names = ("jax_compilation_cache_dir", "jax_persistent_cache_min_compile_time_secs",
             "jax_persistent_cache_min_entry_size_bytes")
    before = {name: getattr(jax.config, name) for name in names}
    for name, value in zip(names, (str(path), 0.0, 0), strict=True):
        jax.config.update(name, value)
    compilation_cache.reset_cache()
    try:
        yield
    finally:
        for name, value in before.items():
            jax.config.update(name, value)
        compilation_cache.reset_cache()
