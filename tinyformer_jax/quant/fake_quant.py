"""Fake quantization with the integer contract of docs/architecture.md.

Weights: int8, symmetric, one scale per output channel, s = max|w| / 127, values in [-127, 127].
Activations: int8, asymmetric, one (scale, zero point) per tensor from a calibrated range
[lo, hi] that always contains 0: s = (hi - lo) / 255, zp = round(-128 - lo / s).
Rounding is half to even, as ONNX QuantizeLinear. Gradients pass straight through inside the
representable range and are zero outside it (clipped straight-through estimator).
The export writes the same numbers (`act_qparams` / `weight_scales` in NumPy) into QDQ nodes.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

EPS_SCALE = 1e-8


def act_qparams(lo, hi, xp=jnp):
    """(scale, zero point) of a calibrated range; xp is jnp inside the model, np at export."""
    lo, hi = xp.minimum(lo, 0.0), xp.maximum(hi, 0.0)
    scale = xp.maximum((hi - lo) / 255.0, EPS_SCALE)
    zp = xp.clip(xp.round(-128.0 - lo / scale), -128, 127)
    return scale, zp


def fake_quant(x: jax.Array, scale, zp) -> jax.Array:
    lo, hi = (-128.0 - zp) * scale, (127.0 - zp) * scale
    xc = jnp.clip(x, lo, hi)
    q = jnp.clip(jnp.round(xc / scale) + zp, -128, 127)
    return xc + jax.lax.stop_gradient((q - zp) * scale - xc)


def weight_scales(w, axis: int, xp=jnp):
    """Per-output-channel symmetric scales along `axis` (1.0 for an all-zero channel)."""
    red = tuple(i for i in range(w.ndim) if i != axis % w.ndim)
    amax = xp.max(xp.abs(w), axis=red, keepdims=True)
    return xp.where(amax > 0, amax / 127.0, 1.0)


def fake_quant_weight(w: jax.Array, axis: int) -> jax.Array:
    s = weight_scales(w, axis)
    q = jnp.clip(jnp.round(w / s), -127, 127) * s
    return w + jax.lax.stop_gradient(q - w)


def quantize_weight_np(w: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """int8 weights and float32 scales (flat, one per channel) as the export stores them."""
    s = weight_scales(w.astype(np.float32), axis, xp=np).astype(np.float32)
    q = np.clip(np.round(w / s), -127, 127).astype(np.int8)
    return q, s.reshape(-1)
