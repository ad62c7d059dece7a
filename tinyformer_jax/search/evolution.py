"""SparseNAS: evolutionary search over path, per-layer sparsity and block size under MCU limits.

Each generation keeps `population` candidates that fit (flash, SRAM from the cost model; the
latency limit in instructions when set). Memory is checked first without building anything;
only candidates that fit are measured for instructions and scored (masked supernet accuracy
after BatchNorm recalibration, on held-out training images), a generation's new ones together
in batched calls. Parents are the `parents` best by accuracy; children come from crossover
(share `crossover`) or mutation. Every candidate seen is archived with its cost and accuracy;
the state is written after each generation (and where the run's time limit stops it), so a
rerun continues where it stopped; an unfinished one resumed with other kernels costs its archive
again first (a finished one keeps its result: later stages were built from it). The result is the
best fitting candidate and the Pareto front over (accuracy up, flash down, instructions down).
When nothing fits, the search says so with the smallest figures it saw instead of returning an
over-budget model.
"""
from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Callable

import ml_collections
import numpy as np
from tqdm import tqdm

from sparse_engine import profiles

from .. import time_limit
from ..errors import TinyFormerError
from ..files import write_json
from .space import Candidate, crossover, mutate, n_genes, random_candidate


def limits(search: ml_collections.ConfigDict, profile: str):
    """The profile with the search's flash / SRAM limits (0: the profile's), and the instruction limit."""
    p = profiles.get(profile)
    p = dataclasses.replace(p, flash_bytes=int(search.get("flash_bytes") or p.flash_bytes),
                            sram_bytes=int(search.get("sram_bytes") or p.sram_bytes))
    return p, int(search.get("max_instructions") or 0) or None


def pareto(rows: list[dict]) -> list[dict]:
    """Rows not dominated in (accuracy up, flash down, instructions down)."""
    def dominates(a, b):
        ge = (a["accuracy"] >= b["accuracy"] and a["flash_bytes"] <= b["flash_bytes"]
              and a["instructions"] <= b["instructions"])
        return ge and (a["accuracy"] > b["accuracy"] or a["flash_bytes"] < b["flash_bytes"]
                       or a["instructions"] < b["instructions"])
    return sorted((r for r in rows if not any(dominates(o, r) for o in rows)), key=lambda r: r["flash_bytes"])


