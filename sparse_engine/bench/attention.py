"""Attention benchmark: memory peak, parameters and Cortex-M7 instructions of one attention layer,
naive (the unfused layers, all heads' scores in memory) vs FWSA vs DFT vs both.

Each configuration is an attention layer alone ([1, S, E] -> [1, S, E], zoo.attention_block,
quantized by onnxruntime; [G S, E] for G sequences of S rows, MobileViT patches). Its activation arena is the attention's working memory: the model's
input and output live in the caller's buffers. FWSA alone = the fused op with one tile of S
query rows (one head's S x S scores at a time); DFT = the planner's tile. Instructions are
counted in QEMU on one input, and the firmware output must equal the simulator (bit_exact); a
form whose arena does not fit the profile's SRAM gets its memory figures only.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import attention, codegen, planner, profiles, toolchain, verify, zoo
from ..compiler import build_graph, fuse_attention

GRID = [dict(seq=s, dim=e, heads=h) for s in (64, 128, 256) for e in (64, 128) for h in (4, 8)]
# the configurations of Jung et al. 2024 (arXiv 2404.02945), who report DFT lowering the attention
# memory peak by up to 6.19x over their models
PAPER_REDUCTION = "up to 6.19x"
PAPERS = [dict(name="EEGFormer", seq=81, dim=32, head_dim=32, heads=8),
          dict(name="ECGFormer", seq=66, dim=16, head_dim=2, heads=8)]
# a MobileViT block's attention at a 16x16 map: every pixel a token (one sequence of 256), or 2x2
# patches (4 sequences of 64 tokens; `groups`), the same weights shapes
MOBILEVIT = [dict(name="MobileViT-16x16-patch1", seq=256, dim=64, heads=4),
             dict(name="MobileViT-16x16-patch2", seq=64, groups=4, dim=64, heads=4)]
FORMS = ("naive", "fwsa", "dft", "fwsa+dft")


def _form(path: Path, form: str, inputs: np.ndarray):
    g = build_graph(path)
    if form == "naive":
        return g, planner.plan(g)
    g = fuse_attention(g, "on" if "fwsa" in form else "off", inputs)
    if form == "fwsa":
        op = next(op for op in g.ops if op.kind == "attention")
        attention.set_tile(g, op, op.params["seq"])
        return g, planner.plan(g)
    return g, planner.plan_with_tiles(g)


def run_case(case: dict, work: Path, profile) -> dict:
    name = case.get("name") or f"S{case['seq']}-E{case['dim']}-H{case['heads']}"
    pd = case.get("head_dim") or case["dim"] // case["heads"]
    groups = case.get("groups", 1)
    (work / name).mkdir(parents=True, exist_ok=True)
    path = zoo.quantize_qdq(zoo.attention_block(groups * case["seq"], case["dim"], case["heads"], pd, seed=0,
                                                groups=groups), work / name / "model.onnx")
    g0 = build_graph(path)
    inputs = verify.load_inputs(g0, None, 4, 0)
    costs = attention.costs(case["heads"], case["seq"], case["dim"], pd, case["dim"], groups)
    res = dict(name=name, seq=case["seq"], groups=groups, dim=case["dim"], heads=case["heads"], head_dim=pd,
               forms={})
    for form in FORMS:
        g, plan = _form(path, form, inputs)
        op = next((op for op in g.ops if op.kind == "attention"), None)
        r = dict(peak_bytes=plan.peak, params=costs["params_fwsa" if "fwsa" in form else "params_unfused"],
                 macs=costs["macs_fwsa" if "fwsa" in form else "macs_unfused"],
                 tile=op.params["tile"] if op else None, instructions=None, bit_exact=None)
        io = g.tensors[g.input].size + g.tensors[g.output].size
        if plan.peak + io + profile.stack_bytes <= profile.sram_bytes:
            lib = work / name / form
            codegen.generate(g, plan, lib / "lib", "dsp")
            build = toolchain.build_mcu(lib / "lib", lib / "build", profile)
            run = toolchain.run_qemu(build, profile, inputs[:1], g.tensors[g.output].size)
            r.update(instructions=run.total_instructions, flash_bytes=build.flash_bytes,
                     bit_exact=bool(np.array_equal(run.outputs, verify.simulate(g, inputs[:1]))))
        res["forms"][form] = r
    naive = res["forms"]["naive"]["peak_bytes"]
    for r in res["forms"].values():
        r["peak_reduction"] = round(naive / r["peak_bytes"], 2) if r["peak_bytes"] else None
    res["bit_exact"] = all(r["bit_exact"] is not False for r in res["forms"].values())  # None: over SRAM
    if case in PAPERS:
        res["paper_reduction"] = PAPER_REDUCTION
    return res


def run(work: Path, only: list[str] | None = None, progress=print) -> dict:
    profile = profiles.get(profiles.DEFAULT)
    work = work.resolve()
    cases = []
    for case in GRID + PAPERS + MOBILEVIT:
        name = case.get("name") or f"S{case['seq']}-E{case['dim']}-H{case['heads']}"
        if only and not any(o in name for o in only):
            continue
        progress(f"attention {name}")
        cases.append(run_case(case, work, profile))
    return dict(profile=profile.name, core=profile.core, forms=list(FORMS), cases=cases)


def table(results: dict) -> str:
    lines = ["| case | H / S / E / P | form | tile | peak B | reduction | params | MACs | M7 instructions | exact |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for c in results["cases"]:
        for form, r in c["forms"].items():
            ins = f"{r['instructions']:,}" if r["instructions"] is not None else "over SRAM"
            ex = "–" if r["bit_exact"] is None else ("yes" if r["bit_exact"] else "NO")
            seq = attention.seq_text(c["seq"], c["groups"])
            lines.append(f"| {c['name']} | {c['heads']} / {seq} / {c['dim']} / {c['head_dim']} | {form} | "
                         f"{r['tile'] or '–'} | {r['peak_bytes']:,} | {r['peak_reduction']}x | {r['params']:,} | "
                         f"{r['macs']:,} | {ins} | {ex} |")
    papers = [c for c in results["cases"] if "paper_reduction" in c]
    if papers:
        lines += ["", "DFT peak reduction, ours (fwsa+dft and dft vs naive) against Jung et al. 2024:"]
        for c in papers:
            ours = c["forms"]
            paper = c["paper_reduction"]
            lines.append(f"- {c['name']}: dft {ours['dft']['peak_reduction']}x, fwsa+dft "
                         f"{ours['fwsa+dft']['peak_reduction']}x; paper {paper}")
    return "\n".join(lines)

