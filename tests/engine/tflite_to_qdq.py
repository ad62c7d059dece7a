"""An int8 .tflite -> QDQ ONNX converter for the ops of MLPerf Tiny's four models, written as
onnxruntime's quantize_static writes QDQ graphs (NCHW, float tensors between QuantizeLinear /
DequantizeLinear pairs, int8 weights and int32 biases behind DequantizeLinear). It carries every
scale, zero point, weight and bias over unchanged, so both of the engine's frontends must compute
the same bits from the two files. Test helper only: the engine reads .tflite itself."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from sparse_engine.tflite_frontend import VALID, _Reader, load, same_pads

NHWC_TO_NCHW = (0, 3, 1, 2)


class _Writer:
    def __init__(self, path: Path):
        self.r = _Reader(load(path), str(path))
        self.nodes: list = []
        self.inits: list = []

    def name(self, index: int) -> str:
        """The .tflite tensor's name, so that both frontends name the tensor alike."""
        return self.r.tensors[index].name

    def const(self, name: str, value: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def node(self, op_type: str, inputs: list[str], output: str, **attrs) -> str:
        self.nodes.append(helper.make_node(op_type, inputs, [output], name=output, **attrs))
        return output

    def dq_input(self, index: int) -> str:
        """The float (dequantized) reading of activation `index`."""
        return f"{self.name(index)}_dq"

    def q_output(self, float_out: str, index: int) -> None:
        """QuantizeLinear + DequantizeLinear of an op's float output, as activation `index`."""
        t = self.r.tensors[index]
        s = self.const(f"{self.name(index)}_scale", np.float32(t.scale[0]))
        z = self.const(f"{self.name(index)}_zp", np.int8(t.zero_point[0]))
        q = self.node("QuantizeLinear", [float_out, s, z], self.name(index))
        self.node("DequantizeLinear", [q, s, z], self.dq_input(index))

    def weight(self, index: int, w_oihw: np.ndarray, axis_scales: np.ndarray) -> str:
        n = f"{self.name(index)}_w"
        s = self.const(f"{n}_scale", axis_scales.astype(np.float32))
        z = self.const(f"{n}_zp", np.zeros(axis_scales.size, np.int8))
        q = self.const(n, w_oihw.astype(np.int8))
        return self.node("DequantizeLinear", [q, s, z], f"{n}_dq", axis=0)

    def bias(self, index: int, in_scale: float, w_scales: np.ndarray) -> str:
        n = f"{self.name(index)}_b"
        t = self.r.tensors[index]
        s = self.const(f"{n}_scale", (np.float32(in_scale) * w_scales.astype(np.float32)).astype(np.float32))
        z = self.const(f"{n}_zp", np.zeros(w_scales.size, np.int32))
        return self.node("DequantizeLinear", [self.const(n, t.data.astype(np.int32)), s, z], f"{n}_dq", axis=0)

    def activation(self, y: str, code: int) -> str:
        if code == 1:
            return self.node("Relu", [y], f"{y}_relu")
        if code == 3:
            return self.node("Clip", [y, self.const(f"{y}_lo", np.float32(0)), self.const(f"{y}_hi", np.float32(6))],
                             f"{y}_relu6")
        if code != 0:
            raise ValueError(f"fused activation {code} is not converted")
        return y

    def conv(self, op, depthwise: bool) -> str:
        x, w, out = self.r.tensors[op.Inputs(0)], self.r.tensors[op.Inputs(1)], self.r.tensors[op.Outputs(0)]
        o = self.r.options(op, "DepthwiseConv2DOptions" if depthwise else "Conv2DOptions")
        stride, dil = (o.StrideH(), o.StrideW()), (o.DilationHFactor(), o.DilationWFactor())
        top, left, bottom, right = same_pads(x.shape[1:3], w.shape[1:3], stride, dil, o.Padding())
        if depthwise:  # [1, kh, kw, C*m] -> [C*m, 1, kh, kw], one group per input channel
            wq, group = np.transpose(w.data, (3, 0, 1, 2)), x.shape[3]
        else:  # [O, kh, kw, I] -> [O, I, kh, kw]
            wq, group = np.transpose(w.data, (0, 3, 1, 2)), 1
        scales = np.broadcast_to(w.scale, (wq.shape[0],))
        ins = [self.dq_input(op.Inputs(0)), self.weight(op.Inputs(1), wq, scales)]
        if op.InputsLength() > 2 and op.Inputs(2) >= 0:
            ins.append(self.bias(op.Inputs(2), float(x.scale[0]), scales))
        y = self.node("Conv", ins, f"{self.name(op.Outputs(0))}_f", strides=list(stride), dilations=list(dil),
                      pads=[top, left, bottom, right], group=group, kernel_shape=list(w.shape[1:3]))
        return self.activation(y, o.FusedActivationFunction())

    def fully_connected(self, op) -> str:
        x, w = self.r.tensors[op.Inputs(0)], self.r.tensors[op.Inputs(1)]
        o = self.r.options(op, "FullyConnectedOptions")
        scales = np.broadcast_to(w.scale, (w.shape[0],))
        ins = [self.dq_input(op.Inputs(0)), self.weight(op.Inputs(1), w.data, scales)]
        if op.InputsLength() > 2 and op.Inputs(2) >= 0:
            ins.append(self.bias(op.Inputs(2), float(x.scale[0]), scales))
        y = self.node("Gemm", ins, f"{self.name(op.Outputs(0))}_f", transB=1)
        return self.activation(y, o.FusedActivationFunction())

    def operator(self, op, kind: str) -> str:
        if kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            return self.conv(op, kind == "DEPTHWISE_CONV_2D")
        if kind == "FULLY_CONNECTED":
            return self.fully_connected(op)
        out = f"{self.name(op.Outputs(0))}_f"
        if kind == "ADD":
            y = self.node("Add", [self.dq_input(op.Inputs(0)), self.dq_input(op.Inputs(1))], out)
            return self.activation(y, self.r.options(op, "AddOptions").FusedActivationFunction())
        if kind == "AVERAGE_POOL_2D":
            o = self.r.options(op, "Pool2DOptions")
            kernel, stride = (o.FilterHeight(), o.FilterWidth()), (o.StrideH(), o.StrideW())
            if o.Padding() != VALID:
                raise ValueError("only VALID average pooling is converted")
            y = self.node("AveragePool", [self.dq_input(op.Inputs(0))], out, kernel_shape=list(kernel),
                          strides=list(stride))
            return self.activation(y, o.FusedActivationFunction())
        if kind == "RESHAPE":
            x, t = self.r.tensors[op.Inputs(0)], self.r.tensors[op.Outputs(0)]
            if len(x.shape) == 4 and x.shape[1:3] != (1, 1):
                raise ValueError("a RESHAPE of NHWC with H, W > 1 reorders elements in NCHW; not converted")
            return self.node("Reshape", [self.dq_input(op.Inputs(0)),
                                         self.const(f"{out}_shape", np.array(t.shape, np.int64))], out)
        if kind == "SOFTMAX":
            return self.node("Softmax", [self.dq_input(op.Inputs(0))], out, axis=-1)
        raise ValueError(f"{kind} is not converted")

    def model(self) -> onnx.ModelProto:
        sg = self.r.sg
        xi, yi = sg.Inputs(0), sg.Outputs(0)
        x, y = self.r.tensors[xi], self.r.tensors[yi]
        in_shape = [x.shape[i] for i in NHWC_TO_NCHW] if len(x.shape) == 4 else list(x.shape)
        s = self.const("input_scale", np.float32(x.scale[0]))
        z = self.const("input_zp", np.int8(x.zero_point[0]))
        q = self.node("QuantizeLinear", ["input", s, z], self.name(xi))
        self.node("DequantizeLinear", [q, s, z], self.dq_input(xi))
        for i in range(sg.OperatorsLength()):
            op = sg.Operators(i)
            self.q_output(self.operator(op, self.r.codes[op.OpcodeIndex()]), op.Outputs(0))
        out = self.dq_input(yi)
        graph = helper.make_graph(self.nodes, "converted", [helper.make_tensor_value_info(
            "input", TensorProto.FLOAT, in_shape)], [helper.make_tensor_value_info(out, TensorProto.FLOAT, list(y.shape))],
            self.inits)
        m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        m.ir_version = 8
        onnx.checker.check_model(m)
        return m


def convert(path: str | Path) -> onnx.ModelProto:
    """The QDQ ONNX twin of an int8 .tflite file (input NCHW where the .tflite's is NHWC)."""
    return _Writer(Path(path)).model()
