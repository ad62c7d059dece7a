"""Flash, SRAM and Cortex-M instructions of a model before it is trained: the search's cost model.

A model (an imported IR graph, its weights random or trained, with any block-sparse zeros) goes
through the compiler's own steps: attention fusion, the tiled memory plan (the arena is exact),
sparsity detection and the encoder (constant bytes are exact), the per-layer dense/sparse choice
of `sparsity.choose` and the C generator's kernel list and scratch size. What only a firmware
gives is measured and cached:

- instructions per layer, keyed by the layer's *signature* (op kind, tensor shapes, structural
  parameters, the sparse coding's block pattern; not its requantization constants), measured in
  QEMU on the compiler's default random input: per-layer counts do not depend on the other
  layers (sparsity.py), so a layer seen in one model is known in every other. Counts are exact
  for that input; LayerNorm and softmax rows take a few data-dependent branches (the search
  ranks with these counts; the chosen model's firmware is measured again);
- the firmware's bytes beyond the model's constants (code, layer tables), keyed by the set of
  kernel functions linked, plus a per-layer term fitted from the builds seen;
- static RAM beyond arena, scratch and I/O (harness), and the stack high-water mark per kernel set.

A graph whose layers or kernel set the cache lacks is built and run once (dense, then one firmware
per block size with candidate layers, as the compiler measures; those builds run `workers` at a
time, as gcc and QEMU are processes; the kernels every model shares are compiled once), so every
figure is a measurement or a sum of measurements.
`tests/jax/test_cost.py` compares the estimate with the compiled firmware.
"""
from __future__ import annotations

import copy
import hashlib
import json
import os
import shutil
import tempfile
import weakref
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from . import bindings, codegen, planner, sparsity, toolchain, verify
from .compiler import firmware_run
from .ir import Graph
from .profiles import MCUProfile
from .sparse import BlockRLE, ProjectionCodings

_VALUE_KEYS = ("mult", "shift", "zp", "scale", "bias", "table", "t_scale", "score_scale", "tile_peaks", "acc_bound",
               "costs")
PER_LAYER_FLASH = 96  # bytes of one more layer's table entry and call, beyond a measured build's
CACHE_FORMAT = 2  # 2: a kernel set's code excludes the constants as emitted (codegen.footprint), not the IR's


@dataclass
class Cost:
    flash_bytes: int
    sram_bytes: int
    arena_bytes: int
    const_bytes: int
    instructions: int | None  # None: not measured (memory_only)
    macs: int
    layers: int
    sparse_layers: int
    layer_instructions: list[int] | None = None

    def fits(self, profile: MCUProfile, max_instructions: int | None = None) -> bool:
        return (self.flash_bytes <= profile.flash_bytes and self.sram_bytes <= profile.sram_bytes
                and (max_instructions is None or self.instructions is None or self.instructions <= max_instructions))

    def to_json(self) -> dict:
        d = asdict(self)
        d.pop("layer_instructions")
        return d


def _value_key(k: str) -> bool:
    return any(k == v or k.endswith("_" + v) or k.startswith(v + "_") for v in _VALUE_KEYS)


def _structure(v):
    """A hashable description of a parameter: shapes for arrays, the block pattern for a coding,
    scalars as they are; requantization values are left out by the caller."""
    if isinstance(v, BlockRLE):
        return ("rle", v.block, v.n, v.k, hashlib.sha1(v.counts.tobytes() + v.skips.tobytes()).hexdigest())
    if isinstance(v, ProjectionCodings):
        return ("rle-projections", tuple(sorted((n, _structure(e)) for n, e in v.parts.items())))
    if isinstance(v, np.ndarray):
        return ("a", v.shape, str(v.dtype))
    if isinstance(v, dict):
        return tuple(sorted((k, _structure(x)) for k, x in v.items() if not _value_key(k))) + bindings.code_path(v)
    if isinstance(v, (list, tuple)):
        return tuple(_structure(x) for x in v)
    if isinstance(v, (np.integer, np.floating)):
        return v.item()
    return v if isinstance(v, (int, float, str, bool, type(None))) else repr(type(v))


def sources_key(profile: MCUProfile, kernels: str) -> str:
    """What every cached measurement depends on beyond a layer's signature: the C the generator
    copies or fills in (kernels, model template, harness, linker script), the profile and kernel set.
    A cache made under another key is measured again, so a kernel change never reuses stale counts."""
    h = hashlib.sha1(repr((profile.name, profile.cflags, kernels, CACHE_FORMAT)).encode())
    for d in (codegen.TEMPLATES, codegen.RUNTIME):
        for f in sorted(p for p in d.rglob("*") if p.is_file()):
            h.update(str(f.relative_to(d)).encode() + b"\0" + f.read_bytes())
    return h.hexdigest()[:20]


