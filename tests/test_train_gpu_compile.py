"""The GPU compiler's flag presets reach XLA_FLAGS, and flags a user set win."""

import pytest

from lcasr_jax.train import gpu_compile


def test_preset_flags_are_added_to_xla_flags():
    env = {}
    out = gpu_compile.apply("fast", env)
    assert out == env["XLA_FLAGS"]
    assert set(out.split()) == set(gpu_compile.PRESETS["fast"])


def test_flags_already_set_win_and_others_stay():
    env = {"XLA_FLAGS": "--xla_gpu_autotune_level=4 --xla_dump_to=/tmp/d"}
    flags = gpu_compile.apply("fast", env).split()
    assert "--xla_gpu_autotune_level=4" in flags and "--xla_dump_to=/tmp/d" in flags
    assert "--xla_gpu_autotune_level=0" not in flags
    assert "--xla_gpu_enable_triton_gemm=false" in flags


def test_xla_preset_changes_nothing_and_unknown_names_fail():
    env = {"XLA_FLAGS": "--xla_dump_to=/tmp/d"}
    assert gpu_compile.apply("xla", env) == "--xla_dump_to=/tmp/d"
    assert "XLA_FLAGS" not in (empty := {}) and gpu_compile.apply("xla", empty) == ""
    with pytest.raises(ValueError, match="train.gpu_compile"):
        gpu_compile.apply("fastest", {})
