"""Small float ONNX models built with onnx.helper, and their QDQ int8 versions from onnxruntime.

Used by the tests (one model per op and configuration) and by the bundled example (a
MobileNetV2-style CNN with one MobileViT-style attention block). Quantization needs
onnxruntime, the optional reference dependency.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 20


class _Builder:
    """Accumulates nodes and initializers; names are generated so callers only wire values."""

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.count = 0

    def name(self, base: str) -> str:
        self.count += 1
        return f"{base}{self.count}"

    def const(self, value: np.ndarray, base: str = "c") -> str:
        n = self.name(base)
        arr = np.asarray(value)
        self.inits.append(numpy_helper.from_array(arr.astype(np.int64 if arr.dtype.kind == "i" else np.float32), n))
        return n

    def op(self, op_type: str, inputs: list[str], base: str | None = None, **attrs) -> str:
        out = self.name(base or op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out

    def weight(self, shape, fan_in: int) -> str:
        return self.const(self.rng.normal(0, math.sqrt(2.0 / fan_in), size=shape), "w")

    def conv(self, x: str, cin: int, cout: int, k=3, stride=1, pad=None, group: int = 1, bias: bool = True,
             dilation=1) -> str:
        """Conv; k, stride and dilation are an int or (h, w), pad an int (all sides) or None (same)."""
        kh, kw = (k, k) if isinstance(k, int) else k
        sh, sw = (stride, stride) if isinstance(stride, int) else stride
        dh, dw = (dilation, dilation) if isinstance(dilation, int) else dilation
        pads = [(kh // 2) * dh, (kw // 2) * dw] * 2 if pad is None else [pad] * 4
        w = self.weight((cout, cin // group, kh, kw), cin // group * kh * kw)
        ins = [x, w] + ([self.const(self.rng.normal(0, 0.1, size=cout), "b")] if bias else [])
        return self.op("Conv", ins, "conv", kernel_shape=[kh, kw], strides=[sh, sw], pads=pads,
                       group=group, dilations=[dh, dw])

    def relu6(self, x: str) -> str:
        return self.op("Clip", [x, self.const(np.array(0.0)), self.const(np.array(6.0))], "relu6")

    def linear(self, x: str, cin: int, cout: int, bias: bool = True) -> str:
        y = self.op("MatMul", [x, self.weight((cin, cout), cin)], "mm")
        return self.op("Add", [y, self.const(self.rng.normal(0, 0.1, size=cout), "b")], "bias") if bias else y

    def model(self, x_shape, out: str, out_shape=None) -> onnx.ModelProto:
        g = helper.make_graph(self.nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x_shape))],
                              [helper.make_tensor_value_info(out, TensorProto.FLOAT, out_shape)], self.inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)])
        m.ir_version = 9
        m = onnx.shape_inference.infer_shapes(m, strict_mode=True)
        onnx.checker.check_model(m)
        return m


NEEDS_PRELUDE = {"relu", "clip", "gelu", "avgpool", "maxpool", "reshape", "flatten", "transpose"}


def single_op(case: dict, seed: int = 0) -> onnx.ModelProto:
    """A model around one op: `case` = dict(op=..., shape=..., plus op options)."""
    b = _Builder(seed)
    op, shape = case["op"], case["shape"]
    x = "x"
    if op in NEEDS_PRELUDE:  # onnxruntime quantizes these only next to a quantized op
        x = b.op("Add", [x, b.const(np.array(0.05))], "prelude")
    c = shape[1] if len(shape) > 1 else 1
    if op == "conv":
        y = b.conv(x, c, case["cout"], case.get("k", 3), case.get("stride", 1), case.get("pad"),
                   bias=case.get("bias", True), dilation=case.get("dilation", 1))
        if case.get("relu"):
            y = b.op("Relu", [y])
    elif op == "depthwise":
        m = case.get("mult", 1)
        y = b.conv(x, c, c * m, case.get("k", 3), case.get("stride", 1), case.get("pad"), group=c)
    elif op == "gemm":
        w = b.weight((case["n"], shape[-1]) if case.get("transB", 1) else (shape[-1], case["n"]), shape[-1])
        y = b.op("Gemm", [x, w, b.const(b.rng.normal(0, 0.1, size=case["n"]))], transB=case.get("transB", 1))
    elif op == "matmul_w":
        y = b.op("MatMul", [x, b.weight((shape[-1], case["n"]), shape[-1])])
    elif op == "matmul_aa":  # activations x activations: x . x^T over the last two axes
        perm = list(range(len(shape)))
        perm[-1], perm[-2] = perm[-2], perm[-1]
        y = b.op("MatMul", [x, b.op("Transpose", [x], perm=perm)])
    elif op in ("add", "sub"):
        other = b.const(b.rng.normal(0.3, 1, size=case["other"])) if "other" in case else b.op("Sigmoid", [x])
        y = b.op(op.capitalize(), [x, other])
    elif op == "mul":
        other = b.const(b.rng.normal(0.3, 1, size=case["other"])) if "other" in case else b.op("Tanh", [x])
        y = b.op("Mul", [x, other])
    elif op in ("relu", "sigmoid", "gelu"):
        y = b.op({"relu": "Relu", "sigmoid": "Sigmoid", "gelu": "Gelu"}[op], [x])
    elif op == "clip":
        y = b.op("Clip", [x, b.const(np.array(case["lo"])), b.const(np.array(case["hi"]))])
    elif op in ("avgpool", "maxpool"):
        k, s, p = case["k"], case["stride"], case.get("pad", 0)
        attrs = dict(kernel_shape=[k, k], strides=[s, s], pads=[p] * 4)
        if op == "avgpool":
            attrs["count_include_pad"] = case.get("include_pad", 0)
        y = b.op("AveragePool" if op == "avgpool" else "MaxPool", [x], **attrs)
    elif op == "gap":
        y = b.op("GlobalAveragePool", [x])
    elif op == "reshape":
        y = b.op("Reshape", [x, b.const(np.array(case["to"], np.int64))])
    elif op == "flatten":
        y = b.op("Flatten", [x], axis=case.get("axis", 1))
    elif op == "transpose":
        y = b.op("Transpose", [x], perm=case["perm"])
    elif op == "concat":
        y = b.op("Concat", [x, b.op("Sigmoid", [x])], axis=case["axis"])
    elif op == "softmax":
        y = b.op("Softmax", [x], axis=-1)
    elif op == "layernorm":
        n = shape[-1]
        y = b.op("LayerNormalization", [x, b.const(b.rng.normal(1, 0.2, size=n)), b.const(b.rng.normal(0, 0.2, size=n))],
                 axis=-1, epsilon=1e-5)
    elif op == "batchnorm":
        y = b.conv(x, c, case["cout"])
        n = case["cout"]
        y = b.op("BatchNormalization", [y, b.const(b.rng.normal(1, 0.2, size=n)), b.const(b.rng.normal(0, 0.2, size=n)),
                                        b.const(b.rng.normal(0, 0.2, size=n)), b.const(b.rng.uniform(0.5, 2, size=n))])
    else:
        raise ValueError(f"unknown case op {op}")
    if op == "gelu":  # its output is quantized only when a quantized op consumes it
        y = b.op("Add", [y, b.const(np.array(0.05))], "postlude")
    return b.model(shape, y)


def attention(b: _Builder, x: str, tokens: int, dim: int, heads: int, head_dim: int | None = None,
              gemm: bool = False, groups: int = 1) -> str:
    """Multi-head self-attention as PyTorch/JAX export it (1/sqrt(P) folded into W_Q); head_dim P
    defaults to dim / heads (P = dim is the EEGFormer form, where FWSA pays). Tokens [1, tokens, dim]
    with bias-free MatMul projections, or with `gemm` [tokens, dim] and Gemm projections with
    biases (tinyformer_jax's export). `groups` > 1: the rows are that many sequences one after the
    other, each attending within itself (MobileViT patches; the MatMuls batch over them)."""
    p = head_dim or dim // heads
    width = heads * p
    lead = [] if gemm else [1]
    seq = tokens // groups
    split = lead + ([groups] if groups > 1 else [])
    n = len(split)
    wq = b.rng.normal(0, math.sqrt(1.0 / dim), size=(dim, width)) / math.sqrt(p)

    def proj(t: str, cin: int, cout: int, w=None) -> str:
        w = b.rng.normal(0, math.sqrt(1.0 / cin), size=(cin, cout)) if w is None else w
        if not gemm:
            return b.op("MatMul", [t, b.const(w, "w")])
        return b.op("Gemm", [t, b.const(w, "w"), b.const(b.rng.normal(0, 0.1, size=cout), "b")], "gemm")

    def heads_of(t: str) -> str:
        r = b.op("Reshape", [t, b.const(np.array(split + [seq, heads, p], np.int64))])
        return b.op("Transpose", [r], perm=list(range(n)) + [n + 1, n, n + 2])

    q, k, v = heads_of(proj(x, dim, width, wq)), heads_of(proj(x, dim, width)), heads_of(proj(x, dim, width))
    kt = b.op("Transpose", [k], perm=list(range(n)) + [n, n + 2, n + 1])
    att = b.op("Softmax", [b.op("MatMul", [q, kt])], axis=-1)
    o = b.op("Transpose", [b.op("MatMul", [att, v])], perm=list(range(n)) + [n + 1, n, n + 2])
    o = b.op("Reshape", [o, b.const(np.array(lead + [tokens, width], np.int64))])
    return proj(o, width, dim)


def attention_block(tokens: int, dim: int, heads: int, head_dim: int | None = None, seed: int = 0,
                    gemm: bool = False, groups: int = 1) -> onnx.ModelProto:
    """An attention layer alone (the attention benchmark and tests), tokens as in `attention`."""
    b = _Builder(seed)
    return b.model(([] if gemm else [1]) + [tokens, dim],
                   attention(b, "x", tokens, dim, heads, head_dim, gemm, groups))


def hybrid(seed: int = 0, classes: int = 10, head_dim: int = 32) -> onnx.ModelProto:
    """MobileNetV2-style CNN with one MobileViT-style attention block (E = 32, two heads of P = 32,
    the EEGFormer form, so that FWSA pays), 1x3x32x32 -> 10 logits."""
    b = _Builder(seed)
    x = b.relu6(b.conv("x", 3, 16, 3, 2))                                    # 16x16x16

    def inverted_residual(x: str, cin: int, cout: int, expand: int, stride: int) -> str:
        h = b.relu6(b.conv(x, cin, cin * expand, 1))
        h = b.relu6(b.conv(h, cin * expand, cin * expand, 3, stride, group=cin * expand))
        h = b.conv(h, cin * expand, cout, 1)
        return b.op("Add", [x, h], "res") if stride == 1 and cin == cout else h

    x = inverted_residual(x, 16, 16, 3, 1)
    x = inverted_residual(x, 16, 24, 4, 2)                                   # 8x8x24
    x = inverted_residual(x, 24, 24, 4, 1)
    # MobileViT-style block: local conv, unfold to tokens, transformer layer, fold, fuse
    dim, tokens = 32, 64
    local = b.conv(b.relu6(b.conv(x, 24, 24, 3)), 24, dim, 1)
    t = b.op("Transpose", [b.op("Reshape", [local, b.const(np.array([1, dim, tokens], np.int64))])], perm=[0, 2, 1])
    ln = lambda v: b.op("LayerNormalization", [v, b.const(np.ones(dim)), b.const(np.zeros(dim))], axis=-1)  # noqa: E731
    t = b.op("Add", [t, attention(b, ln(t), tokens, dim, heads=2, head_dim=head_dim)], "res")
    mlp = b.linear(b.op("Gelu", [b.linear(ln(t), dim, 2 * dim)]), 2 * dim, dim)
    t = b.op("Add", [t, mlp], "res")
    fold = b.op("Reshape", [b.op("Transpose", [t], perm=[0, 2, 1]), b.const(np.array([1, dim, 8, 8], np.int64))])
    fused = b.relu6(b.conv(b.op("Concat", [x, b.relu6(b.conv(fold, dim, 24, 1))], axis=1), 48, 48, 3))
    h = b.relu6(b.conv(fused, 48, 96, 1))
    h = b.op("Flatten", [b.op("GlobalAveragePool", [h])])
    y = b.op("Gemm", [h, b.weight((classes, 96), 96), b.const(np.zeros(classes))], transB=1)
    return b.model((1, 3, 32, 32), y)


def eegformer(seed: int = 0, tokens: int = 81, dim: int = 32, heads: int = 8, head_dim: int = 32, ff: int = 64,
              layers: int = 2, classes: int = 4) -> onnx.ModelProto:
    """An EEGFormer-shaped transformer (Jung et al. 2024's configuration: 81 tokens of E = 32, eight
    heads of P = 32, feed-forward 64): pre-LN encoder layers, mean over tokens, a linear head;
    [1, tokens, dim] -> [1, classes]."""
    b = _Builder(seed)
    ln = lambda v: b.op("LayerNormalization", [v, b.const(np.ones(dim)), b.const(np.zeros(dim))], axis=-1)  # noqa: E731
    t = "x"
    for _ in range(layers):
        t = b.op("Add", [t, attention(b, ln(t), tokens, dim, heads, head_dim)], "res")
        t = b.op("Add", [t, b.linear(b.op("Gelu", [b.linear(ln(t), dim, ff)]), ff, dim)], "res")
    cols = b.op("Reshape", [b.op("Transpose", [t], perm=[0, 2, 1]), b.const(np.array([1, dim, tokens, 1], np.int64))])
    h = b.op("Flatten", [b.op("GlobalAveragePool", [cols])])
    return b.model((1, tokens, dim), b.op("Gemm", [h, b.weight((classes, dim), dim), b.const(np.zeros(classes))],
                                          transB=1))


def prune_blocks(model: onnx.ModelProto, sparsity: float, block: int) -> onnx.ModelProto:
    """Block magnitude pruning of a float model, before quantization: in every Conv (not grouped),
    Gemm and MatMul with a constant weight whose input channels `block` divides, the share
    `sparsity` of blocks (of `block` weights along the input channels inside one tap, the blocks
    of sparse_engine.sparse) with the smallest L1 norm is set to zero. Other layers stay dense."""
    from onnx import numpy_helper

    m = onnx.ModelProto()
    m.CopyFrom(model)
    inits = {t.name: t for t in m.graph.initializer}
    for node in m.graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type not in ("Conv", "Gemm", "MatMul") or attrs.get("group", 1) != 1 or len(node.input) < 2 \
                or node.input[1] not in inits:
            continue
        w = numpy_helper.to_array(inits[node.input[1]]).copy()
        if node.op_type == "Conv":
            w_nk = w.transpose(0, 2, 3, 1)  # [O, kh, kw, I]: blocks along I inside a tap
        elif node.op_type == "Gemm" and attrs.get("transB", 0):
            w_nk = w
        else:
            w_nk = w.T
        if w_nk.ndim < 2 or w_nk.shape[-1] % block:
            continue
        blocks = w_nk.reshape(w_nk.shape[0], -1, block)
        norms = np.abs(blocks).sum(axis=2)
        cut = int(round(sparsity * norms.size))
        if cut:
            drop = np.argsort(norms, axis=None, kind="stable")[:cut]
            flat = blocks.reshape(-1, block)
            flat[drop] = 0
        pruned = flat.reshape(w_nk.shape) if cut else w_nk
        if node.op_type == "Conv":
            pruned = pruned.transpose(0, 3, 1, 2)
        elif not (node.op_type == "Gemm" and attrs.get("transB", 0)):
            pruned = pruned.T
        inits[node.input[1]].CopyFrom(numpy_helper.from_array(np.ascontiguousarray(pruned).astype(w.dtype),
                                                              node.input[1]))
    return m


def quantize_qdq(model: onnx.ModelProto, out_path: str | Path, n_calib: int = 16, seed: int = 0,
                 mean: float = 0.0, calibration: np.ndarray | None = None, activation_type: str = "QInt8") -> Path:
    """onnxruntime quantize_static, QDQ, per-channel symmetric int8 weights; int8 activations by default."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.registry import QDQRegistry, QLinearOpsRegistry

    out_path = Path(out_path)
    float_path = out_path.with_suffix(".float.onnx")
    onnx.save(model, str(float_path))
    inp = model.graph.input[0]
    shape = [d.dim_value for d in inp.type.tensor_type.shape.dim]
    rng = np.random.default_rng(seed)
    samples = (calibration if calibration is not None
               else rng.normal(mean, 1.0, size=(n_calib, *shape)).astype(np.float32))

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter([{inp.name: s.reshape(shape).astype(np.float32)} for s in samples])

        def get_next(self):
            return next(self.it, None)

    import logging
    logging.getLogger().setLevel(logging.ERROR)
    quantize_static(str(float_path), str(out_path), Reader(), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType[activation_type], weight_type=QuantType.QInt8, per_channel=True,
                    # quantize_static's default op list, and Sub, which it leaves float by default
                    op_types_to_quantize=sorted({*QLinearOpsRegistry, *QDQRegistry, "Sub"}))
    return out_path
