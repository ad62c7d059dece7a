"""compile_model: ONNX QDQ model -> C library + report, optionally verified; all or nothing.

The compiler in named stages, each a function of typed values: build_graph (import, layout,
copy passes) -> run_passes (attention fusion, FWSA) -> planner.plan_with_tiles -> choose_codings
(dense or block-sparse per layer, measured; budget checks) -> codegen.generate -> build_and_verify
(host and Cortex-M builds, the exact rungs) -> report; `Options` carries target, profile, kernel
set and the pass switches through all of them. Everything is written into a temporary sibling of
the output folder, which replaces the output folder only when every step succeeded; on failure
nothing is left behind. compile_model returns the graph its C runs (`Compiled.graph`).
"""
from __future__ import annotations

import copy
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx

from . import (attention, codegen, cycles, frontend, layout, outdir, passes, planner, profiles, report, simulator,
               sparsity, tflite_frontend, toolchain, verify)
from .errors import EngineError
from .ir import Graph
from .profiles import MCUProfile

TARGETS = ("host", "cortex-m7")


def build_graph(model: Path | onnx.ModelProto) -> Graph:
    """Import stage: QDQ ONNX (a file or a ModelProto) or an int8 .tflite file -> IR in NHWC with
    copy chains merged and absorbed. TFLite is NHWC already: no layout pass."""
    if isinstance(model, onnx.ModelProto):
        g = layout.to_physical(frontend.import_model(model))
    elif tflite_frontend.is_tflite(Path(model)):
        g = tflite_frontend.import_model(model)
    else:
        g = layout.to_physical(frontend.import_model(frontend.load(model)))
    return passes.absorb_copies(passes.merge_identity_copies(g))


def fuse_attention(g: Graph, fwsa: str, inputs: np.ndarray, invert: bool = False) -> Graph:
    """attention.fuse with FWSA calibrated on the simulator's values of each block's input."""
    def trace(names: list[str]) -> dict[str, np.ndarray]:
        seen: dict[str, list[np.ndarray]] = {n: [] for n in names}
        for x in inputs:
            tr: dict = {}
            simulator.run(g, x, tr)
            for n in names:
                seen[n].append(tr[n])
        return {n: np.stack(v) for n, v in seen.items()}

    return attention.fuse(g, fwsa, calib_trace=trace, invert=invert)


def firmware_run(g: Graph, plan: planner.Plan, kernels: str, work: Path, profile: MCUProfile, inputs: np.ndarray,
                 objects: Path | None = None) -> tuple[toolchain.McuBuild, toolchain.QemuRun]:
    """`g` as it stands: C into work/lib, the Cortex-M firmware into work/build (shared kernel
    objects from `objects`), `inputs` run in QEMU. The measurement step of every build here."""
    codegen.generate(g, plan, work / "lib", kernels)
    build = toolchain.build_mcu(work / "lib", work / "build", profile, objects)
    return build, toolchain.run_qemu(build, profile, inputs, g.tensors[g.output].size, layer_names=g.layer_names())


def measure_other_fwsa(unfused: Graph, fwsa: str, calibration, inputs, profile: MCUProfile, kernels: str,
                       work: Path, blocks: list[dict], objects: Path | None = None, progress=print) -> None:
    """Build the model with every attention block's FWSA choice flipped and put each block's
    Cortex-M instructions into `blocks` (other_instructions): the report's "both ways". A flipped
    form that cannot be built only leaves that column empty: the chosen model is unaffected."""
    try:
        g = fuse_attention(unfused, fwsa, calibration, invert=True)
    except EngineError as e:
        progress(f"[4/5] other FWSA form not measured: {e}")
        return
    _, run = firmware_run(g, planner.plan_with_tiles(g), kernels, work, profile, inputs[:1], objects)
    for b in blocks:
        b["other_instructions"] = run.layer_instructions[b["index"]]
    shutil.rmtree(work, ignore_errors=True)


