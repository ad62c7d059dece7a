"""The verification ladder (docs/architecture.md) on random inputs and an optional input file.

1 simulator (reference) -> 2 host C with ASan/UBSan == simulator -> 3 Cortex-M in QEMU ==
simulator -> 4 onnxruntime on the same QDQ model: share of differing elements, largest
difference, top-1 agreement. Rungs 2-3 must be bit-exact; rung 4 must stay within a gate on the
largest difference (`--max-ref-diff`, default 16 steps; `off`: reported only).
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from . import simulator
from .errors import EngineError, first_line
from .ir import Graph, Tensor
from .qmath import quantize

if TYPE_CHECKING:
    import onnx


def load_inputs(g: Graph, path: Path | np.ndarray | None, n_random: int, seed: int) -> np.ndarray:
    """int8 inputs, one per row: `n_random` uniform random ones, then those of `path` (a .npy file,
    or the array itself): float inputs are quantized with the model's input scale."""
    t = g.tensors[g.input]
    rng = np.random.default_rng(seed)
    rows = [rng.integers(-128, 128, size=(n_random, t.size), dtype=np.int64).astype(np.int8)]
    if path is not None:
        if isinstance(path, np.ndarray):
            arr, path = path, "inputs array"
        else:
            try:
                arr = np.load(path, allow_pickle=False)
            except Exception as exc:
                raise EngineError(f"{path}: cannot read as a .npy array ({type(exc).__name__})") from None
            if not isinstance(arr, np.ndarray):
                arr.close()
                raise EngineError(f"{path}: an .npz archive; give one array as a .npy file (numpy.save)")
        _check_shape(arr, tuple(t.shape), path)
        if arr.dtype.kind == "f":
            if not np.isfinite(arr).all():
                raise EngineError(f"{path}: {int((~np.isfinite(arr)).sum())} values are NaN or infinite")
            arr = quantize(arr, t.scale, t.zero_point)
        elif arr.dtype != np.int8:
            raise EngineError(f"{path}: dtype {arr.dtype}; give float32 (quantized with the input scale) or int8")
        rows.append(arr.reshape(-1, t.size))
    return np.concatenate(rows)


def _check_shape(arr: np.ndarray, shape: tuple[int, ...], path) -> None:
    """Inputs are the model input's shape, or a batch of it: (N, *shape), or (N, *shape[1:]) where
    the model's batch is 1; any other shape (even of a size that divides) is refused."""
    item = shape[1:] if shape[:1] == (1,) else shape  # one input, without a batch of 1
    if arr.shape not in {shape, item, (*arr.shape[:1], *shape), (*arr.shape[:1], *item)}:
        raise EngineError(f"{path}: shape {arr.shape}; the model input is {shape}: give that shape or a "
                          f"batch of it ((N, {', '.join(map(str, item))}))")


def simulate(g: Graph, inputs: np.ndarray) -> np.ndarray:
    """The simulator's outputs, one flattened row per input (in batches where the graph allows)."""
    inputs = np.asarray(inputs)
    if len(inputs) == 0:
        return np.zeros((0, g.tensors[g.output].size), np.int8)
    step = simulator.batch_size(g)
    return np.concatenate([simulator.run_batch(g, inputs[i:i + step]) for i in range(0, len(inputs), step)])


def compare_exact(name: str, got: np.ndarray, ref: np.ndarray) -> dict:
    diff = got.astype(np.int64) != ref.astype(np.int64)
    return dict(rung=name, elements=int(ref.size), differing=int(diff.sum()), exact=not diff.any())


def onnxruntime_session(model: "Path | onnx.ModelProto"):
    """An onnxruntime CPU session that runs the QDQ graph as written (Dequantize -> float op ->
    Quantize), with graph optimizations off. Optimized, onnxruntime fuses QDQ groups into integer
    kernels whose result depends on the host CPU: on AVX2 without VNNI its u8s8 kernels saturate
    16-bit pair sums (VPMADDUBSW) and a conv output was 73 steps off (docs/decisions.md D22)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    source = model.SerializeToString() if hasattr(model, "SerializeToString") else str(model)
    try:
        return ort.InferenceSession(source, opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime's own checks are stricter than onnx.checker's in places
        raise EngineError(f"onnxruntime (the reference rung) cannot load the model: {first_line(exc)}") from None


def onnxruntime_outputs(model: "Path | onnx.ModelProto", g: Graph, inputs: np.ndarray) -> np.ndarray | None:
    """onnxruntime on the QDQ model (a file or a ModelProto), fed the dequantized int8 inputs;
    outputs requantized to int8."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return None
    tin, tout = g.tensors[g.input], g.tensors[g.output]
    sess = onnxruntime_session(model)
    feed = sess.get_inputs()[0].name
    shape = [d for d in sess.get_inputs()[0].shape]
    outs = []
    for x in inputs:
        try:
            y = sess.run(None, {feed: _dequantized(x, tin).reshape(shape)})[0]
        except Exception as exc:
            raise EngineError(f"onnxruntime (the reference rung) cannot run the model: {first_line(exc)}") from None
        outs.append(_as_int8(y, tout))
    return np.stack(outs)


