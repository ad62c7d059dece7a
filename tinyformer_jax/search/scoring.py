"""SparseNAS accuracy of a candidate: the supernet's path with the candidate's block masks
(by weight magnitude, on the path's slice of the shared weights) after BatchNorm recalibration."""
from __future__ import annotations

import ml_collections
import numpy as np
from flax import nnx

from ..data.cifar10 import Split
from ..models.hybrid import Hybrid
from ..models.supernet import Supernet, crop_index, shared_key, standalone_config
from ..prune.blocks import masks, prunable
from ..train.candidates import masked_accuracy
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
    sparsity, block = c.levels(search)
    out = {}
    for k, m in masks(weights, unit_of, sparsity, block).items():
        sk, idx = where[k]
        full = out.get(sk, np.ones(big[sk][...].shape, np.float32))
        full[idx] = m
        out[sk] = full
    return out


def score(supernet: Supernet, model_cfg: ml_collections.ConfigDict, c: Candidate, search: ml_collections.ConfigDict,
          calib_images: np.ndarray, val: Split) -> float:
    return masked_accuracy(supernet, np.asarray(c.path), supernet_masks(supernet, model_cfg, c, search),
                           calib_images, val)