def check_budget(g: Graph, plan: planner.Plan, profile: MCUProfile) -> None:
    """Fail early, before any build, when the model alone cannot fit the profile."""
    consts = g.const_bytes()
    if consts > profile.flash_bytes:
        raise EngineError(f"model is over the flash budget: {consts:,} B of constants > "
                          f"{profile.flash_bytes:,} B flash of {profile.name}")
    io = g.tensors[g.input].size + g.tensors[g.output].size
    need = plan.peak + io + profile.stack_bytes
    if need > profile.sram_bytes:
        raise EngineError(f"model is over the SRAM budget: {need:,} B (arena {plan.peak:,} + I/O {io:,} + stack "
                          f"{profile.stack_bytes:,}) > {profile.sram_bytes:,} B SRAM of {profile.name}")


def measure_codings(g: Graph, plan: planner.Plan, layers: list[sparsity.LayerSparsity], profile: MCUProfile,
                    kernels: str, inputs, work: Path, progress=print, objects: Path | None = None,
                    workers: int = 0) -> dict:
    """Per-layer Cortex-M instructions of the dense model and of one firmware per candidate block
    size (every candidate layer coded with it), into `layers`; returns the dense firmware's totals.
    The dense firmware is built first (it compiles the shared kernels), the others `workers` at a
    time (0: one per core; gcc and QEMU are processes, so threads suffice)."""
    configs = []
    for b in [0] + sparsity.blocks_to_measure(layers):
        sparsity.apply(g, layers, b)
        configs.append((b, copy.deepcopy(g)))
    sizes = ", ".join(str(b) for b, _ in configs[1:])
    progress(f"[2/5] sparse choice: measuring dense{' and blocks of ' + sizes if sizes else ''} "
             f"({len(configs)} firmware{'s' if len(configs) > 1 else ''})")

    def build_and_run(config: tuple[int, Graph]) -> tuple[toolchain.McuBuild, toolchain.QemuRun]:
        b, gb = config
        return firmware_run(gb, plan, kernels, work / f"b{b}", profile, inputs[:1], objects)

    results = [build_and_run(configs[0])]
    with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
        results += pool.map(build_and_run, configs[1:])
    for (b, _), (_, run) in zip(configs, results):
        for ls in layers:
            if not b:
                ls.dense_instructions = run.layer_instructions[ls.index]
            elif b in ls.codings:
                ls.instructions[b] = run.layer_instructions[ls.index]
    shutil.rmtree(work, ignore_errors=True)
    dense_build, dense_run = results[0]
    return dict(dense_flash_bytes=dense_build.flash_bytes, dense_instructions=dense_run.total_instructions)


@dataclass(frozen=True)
class Options:
    """How a model is compiled; travels through every stage as one value. target: host | cortex-m7;
    kernels: dsp | portable (codegen.KERNEL_SETS); sparse (sparsity.OBJECTIVES): how layers with
    block-sparse weights are coded, chosen by Cortex-M measurement (with target host every layer
    stays dense); fuse: recognized attention blocks become one depth-first tiled op; fwsa
    (auto|on|off): where they fold W_Q·W_Kᵀ."""

    target: str = "cortex-m7"
    profile: MCUProfile = field(default_factory=lambda: profiles.get(profiles.DEFAULT))
    kernels: str = "dsp"
    sparse: str = "speed"
    fuse: bool = True
    fwsa: str = "auto"

    def validate(self) -> None:
        if self.target not in TARGETS:
            raise EngineError(f"--target {self.target}: choose one of {', '.join(TARGETS)}")
        if self.kernels not in codegen.KERNEL_SETS:
            raise EngineError(f"--kernels {self.kernels}: choose one of {', '.join(codegen.KERNEL_SETS)}")
        if self.sparse not in sparsity.OBJECTIVES:
            raise EngineError(f"--sparse {self.sparse}: choose one of {', '.join(sparsity.OBJECTIVES)}")
        if self.fwsa not in attention.FWSA_MODES:
            raise EngineError(f"--fwsa {self.fwsa}: choose one of {', '.join(attention.FWSA_MODES)}")

    @property
    def on_mcu(self) -> bool:
        return self.target == "cortex-m7"

    @property
    def codes_sparse(self) -> bool:
        """Block-sparse codings may be chosen: only measured on the Cortex-M, and not with --sparse off."""
        return self.on_mcu and self.sparse != "off"


