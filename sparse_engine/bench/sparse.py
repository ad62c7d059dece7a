"""Sparse kernel benchmark: the weight-bearing cases of the dense benchmark, their int8 weights
block-pruned by magnitude (the smallest-L1 share of blocks along the input channels set to zero)
at 50/75/90/95 % and coded with blocks of 1, 4, 8, 16; each variant compiled with the sparse
kernels, run in QEMU (-icount, exact) and checked bit-exact against the simulator (which runs the
same zeroed weights dense). Speedups are against our dense DSP kernel on the same layer and the
CMSIS-NN figure of bench/kernels.py (CMSIS_SOURCE). Depthwise, Q.K^T and softmax have no weight
blocks along input channels and are not in it. The attention case is one fused attention op (the
shape of the full pipeline's MobileViT block at an 8x8 map) whose Q, K, V and O projections are
pruned and coded alike; CMSIS-NN has no attention op to compare with.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from .. import codegen, cycles, planner, profiles, sparse, sparsity, toolchain, verify, zoo
from ..compiler import build_graph, fuse_attention
from .kernels import CMSIS_CYCLES, CMSIS_SOURCE, _slug

SPARSITIES = (0.5, 0.75, 0.9, 0.95)
BLOCKS = (1, 4, 8, 16)
SPEEDUP_TARGET = 6.0  # x fewer instructions than CMSIS-NN at 90 % (the sparse target)
STORAGE_TARGET = 0.35  # coded bytes / dense int8 bytes at 75 %

# (case, zoo case, CMSIS-NN instructions, what the CMSIS-NN figure is)
CASES = [
    ("conv 3x3, 32x32x16 -> 16, pad 1", dict(op="conv", shape=(1, 16, 32, 32), cout=16), 5_505_049,
     "arm_convolve_wrapper_s8"),
    ("pointwise 1x1, 8x8x256 -> 256", dict(op="conv", shape=(1, 256, 8, 8), cout=256, k=1), 6_698_212,
     "arm_nn_mat_mult_nt_t_s8 64x256.(256x256)^T, the matmul of CMSIS-NN's 1x1 fast path"),
    ("fully connected 1x256 -> 256", dict(op="gemm", shape=(1, 256), n=256), 135_688, "arm_fully_connected_s8"),
    ("64 rows x 256 -> 256 (batched FC)", dict(op="gemm", shape=(64, 256), n=256), 6_698_212,
     "arm_nn_mat_mult_nt_t_s8 64x256.(256x256)^T"),
    ("attention S=64, E=96, 4 heads of 24 (Q, K, V, O pruned)", dict(op="attention", seq=64, dim=96, heads=4),
     None, "no attention op in CMSIS-NN"),
]


def prune_matrix(m: np.ndarray, block: int, share: float) -> np.ndarray:
    """W[N, K] with the `share` of its blocks of smallest L1 norm set to zero (exactly, ties by position)."""
    blocks = m.reshape(m.shape[0], -1, block).copy()
    norms = np.abs(blocks.astype(np.int64)).sum(axis=2)
    drop = np.argsort(norms, axis=None, kind="stable")[:int(round(share * norms.size))]
    blocks.reshape(-1, block)[drop] = 0
    return blocks.reshape(m.shape)


# CMSIS-NN's estimated cycles per case (kernels.CMSIS_CYCLES: another estimator than ours); the
# pointwise case's CMSIS-NN figure is the batched FC's matmul
CMSIS_CYCLES_SPARSE = {**CMSIS_CYCLES, "pointwise 1x1, 8x8x256 -> 256": CMSIS_CYCLES["64 rows x 256 -> 256 (batched FC)"]}


def _measure(g, work: Path, inputs: np.ndarray, index: int) -> tuple[str, int, int | None, bool]:
    """Kernel, Cortex-M7 instructions and estimated cycles of layer `index`, and bit-exactness of
    the QEMU outputs."""
    ref = verify.simulate(g, inputs)
    fns = codegen.generate(g, planner.plan(g), work / "lib", "dsp")
    m7 = profiles.get("stm32f746")
    build = toolchain.build_mcu(work / "lib", work / "build", m7)
    run = toolchain.run_qemu(build, m7, inputs, ref.shape[1])
    est = cycles.for_firmware(build.elf, inputs[:1], run.layer_instructions, m7.mca_cpu)
    cyc = est["layer_cycles"][index] if est["layer_cycles"] else None
    return fns[index], run.layer_instructions[index], cyc, bool(np.array_equal(run.outputs, ref))


def _attention_graph(case: dict, model: Path):
    """The fused attention op (FWSA off, tile S) of a quantized attention layer alone."""
    if not model.exists():
        zoo.quantize_qdq(zoo.attention_block(case["seq"], case["dim"], case["heads"], seed=0, gemm=True), model)
    g = build_graph(model)
    return fuse_attention(g, "off", verify.load_inputs(g, None, 2, 0))


def _prune_and_code(op, dense: dict, b: int, share: float):
    """op's weights pruned to `share` with blocks of b and coded; returns the coding (bytes)."""
    if op.kind != "attention":
        pm = prune_matrix(sparse.as_matrix(dense["weights"]), b, share)
        op.params["weights"] = sparse.from_matrix(pm, dense["weights"].shape)
        op.params["sparse"] = enc = sparse.encode(pm, b, dense["weights"].shape[-1], op.name)
        return enc
    for n in sparsity.PROJECTIONS:
        op.params[n]["weights"] = prune_matrix(dense[n], b, share)
    op.params["sparse"] = enc = sparsity.projection_codings(op.params, b)
    return enc


