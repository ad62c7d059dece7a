"""The compile report: per layer and totals, as Markdown for people and JSON for tools."""
from __future__ import annotations

import json
from pathlib import Path


from .attention import seq_text
from .ir import Graph, param_bytes
from .planner import Plan
from .profiles import MCUProfile


def layer_rows(g: Graph, plan: Plan, instructions: list[int] | None, kernel_fns: list[str] | None = None,
               portable: list[int] | None = None, cycles: list[int] | None = None) -> list[dict]:
    rows = []
    for i, op in enumerate(g.ops):
        out = op.outputs[0]
        where = ("output" if out == g.output else f"{plan.offsets[out]}")
        wbytes = param_bytes(op)
        wbytes += sum(g.tensors[t].data.nbytes for t in op.inputs if g.tensors[t].is_const)
        rows.append(dict(index=i, name=op.name, onnx_op=op.onnx_op, kind=op.kind,
                         inputs=[list(g.tensors[t].shape) for t in op.inputs], output=list(g.tensors[out].shape),
                         macs=int(op.macs), weight_bytes=int(wbytes), arena_offset=where,
                         out_bytes=g.tensors[out].size,
                         kernel=kernel_fns[i] if kernel_fns else None,
                         instructions=instructions[i] if instructions else None,
                         cycles=cycles[i] if cycles else None,
                         portable_instructions=portable[i] if portable else None))
    return rows


def build(model: str, g: Graph, plan: Plan, profile: MCUProfile, target: str, mcu: dict | None,
          ladder: list[dict] | None, kernel_fns: list[str] | None = None, kernels: str = "dsp",
          sparse_layers: list[dict] | None = None, sparse: str = "off", attention: list[dict] | None = None) -> dict:
    """`sparse_layers`: sparsity.LayerSparsity.summary() of every codable layer; `attention`:
    attention.summary() of every fused attention block (with measured instructions)."""
    instr = mcu["layer_instructions"] if mcu else None
    rows = layer_rows(g, plan, instr, kernel_fns, (mcu or {}).get("portable_layer_instructions"),
                      (mcu or {}).get("layer_cycles"))
    for s in sparse_layers or []:
        rows[s["index"]].update(sparse_block=s["chosen_block"], dense_weight_bytes=s["dense_bytes"],
                                dense_instructions=s["dense_instructions"],
                                block_sparsity=s["sparsity"].get(str(s["chosen_block"])) if s["chosen_block"] else None)
    total = {"macs": sum(r["macs"] for r in rows), "weight_bytes": g.const_bytes(), "arena_bytes": plan.peak}
    if mcu:
        cycles = mcu.get("cycles")
        total.update(flash_bytes=mcu["flash_bytes"], sram_bytes=mcu["sram_bytes"], instructions=mcu["instructions"],
                     cycles=cycles, latency_ms_estimate=(cycles if cycles else mcu["instructions"] * profile.cpi_assumed)
                     / profile.clock_hz * 1e3)
    if mcu and "dense_instructions" in mcu:
        total.update(dense_instructions=mcu["dense_instructions"], dense_flash_bytes=mcu["dense_flash_bytes"])
    if mcu and "portable_instructions" in mcu:
        total.update(portable_instructions=mcu["portable_instructions"],
                     portable_flash_bytes=mcu["portable_flash_bytes"])
    return dict(model=model, profile=profile.name, core=profile.core, target=target, kernels=kernels, layers=rows,
                totals=total,
                budget=dict(flash_bytes=profile.flash_bytes, sram_bytes=profile.sram_bytes),
                mcu=mcu, verification=ladder, notes=g.notes, sparse_objective=sparse, sparse_layers=sparse_layers or [],
                attention=attention or [])


def _fmt(v) -> str:
    return "–" if v is None else (f"{v:,}" if isinstance(v, int) else str(v))


def _ratio(a, b) -> str:
    return f"{a / b:.2f}" if a and b else "–"


def _gain(fast, slow) -> str:
    return f"{slow / fast:.2f}x" if fast and slow else "–"


