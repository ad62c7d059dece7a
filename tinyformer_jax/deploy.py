"""The exported QDQ model on the integer side: SparseEngine compile + verification ladder, and
int8 accuracy on the whole test set from SparseEngine's simulator and from onnxruntime."""
from __future__ import annotations

import concurrent.futures as cf
import contextlib
import multiprocessing as mp
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sparse_engine import compiler, profiles, verify
from sparse_engine.qmath import quantize

if TYPE_CHECKING:
    from sparse_engine.ir import Graph

_GRAPH: list = []


def deployed_graph(model_path: Path, calibration: np.ndarray, fwsa: str = "auto") -> "Graph":
    """The IR graph of the model compiled with another FWSA choice, without building it (the FWSA
    benchmark's other form): the compiler's own import and pass stages, FWSA calibrated on the
    float `calibration` inputs. The deployed model's graph is `compile_verified(...).graph`."""
    g = compiler.build_graph(Path(model_path))
    t = g.tensors[g.input]
    calib = quantize(calibration.reshape(len(calibration), -1), t.scale, t.zero_point)
    return compiler.run_passes(g, compiler.Options(fwsa=fwsa), calib).graph


def _set_graph(g: "Graph") -> None:
    _GRAPH[:] = [g]


def _simulate_chunk(x: np.ndarray) -> np.ndarray:
    """Worker: int8 outputs of SparseEngine's simulator for float inputs (quantized with the
    model's input scale, as the ladder does)."""
    g = _GRAPH[0]
    t = g.tensors[g.input]
    return verify.simulate(g, quantize(x.reshape(len(x), -1), t.scale, t.zero_point))


def simulate(g: "Graph", x: np.ndarray, workers: int = 2, chunk: int = 250, progress=None) -> np.ndarray:
    """Simulator outputs of graph `g` (a compile's `.graph`) for every row of `x`, in `workers`
    spawned processes (no JAX in them)."""
    parts = [x[i:i + chunk] for i in range(0, len(x), chunk)]
    _set_graph(g)
    pool = (cf.ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"), initializer=_set_graph,
                                   initargs=(g,)) if workers > 1 else None)
    with pool or contextlib.nullcontext():
        results = (pool.map if pool else map)(_simulate_chunk, parts)
        outs = []
        for part, out in zip(parts, results):
            outs.append(out)
            if progress:
                progress(len(part))
    return np.concatenate(outs)


def onnxruntime_logits(model_path: Path, x: np.ndarray) -> np.ndarray:
    """onnxruntime's float logits for `x`, one image per run, with the QDQ graph run as written."""
    sess = verify.onnxruntime_session(model_path)
    name = sess.get_inputs()[0].name
    return np.concatenate([sess.run(None, {name: x[i:i + 1].astype(np.float32)})[0] for i in range(len(x))])


def compile_verified(model_path: Path, out_dir: Path, profile: str, inputs: np.ndarray,
                     calibration: np.ndarray | None = None, progress=print, fwsa: str = "auto") -> "compiler.Compiled":
    """sparse_engine compile --verify for the Cortex-M7, with `inputs` (float) in the ladder and
    FWSA calibrated on `calibration` (float; default: the ladder's inputs). Its `.graph` is what
    the firmware runs: simulate it for the int8 accuracy."""
    return compiler.compile_model(model_path, out_dir, "cortex-m7", profiles.get(profile), verify_ladder=True,
                                  input_file=inputs.astype(np.float32), progress=progress, fwsa=fwsa,
                                  calibration_file=None if calibration is None else calibration.astype(np.float32))