def run_case(name: str, case: dict, cmsis: int | None, cmsis_what: str, work: Path, progress=print) -> dict:
    slug = _slug(name)
    model = work / "models" / f"{slug}.onnx"
    model.parent.mkdir(parents=True, exist_ok=True)
    if case["op"] == "attention":
        g = _attention_graph(case, model)
    else:
        if not model.exists():
            zoo.quantize_qdq(zoo.single_op(case), model)
        g = build_graph(model)
    index, op = next((i, o) for i, o in enumerate(g.ops) if o.kind in ("fc", "conv2d", "attention"))
    if op.kind == "attention":
        dense_w = {n: op.params[n]["weights"] for n in sparsity.PROJECTIONS}
        dense_bytes = sum(int(w.nbytes) for w in dense_w.values())
    else:
        dense_w = dict(weights=op.params["weights"])
        dense_bytes = int(dense_w["weights"].nbytes)
    inputs = verify.load_inputs(g, None, 2, 0)
    kernel, dense, dense_cyc, exact = _measure(g, work / slug / "dense", inputs, index)
    cmsis_cyc = CMSIS_CYCLES_SPARSE.get(name)
    rows = []
    for share in SPARSITIES:
        for b in BLOCKS:
            enc = _prune_and_code(op, dense_w, b, share)
            fn, ins, cyc, ok = _measure(g, work / slug / f"s{int(share * 100)}_b{b}", inputs, index)
            progress(f"    {int(share * 100)} % b={b}: {ins:,} instructions, {enc.nbytes:,} B, "
                     f"{'bit-exact' if ok else 'DIFFERS'}")
            rows.append(dict(sparsity=share, block=b, kernel=fn, instructions=ins, weight_bytes=enc.nbytes,
                             storage_ratio=round(enc.nbytes / dense_bytes, 4),
                             speedup_vs_dense=round(dense / ins, 3),
                             speedup_vs_cmsis_nn=round(cmsis / ins, 3) if cmsis else None, cycles_estimate=cyc,
                             cycle_speedup_vs_dense=round(dense_cyc / cyc, 3) if cyc and dense_cyc else None,
                             cycle_speedup_vs_cmsis_nn=round(cmsis_cyc / cyc, 3) if cyc and cmsis_cyc else None,
                             bit_exact=ok))
    at90 = [r for r in rows if r["sparsity"] == 0.9]
    best90 = max(at90, key=lambda r: r["speedup_vs_cmsis_nn" if cmsis else "speedup_vs_dense"])
    at75 = [r for r in rows if r["sparsity"] == 0.75 and r["block"] >= 4]
    return dict(case=name, macs=int(op.macs), dense_kernel=kernel, dense_instructions=dense,
                dense_cycles_estimate=dense_cyc, cmsis_nn_cycles_other_model=cmsis_cyc, dense_bit_exact=exact,
                dense_weight_bytes=dense_bytes, cmsis_nn_instructions=cmsis, cmsis_nn_kernel=cmsis_what,
                rows=rows, best_at_90=dict(block=best90["block"], speedup_vs_cmsis_nn=best90["speedup_vs_cmsis_nn"],
                                           speedup_vs_dense=best90["speedup_vs_dense"],
                                           cycle_speedup_vs_cmsis_nn=best90["cycle_speedup_vs_cmsis_nn"],
                                           cycle_speedup_vs_dense=best90["cycle_speedup_vs_dense"]),
                meets_speedup_target=best90["speedup_vs_cmsis_nn"] >= SPEEDUP_TARGET if cmsis else None,
                meets_storage_target=all(r["storage_ratio"] <= STORAGE_TARGET for r in at75),
                bit_exact=exact and all(r["bit_exact"] for r in rows))


