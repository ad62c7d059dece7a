"""QAT model -> standard QDQ int8 ONNX: jax2onnx float graph, cleanup, our QDQ insertion."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
from flax import nnx

from ..models.layers import recording
from ..quant.fake_quant import act_qparams
from ..quant.fold import export_copy
from .cleanup import cleanup, strict_check
from .qdq import insert_qdq

OPSET = 21  # Gelu needs 20; onnxruntime and SparseEngine both read 21


def float_graph(model: nnx.Module, input_shape: tuple[int, ...]) -> tuple[onnx.ModelProto, list]:
    """The export-mode float graph and, in graph order, the ActQuants behind its Identity markers."""
    from jax2onnx import to_onnx

    em = export_copy(model)
    with recording() as rec:
        proto = to_onnx(em, [input_shape], opset=OPSET, normalization_mode="prefer_native",
                        input_names=["image"], output_names=["logits"], model_name="tinyformer_hybrid")
    return proto, list(rec)


def export_qdq(model: nnx.Module, path: str | Path, input_shape: tuple[int, ...] = (1, 3, 32, 32)) -> Path:
    """Write the QDQ model to `path` (atomically: a temporary file renamed at the end)."""
    proto, quants = float_graph(model, input_shape)
    qparams = []
    for aq in quants:
        lo, hi, n = np.asarray(aq.range[...], np.float64)
        if n == 0:
            raise ValueError("export: an activation range was never calibrated (run calibration first)")
        scale, zp = act_qparams(np.float32(lo), np.float32(hi), xp=np)
        qparams.append((float(scale), int(zp)))
    qdq = strict_check(insert_qdq(cleanup(proto), qparams))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    onnx.save(qdq, str(tmp))
    os.replace(tmp, path)
    return path
