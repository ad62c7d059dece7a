"""The exported QDQ model on the integer side: SparseEngine compile + verification ladder, and
int8 accuracy on the whole test set from SparseEngine's simulator and from onnxruntime."""
from __future__ import annotations

import concurrent.futures as cf
import contextlib
import multiprocessing as mp
from pathlib import Path

import numpy as np

from sparse_engine import compiler, profiles, verify
from sparse_engine.qmath import quantize

_GRAPH = {}


def _simulate_chunk(model_path: str, x: np.ndarray) -> np.ndarray:
    """Worker: int8 outputs of SparseEngine's simulator for float inputs (quantized with the
    model's input scale, as the ladder does)."""
    if model_path not in _GRAPH:
        _GRAPH[model_path] = compiler.build_graph(Path(model_path))
    g = _GRAPH[model_path]
    t = g.tensors[g.input]
    return verify.simulate(g, quantize(x.reshape(len(x), -1), t.scale, t.zero_point))


def simulate(model_path: Path, x: np.ndarray, workers: int = 2, chunk: int = 250, progress=None) -> np.ndarray:
    """Simulator outputs for every row of `x`, in `workers` spawned processes (no JAX in them)."""
    parts = [x[i:i + chunk] for i in range(0, len(x), chunk)]
    pool = cf.ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) if workers > 1 else None
    with pool or contextlib.nullcontext():
        results = (pool.map if pool else map)(_simulate_chunk, [str(model_path)] * len(parts), parts)
        outs = []
        for part, out in zip(parts, results):
            outs.append(out)
            if progress:
                progress(len(part))
    return np.concatenate(outs)


def onnxruntime_logits(model_path: Path, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    sess = ort.InferenceSession(str(model_path), opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    return np.concatenate([sess.run(None, {name: x[i:i + 1].astype(np.float32)})[0] for i in range(len(x))])


def compile_verified(model_path: Path, out_dir: Path, profile: str, inputs: np.ndarray, progress=print) -> dict:
    """sparse_engine compile --verify for the Cortex-M7, with `inputs` (float) in the ladder."""
    npy = out_dir.parent / f"{out_dir.name}_inputs.npy"
    np.save(npy, inputs.astype(np.float32))
    return compiler.compile_model(model_path, out_dir, "cortex-m7", profiles.get(profile), verify_ladder=True,
                                  input_file=npy, progress=progress)
