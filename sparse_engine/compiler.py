"""compile_model: ONNX QDQ file -> C library + report, optionally verified; all or nothing.

Everything is written into a temporary sibling of the output folder, which replaces the
output folder only when every step succeeded; on failure nothing is left behind.
"""
from __future__ import annotations

import copy
import os
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from . import attention, codegen, frontend, layout, passes, planner, report, simulator, sparsity, toolchain, verify
from .errors import EngineError
from .ir import Graph
from .profiles import MCUProfile

TARGETS = ("host", "cortex-m7")


def build_graph(model_path: Path) -> Graph:
    g = layout.to_physical(frontend.import_model(frontend.load(model_path)))
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
    return build, toolchain.run_qemu(build, profile, inputs, g.tensors[g.output].size)


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


def compile_model(model_path: str | Path, out_dir: str | Path, target: str, profile: MCUProfile,
                  verify_ladder: bool = False, input_file: str | Path | None = None, n_random: int = 8,
                  seed: int = 0, progress=print, kernels: str = "dsp", sparse: str = "speed",
                  fuse: bool = True, fwsa: str = "auto", calibration_file: str | Path | None = None) -> dict:
    """With `kernels="dsp"` and --verify on the Cortex-M, the portable build also runs in QEMU: it
    must give the same bits, and the report shows its per-layer instructions next to the DSP ones.
    `sparse` (sparsity.OBJECTIVES): how layers with block-sparse weights are coded; the choice is
    measured on the Cortex-M, so with --target host every layer stays dense. `fuse`: recognized
    attention blocks become one depth-first tiled op (attention.py); `fwsa` (auto|on|off): where
    they fold W_Q·W_Kᵀ, calibrated on `calibration_file`'s inputs, else on the verification inputs."""
    model_path, out_dir = Path(model_path).resolve(), Path(out_dir).resolve()
    if target not in TARGETS:
        raise EngineError(f"--target {target}: choose one of {', '.join(TARGETS)}")
    if kernels not in codegen.KERNEL_SETS:
        raise EngineError(f"--kernels {kernels}: choose one of {', '.join(codegen.KERNEL_SETS)}")
    if sparse not in sparsity.OBJECTIVES:
        raise EngineError(f"--sparse {sparse}: choose one of {', '.join(sparsity.OBJECTIVES)}")
    if fwsa not in attention.FWSA_MODES:
        raise EngineError(f"--fwsa {fwsa}: choose one of {', '.join(attention.FWSA_MODES)}")
    progress(f"[1/5] import {model_path}")
    g = build_graph(model_path)
    inputs = verify.load_inputs(g, Path(input_file) if input_file else None, max(n_random, 1), seed)
    calibration = verify.load_inputs(g, Path(calibration_file), 0, seed) if calibration_file else inputs
    unfused = copy.deepcopy(g) if fuse else None  # fusing edits g; the report builds the other FWSA form
    unfused_arena = planner.plan(g).peak
    if fuse:
        g = fuse_attention(g, fwsa, calibration)
    plan = planner.plan_with_tiles(g)
    blocks = [attention.summary(g, i, op) for i, op in enumerate(g.ops) if op.kind == "attention"]
    layers = sparsity.detect(g)
    candidates = [ls for ls in layers if ls.codings]
    if target == "cortex-m7" and sparse != "off":
        for ls in candidates:  # the budget with the most compact coding of each layer
            g.ops[ls.index].params["sparse"] = ls.smallest()
    check_budget(g, plan, profile)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    objects = tmp / "objects"  # the kernels' objects, compiled once for all of this compile's builds
    try:
        tin, tout = g.tensors[g.input], g.tensors[g.output]
        dense_totals = {}
        if target == "cortex-m7" and sparse != "off" and candidates:
            dense_totals = measure_codings(g, plan, candidates, profile, kernels, inputs, tmp / "choice", progress,
                                           objects)
        sparsity.choose(layers, sparse if target == "cortex-m7" else "off")
        sparsity.apply(g, layers)
        check_budget(g, plan, profile)
        if candidates and target != "cortex-m7":
            g.notes.append("block-sparse weights found; the sparse coding is chosen by Cortex-M measurement, "
                           "so with --target host every layer runs dense")
        progress(f"[2/5] generate C ({kernels} kernels): {len(g.ops)} layers, arena {plan.peak:,} B, "
                 f"{sum(ls.chosen is not None for ls in layers)} layers sparse")
        kernel_fns = codegen.generate(g, plan, tmp, kernels)
        mcu, ladder = None, None
        ref = verify.simulate(g, inputs) if verify_ladder else None
        if verify_ladder:
            ladder = [dict(rung="simulator", inputs=len(inputs))]
        if target == "host" or verify_ladder:
            progress("[3/5] host build (gcc -Wall -Wextra -Werror, ASan+UBSan)")
            exe = toolchain.build_host(tmp, tmp / "build" / "host")
            host_out = toolchain.run_host(exe, inputs, tout.size)
            if ladder is not None:
                ladder.append(verify.compare_exact("host C (ASan+UBSan)", host_out, ref))
        if target == "cortex-m7":
            progress(f"[4/5] {profile.core} build and QEMU run")
            build = toolchain.build_mcu(tmp, tmp / "build" / profile.core, profile, objects)
            run = toolchain.run_qemu(build, profile, inputs if verify_ladder else inputs[:1], tout.size)
            mcu = dict(flash_bytes=build.flash_bytes, sram_bytes=build.static_ram_bytes + run.stack_bytes,
                       static_ram_bytes=build.static_ram_bytes, stack_bytes=run.stack_bytes,
                       instructions=run.total_instructions, layer_instructions=run.layer_instructions,
                       sections=build.sections, clock_mhz=profile.clock_hz // 1_000_000,
                       cpi_assumed=profile.cpi_assumed, **dense_totals)
            if mcu["sram_bytes"] > profile.sram_bytes:
                raise EngineError(f"firmware is over the SRAM budget: {mcu['sram_bytes']:,} B > "
                                  f"{profile.sram_bytes:,} B of {profile.name}")
            if ladder is not None:
                ladder.append(verify.compare_exact(f"{profile.core} in QEMU", run.outputs, ref))
            if ladder is not None and kernels != "portable":
                progress(f"[4/5] {profile.core} build and QEMU run, portable kernels for comparison")
                plib = tmp / "build" / "portable-lib"
                codegen.generate(g, plan, plib, "portable")
                pbuild = toolchain.build_mcu(plib, tmp / "build" / f"{profile.core}-portable", profile, objects)
                prun = toolchain.run_qemu(pbuild, profile, inputs, tout.size)
                mcu.update(portable_layer_instructions=prun.layer_instructions,
                           portable_instructions=prun.total_instructions, portable_flash_bytes=pbuild.flash_bytes)
                ladder.append(verify.compare_exact(f"{profile.core} in QEMU, portable kernels", prun.outputs, ref))
        if mcu is not None and blocks:
            progress(f"[4/5] {profile.core} build and QEMU run, attention with the other FWSA choice")
            measure_other_fwsa(unfused, fwsa, calibration, inputs, profile, kernels, tmp / "other-fwsa",
                               blocks, objects, progress)
        for b in blocks:
            b.update(instructions=mcu["layer_instructions"][b["index"]] if mcu else None,
                     model_arena=plan.peak, unfused_model_arena=unfused_arena)
        if ladder is not None:
            progress("[5/5] onnxruntime reference")
            ort_out = verify.onnxruntime_outputs(model_path, g, inputs)
            if ort_out is not None:
                ladder.append(verify.compare_reference(ref, ort_out))
        rep = report.build(model_path.name, g, plan, profile, target, mcu, ladder, kernel_fns, kernels,
                           [ls.summary() for ls in layers], sparse, blocks)
        report.write(rep, tmp)
        failed = [r for r in (ladder or []) if r.get("exact") is False]
        if failed:
            raise EngineError("verification failed: " + "; ".join(
                f"{r['rung']} differs from the simulator on {r['differing']} of {r['elements']} elements"
                for r in failed))
        shutil.rmtree(objects, ignore_errors=True)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        tmp.rename(out_dir)
        return rep
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
