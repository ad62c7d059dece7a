"""Layers that carry their own quantization: each ends in an ActQuant, the point where the
exported QDQ graph holds an int8 tensor (SparseEngine's layer boundary).

Every module with a `mode` attribute follows `set_mode`:
  float      training in float (BatchNorm live)
  calibrate  float, and every ActQuant averages the per-batch min / max of its input
  quant      fake quantization (weights per channel, activations with the frozen ranges)
  export     float graph for jax2onnx: ActQuant becomes an Identity marker (replaced by Q/DQ
             after export), depthwise conv a grouped conv, tokens lose the batch axis.
Tensors are NCHW, conv weights OIHW, so the exported ONNX needs no layout transposes.
"""
from __future__ import annotations

import math
from contextlib import contextmanager

import jax
import jax.numpy as jnp
from flax import nnx

from ..errors import TinyFormerError
from ..quant.fake_quant import act_qparams, fake_quant, fake_quant_weight

MODES = ("float", "calibrate", "quant", "export")
_RECORDER: list | None = None
# How convolutions are computed in training and evaluation (the same math, other XLA programs):
#   unrolled  depthwise as k*k shifted multiply-adds, 1x1 as an einsum (measured several times
#             faster than lax.conv on CPU)
#   lax       lax.conv_general_dilated everywhere (cuDNN on a GPU)
# python -m tinyformer_jax.bench train_step measures both on the machine at hand.
CONV_FORMS = ("unrolled", "lax")
_CONV_FORM = "unrolled"


def set_conv_form(form: str) -> None:
    """Choose the convolution form for programs traced from now on (launch: --conv_form)."""
    global _CONV_FORM
    if form not in CONV_FORMS:
        raise TinyFormerError(f"--conv_form={form}: choose one of {', '.join(CONV_FORMS)}")
    _CONV_FORM = form


class QRange(nnx.Variable):
    """Calibrated activation range [lo, hi] and the number of batches averaged into it."""


@contextmanager
def recording():
    """Collects, in call order, every ActQuant an export-mode forward passes through."""
    global _RECORDER
    prev, _RECORDER = _RECORDER, []
    try:
        yield _RECORDER
    finally:
        _RECORDER = prev


def set_mode(model: nnx.Module, mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f"mode {mode!r}: choose one of {MODES}")
    for _, m in nnx.iter_graph(model):
        if isinstance(m, nnx.Module) and hasattr(m, "mode"):
            m.mode = mode


class ActQuant(nnx.Module):
    def __init__(self):
        self.range = QRange(jnp.zeros(3, jnp.float32))  # lo, hi, batches seen
        self.mode = "float"

    def qparams(self):
        return act_qparams(self.range[...][0], self.range[...][1])

    def __call__(self, x: jax.Array) -> jax.Array:
        if self.mode == "calibrate":
            r = self.range[...]
            n = r[2]
            lo = (r[0] * n + jnp.min(x)) / (n + 1)
            hi = (r[1] * n + jnp.max(x)) / (n + 1)
            self.range[...] = jnp.stack([lo, hi, n + 1])
        elif self.mode == "quant":
            return fake_quant(x, *self.qparams())
        elif self.mode == "export":
            if _RECORDER is not None:
                _RECORDER.append(self)
            return jnp.array(x, copy=True)
        return x


def _depthwise_shifted(x: jax.Array, w: jax.Array, stride: int, pad: int) -> jax.Array:
    """Depthwise conv as k*k shifted multiply-adds (trains several times faster on CPU than a
    grouped conv); same math as feature_group_count=C."""
    _, _, h, wd = x.shape
    k = w.shape[-1]
    ho, wo = (h + 2 * pad - k) // stride + 1, (wd + 2 * pad - k) // stride + 1
    xp = jnp.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    out = 0.0
    for u in range(k):
        for v in range(k):
            patch = xp[:, :, u:u + stride * (ho - 1) + 1:stride, v:v + stride * (wo - 1) + 1:stride]
            out = out + patch * w[None, :, 0, u, v, None, None]
    return out


def _batchnorm_first(bn: nnx.BatchNorm, y: jax.Array) -> jax.Array:
    """`bn` (channels on axis 1) applied to y's fewer channels as a BatchNorm of that width holding
    the first ones' parameters and statistics would be; only those statistics are updated."""
    n = y.shape[1]
    per_channel = lambda v: v[:n, None, None]  # noqa: E731
    mean, var = bn.mean[...][:n], bn.var[...][:n]
    if not bn.use_running_average:
        batch_mean = jnp.mean(y, axis=(0, 2, 3))
        batch_var = jnp.maximum(jnp.mean(y * y, axis=(0, 2, 3)) - batch_mean * batch_mean, 0.0)
        m = bn.momentum
        bn.mean[...] = bn.mean[...].at[:n].set(jax.lax.stop_gradient(m * mean + (1 - m) * batch_mean))
        bn.var[...] = bn.var[...].at[:n].set(jax.lax.stop_gradient(m * var + (1 - m) * batch_var))
        mean, var = batch_mean, batch_var
    scale = jax.lax.rsqrt(per_channel(var) + bn.epsilon) * per_channel(bn.scale[...])
    return (y - per_channel(mean)) * scale + per_channel(bn.bias[...])


