"""Rewrites of jax2onnx's float graph into the op set SparseEngine and onnxruntime's QDQ
fusions expect, applied before quantization:

  Conv -> Add(constant [1, C, 1, 1])          => Conv with bias
  MatMul(x, constant [K, N]) -> Add(const [N]) => Gemm(x, W, b)    (x 2-D)
  ReduceMean(axes 2, 3 of a 4-D tensor)        => GlobalAveragePool -> Flatten
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper


class Graph:
    """Small mutable view of an ONNX graph: initializers as arrays, producer / consumer maps."""

    def __init__(self, model: onnx.ModelProto):
        self.model = model
        self.g = model.graph
        self.inits = {t.name: numpy_helper.to_array(t) for t in self.g.initializer}

    def consumers(self, name: str) -> list[onnx.NodeProto]:
        return [n for n in self.g.node if name in n.input]

    def producer(self, name: str) -> onnx.NodeProto | None:
        return next((n for n in self.g.node if name in n.output), None)

    def const(self, name: str) -> np.ndarray | None:
        if name in self.inits:
            return self.inits[name]
        p = self.producer(name)
        if p is not None and p.op_type == "Constant":
            return numpy_helper.to_array(p.attribute[0].t)
        return None

    def set_init(self, name: str, value: np.ndarray) -> None:
        self.inits[name] = value
        for t in self.g.initializer:
            if t.name == name:
                t.CopyFrom(numpy_helper.from_array(value, name))
                return
        self.g.initializer.append(numpy_helper.from_array(value, name))

    def is_output(self, name: str) -> bool:
        return any(o.name == name for o in self.g.output)

    def replace(self, old: list[onnx.NodeProto], new: list[onnx.NodeProto]) -> None:
        """Put `new` where the first of `old` was (keeps topological order)."""
        nodes = list(self.g.node)
        at = min(nodes.index(n) for n in old)
        keep = [n for n in nodes if not any(n == o for o in old)]
        keep[at:at] = new
        del self.g.node[:]
        self.g.node.extend(keep)

    def insert(self, at: int, new: list[onnx.NodeProto]) -> None:
        """Put `new` in order at node index `at`."""
        for k, n in enumerate(new):
            self.g.node.insert(at + k, n)

    def index(self, node: onnx.NodeProto) -> int:
        return list(self.g.node).index(node)

    def prune_initializers(self) -> None:
        used = {i for n in self.g.node for i in n.input}
        kept = [t for t in self.g.initializer if t.name in used]
        del self.g.initializer[:]
        self.g.initializer.extend(kept)


def _single_consumer(gr: Graph, name: str, op_type: str) -> onnx.NodeProto | None:
    cons = gr.consumers(name)
    if len(cons) == 1 and cons[0].op_type == op_type and not gr.is_output(name):
        return cons[0]
    return None


def _other_input(node: onnx.NodeProto, name: str) -> str:
    return node.input[1] if node.input[0] == name else node.input[0]


def fold_conv_bias(gr: Graph) -> None:
    for conv in [n for n in gr.g.node if n.op_type == "Conv" and len(n.input) == 2]:
        add = _single_consumer(gr, conv.output[0], "Add")
        if add is None:
            continue
        bias = gr.const(_other_input(add, conv.output[0]))
        cout = gr.inits[conv.input[1]].shape[0] if conv.input[1] in gr.inits else None
        if bias is None or cout is None or bias.size != cout:
            continue
        name = f"{conv.name or conv.output[0]}_bias"
        gr.set_init(name, bias.reshape(cout).astype(np.float32))
        new = helper.make_node("Conv", [conv.input[0], conv.input[1], name], [add.output[0]],
                               name=conv.name, **{a.name: helper.get_attribute_value(a) for a in conv.attribute})
        gr.replace([conv, add], [new])


def matmul_add_to_gemm(gr: Graph) -> None:
    for mm in [n for n in gr.g.node if n.op_type == "MatMul"]:
        w = gr.const(mm.input[1])
        if w is None or w.ndim != 2:
            continue
        add = _single_consumer(gr, mm.output[0], "Add")
        bias = gr.const(_other_input(add, mm.output[0])) if add is not None else None
        if bias is None or bias.size != w.shape[1]:
            continue
        name = f"{mm.name or mm.output[0]}_bias"
        gr.set_init(name, bias.reshape(-1).astype(np.float32))
        gemm = helper.make_node("Gemm", [mm.input[0], mm.input[1], name], [add.output[0]], name=mm.name or None)
        gr.replace([mm, add], [gemm])


def reduce_mean_to_pool(gr: Graph, shapes: dict[str, list[int]]) -> None:
    for rm in [n for n in gr.g.node if n.op_type == "ReduceMean"]:
        shape = shapes.get(rm.input[0])
        axes = gr.const(rm.input[1]) if len(rm.input) > 1 else None
        attrs = {a.name: helper.get_attribute_value(a) for a in rm.attribute}
        if axes is None and "axes" in attrs:
            axes = np.asarray(attrs["axes"])
        if shape is None or len(shape) != 4 or axes is None or sorted(int(a) % 4 for a in axes) != [2, 3]:
            continue
        pooled = f"{rm.output[0]}_pooled"
        nodes = [helper.make_node("GlobalAveragePool", [rm.input[0]], [pooled if not attrs.get("keepdims", 1)
                                                                       else rm.output[0]], name=f"{rm.name}_gap")]
        if not attrs.get("keepdims", 1):
            nodes.append(helper.make_node("Flatten", [pooled], [rm.output[0]], name=f"{rm.name}_flatten", axis=1))
        gr.replace([rm], nodes)


def value_shapes(model: onnx.ModelProto) -> dict[str, list[int]]:
    inferred = onnx.shape_inference.infer_shapes(model)
    out = {}
    for v in list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output):
        dims = v.type.tensor_type.shape.dim
        out[v.name] = [d.dim_value for d in dims]
    return out


def strict_check(model: onnx.ModelProto) -> onnx.ModelProto:
    """value_info cleared, strict shape inference re-run, then the full checker."""
    del model.graph.value_info[:]
    model = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True, data_prop=True)
    onnx.checker.check_model(model, full_check=True)
    return model


def cleanup(model: onnx.ModelProto) -> onnx.ModelProto:
    """The rewrites above; the caller runs strict_check once the graph is final."""
    gr = Graph(model)
    fold_conv_bias(gr)
    matmul_add_to_gemm(gr)
    reduce_mean_to_pool(gr, value_shapes(gr.model))
    gr.prune_initializers()
    return gr.model