def _dequantized(x: np.ndarray, t: Tensor) -> np.ndarray:
    """An int8 input as the float a reference runtime is fed (its model dequantizes with t's scale)."""
    return (x.astype(np.float32) - t.zero_point) * np.float32(t.scale)


def _as_int8(y: np.ndarray, t: Tensor) -> np.ndarray:
    """A reference runtime's output, flattened, as int8 (float outputs quantized with t's scale)."""
    return y.reshape(-1) if y.dtype == np.int8 else quantize(y, t.scale, t.zero_point).reshape(-1)


def litert_interpreter(path: Path, keep_tensors: bool = False):
    """LiteRT's interpreter with the reference op resolver (TFLite's reference kernels: the
    ground truth of TFLite int8 semantics), or None when ai-edge-litert is not installed.
    `keep_tensors`: every intermediate tensor stays readable after invoke (for per-tensor checks)."""
    try:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType
    except ImportError:
        return None
    try:
        it = Interpreter(model_path=str(path), experimental_op_resolver_type=OpResolverType.BUILTIN_REF,
                         experimental_preserve_all_tensors=keep_tensors)
        it.allocate_tensors()
    except Exception as exc:
        raise EngineError(f"LiteRT (the reference rung) cannot load the model: {first_line(exc)}") from None
    return it


def litert_outputs(path: Path, g: Graph, inputs: np.ndarray) -> np.ndarray | None:
    """LiteRT's reference kernels on the .tflite model, fed the int8 inputs (dequantized where
    the model's input is float); int8 outputs (float outputs requantized)."""
    it = litert_interpreter(path)
    if it is None:
        return None
    tin, tout = g.tensors[g.input], g.tensors[g.output]
    i, o = it.get_input_details()[0], it.get_output_details()[0]
    outs = []
    for x in inputs:
        feed = x if i["dtype"] == np.int8 else _dequantized(x, tin)
        try:
            it.set_tensor(i["index"], feed.reshape(i["shape"]).astype(i["dtype"]))
            it.invoke()
        except Exception as exc:
            raise EngineError(f"LiteRT (the reference rung) cannot run the model: {first_line(exc)}") from None
        outs.append(_as_int8(it.get_tensor(o["index"]), tout))
    return np.stack(outs)


DEFAULT_MAX_REF_DIFF = 16  # steps; docs/decisions.md D26


def compare_reference(ref: np.ndarray, other: np.ndarray, max_diff: int | None = DEFAULT_MAX_REF_DIFF) -> dict:
    """The reference rung: how far onnxruntime is from the simulator, and whether its largest
    difference is within the gate `max_diff` (None: reported only, `passed` is then None)."""
    d = np.abs(ref.astype(np.int64) - other.astype(np.int64))
    res = dict(rung="onnxruntime", elements=int(d.size), differing=int((d > 0).sum()),
               share_differing=float((d > 0).mean()), max_abs_diff=int(d.max()) if d.size else 0)
    if ref.shape[1] > 1:
        res["top1_agreement"] = float(np.mean(ref.argmax(axis=1) == other.argmax(axis=1)))
    res.update(gate_max_abs_diff=max_diff, passed=None if max_diff is None else res["max_abs_diff"] <= max_diff)
    return res


def failures(ladder: list[dict]) -> list[str]:
    """One phrase per rung that failed: an exact rung that differs, a reference over its gate."""
    out = []
    for r in ladder:
        if r.get("exact") is False:
            out.append(f"{r['rung']} differs from the simulator on {r['differing']} of {r['elements']} elements")
        elif r.get("passed") is False:
            top1 = f", top-1 agreement {r['top1_agreement']:.2f}" if "top1_agreement" in r else ""
            out.append(f"{r['rung']} differs from the simulator by up to {r['max_abs_diff']} steps, over the gate "
                       f"--max-ref-diff {r['gate_max_abs_diff']} ({r['differing']} of {r['elements']} elements "
                       f"differ{top1}); raise the gate (or 'off') if the model amplifies rounding, e.g. a softmax "
                       "output")
    return out