def markdown(rep: dict) -> str:
    t = rep["totals"]
    lines = [f"# SparseEngine report: {rep['model']}", "",
             f"Target `{rep['target']}`, profile `{rep['profile']}` ({rep['core']}, "
             f"{rep['budget']['flash_bytes'] // 1024} KB flash, {rep['budget']['sram_bytes'] // 1024} KB SRAM), "
             f"`{rep.get('kernels', 'dsp')}` kernels.", "",
             "| # | layer | ONNX op | kernel | inputs | output | MACs | weight B | arena offset | M7 instructions "
             "| est. cycles | MACs / cycle | portable C | gain |",
             "|---:|---|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rep["layers"]:
        ins = " ".join("x".join(map(str, s)) for s in r["inputs"])
        lines.append(f"| {r['index']} | {r['name']} | {r['onnx_op']} | {r.get('kernel') or r['kind']} | {ins} | "
                     f"{'x'.join(map(str, r['output']))} | {_fmt(r['macs'])} | {_fmt(r['weight_bytes'])} | "
                     f"{r['arena_offset']} | {_fmt(r['instructions'])} | {_fmt(r.get('cycles'))} | "
                     f"{_ratio(r['macs'], r.get('cycles'))} | {_fmt(r.get('portable_instructions'))} | "
                     f"{_gain(r['instructions'], r.get('portable_instructions'))} |")
    lines += ["", "## Totals", "",
              f"- MACs: {t['macs']:,}",
              f"- constants (weights, biases, requantization, tables): {t['weight_bytes']:,} B",
              f"- activation arena (static plan peak): {t['arena_bytes']:,} B"]
    if rep["mcu"]:
        m = rep["mcu"]
        lines += [f"- flash (firmware .text + .rodata + .data, harness included): {t['flash_bytes']:,} B "
                  f"of {rep['budget']['flash_bytes']:,}",
                  f"- SRAM (.data + .bss + stack high-water {m['stack_bytes']:,} B): {t['sram_bytes']:,} B "
                  f"of {rep['budget']['sram_bytes']:,}",
                  f"- executed instructions per inference (QEMU -icount, exact): {t['instructions']:,}"
                  + (f" (portable kernels: {t['portable_instructions']:,}, "
                     f"{_gain(t['instructions'], t['portable_instructions'])} fewer; portable flash "
                     f"{t['portable_flash_bytes']:,} B)" if "portable_instructions" in t else ""),
                  (f"- cycles per inference, **estimate** ({m['cycle_model']}; docs/cycles.md): {t['cycles']:,} "
                   f"({t['macs'] / t['cycles']:.2f} MACs per cycle); latency at {m['clock_mhz']} MHz: "
                   f"{t['latency_ms_estimate']:.2f} ms (not measured on silicon)" if t.get("cycles") else
                   f"- latency **estimate** at {m['clock_mhz']} MHz, assuming CPI {m['cpi_assumed']}: "
                   f"{t['latency_ms_estimate']:.2f} ms (not measured on silicon)"
                   + (f"; {m['cycles_note']}" if m.get("cycles_note") else ""))]
    if "dense_instructions" in t:
        lines += [f"- the same model dense (every layer's dense kernel): {t['dense_instructions']:,} instructions, "
                  f"flash {t['dense_flash_bytes']:,} B; sparse coding: {_gain(t['instructions'], t['dense_instructions'])}"
                  f" fewer instructions, {t['dense_flash_bytes'] - t['flash_bytes']:,} B less flash"]
    if rep.get("sparse_layers"):
        lines += sparse_section(rep)
    if rep.get("attention"):
        lines += attention_section(rep)
    if rep["verification"]:
        lines += ["", "## Verification ladder", ""]
        for r in rep["verification"]:
            if r["rung"] == "onnxruntime":
                extra = f", top-1 agreement {r['top1_agreement']:.3f}" if "top1_agreement" in r else ""
                gate = r.get("gate_max_abs_diff")
                verdict = ("; no gate (--max-ref-diff off), reported only" if gate is None else
                           f"; gate: largest difference <= {gate} (--max-ref-diff): "
                           f"{'passed' if r['passed'] else 'FAILED'}")
                lines.append(f"- onnxruntime: {r['differing']:,} of {r['elements']:,} elements differ "
                             f"({100 * r['share_differing']:.2f} %), largest difference {r['max_abs_diff']}{extra}"
                             f"{verdict}")
            elif r["rung"] == "simulator":
                lines.append(f"- simulator: reference on {r['inputs']} inputs")
            else:
                lines.append(f"- {r['rung']}: {'bit-exact' if r['exact'] else 'DIFFERS'} "
                             f"({r['differing']:,} of {r['elements']:,} elements differ)")
    if rep["notes"]:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in rep["notes"]]
    return "\n".join(lines) + "\n"


