"""Integer IR: int8 tensors with (scale, zero point), and ops whose integer parameters are final.

After `layout.to_physical`, every tensor's shape is its memory shape (NHWC for feature maps)
and every op's semantics are on those shapes; the simulator and the C generator read the same
`Op.params`, so they cannot disagree about a constant.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


def contiguous_strides(shape) -> list[int]:
    """Element strides of a C-contiguous array of `shape`."""
    strides, acc = [], 1
    for d in reversed(shape):
        strides.append(acc)
        acc *= d
    return list(reversed(strides))


@dataclass
class Tensor:
    name: str
    shape: tuple[int, ...]
    scale: float = 1.0
    zero_point: int = 0
    data: np.ndarray | None = None  # set for constants (int8 activations-like constants)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def is_const(self) -> bool:
        return self.data is not None


@dataclass
class Op:
    kind: str  # conv2d, fc, matmul, add, mul, avgpool, maxpool, copy, concat, softmax, layernorm, lut, affine
    name: str  # the ONNX node it came from (or a generated name)
    onnx_op: str
    inputs: list[str]
    outputs: list[str]
    params: dict = field(default_factory=dict)
    macs: int = 0


def param_bytes(op: Op) -> int:
    """Flash bytes of an op's parameter arrays; weights carrying a sparse coding
    (params["sparse"]: sparse.BlockRLE, or an attention's sparse.ProjectionCodings) count as the coding."""
    return _dict_bytes(op.params)


def _dict_bytes(params: dict, coded_weights: bool = False) -> int:
    """Arrays of a params dict and of the sub-layers' dicts in it (attention: q, k, v, o...);
    `coded_weights`: the dict's weights are in a coding counted by its parent."""
    coded = params.get("sparse")
    parts = getattr(coded, "parts", None)  # an attention's coded sub-layers
    own = coded_weights or (coded is not None and parts is None)
    total = 0
    for k, v in params.items():
        if isinstance(v, np.ndarray) and not (own and k == "weights"):
            total += v.nbytes
        elif isinstance(v, dict):
            total += _dict_bytes(v, parts is not None and k in parts)
    return total + (coded.nbytes if coded is not None else 0)


@dataclass
class Graph:
    tensors: dict[str, Tensor]
    ops: list[Op]
    input: str
    output: str
    notes: list[str] = field(default_factory=list)  # passes' decisions, shown in the report

    def add_tensor(self, t: Tensor) -> Tensor:
        self.tensors[t.name] = t
        return t

    def layer_names(self) -> list[str]:
        """Each layer as messages name it: 'node name' (ONNX op)."""
        return [f"'{op.name}' ({op.onnx_op})" for op in self.ops]

    def const_bytes(self) -> int:
        """Bytes of weights, biases and tables that live in flash."""
        total = sum(param_bytes(op) for op in self.ops)
        for t in self.tensors.values():
            if t.is_const:
                total += t.data.nbytes
        return total
