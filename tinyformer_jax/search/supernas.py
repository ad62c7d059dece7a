"""SuperNAS: choose the supernet's hyper-parameters by the subnets that fit the budget.

As MCUNet's search-space optimisation: for every candidate space (config supernas.spaces:
overrides of model, e.g. widths or transformer sizes), sample `samples` random SparseNAS
candidates, cost them (memory only, no firmware builds) and keep the constraint-fit rate and the
mean MACs of those that fit. A space whose fitting subnets compute more tends to hold the more
accurate ones under the same budget; spaces with a fit rate below `min_fit_rate` are not chosen.
"""
from __future__ import annotations

import copy
import sys
from typing import Callable

import ml_collections
import numpy as np
from tqdm import tqdm

from ..errors import TinyFormerError
from .evolution import limits
from .space import random_candidate


def space_config(model: ml_collections.ConfigDict, override: dict) -> ml_collections.ConfigDict:
    out = copy.deepcopy(model)
    for k, v in override.items():
        if k not in out:
            raise TinyFormerError(f"config supernas.spaces: {k!r} is not a model key")
        out[k] = v
    return out


def choose(model: ml_collections.ConfigDict, cfg: ml_collections.ConfigDict, profile: str,
           cost_for: Callable[[ml_collections.ConfigDict, str], Callable], progress: bool = True) -> dict:
    """cost_for(model_cfg, name) -> a CandidateCost for that space. Returns the table and the choice."""
    prof, _ = limits(cfg.search, profile)
    spaces = list(cfg.supernas.spaces) or [{}]
    rows = []
    bar = tqdm(total=len(spaces) * int(cfg.supernas.samples), desc="SuperNAS", unit="subnet",
               disable=not progress, file=sys.stderr)
    for i, override in enumerate(spaces):
        mc = space_config(model, dict(override))
        cost = cost_for(mc, f"space{i}")
        rng = np.random.default_rng([int(cfg.supernas.seed), i])
        macs, n_fit, flash, sram = [], 0, [], []
        for _ in range(int(cfg.supernas.samples)):
            c = cost(random_candidate(rng, mc, cfg.search), memory_only=True)
            flash.append(c.flash_bytes)
            sram.append(c.sram_bytes)
            if c.fits(prof):
                n_fit += 1
                macs.append(c.macs)
            bar.update(1)
        rows.append(dict(space=i, override={k: v for k, v in dict(override).items()},
                         fit_rate=n_fit / int(cfg.supernas.samples), mean_fitting_macs=float(np.mean(macs)) if macs else 0.0,
                         median_flash_bytes=float(np.median(flash)), median_sram_bytes=float(np.median(sram)),
                         min_sram_bytes=int(min(sram)), min_flash_bytes=int(min(flash))))
    bar.close()
    ok = [r for r in rows if r["fit_rate"] >= cfg.supernas.min_fit_rate]
    if not any(r["fit_rate"] > 0 for r in rows):
        raise TinyFormerError(f"SuperNAS: no sampled subnet of any space fits {prof.name} (flash <= "
                              f"{prof.flash_bytes:,} B, SRAM <= {prof.sram_bytes:,} B): smallest seen "
                              f"{min(r['min_flash_bytes'] for r in rows):,} B flash, "
                              f"{min(r['min_sram_bytes'] for r in rows):,} B SRAM")
    chosen = max(ok, key=lambda r: r["mean_fitting_macs"]) if ok else max(rows, key=lambda r: r["fit_rate"])
    return dict(spaces=rows, chosen=chosen["space"], model=space_config(model, dict(spaces[chosen["space"]])).to_dict())