@dataclass
class Passed:
    """The graph after the passes: attention fused (FWSA as chosen), with what the report needs
    of the unfused form."""

    graph: Graph
    unfused: Graph | None  # None when not fused
    unfused_arena: int


@dataclass
class Compiled:
    """What compile_model returns: the report, and the graph and plan its C runs (attention
    fused, FWSA chosen, sparse codings applied): simulating `graph` gives the firmware's bits."""

    report: dict
    graph: Graph
    plan: planner.Plan
    out_dir: Path


def run_passes(g: Graph, opts: Options, calibration: np.ndarray) -> Passed:
    """Attention fusion (FWSA calibrated on the simulator's values of `calibration`)."""
    unfused = copy.deepcopy(g) if opts.fuse else None  # fusing edits g; the report builds the other FWSA form
    unfused_arena = planner.plan(g).peak
    if opts.fuse:
        g = fuse_attention(g, opts.fwsa, calibration)
    return Passed(g, unfused, unfused_arena)


def budget_codings(g: Graph, plan: planner.Plan, opts: Options) -> list[sparsity.LayerSparsity]:
    """Every layer's block sparsity; the budget checked before any build, with each candidate
    layer's most compact coding where sparse codings may be chosen."""
    layers = sparsity.detect(g)
    if opts.codes_sparse:
        for ls in layers:
            if ls.codings:
                g.ops[ls.index].params["sparse"] = ls.smallest()
    check_budget(g, plan, opts.profile)
    return layers


def choose_codings(g: Graph, plan: planner.Plan, layers: list[sparsity.LayerSparsity], opts: Options,
                   inputs: np.ndarray, work: Path, objects: Path, progress=print) -> dict:
    """Per layer dense or block-sparse (measured on the Cortex-M), applied to `g`, the budget
    checked again. Returns the dense firmware's totals (empty when nothing was measured)."""
    candidates = [ls for ls in layers if ls.codings]
    dense_totals = {}
    if opts.codes_sparse and candidates:
        dense_totals = measure_codings(g, plan, candidates, opts.profile, opts.kernels, inputs, work, progress,
                                       objects)
    sparsity.choose(layers, opts.sparse if opts.on_mcu else "off")
    sparsity.apply(g, layers)
    check_budget(g, plan, opts.profile)
    if candidates and not opts.on_mcu:
        g.notes.append("block-sparse weights found; the sparse coding is chosen by Cortex-M measurement, "
                       "so with --target host every layer runs dense")
    return dense_totals


