"""SparseNAS accuracy of candidates: the supernet's path with the candidate's block masks
(by weight magnitude, on the path's slice of the shared weights) after BatchNorm recalibration,
`search.score_batch` candidates per compiled call in the form `search.score_method`
(train/candidates.py: auto, vmap, map, loop or shard). `search.score_images_per_call` bounds the
test images all candidates of one call see together, hence the memory: for the full config's
widest space, 2.5 GiB of XLA temporaries per 1000 images and candidate (CPU memory_analysis), so
16 candidates x 1000 images needed 41 GiB and were OOM-killed on a 24 GB machine."""
from __future__ import annotations

import ml_collections
import numpy as np
from flax import nnx

from ..data.cifar10 import Split
from ..models.hybrid import Hybrid
from ..models.supernet import Supernet, crop_index, shared_key, standalone_config
from ..prune.blocks import masks, prunable
from ..train.candidates import evaluate, resolve_method
from .space import Candidate


def supernet_masks(supernet: Supernet, model_cfg: ml_collections.ConfigDict, c: Candidate,
                   search: ml_collections.ConfigDict) -> dict[tuple, np.ndarray]:
    """The candidate's pruning masks in the supernet's variables (ones outside the path's slice)."""
    abstract = nnx.eval_shape(lambda: Hybrid(standalone_config(model_cfg, c.path), rngs=nnx.Rngs(0)))
    unit_of = prunable(abstract)
    shapes = {k: v.get_raw_value().shape for k, v in nnx.to_flat_state(nnx.state(abstract, nnx.Param))}
    big = dict(nnx.to_flat_state(nnx.state(supernet, nnx.Param)))
    where, weights = {}, {}
    for k in unit_of:
        sk = shared_key(supernet, c.path, k)
        w = np.asarray(big[sk][...])
        where[k] = (sk, crop_index(w.shape, shapes[k], k))
        weights[k] = w[where[k][1]]
    out = {}
    for k, m in masks(weights, c.layer_levels(model_cfg, search, unit_of)).items():
        sk, idx = where[k]
        full = out.get(sk, np.ones(big[sk][...].shape, np.float32))
        full[idx] = m
        out[sk] = full
    return out


def score(supernet: Supernet, model_cfg: ml_collections.ConfigDict, cands: list[Candidate],
          search: ml_collections.ConfigDict, calib_images: np.ndarray, val: Split) -> list[float]:
    """Accuracy on `val` of each candidate. Batched forms get full batches (the last one padded
    with its last candidate), so one compiled function serves the whole search."""
    method = resolve_method(search.get("score_method", "loop"))
    k = 1 if method == "loop" else max(int(search.get("score_batch", 1)), 1)
    images = max(1, int(search.get("score_images_per_call", 2000)) // k)
    out: list[float] = []
    for i in range(0, len(cands), k):
        part = cands[i:i + k]
        padded = part + part[-1:] * (k - len(part))
        acc = evaluate(supernet, np.asarray([c.path for c in padded]), calib_images, val, method, batch=images,
                       masks=[supernet_masks(supernet, model_cfg, c, search) for c in padded])
        out += [float(a) for a in acc[:len(part)]]
    return out
