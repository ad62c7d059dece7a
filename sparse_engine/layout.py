"""Layout pass: feature maps go NHWC, the rest stays in ONNX order, with copies only where needed.

After this pass every tensor's `shape` is its memory shape. Spatial ops (conv, pools, 4-D
BatchNorm) read and write NHWC; elementwise ops and Concat follow their inputs; every other op
reads ONNX's logical order. A Transpose or Reshape of an NHWC tensor absorbs the layout change
into its own permutation, so no extra copy appears. The model's input and output stay in ONNX
order, so `model_run` takes and returns exactly what onnxruntime does.
"""
from __future__ import annotations

import numpy as np

from .errors import node_error
from .ir import Graph, Op, Tensor

NHWC = (0, 2, 3, 1)  # physical axis p holds logical axis NHWC[p]
TO_LOGICAL = (0, 3, 1, 2)  # transpose of an NHWC array that gives NCHW
SPATIAL = {"conv2d", "avgpool", "maxpool"}
ELEMENTWISE = {"add", "mul", "lut"}


def _permute(shape: tuple[int, ...], perm: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(shape[p] for p in perm)


def simplify_perm(in_shape: tuple[int, ...], perm: tuple[int, ...]) -> tuple[int, ...]:
    """A permutation that only moves size-1 axes is a plain copy: return the identity then."""
    moved = [p for p in perm if in_shape[p] != 1]
    return tuple(range(len(perm))) if moved == sorted(moved) else tuple(perm)


class _Pass:
    def __init__(self, g: Graph):
        self.g = g
        self.nhwc: set[str] = set()
        self.cache: dict[tuple[str, bool], str] = {}
        self.ops: list[Op] = []

    def mark_nhwc(self, name: str) -> None:
        t = self.g.tensors[name]
        t.shape = _permute(t.shape, NHWC)
        self.nhwc.add(name)

    def convert(self, name: str, to_nhwc: bool) -> str:
        """Name of `name` in the wanted layout, adding one copy op the first time it is asked for."""
        if (name in self.nhwc) == to_nhwc:
            return name
        key = (name, to_nhwc)
        if key in self.cache:
            return self.cache[key]
        src = self.g.tensors[name]
        if len(src.shape) != 4:
            raise node_error(name, "layout", f"tensor of rank {len(src.shape)} cannot be NHWC")
        new = f"{name}.{'nhwc' if to_nhwc else 'nchw'}"
        perm = NHWC if to_nhwc else TO_LOGICAL
        shape = _permute(src.shape, perm)
        self.g.add_tensor(Tensor(new, shape, src.scale, src.zero_point))
        if to_nhwc:
            self.nhwc.add(new)
        self.ops.append(Op("copy", f"layout_{new}", "Transpose", [name], [new],
                           dict(perm=simplify_perm(src.shape, perm), requant=False, mult=0, shift=0,
                                in_zp=src.zero_point, out_zp=src.zero_point)))
        self.cache[key] = new
        return new

    def const_nhwc(self, name: str, rank: int) -> str:
        t = self.g.tensors[name]
        new = f"{name}.nhwc"
        if new not in self.g.tensors:
            data = t.data.reshape((1,) * (rank - t.data.ndim) + t.data.shape).transpose(NHWC)
            self.g.add_tensor(Tensor(new, data.shape, t.scale, t.zero_point, np.ascontiguousarray(data)))
        return new

    def run(self) -> Graph:
        g = self.g
        for op in g.ops:
            acts = [i for i in op.inputs if not g.tensors[i].is_const]
            out = g.tensors[op.outputs[0]]
            if op.kind in SPATIAL or (op.kind == "affine" and len(out.shape) == 4):
                op.inputs = [self.convert(i, True) for i in op.inputs]
                self.mark_nhwc(op.outputs[0])
            elif op.kind == "affine" and len(out.shape) != 2:
                raise node_error(op.name, op.onnx_op, "BatchNormalization needs a 2-D or 4-D input")
            elif op.kind in ELEMENTWISE and len(out.shape) == 4 and acts and all(i in self.nhwc for i in acts):
                op.inputs = [self.const_nhwc(i, 4) if g.tensors[i].is_const else i for i in op.inputs]
                self.mark_nhwc(op.outputs[0])
            elif op.kind == "concat" and all(i in self.nhwc for i in op.inputs):
                op.params["axis"] = NHWC.index(op.params["axis"])
                self.mark_nhwc(op.outputs[0])
            elif op.kind == "copy" and op.inputs[0] in self.nhwc:
                op.params["perm"] = tuple(TO_LOGICAL[p] for p in op.params["perm"])
            else:
                op.inputs = [i if g.tensors[i].is_const else self.convert(i, False) for i in op.inputs]
            if op.kind == "copy":
                op.params["perm"] = simplify_perm(g.tensors[op.inputs[0]].shape, op.params["perm"])
            self.ops.append(op)
        if g.output in self.nhwc:
            inner = f"{g.output}.nhwc"
            t = g.tensors.pop(g.output)
            t.name = inner
            g.tensors[inner] = t
            for op in self.ops:
                op.inputs = [inner if i == g.output else i for i in op.inputs]
                op.outputs = [inner if o == g.output else o for o in op.outputs]
            self.nhwc.discard(g.output)
            self.nhwc.add(inner)
            shape = _permute(t.shape, TO_LOGICAL)
            g.add_tensor(Tensor(g.output, shape, t.scale, t.zero_point))
            self.ops.append(Op("copy", f"layout_{g.output}", "Transpose", [inner], [g.output],
                               dict(perm=simplify_perm(t.shape, TO_LOGICAL), requant=False, mult=0, shift=0,
                                    in_zp=t.zero_point, out_zp=t.zero_point)))
        g.ops = self.ops
        used = {i for op in g.ops for i in op.inputs} | {o for op in g.ops for o in op.outputs}
        g.tensors = {k: v for k, v in g.tensors.items() if k in used}
        return g


def to_physical(g: Graph) -> Graph:
    return _Pass(g).run()