def build_and_verify(g: Graph, plan: planner.Plan, opts: Options, lib: Path, inputs: np.ndarray, verify_ladder: bool,
                     objects: Path, dense_totals: dict, progress=print
                     ) -> tuple[dict | None, list[dict] | None, np.ndarray | None]:
    """The builds of the library in `lib` and the ladder's exact rungs: host C (ASan+UBSan) when
    the target is the host or verifying; the Cortex-M firmware in QEMU (and, verifying with DSP
    kernels, the portable build too). Returns the firmware's figures, the ladder so far and the
    simulator's outputs (None unless verifying)."""
    tout = g.tensors[g.output]
    mcu, ladder = None, None
    ref = verify.simulate(g, inputs) if verify_ladder else None
    if verify_ladder:
        ladder = [dict(rung="simulator", inputs=len(inputs))]
    if opts.target == "host" or verify_ladder:
        progress("[3/5] host build (gcc -Wall -Wextra -Werror, ASan+UBSan)")
        exe = toolchain.build_host(lib, lib / "build" / "host")
        host_out = toolchain.run_host(exe, inputs, tout.size)
        if ladder is not None:
            ladder.append(verify.compare_exact("host C (ASan+UBSan)", host_out, ref))
    if not opts.on_mcu:
        return mcu, ladder, ref
    profile = opts.profile
    progress(f"[4/5] {profile.core} build and QEMU run")
    build = toolchain.build_mcu(lib, lib / "build" / profile.core, profile, objects)
    run = toolchain.run_qemu(build, profile, inputs if verify_ladder else inputs[:1], tout.size,
                             layer_names=g.layer_names())
    mcu = dict(flash_bytes=build.flash_bytes, sram_bytes=build.static_ram_bytes + run.stack_bytes,
               static_ram_bytes=build.static_ram_bytes, stack_bytes=run.stack_bytes,
               instructions=run.total_instructions, layer_instructions=run.layer_instructions,
               sections=build.sections, clock_mhz=profile.clock_hz // 1_000_000,
               cpi_assumed=profile.cpi_assumed, **dense_totals)
    if profile.mca_cpu:
        progress(f"[4/5] {profile.core} cycle estimate (unicorn trace, llvm-mca)")
        mcu.update(cycles.for_firmware(build.elf, inputs[:1], run.layer_instructions, profile.mca_cpu))
    if mcu["sram_bytes"] > profile.sram_bytes:
        raise EngineError(f"firmware is over the SRAM budget: {mcu['sram_bytes']:,} B > "
                          f"{profile.sram_bytes:,} B of {profile.name}")
    if ladder is not None:
        ladder.append(verify.compare_exact(f"{profile.core} in QEMU", run.outputs, ref))
    if ladder is not None and opts.kernels != "portable":
        progress(f"[4/5] {profile.core} build and QEMU run, portable kernels for comparison")
        plib = lib / "build" / "portable-lib"
        codegen.generate(g, plan, plib, "portable")
        pbuild = toolchain.build_mcu(plib, lib / "build" / f"{profile.core}-portable", profile, objects)
        prun = toolchain.run_qemu(pbuild, profile, inputs, tout.size, layer_names=g.layer_names())
        mcu.update(portable_layer_instructions=prun.layer_instructions,
                   portable_instructions=prun.total_instructions, portable_flash_bytes=pbuild.flash_bytes)
        ladder.append(verify.compare_exact(f"{profile.core} in QEMU, portable kernels", prun.outputs, ref))
    return mcu, ladder, ref


def compile_model(model: str | Path | onnx.ModelProto, out_dir: str | Path, target: str = "cortex-m7",
                  profile: MCUProfile | None = None, verify_ladder: bool = False,
                  input_file: str | Path | np.ndarray | None = None, n_random: int = 8, seed: int = 0,
                  progress=print, kernels: str = "dsp", sparse: str = "speed", fuse: bool = True, fwsa: str = "auto",
                  calibration_file: str | Path | np.ndarray | None = None,
                  max_ref_diff: int | None = verify.DEFAULT_MAX_REF_DIFF) -> Compiled:
    """import -> passes -> plan -> choose codings -> emit C -> build and verify -> report, written
    into `out_dir` only when every step succeeded. `model`: an ONNX file or ModelProto;
    `input_file` / `calibration_file`: a .npy path or the array itself (float: quantized with the
    input scale; or int8). FWSA is calibrated on the calibration inputs, else on the verification
    inputs. With `kernels="dsp"` and --verify on the Cortex-M, the portable build also runs in QEMU:
    it must give the same bits, and the report shows its per-layer instructions beside the DSP ones.
    onnxruntime's largest difference from the simulator must be at most `max_ref_diff` steps (None:
    reported only)."""
    opts = Options(target, profile or profiles.get(profiles.DEFAULT), kernels, sparse, fuse, fwsa)
    opts.validate()
    if n_random < 0:
        raise EngineError(f"--random-inputs {n_random}: give 0 or more")
    if max_ref_diff is not None and not 0 <= max_ref_diff <= 255:
        raise EngineError(f"--max-ref-diff {max_ref_diff}: give 0..255 steps, or off")
    out_dir = Path(out_dir).resolve()
    model_path = None if isinstance(model, onnx.ModelProto) else Path(model).resolve()
    sources = [p for p in (model_path, _source(input_file), _source(calibration_file)) if isinstance(p, Path)]
    with outdir.writing(out_dir, sources) as tmp:
        return _compile(model, model_path, out_dir, tmp, opts, verify_ladder, input_file, n_random, seed,
                        calibration_file, max_ref_diff, progress)