def signature(g: Graph, i: int, kernel_fn: str) -> str:
    """What a layer's instruction count depends on, as a short hash."""
    op = g.ops[i]
    desc = (op.kind, kernel_fn, tuple(g.tensors[n].shape for n in op.inputs if n in g.tensors),
            tuple(g.tensors[n].shape for n in op.outputs), _structure(op.params))
    return hashlib.sha1(repr(desc).encode()).hexdigest()[:20]


class CostModel:
    """Costs of graphs on one MCU profile, with a measurement cache (in memory, and in `cache_file`
    when given: JSON, written atomically after every measurement)."""

    def __init__(self, profile: MCUProfile, cache_file: str | Path | None = None, kernels: str = "dsp",
                 progress=None, workers: int = 0):
        self.profile, self.kernels, self.progress = profile, kernels, progress
        self.workers = workers or os.cpu_count() or 1  # measurement firmwares built and run at once
        self.cache_file = Path(cache_file) if cache_file else None
        self.layers: dict[str, int] = {}
        self.kernel_sets: dict[str, dict] = {}  # kernel set -> flash beyond constants, static base, stack
        self.glue: list[float] = []  # model_run instructions beyond its layers, per layer
        self.builds = 0
        if self.cache_file:  # the kernels' objects, compiled once (toolchain.build_mcu)
            self.objects = self.cache_file.parent / "objects"
        else:
            self.objects = Path(tempfile.mkdtemp(prefix="se-objects-"))
            weakref.finalize(self, shutil.rmtree, self.objects, True)
        self.sources = sources_key(profile, kernels)
        if self.cache_file and self.cache_file.exists():
            d = json.loads(self.cache_file.read_text())
            if d.get("sources") == self.sources:
                self.layers, self.kernel_sets, self.glue = d["layers"], d["kernel_sets"], d["glue"]
            elif self.progress:
                self.progress(f"cost cache {self.cache_file}: made with other kernels or another profile; "
                              "measuring again")

    # -- the estimate -------------------------------------------------------------------------
    def estimate(self, g: Graph, memory_only: bool = False) -> Cost:
        """Cost of `g` (imported, attention already fused as the compiler fuses it); `g` is not
        changed. memory_only: flash and SRAM only, no firmware built (instructions None; the
        dense/sparse choice then takes the smallest coding, the compiler's budget check)."""
        g = copy.deepcopy(g)
        plan = planner.plan_with_tiles(g)
        layers = sparsity.detect(g)
        cands = [ls for ls in layers if ls.codings]
        if memory_only:
            for ls in cands:
                g.ops[ls.index].params["sparse"] = ls.smallest()
            return self._memory(g, plan, codegen.footprint(g, plan, self.kernels), None, len(cands))
        configs, todo, pending = [], [], set()
        for b in [0] + sparsity.blocks_to_measure(cands):
            sparsity.apply(g, cands, b)
            fns, scratch, consts = codegen.footprint(g, plan, self.kernels)
            sigs = [signature(g, i, f) for i, f in enumerate(fns)]
            configs.append((b, sigs))
            missing = {s for s in sigs if s not in self.layers} - pending
            if missing:  # a configuration whose layers earlier ones measure is not built
                todo.append((copy.deepcopy(g), fns, scratch, sigs, consts))  # built later, beside the others
                pending |= missing
        self._measure_all(plan, todo)
        for b, sigs in configs:
            for ls in cands:
                n = self.layers[sigs[ls.index]]
                if b:
                    if b in ls.codings:
                        ls.instructions[b] = n
                else:
                    ls.dense_instructions = n
        sparsity.choose(layers, "speed")
        sparsity.apply(g, layers)
        fns, scratch, consts = codegen.footprint(g, plan, self.kernels)
        sigs = [signature(g, i, f) for i, f in enumerate(fns)]
        if self._kernel_key(fns) not in self.kernel_sets or any(s not in self.layers for s in sigs):
            self._measure_all(plan, [(g, fns, scratch, sigs, consts)])
        per_layer = [self.layers[s] for s in sigs]
        glue = int(round(np.mean(self.glue) * len(per_layer))) if self.glue else 0
        return self._memory(g, plan, (fns, scratch, consts), (sum(per_layer) + glue, per_layer),
                            sum(ls.chosen is not None for ls in layers))

    def _memory(self, g: Graph, plan: planner.Plan, footprint: tuple[list[str], int, int], instr,
                n_sparse: int) -> Cost:
        """The Cost from the configuration's kernel list, scratch and emitted constants (codegen.footprint)."""
        fns, scratch, consts = footprint
        ks = self.kernel_sets.get(self._kernel_key(fns)) or self._nearest_kernel_set(fns)
        flash = consts + ks["code"] + PER_LAYER_FLASH * (len(fns) - ks["layers"])
        sram = self._static_known(g, plan, scratch, len(fns)) + ks["static_base"] + ks["stack"]
        return Cost(flash_bytes=int(flash), sram_bytes=int(sram), arena_bytes=plan.peak, const_bytes=g.const_bytes(),
                    instructions=None if instr is None else int(instr[0]), macs=int(sum(op.macs for op in g.ops)),
                    layers=len(fns), sparse_layers=n_sparse, layer_instructions=None if instr is None else instr[1])

    @staticmethod
    def _static_known(g: Graph, plan: planner.Plan, scratch: int, n_layers: int) -> int:
        """Static RAM the model's shapes fix: arena, int16 scratch, harness I/O buffers and layer ticks."""
        return plan.peak + 2 * scratch + g.tensors[g.input].size + g.tensors[g.output].size + 4 * (n_layers + 1)

    @staticmethod
    def _kernel_key(fns: list[str]) -> str:
        return ",".join(sorted(set(fns)))

    def _nearest_kernel_set(self, fns: list[str]) -> dict:
        """For memory_only estimates of an unmeasured kernel set: the measured set sharing the
        most kernels (a first-build default when none): memory_only figures are estimates."""
        if not self.kernel_sets:
            return dict(code=48 * 1024, layers=len(fns), static_base=2048, stack=4096)
        mine = set(fns)
        return max(self.kernel_sets.items(), key=lambda kv: len(mine & set(kv[0].split(","))))[1]

    # -- measurement --------------------------------------------------------------------------
    def _measure_all(self, plan: planner.Plan, todo: list[tuple[Graph, list[str], int, list[str], int]]) -> None:
        """For every (graph, kernel list, scratch, layer signatures, emitted constant bytes): build the graph as it stands
        for the Cortex-M, run one random input in QEMU, cache its layers and its kernel set's
        figures; `workers` firmwares at a time, the cache updated in `todo`'s order."""
        if not todo:
            return
        self.builds += len(todo)
        if self.progress:
            self.progress(f"cost model: measuring {len(todo)} firmware(s) ({len(todo[0][0].ops)} layers, "
                          f"builds {self.builds - len(todo) + 1}-{self.builds})")
        with ThreadPoolExecutor(max_workers=min(self.workers, len(todo))) as pool:
            runs = list(pool.map(lambda t: self._build_and_run(t[0], plan), todo))
        for (g, fns, scratch, sigs, consts), (build, run) in zip(todo, runs):
            self._record(g, plan, fns, scratch, sigs, consts, build, run)
        self._save()

    def _build_and_run(self, g: Graph, plan: planner.Plan) -> tuple[toolchain.McuBuild, toolchain.QemuRun]:
        work = Path(tempfile.mkdtemp(prefix="se-cost-"))
        try:
            x = verify.load_inputs(g, None, 8, 0)[:1]  # the input compile_model measures without --input
            return firmware_run(g, plan, self.kernels, work, self.profile, x, self.objects)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _record(self, g: Graph, plan: planner.Plan, fns: list[str], scratch: int, sigs: list[str], consts: int,
                build: toolchain.McuBuild, run: toolchain.QemuRun) -> None:
        for s, n in zip(sigs, run.layer_instructions):
            self.layers[s] = int(n)
        self.glue.append((run.total_instructions - sum(run.layer_instructions)) / len(fns))
        self.kernel_sets[self._kernel_key(fns)] = dict(
            code=build.flash_bytes - consts, layers=len(fns), stack=run.stack_bytes,
            static_base=build.static_ram_bytes - self._static_known(g, plan, scratch, len(fns)))

    def _save(self) -> None:
        if not self.cache_file:
            return
        self.cache_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.cache_file.with_name(f".{self.cache_file.name}.tmp")
        tmp.write_text(json.dumps(dict(sources=self.sources, layers=self.layers, kernel_sets=self.kernel_sets,
                                       glue=self.glue)))
        os.replace(tmp, self.cache_file)