def run(work: Path, only: list[str] | None = None, progress=print) -> dict:
    work = Path(work).resolve()
    cases = []
    for name, case, cmsis, what in CASES:
        if only and not any(o.lower() in name.lower() for o in only):
            continue
        progress(f"[{len(cases) + 1}] {name}")
        cases.append(run_case(name, case, cmsis, what, work, progress))
    return dict(date=time.strftime("%Y-%m-%d"), counting="QEMU mps2-an500 -icount shift=7, empty mark pair subtracted",
                pruning="per layer, the given share of blocks (along input channels) with the smallest L1 norm",
                weight_bytes="coded weights: counts (uint16 per output channel) + skips + values",
                targets=dict(speedup_vs_cmsis_at_90=SPEEDUP_TARGET, storage_ratio_at_75_blocks_4_8_16=STORAGE_TARGET),
                cmsis_nn=CMSIS_SOURCE, cases=cases)


def table(results: dict) -> str:
    lines = []
    for c in results["cases"]:
        lines += [f"### {c['case']}", "",
                  f"dense: {c['dense_instructions']:,} instructions ({c['dense_kernel']}), {c['dense_weight_bytes']:,} B; "
                  f"CMSIS-NN {_count(c['cmsis_nn_instructions'])} ({c['cmsis_nn_kernel']})", "",
                  "| sparsity | block | kernel | instructions | weight B | / dense B | x vs our dense | x vs CMSIS-NN "
                  "| est. cycles | x vs dense (cycles) | x vs CMSIS-NN (cycles*) | bit-exact |",
                  "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
        for r in c["rows"]:
            lines.append(f"| {100 * r['sparsity']:.0f} % | {r['block']} | {r['kernel']} | {r['instructions']:,} | "
                         f"{r['weight_bytes']:,} | {r['storage_ratio']:.3f} | {r['speedup_vs_dense']:.2f} | "
                         f"{_ratio(r['speedup_vs_cmsis_nn'])} | {_count(r.get('cycles_estimate'))} | "
                         f"{_ratio(r.get('cycle_speedup_vs_dense'))} | {_ratio(r.get('cycle_speedup_vs_cmsis_nn'))} | "
                         f"{'yes' if r['bit_exact'] else 'NO'} |")
        best = c["best_at_90"]
        versus = (f"{best['speedup_vs_cmsis_nn']:.2f}x vs CMSIS-NN (b={best['block']}), target {SPEEDUP_TARGET:.0f}x: "
                  f"{'met' if c['meets_speedup_target'] else 'NOT MET'}" if c["cmsis_nn_instructions"]
                  else f"{best['speedup_vs_dense']:.2f}x vs our dense (b={best['block']})")
        lines += ["", f"at 90 %: best {versus} (in estimated cycles: {_ratio(best.get('cycle_speedup_vs_cmsis_nn'))}x "
                  f"vs CMSIS-NN*, {_ratio(best.get('cycle_speedup_vs_dense'))}x vs our dense); storage at 75 % "
                  f"(b=4/8/16) <= {STORAGE_TARGET}: {'met' if c['meets_storage_target'] else 'NOT MET'}", ""]
    lines.append("*CMSIS-NN's cycles come from another estimator (a pairing model on the same rules; docs/cycles.md).")
    return "\n".join(lines)


def _count(n: int | None) -> str:
    return "-" if n is None else f"{n:,}"


def _ratio(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"