def _compile(model, model_path: Path | None, out_dir: Path, tmp: Path, opts: Options, verify_ladder: bool,
             input_file, n_random: int, seed: int, calibration_file, max_ref_diff: int | None,
             progress) -> Compiled:
    """compile_model's stages, written into `tmp` and installed as `out_dir` at the end."""
    source = model if model_path is None else model_path  # what import and onnxruntime read
    progress(f"[1/5] import {model_path or 'ONNX model'}")
    g = build_graph(source)
    inputs = verify.load_inputs(g, _source(input_file), n_random, seed)
    if not len(inputs):
        raise EngineError("--random-inputs 0 and no --input: the compile needs at least one input to measure and "
                          "verify with")
    calibration = (verify.load_inputs(g, _source(calibration_file), 0, seed) if calibration_file is not None
                   else inputs)
    passed = run_passes(g, opts, calibration)
    g = passed.graph
    plan = planner.plan_with_tiles(g)  # also sets each attention op's tile
    blocks = [attention.summary(g, i, op) for i, op in enumerate(g.ops) if op.kind == "attention"]
    layers = budget_codings(g, plan, opts)
    objects = toolchain.object_cache() or tmp / "objects"  # the kernels' objects, compiled once for all builds
    dense_totals = choose_codings(g, plan, layers, opts, inputs, tmp / "choice", objects, progress)
    progress(f"[2/5] generate C ({opts.kernels} kernels): {len(g.ops)} layers, arena {plan.peak:,} B, "
             f"{sum(ls.chosen is not None for ls in layers)} layers sparse")
    kernel_fns = codegen.generate(g, plan, tmp, opts.kernels)
    mcu, ladder, ref = build_and_verify(g, plan, opts, tmp, inputs, verify_ladder, objects, dense_totals, progress)
    if mcu is not None and blocks:
        progress(f"[4/5] {opts.profile.core} build and QEMU run, attention with the other FWSA choice")
        measure_other_fwsa(passed.unfused, opts.fwsa, calibration, inputs, opts.profile, opts.kernels,
                           tmp / "other-fwsa", blocks, objects, progress)
    for b in blocks:
        b.update(instructions=mcu["layer_instructions"][b["index"]] if mcu else None,
                 model_arena=plan.peak, unfused_model_arena=passed.unfused_arena)
    if ladder is not None and model_path is not None and tflite_frontend.is_tflite(model_path):
        progress("[5/5] LiteRT reference kernels")
        lite_out = verify.litert_outputs(model_path, g, inputs)
        if lite_out is not None:
            ladder.append(verify.compare_exact("LiteRT reference kernels", lite_out, ref))
        else:
            g.notes.append("ai-edge-litert is not installed: the LiteRT rung was skipped")
    elif ladder is not None:
        progress("[5/5] onnxruntime reference")
        ort_out = verify.onnxruntime_outputs(source, g, inputs)
        if ort_out is not None:
            ladder.append(verify.compare_reference(ref, ort_out, max_ref_diff))
        else:
            g.notes.append("onnxruntime is not installed: the reference rung and its gate were skipped")
    name = model_path.name if model_path else "model.onnx"
    rep = report.build(name, g, plan, opts.profile, opts.target, mcu, ladder, kernel_fns, opts.kernels,
                       [ls.summary() for ls in layers], opts.sparse, blocks)
    report.write(rep, tmp)
    failed = verify.failures(ladder or [])
    if failed:
        raise EngineError("verification failed: " + "; ".join(failed))
    shutil.rmtree(tmp / "objects", ignore_errors=True)
    outdir.install(tmp, out_dir)
    return Compiled(rep, g, plan, out_dir)


def _source(value: str | Path | np.ndarray | None) -> Path | np.ndarray | None:
    return value if value is None or isinstance(value, np.ndarray) else Path(value)
