"""The whole TinyFormer pipeline, resumable stage by stage (each stage's output in the workdir):

  1 supernas   choose the supernet hyper-parameters (search/supernas.py)      -> supernas.json
  2 supernet   sandwich-rule supernet training (train/supernet.py)              -> supernet/checkpoints
  3 sparsenas  evolutionary search under flash / SRAM / latency limits          -> search/state.json
  4 prune      the chosen path with the supernet's weights, gradual block pruning
               rounds with distillation from the supernet's largest path        -> prune<r>/checkpoints
  5 qat        BatchNorm folded, calibrated, QAT with the masks kept            -> qat/checkpoints
  6 deploy     QDQ export, SparseEngine compile --verify (Cortex-M7 in QEMU), int8 accuracy on the
               test set, the cost model's prediction next to the firmware's figures
  7 report     report.md + plots                                               -> report/

Search scores use `search.val_images` training images held out from supernet and fine-tuning.
`stop_after` ends the run after one stage (its outputs saved), so that stages can run on
different machines: SuperNAS and SparseNAS need the Arm toolchain, the training stages a GPU.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax import nnx

from .data.cifar10 import Cifar10, Split
from .errors import TinyFormerError
from .files import write_json
from .models.hybrid import Hybrid
from .models.supernet import Supernet, copy_shared, standalone_config
from .stages import deploy_and_simulate, prepare, quantize, say
from .prune import blocks
from .search import supernas
from .search.costing import CandidateCost
from .search.evolution import Search
from .search.scoring import score
from .search.space import Candidate
from .train.loop import classification_loss, fit
from .train.supernet import recalibrate_bn, train_supernet




def split_validation(train: Split, n: int, seed: int) -> tuple[Split, Split]:
    """(training images, held-out search images): `n` drawn from (seed) only."""
    idx = np.random.default_rng([seed, 11]).permutation(len(train.labels))
    if n >= len(idx):
        raise TinyFormerError(f"config search.val_images={n} leaves no training images of {len(idx)}")
    keep, val = np.sort(idx[n:]), np.sort(idx[:n])
    return Split(train.images[keep], train.labels[keep]), Split(train.images[val], train.labels[val])


def _mask_tree(mk: dict[tuple, np.ndarray]) -> dict[str, np.ndarray]:
    return {"/".join(map(str, k)): v for k, v in mk.items()}


def _apply_in_trace(model: nnx.Module, masks: dict[str, jax.Array]) -> None:
    """Weights times their masks inside the traced loss: pruned weights get no gradient."""
    flat = [(k, v.replace(v[...] * masks["/".join(map(str, k))]))
            for k, v in nnx.to_flat_state(nnx.state(model, nnx.Param)) if "/".join(map(str, k)) in masks]
    nnx.update(model, nnx.from_flat_state(flat))


def masked_loss(model, x, labels, label_smoothing, masks):
    """loop.classification_loss with the pruning masks (the step's `extra`) applied to the weights."""
    _apply_in_trace(model, masks)
    return classification_loss(model, x, labels, label_smoothing, None)


def distill_loss(teacher: Callable[[jax.Array], jax.Array], alpha: float):
    """(1 - alpha) masked_loss + alpha cross-entropy against `teacher(x)` (the supernet's largest path)."""
    def loss(model, x, labels, label_smoothing, masks):
        ce, logits = masked_loss(model, x, labels, label_smoothing, masks)
        soft = jax.nn.softmax(jax.lax.stop_gradient(teacher(x)))
        return (1 - alpha) * ce + alpha * optax.softmax_cross_entropy(logits, soft).mean(), logits
    return loss


@dataclass
class Run:
    """What the stages share: the run's inputs, and each stage's outputs for the stages after it."""

    cfg: ml_collections.ConfigDict
    workdir: Path
    data: Cifar10
    train: Split
    val: Split
    test: Split  # the first cfg.deploy.test_images test images: both the fake-quant and the int8 accuracy
    progress: bool
    t0: float
    out: dict[str, Any] = field(default_factory=dict)

    @property
    def profile(self) -> str:
        return self.cfg.deploy.profile


def supernas_stage(r: Run) -> None:
    """1: choose the supernet's space (search/supernas.py), kept in supernas.json."""
    cfg, workdir = r.cfg, r.workdir
    sn_file = workdir / "supernas.json"
    if sn_file.exists():
        sn = json.loads(sn_file.read_text())
    else:
        sn = supernas.choose(cfg.model, cfg, r.profile, lambda mc, name: CandidateCost(
            mc, cfg.search, r.profile, workdir / "cost" / name, progress=None), r.progress)
        write_json(sn_file, sn)
    model_cfg = ml_collections.ConfigDict(sn["model"])
    model_cfg.modules = tuple(tuple(m) for m in model_cfg.modules)
    r.out.update(sn=sn, model_cfg=model_cfg)
    say(f"[1/7] SuperNAS: chose space {sn['chosen']} (" + "; ".join(
        f"space {x['space']}: fit {100 * x['fit_rate']:.0f} %, mean MACs {x['mean_fitting_macs']:,.0f}"
        for x in sn["spaces"]) + ")")


def supernet_stage(r: Run) -> None:
    """2: sandwich-rule supernet training (resumes from its checkpoints)."""
    cfg, model_cfg = r.cfg, r.out["model_cfg"]
    supernet = Supernet(model_cfg, rngs=nnx.Rngs(cfg.seed))
    scfg = ml_collections.ConfigDict(dict(model=model_cfg, train=cfg.supernet))
    sres = train_supernet(supernet, scfg, r.train, r.val, r.workdir, cfg.seed, progress=r.progress)
    calib = r.train.images[np.random.default_rng([cfg.seed, 5]).permutation(len(r.train.labels))
                           [:int(cfg.search.calib_images)]]
    r.out.update(supernet=supernet, calib=calib)
    say(f"[2/7] supernet: {sres.steps} steps")


def sparsenas_stage(r: Run) -> None:
    """3: the evolutionary search under the limits (resumes from search/state.json)."""
    cfg, model_cfg, sn = r.cfg, r.out["model_cfg"], r.out["sn"]
    supernet, calib = r.out["supernet"], r.out["calib"]
    cost = CandidateCost(model_cfg, cfg.search, r.profile, r.workdir / "cost" / f"space{sn['chosen']}",
                         progress=None)
    search = Search(model_cfg, cfg.search, r.profile, cost,
                    lambda cs: score(supernet, model_cfg, cs, cfg.search, calib, r.val), r.workdir / "search",
                    r.progress, cost_key=cost.sources)
    found = search.run()
    best = Candidate.from_key(found["best"]["key"])
    r.out.update(search=search, found=found, best=best)
    say(f"[3/7] SparseNAS: {found['evaluated']} candidates, {found['fitting']} fit; best {best.key}: "
        f"val accuracy {100 * found['best']['accuracy']:.2f} %, flash {found['best']['flash_bytes']:,} B, "
        f"SRAM {found['best']['sram_bytes']:,} B, {found['best']['instructions']:,} instructions")


def prune_stage(r: Run) -> None:
    """4: the chosen path with the supernet's weights, gradual block pruning rounds with
    distillation from the supernet's largest path (each round resumes from its checkpoints)."""
    cfg, model_cfg, best = r.cfg, r.out["model_cfg"], r.out["best"]
    supernet, calib = r.out["supernet"], r.out["calib"]
    net_cfg = standalone_config(model_cfg, best.path)
    model = Hybrid(net_cfg, rngs=nnx.Rngs(cfg.seed))
    copy_shared(supernet, best.path, model)
    recalibrate_bn(supernet, supernet.largest, calib)
    teacher = nnx.clone(supernet)
    teacher.eval()
    big = jnp.asarray(teacher.largest, jnp.int32)
    rounds = int(cfg.prune.rounds)
    loss = distill_loss(lambda x: teacher(x, big), float(cfg.prune.distill))
    level = best.layer_levels(model_cfg, cfg.search, blocks.prunable(model))
    mk = {}
    for i in range(rounds):
        level_i = {k: (blocks.schedule(i + 1, rounds, sp), b) for k, (sp, b) in level.items()}
        mk = blocks.model_masks(model, level_i)
        blocks.apply_masks(model, mk)
        tree = _mask_tree(mk)
        res = fit(model, r.train, r.val, cfg.prune.train, r.workdir, f"prune{i}", cfg.seed + 10 + i,
                  progress=r.progress, loss=loss, extra=lambda step: tree)
        blocks.apply_masks(model, mk)
        zeros = sum(m.size - m.sum() for m in mk.values()) / max(sum(m.size for m in mk.values()), 1)
        say(f"[4/7] pruning round {i + 1}/{rounds}: {len(mk)} layers masked, {100 * zeros:.1f} % of their "
            f"weights zero, val accuracy {100 * res.test_accuracy:.2f} %")
    r.out.update(net_cfg=net_cfg, model=model, level=level, masks=mk)


def qat_stage(r: Run) -> None:
    """5: BatchNorm folded, calibrated, QAT with the masks kept (resumes from its checkpoints)."""
    mk = r.out["masks"]
    tree = _mask_tree(mk)
    qat, qres = quantize(r.out["model"], r.cfg, r.train, r.test, r.workdir, r.progress, loss=masked_loss,
                         extra=lambda step: tree)
    blocks.apply_masks(qat, mk)
    r.out.update(qat=qat, qres=qres)
    say(f"[5/7] QAT: fake-quant test accuracy {100 * qres.test_accuracy:.2f} %")


def deploy_stage(r: Run) -> None:
    """6: QDQ export, SparseEngine compile --verify (Cortex-M7 in QEMU), int8 accuracy on the test
    set, the cost model's prediction next to the firmware's figures; over budget stops here."""
    cfg, data, o = r.cfg, r.data, r.out
    found, best, net_cfg, level, mk = o["found"], o["best"], o["net_cfg"], o["level"], o["masks"]
    _, _, rep, sim = deploy_and_simulate(o["qat"], cfg, r.workdir, r.test.images, r.train.images, r.progress)
    mcu = rep["mcu"]
    figures = dict(
        supernas=o["sn"], search=found,
        chosen=dict(candidate=best.key, stem=int(net_cfg.stem), blocks=[list(b) for b in net_cfg.blocks],
                    layers=["/".join(map(str, k)) for k in level], sparsity_target=[sp for sp, _ in level.values()],
                    block_sizes=[b for _, b in level.values()], sparsity_achieved=blocks.achieved(mk, level)),
        fake_quant_accuracy=o["qres"].test_accuracy,
        int8_accuracy=float(np.mean(sim.argmax(-1) == r.test.labels)),
        test_images=len(r.test.labels), flash_bytes=mcu["flash_bytes"], sram_bytes=mcu["sram_bytes"],
        instructions=mcu["instructions"], cycles_estimate=mcu.get("cycles"),
        latency_ms_estimate=rep["totals"]["latency_ms_estimate"], arena_bytes=rep["totals"]["arena_bytes"],
        ladder=rep["verification"],
        predicted=dict(flash_bytes=found["best"]["flash_bytes"], sram_bytes=found["best"]["sram_bytes"],
                       instructions=found["best"]["instructions"], arena_bytes=found["best"]["arena_bytes"]),
        budget=found["limits"], fits=bool(mcu["flash_bytes"] <= found["limits"]["flash_bytes"]
                                          and mcu["sram_bytes"] <= found["limits"]["sram_bytes"]),
        profile=r.profile, seconds=round(time.perf_counter() - r.t0, 1), data=data.source,
        engine=str(r.workdir / "engine"))
    if not figures["fits"]:
        raise TinyFormerError(f"the deployed model is over budget: flash {mcu['flash_bytes']:,} B, SRAM "
                              f"{mcu['sram_bytes']:,} B against {found['limits']} (report in {r.workdir / 'engine'})")
    r.out.update(figures=figures, engine_report=rep)


def report_stage(r: Run) -> None:
    """7: report.md + plots into report/, summary.json, the summary lines on stdout."""
    from . import report

    figures = r.out["figures"]
    figures["report"] = str(report.write(figures, r.out["engine_report"], r.out["search"].archive,
                                         r.workdir / "report"))
    write_json(r.workdir / "summary.json", figures)
    say("\n".join(["", "== TinyFormer " + "=" * 57, *report.summary_lines(figures)]))


PIPELINE: tuple[tuple[str, Callable[[Run], None]], ...] = (
    ("supernas", supernas_stage), ("supernet", supernet_stage), ("sparsenas", sparsenas_stage),
    ("prune", prune_stage), ("qat", qat_stage), ("deploy", deploy_stage), ("report", report_stage))
STAGES = ("supernas", "supernet", "sparsenas", "prune", "qat")  # stages a run may stop after (their outputs kept)


def run(cfg: ml_collections.ConfigDict, workdir: str | Path, data_dir: str | None = None,
        progress: bool = True, stop_after: str | None = None) -> dict:
    """Every stage of PIPELINE in order, each resuming from its own outputs in `workdir`; the
    summary, or {"stopped_after": stage} when `stop_after` names one of STAGES."""
    if stop_after is not None and stop_after not in STAGES:
        raise TinyFormerError(f"--stop_after={stop_after}: choose one of {', '.join(STAGES)}")
    t0 = time.perf_counter()
    workdir, data = prepare(cfg, workdir, data_dir)
    train, val = split_validation(data.train, int(cfg.search.val_images), cfg.seed)
    n_test = int(cfg.deploy.test_images) or len(data.test.labels)
    test = Split(data.test.images[:n_test], data.test.labels[:n_test])
    r = Run(cfg, workdir, data, train, val, test, progress, t0)
    for name, stage in PIPELINE:
        stage(r)
        if name == stop_after:
            say(f"stopped after {name} (--stop_after); outputs in {workdir}, rerun without it to go on")
            return dict(stopped_after=name)
    return r.out["figures"]