class Conv(nnx.Module):
    """Conv (optionally depthwise) + BatchNorm (until folded) or bias + optional ReLU6 + ActQuant."""

    def __init__(self, cin: int, cout: int, k: int, *, rngs: nnx.Rngs, stride: int = 1, depthwise: bool = False,
                 relu6: bool = True, bn: bool = True):
        if depthwise and cin != cout:
            raise ValueError("depthwise conv needs cin == cout")
        fan_in = (1 if depthwise else cin) * k * k
        shape = (cout, 1 if depthwise else cin, k, k)
        self.w = nnx.Param(jax.random.normal(rngs.params(), shape) * math.sqrt(2.0 / fan_in))
        self.b = nnx.data(None if bn else nnx.Param(jnp.zeros(cout)))
        self.bn = nnx.data(nnx.BatchNorm(cout, axis=1, momentum=0.9, epsilon=1e-5, rngs=rngs) if bn else None)
        self.k, self.stride, self.depthwise, self.relu6 = k, stride, depthwise, relu6
        self.out = ActQuant()
        self.mode = "float"

    def __call__(self, x: jax.Array, w_mask: jax.Array | None = None, out: int | None = None,
                 k: int | None = None) -> jax.Array:
        """Supernet: `w_mask` (broadcast onto the weight) masks a smaller kernel inside the largest
        one; `out` and `k` slice one instead (the first `out` output channels, the centre k x k),
        and the input channels are always the first x.shape[1]."""
        w = self.w[...] if w_mask is None else self.w[...] * w_mask
        rows = x.shape[1] if self.depthwise else (out or w.shape[0])
        k = k or self.k
        off = (self.k - k) // 2
        w = w[:rows, :w.shape[1] if self.depthwise else x.shape[1], off:off + k, off:off + k]
        if self.mode == "quant":
            if self.bn is not None:
                raise ValueError("fake quantization needs BatchNorm folded first (quant.fold.fold_batchnorm)")
            w = fake_quant_weight(w, 0)
        pad = k // 2
        unrolled = _CONV_FORM == "unrolled" and self.mode != "export"
        if self.depthwise and unrolled:
            y = _depthwise_shifted(x, w, self.stride, pad)
        elif k == 1 and self.stride == 1 and unrolled:
            y = jnp.einsum("bchw,oc->bohw", x, w[:, :, 0, 0])  # measured 5x faster than a 1x1 conv on CPU
        else:
            y = jax.lax.conv_general_dilated(x, w, (self.stride, self.stride), ((pad, pad), (pad, pad)),
                                             dimension_numbers=("NCHW", "OIHW", "NCHW"),
                                             feature_group_count=x.shape[1] if self.depthwise else 1)
        if self.b is not None:
            y = y + self.b[...][:rows, None, None]
        if self.bn is not None:
            y = self.bn(y) if rows == self.bn.num_features else _batchnorm_first(self.bn, y)
        if self.relu6:
            y = jnp.clip(y, 0.0, 6.0)
        return self.out(y)


class Linear(nnx.Module):
    """x @ W + b over the last axis, times a constant `post_scale` (attention's 1/sqrt(d), folded
    into W and b at export), + ActQuant."""

    def __init__(self, din: int, dout: int, *, rngs: nnx.Rngs, post_scale: float = 1.0):
        self.w = nnx.Param(jax.random.normal(rngs.params(), (din, dout)) * math.sqrt(1.0 / din))
        self.b = nnx.Param(jnp.zeros(dout))
        self.post_scale = post_scale
        self.out = ActQuant()
        self.mode = "float"

    def __call__(self, x: jax.Array) -> jax.Array:
        w, b = self.w[...], self.b[...]
        if self.post_scale != 1.0:
            w, b = w * self.post_scale, b * self.post_scale
        if self.mode == "quant":
            w = fake_quant_weight(w, 1)
        return self.out(jnp.dot(x, w) + b)


class LayerNorm(nnx.Module):
    def __init__(self, dim: int, *, rngs: nnx.Rngs):
        self.norm = nnx.LayerNorm(dim, epsilon=1e-5, rngs=rngs)
        self.out = ActQuant()

    def __call__(self, x: jax.Array, mask: jax.Array | None = None) -> jax.Array:
        """`mask` (supernet): normalize over the channels it keeps (x is zero elsewhere), as a
        LayerNorm of that smaller width does; the others stay zero."""
        if mask is None:
            return self.out(self.norm(x))
        n = jnp.sum(mask)
        mean = jnp.sum(x, axis=-1, keepdims=True) / n
        var = jnp.maximum(jnp.sum(x * x, axis=-1, keepdims=True) / n - mean * mean, 0.0)
        y = (x - mean) * jax.lax.rsqrt(var + self.norm.epsilon) * self.norm.scale[...] + self.norm.bias[...]
        return self.out(y * mask)


class Residual(nnx.Module):
    """a + b, quantized: SparseEngine's Add requantizes both inputs to the output scale."""

    def __init__(self):
        self.out = ActQuant()

    def __call__(self, a: jax.Array, b: jax.Array) -> jax.Array:
        return self.out(a + b)
