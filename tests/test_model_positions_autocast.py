"""position_dtype=bfloat16 computes the position tables as the original's training did under
CUDA bf16 autocast, out to one hour of context (360,000 frames = 45,000 tokens).

What CUDA autocast does to the original's position code (checked in torch 2.13's dispatcher
with `torch._C._dispatch_dump`, and in its autocast_mode.h lists): `einsum` and `matmul`
have AutocastCUDA kernels of the lower-precision policy (float inputs cast to bf16, the op
run in bf16); `cos`, `sin`, `mul`, `cat` and `div` have none (they keep their input's dtype,
computing in float32 internally). CPU autocast differs for the rotary table: `einsum` has no
AutocastCPU kernel, so `torch.autocast('cpu')` leaves it in float32. The references below are
therefore (a) a float64 numpy emulation of bf16 round-to-nearest-even (numpy_reference), for
both tables, and (b) torch itself: explicit bf16 casts for the rotary einsum (what the CUDA
policy does), `torch.autocast('cpu')` for the Fourier matmul (which CPU autocast does cast).
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numpy_reference import bf16

from lcasr_jax.model.positions import FourierPositions, rotary_inv_freq, rotary_table

TOKENS = 360_000 // 8  # one hour of frames after 8x subsampling
ULP = 2.0 ** -8  # one bf16 step for values in [0.5, 1)


def rotary_reference(length: int, head_dim: int, base: float) -> tuple[np.ndarray, ...]:
    """The original's RotaryPositionalEmbedding table under CUDA autocast, emulated."""
    inv_freq = 1.0 / (base ** (np.arange(0, head_dim, 2, dtype=np.float32) / head_dim))
    t = np.arange(length, dtype=np.float32)  # interpolation factor 1
    freqs = bf16(bf16(t)[:, None] * bf16(inv_freq.astype(np.float32))[None, :])  # einsum
    emb = np.concatenate([freqs, freqs], -1)
    return bf16(np.cos(emb)), bf16(np.sin(emb))


def fourier_reference(length: int, w: np.ndarray) -> np.ndarray:
    """The original's LearnableFourierPosEnc table under CUDA autocast, emulated."""
    phase = bf16(bf16(np.arange(length, dtype=np.float32))[:, None] * bf16(w)[None, :])
    pe = np.concatenate([bf16(np.cos(phase)), bf16(np.sin(phase))], -1)
    return bf16(pe / math.sqrt(2 * w.size))


def close_to(table: np.ndarray, reference: np.ndarray) -> bool:
    """Equal but for rare one-step bf16 differences (float32 cos/sin of different libraries
    can straddle a rounding boundary)."""
    diff = np.abs(np.asarray(table, np.float64) - reference)
    return bool(diff.max() <= ULP and (diff > 0).mean() < 1e-3)


def _rotary(dtype, head_dim=32, base=1_500_000.0):
    inv = rotary_inv_freq(head_dim, base)
    cos, sin = rotary_table(TOKENS, inv, jnp.float32(1.0), dtype)
    return np.asarray(cos.astype(jnp.float32)), np.asarray(sin.astype(jnp.float32))


@pytest.mark.parametrize("base", [1_500_000.0, 10_000.0])
def test_bf16_rotary_table_is_autocasts_and_float32_is_not(base):
    ref_cos, ref_sin = rotary_reference(TOKENS, 32, base)
    cos, sin = _rotary(jnp.bfloat16, base=base)
    assert close_to(cos, ref_cos) and close_to(sin, ref_sin)
    cos32, sin32 = _rotary(jnp.float32, base=base)
    assert not close_to(cos32, ref_cos)


def test_positions_collapse_in_steps_of_256_tokens_at_one_hour():
    cos, sin = _rotary(jnp.bfloat16)
    table = np.concatenate([cos, sin], -1)
    # bf16 holds integers exactly up to 256; from 32,768 its step is 256: a row changes
    # exactly where the bf16-rounded position does
    changes = (np.diff(table, axis=0) != 0).any(-1)
    rounded = bf16(np.arange(TOKENS))
    np.testing.assert_array_equal(changes, np.diff(rounded) != 0)
    runs = np.diff(np.flatnonzero(changes[32_768:]))
    assert len(runs) > 40 and set(runs.tolist()) <= {255, 256, 257}  # ties to even
    assert changes[:256].all()  # exact below 256
    cos32, _ = _rotary(jnp.float32)
    assert (np.diff(cos32[32_768:], axis=0) != 0).any(-1).all()  # float32 keeps them apart


def test_bf16_rotary_table_equals_torch_with_autocasts_casts():
    torch = pytest.importorskip("torch")
    head_dim, base = 32, 1_500_000.0
    inv = 1.0 / (base ** (torch.arange(0, head_dim, 2).float() / head_dim))
    t = torch.arange(TOKENS).float()
    # CUDA autocast's policy for einsum: float inputs cast to bf16, the op run in bf16
    freqs = torch.einsum("i,j->ij", t.bfloat16(), inv.bfloat16())
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = _rotary(jnp.bfloat16)
    assert close_to(cos, emb.cos().double().numpy())
    assert close_to(sin, emb.sin().double().numpy())


def _fourier(dtype, d_model=64, seed=0):
    module = FourierPositions(d_model, dtype)
    x = jnp.zeros((1, TOKENS, d_model), jnp.float32)
    variables = module.init(jax.random.key(seed), x[:, :1])
    return np.asarray(module.apply(variables, x)[0]), np.asarray(variables["params"]["w_r"][0])


def test_bf16_fourier_table_is_autocasts_and_float32_is_not():
    pe, w = _fourier(jnp.bfloat16)
    reference = fourier_reference(TOKENS, w)
    assert close_to(pe, reference)
    pe32, _ = _fourier(jnp.float32)
    assert not close_to(pe32, reference)
    changes = (np.diff(pe, axis=0) != 0).any(-1)
    np.testing.assert_array_equal(changes, np.diff(bf16(np.arange(TOKENS))) != 0)


def test_bf16_fourier_table_equals_torch_under_cpu_autocast():
    """The original's extend_pe computation, run by torch under CPU autocast (which casts
    matmul as CUDA autocast does)."""
    torch = pytest.importorskip("torch")
    pe, w = _fourier(jnp.bfloat16)
    w_r = torch.tensor(w)[None]
    position_v = torch.arange(0, TOKENS, dtype=torch.float32).unsqueeze(1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        phase = torch.matmul(position_v, w_r)
        assert phase.dtype == torch.bfloat16
        table = torch.cat((torch.cos(phase), torch.sin(phase)), -1)
        table /= math.sqrt(2 * w.size)
    assert close_to(pe, table.double().numpy())