def _pct(v) -> str:
    return "–" if v is None else f"{100 * v:.0f} %"


def sparse_section(rep: dict) -> list[str]:
    """Per codable layer: block sparsity at every block size, the measured candidates, the choice."""
    lines = ["", f"## Sparse coding (objective `{rep.get('sparse_objective', 'off')}`)", "",
             "Block sparsity = share of all-zero blocks along the input channels, per block size. Candidates "
             "(sparsity >= 25 %, coding smaller than dense) are measured in QEMU; a coding is kept only if "
             "it runs in fewer instructions than the dense kernel.", "",
             "| # | layer | sparsity b=1/2/4/8/16 | dense B | dense instructions | candidates (b: B, instructions) "
             "| chosen | B | instructions | gain |",
             "|---:|---|---|---:|---:|---|---|---:|---:|---:|"]
    rows = {r["index"]: r for r in rep["layers"]}
    for s in rep["sparse_layers"]:
        sp = "/".join(_pct(s["sparsity"].get(str(b))) if str(b) in s["sparsity"] else "–" for b in (1, 2, 4, 8, 16))
        cands = "; ".join(f"{b}: {c['bytes']:,}, {_fmt(c['instructions'])}" for b, c in s["candidates"].items()) or "–"
        r = rows[s["index"]]
        chosen = f"sparse b={s['chosen_block']}" if s["chosen_block"] else "dense"
        lines.append(f"| {s['index']} | {s['name']} | {sp} | {s['dense_bytes']:,} | {_fmt(s['dense_instructions'])} | "
                     f"{cands} | {chosen} | {s['chosen_bytes']:,} | {_fmt(r['instructions'])} | "
                     f"{_gain(r['instructions'], s['dense_instructions'])} |")
    return lines


def attention_section(rep: dict) -> list[str]:
    """Per fused attention block: FWSA choice with parameters, MACs and instructions both ways;
    DFT tile and working memory against the materialized form; the model arena both ways."""
    lines = ["", "## Attention (fused: depth-first tiled; FWSA where it pays)", "",
             "Parameters = weights + biases of the four projections. Materialized = Q, K, V and all heads' "
             "S x S scores live at once (the unfused layers); S is one sequence's rows, x G when the block "
             "attends within G sequences (MobileViT patches); DFT = this layer's workspace at the chosen "
             "query-row tile (the context shares the output buffer when it fits).", "",
             "| # | block | H / S / E / P | FWSA | params unfused / FWSA | MACs unfused / FWSA | instructions "
             "unfused / FWSA | tile | working B materialized / DFT | model arena unfused / fused |",
             "|---:|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for b in rep["attention"]:
        mine, other = b.get("instructions"), b.get("other_instructions")
        unf, fw = (other, mine) if b["fwsa"] else (mine, other)
        choice = ("on" if b["fwsa"] else "off") + (" (pays)" if b["fwsa_pays"] else " (does not pay)")
        seq = seq_text(b["seq"], b["groups"])
        lines.append(f"| {b['index']} | {b['name']} | {b['heads']} / {seq} / {b['dim']} / {b['head_dim']} | "
                     f"{choice} | {b['params_unfused']:,} / {b['params_fwsa']:,} | {b['macs_unfused']:,} / "
                     f"{b['macs_fwsa']:,} | {_fmt(unf)} / {_fmt(fw)} | {b['tile']} | "
                     f"{b['materialized_bytes']:,} / {b['workspace_bytes']:,} | "
                     f"{_fmt(b.get('unfused_model_arena'))} / {_fmt(b.get('model_arena'))} |")
    tiles = "; ".join(f"{b['name']}: " + ", ".join(f"{t}: {pk:,}" for t, pk in b["tile_peaks"].items())
                      for b in rep["attention"])
    lines += ["", f"Model arena per candidate tile (bytes; the largest tile at the lowest peak is kept): {tiles}"]
    return lines


def write(rep: dict, out_dir: Path) -> None:
    (out_dir / "report.json").write_text(json.dumps(rep, indent=1))
    (out_dir / "report.md").write_text(markdown(rep))
