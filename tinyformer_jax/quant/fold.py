"""BatchNorm folding (before QAT) and the export copy of a model (scales folded into weights)."""
from __future__ import annotations

import jax.numpy as jnp
from flax import nnx

from ..models.layers import Conv, Linear, set_mode


def fold_batchnorm(model: nnx.Module) -> nnx.Module:
    """A copy where every Conv's BatchNorm (running statistics) is folded into its weights and a
    bias: w' = w * g / sqrt(var + eps), b' = beta - mean * g / sqrt(var + eps)."""
    folded = nnx.clone(model)
    for _, m in nnx.iter_graph(folded):
        if isinstance(m, Conv) and m.bn is not None:
            bn = m.bn
            a = bn.scale[...] / jnp.sqrt(bn.var[...] + bn.epsilon)
            m.w = nnx.Param(m.w[...] * a[:, None, None, None])
            m.b = nnx.Param(bn.bias[...] - bn.mean[...] * a)
            m.bn = nnx.data(None)
    return folded


def export_copy(model: nnx.Module) -> nnx.Module:
    """A copy in export mode whose Linear layers carry their post-scale inside W and b, so the
    float graph jax2onnx writes is exactly the computation the QDQ graph quantizes."""
    out = nnx.clone(model)
    for _, m in nnx.iter_graph(out):
        if isinstance(m, Conv) and m.bn is not None:
            raise ValueError("export needs BatchNorm folded first (fold_batchnorm)")
        if isinstance(m, Linear) and m.post_scale != 1.0:
            m.w = nnx.Param(m.w[...] * m.post_scale)
            m.b = nnx.Param(m.b[...] * m.post_scale)
            m.post_scale = 1.0
    set_mode(out, "export")
    return out