class Search:
    def __init__(self, model_cfg: ml_collections.ConfigDict, search: ml_collections.ConfigDict, profile: str,
                 cost: Callable, score: Callable[[list[Candidate]], list[float]], workdir: Path,
                 progress: bool = True, cost_key: str | None = None):
        """`cost_key` names the C the costs were measured with (CandidateCost.sources): an
        unfinished search saved under another key has its archive costed again on load,
        accuracies kept."""
        self.model_cfg, self.cfg, self.cost, self.score = model_cfg, search, cost, score
        self.cost_key = cost_key
        self.profile, self.max_instr = limits(search, profile)
        self.file = Path(workdir) / "state.json"
        self.progress = progress
        st = json.loads(self.file.read_text()) if self.file.exists() else {}
        self.generation = st.get("generation", 0)
        self.population = [Candidate.from_key(k) for k in st.get("population", [])]
        self.archive: dict[str, dict] = st.get("archive", {})
        genes = (len(model_cfg.modules), n_genes(model_cfg))
        stale = [k for k in self.archive if Candidate.from_key(k).genes != genes]
        if stale:
            raise TinyFormerError(f"{self.file}: written for another search space (candidate {stale[0]}, this one has "
                                  f"{genes[0]} modules and {genes[1]} layer genes); use a new --workdir")
        if self.archive and st.get("cost_key") != cost_key and self.generation < int(search.generations):
            self._recost()

    def _recost(self) -> None:
        """Cost every archived candidate again (the kernels changed since they were measured):
        accuracy does not depend on the C, fitting does; a parent that no longer fits leaves the
        population."""
        old, self.archive = self.archive, {}
        for key, row in tqdm(old.items(), desc="SparseNAS: re-costing the archive (other kernels)", unit="cand",
                             disable=not self.progress, file=sys.stderr):
            if time_limit.expired():  # state.json keeps the old key; costs.json keeps what was measured
                time_limit.stop(f"search re-costing its archive after {len(self.archive)}/{len(old)} candidates")
            new = self.evaluate(Candidate.from_key(key))
            if new["fits"]:
                new["accuracy"] = row["accuracy"]
        self.population = [c for c in self.population if self.archive[c.key]["fits"]]
        self._save()

    def _save(self) -> None:
        write_json(self.file, dict(generation=self.generation, population=[c.key for c in self.population],
                                   cost_key=self.cost_key, archive=self.archive), indent=0)

    def evaluate(self, c: Candidate) -> dict:
        """Archive row of `c`: memory first (no build), then instructions if it fits; accuracy
        stays None until `score_pending`."""
        if c.key in self.archive:
            return self.archive[c.key]
        mem = self.cost(c, memory_only=True)
        row = dict(key=c.key, flash_bytes=mem.flash_bytes, sram_bytes=mem.sram_bytes, instructions=None,
                   accuracy=None, fits=False, macs=mem.macs)
        if mem.fits(self.profile):
            full = self.cost(c)
            row.update(full.to_json())
            row["fits"] = full.fits(self.profile, self.max_instr)
        self.archive[c.key] = row
        return row

    def score_pending(self, cands: list[Candidate]) -> None:
        """Accuracy of the fitting candidates not scored yet, all in one `score` call."""
        todo = [c for c in cands if self.archive[c.key]["fits"] and self.archive[c.key]["accuracy"] is None]
        if todo:
            for c, acc in zip(todo, self.score(todo), strict=True):
                self.archive[c.key]["accuracy"] = float(acc)

    def _fill(self, make: Callable[[np.random.Generator], Candidate], rng: np.random.Generator, bar) -> list:
        out, seen, tries = [], set(), 0
        limit = int(self.cfg.population) * int(self.cfg.max_tries_factor)
        while len(out) < self.cfg.population and tries < limit:
            tries += 1
            c = make(rng)
            if c.key in seen:
                continue
            seen.add(c.key)
            new = c.key not in self.archive
            if self.evaluate(c)["fits"]:
                out.append(c)
                bar.update(1)
            if new and time_limit.expired():  # the rerun draws the same candidates and finds these archived
                self._save()
                bar.close()
                time_limit.stop(f"search saved in generation {self.generation + 1} after {len(self.archive)} "
                                 f"candidates")
        self.score_pending(out)
        return out

    def _no_fit(self) -> TinyFormerError:
        rows = list(self.archive.values())
        fl = min(rows, key=lambda r: r["flash_bytes"])
        sr = min(rows, key=lambda r: r["sram_bytes"])
        lat = f", {self.max_instr:,} instructions" if self.max_instr else ""
        return TinyFormerError(
            f"search: no candidate fits {self.profile.name} with flash <= {self.profile.flash_bytes:,} B, SRAM <= "
            f"{self.profile.sram_bytes:,} B{lat}: of {len(rows)} tried the smallest flash is "
            f"{fl['flash_bytes']:,} B and the smallest SRAM {sr['sram_bytes']:,} B; raise the budget or shrink "
            f"the search space (config model / search)")

    def run(self) -> dict:
        cfg = self.cfg
        total = int(cfg.generations)
        bar = tqdm(total=total * int(cfg.population), initial=self.generation * int(cfg.population),
                   desc="SparseNAS", unit="cand", disable=not self.progress, file=sys.stderr)
        while self.generation < total:
            rng = np.random.default_rng([int(cfg.seed), self.generation])
            if self.generation == 0 or not self.population:  # (none left fitting after a re-cost)
                pop = self._fill(lambda r: random_candidate(r, self.model_cfg, cfg), rng, bar)
            else:
                ranked = sorted(self.population, key=lambda c: -self.archive[c.key]["accuracy"])
                parents = ranked[:int(cfg.parents)]

                def child(r: np.random.Generator) -> Candidate:
                    if len(parents) > 1 and r.random() < cfg.crossover:
                        i, j = r.choice(len(parents), 2, replace=False)
                        return mutate(crossover(parents[i], parents[j], r), r, self.model_cfg, cfg)
                    return mutate(parents[int(r.integers(len(parents)))], r, self.model_cfg, cfg)
                pop = parents + self._fill(child, rng, bar)[:int(cfg.population) - len(parents)]
            if not pop:
                self._save()
                bar.close()
                raise self._no_fit()
            self.population = pop
            self.generation += 1
            self._save()
            if self.generation < total and time_limit.expired():
                bar.close()
                time_limit.stop(f"search saved after generation {self.generation}/{total}")
        bar.close()
        return self.result()

    def result(self) -> dict:
        fit = [r for r in self.archive.values() if r["fits"] and r["accuracy"] is not None]
        if not fit:
            raise self._no_fit()
        best = max(fit, key=lambda r: (r["accuracy"], -r["flash_bytes"]))
        return dict(best=best, pareto=pareto(fit), evaluated=len(self.archive), fitting=len(fit),
                    limits=dict(flash_bytes=self.profile.flash_bytes, sram_bytes=self.profile.sram_bytes,
                                max_instructions=self.max_instr, profile=self.profile.name))
