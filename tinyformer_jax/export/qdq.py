"""QDQ insertion with the scales learned in training (not onnxruntime's calibration).

Every quantization marker (an Identity written by an export-mode ActQuant) becomes
QuantizeLinear -> DequantizeLinear with that ActQuant's (scale, zero point). Data-movement ops
(Reshape, Transpose, Flatten, Squeeze, Unsqueeze) that read a dequantized tensor get a Q/DQ
pair with the same parameters after them (a pure copy in int8); one that writes a marked tensor
from an unquantized one gets the pair before it. Conv / Gemm / MatMul weights
become int8 per-output-channel constants with DequantizeLinear (the fake quantization's
scales), biases int32 at input scale x weight scale: the standard QDQ form.
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import helper

from ..quant.fake_quant import quantize_weight_np
from .cleanup import Graph

MOVES = {"Reshape", "Transpose", "Flatten", "Squeeze", "Unsqueeze"}


def _qdq_nodes(gr: Graph, src: str, dst: str, scale: float, zp: int, tag: str) -> list[onnx.NodeProto]:
    gr.set_init(f"{tag}_scale", np.asarray(scale, np.float32))
    gr.set_init(f"{tag}_zp", np.asarray(zp, np.int8))
    q = f"{tag}_q"
    return [helper.make_node("QuantizeLinear", [src, f"{tag}_scale", f"{tag}_zp"], [q], name=f"{tag}_Q"),
            helper.make_node("DequantizeLinear", [q, f"{tag}_scale", f"{tag}_zp"], [dst], name=f"{tag}_DQ")]


def _weight_axis(node: onnx.NodeProto) -> int:
    if node.op_type == "Conv":
        return 0
    trans_b = next((helper.get_attribute_value(a) for a in node.attribute if a.name == "transB"), 0)
    return 0 if (node.op_type == "Gemm" and trans_b) else 1


def insert_qdq(model: onnx.ModelProto, qparams: list[tuple[float, int]]) -> onnx.ModelProto:
    """`qparams[i]` quantizes the i-th Identity marker in node order."""
    gr = Graph(model)
    markers = [n for n in gr.g.node if n.op_type == "Identity"]
    if len(markers) != len(qparams):
        raise ValueError(f"export: {len(markers)} Identity markers in the ONNX graph but {len(qparams)} "
                         "quantization points in the model (jax2onnx wrote an unexpected Identity?)")
    act: dict[str, tuple[float, int]] = {}  # dequantized tensor -> its (scale, zero point)
    marked: dict[str, tuple[float, int]] = {}  # float tensor a marker quantizes -> the same
    for i, (node, (scale, zp)) in enumerate(zip(markers, qparams)):
        gr.replace([node], _qdq_nodes(gr, node.input[0], node.output[0], float(scale), int(zp), f"act{i}"))
        act[node.output[0]] = (float(scale), int(zp))
        marked[node.input[0]] = (float(scale), int(zp))
    for node in reversed(list(gr.g.node)):  # a move right before a marker: quantize its input alike
        if node.op_type in MOVES and node.output[0] in marked and node.input[0] not in act:
            src = node.input[0]
            prod = gr.producer(src)
            if prod is None or prod.op_type == "DequantizeLinear":
                continue
            raw = f"{src}_float"
            prod.output[list(prod.output).index(src)] = raw
            gr.insert(gr.index(node), _qdq_nodes(gr, raw, src, *marked[node.output[0]], f"{src}_pre"))
            act[src] = marked[node.output[0]]
    for node in list(gr.g.node):
        if node.op_type in MOVES and node.input[0] in act and node.output[0] not in act | marked:
            raw = f"{node.output[0]}_float"
            scale, zp = act[node.input[0]]
            out = node.output[0]
            node.output[0] = raw
            gr.insert(gr.index(node) + 1, _qdq_nodes(gr, raw, out, scale, zp, f"{out}_copy"))
            act[out] = (scale, zp)
    for node in list(gr.g.node):
        if node.op_type not in ("Conv", "Gemm", "MatMul") or node.input[1] not in gr.inits:
            continue
        axis = _weight_axis(node)
        wq, ws = quantize_weight_np(gr.inits[node.input[1]], axis)
        tag = f"{node.output[0]}_w"
        gr.set_init(f"{tag}_int8", wq)
        gr.set_init(f"{tag}_wscale", ws)
        gr.set_init(f"{tag}_wzp", np.zeros(ws.shape, np.int8))
        dq = helper.make_node("DequantizeLinear", [f"{tag}_int8", f"{tag}_wscale", f"{tag}_wzp"], [f"{tag}_dq"],
                              name=f"{tag}_DQ", axis=axis)
        node.input[1] = f"{tag}_dq"
        new = [dq]
        if len(node.input) > 2 and node.input[2] in gr.inits:
            if node.input[0] not in act:
                raise ValueError(f"export: {node.op_type} '{node.name}' reads a tensor without quantization")
            bscale = (act[node.input[0]][0] * ws).astype(np.float32)
            b = gr.inits[node.input[2]].reshape(-1)
            btag = f"{node.output[0]}_b"
            gr.set_init(f"{btag}_int32", np.round(b / bscale).astype(np.int32))
            gr.set_init(f"{btag}_bscale", bscale)
            gr.set_init(f"{btag}_bzp", np.zeros(bscale.shape, np.int32))
            new.append(helper.make_node("DequantizeLinear", [f"{btag}_int32", f"{btag}_bscale", f"{btag}_bzp"],
                                        [f"{btag}_dq"], name=f"{btag}_DQ", axis=0))
            node.input[2] = f"{btag}_dq"
        gr.insert(gr.index(node), new)
    gr.prune_initializers()
    return gr.model
