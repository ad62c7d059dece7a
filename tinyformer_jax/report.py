"""Reports of the runs: the fixed-hybrid run's summary lines, and the TinyFormer run's report.md
with the chosen model's figures, the search, the verification ladder, and plots (Pareto front,
accuracy vs flash, per-layer memory and instructions, sparsity per layer) as PNG files beside it."""
from __future__ import annotations

from pathlib import Path

import matplotlib

from sparse_engine import profiles

from .files import write_text
from .models.hybrid import describe_blocks

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

PAPER = "TinyFormer (paper): 96.1 % CIFAR-10 int8 in 1 MB flash / 320 KB SRAM (STM32F746)"


def rung_line(r: dict) -> str:
    if "exact" in r:
        return f"{r['rung']} {'bit-exact' if r['exact'] else 'DIFFERS'}"
    if r["rung"] == "onnxruntime":
        return (f"onnxruntime {100 * r['share_differing']:.1f} % of elements differ, largest {r['max_abs_diff']}, "
                f"top-1 agreement {r.get('top1_agreement', 1.0):.3f}")
    return f"{r['rung']} on {r.get('inputs', '?')} inputs"


def hybrid_summary_lines(f: dict) -> list[str]:
    n = f"{f['test_images']:,}"
    agree = f["onnxruntime_vs_fake_quant"]
    rows = [
        (f"float accuracy (JAX, {n} test images)", f"{100 * f['float_accuracy']:.2f} %"),
        ("fake-quant accuracy (JAX QAT model)", f"{100 * f['fake_quant_accuracy']:.2f} %"),
        (f"int8 accuracy, SparseEngine simulator ({n} images)", f"{100 * f['int8_simulator_accuracy']:.2f} %"
         f"   ({f['int8_minus_fake_quant_points']:+.2f} points vs fake-quant, top-1 agreement "
         f"{f.get('int8_vs_fake_quant_top1_agreement', float('nan')):.4f})"),
        (f"int8 accuracy, onnxruntime ({n} images)", f"{100 * f['onnxruntime_accuracy']:.2f} %"),
        ("onnxruntime vs JAX fake-quant", f"top-1 agreement {agree['top1_agreement']:.4f}, largest logit "
                                          f"difference {agree['max_abs_logit_difference']:.4f}"),
        ("flash (linked firmware)", f"{f['flash_bytes']:,} B   ({f['profile']})"),
        ("SRAM (.data + .bss + stack high-water mark)", f"{f['sram_bytes']:,} B"),
        ("Cortex-M7 instructions per inference (exact)", f"{f['instructions_per_inference']:,}"),
        *_cycle_rows(f),
    ]
    width = max(len(k) for k, _ in rows)
    return [f"{k:<{width}}  {v}" for k, v in rows] + ["verification ladder: " + "; ".join(rung_line(r) for r in f["ladder"])]


def _cycle_rows(f: dict) -> list[tuple[str, str]]:
    """The firmware's estimated cycles and latency (docs/cycles.md), where the summary has them."""
    if not f.get("cycles_estimate"):
        return []
    return [("Cortex-M7 cycles per inference (estimate, LLVM's M7 model)",
             f"{f['cycles_estimate']:,}   (latency {f['latency_ms_estimate']:.2f} ms at "
             f"{profiles.get(f['profile']).clock_hz / 1e6:.0f} MHz, not measured)")]


def summary_lines(f: dict) -> list[str]:
    p, lim = f["predicted"], f["budget"]
    rows = [
        ("chosen candidate (path, sparsity, block indices)", f["chosen"]["candidate"]),
        (f"int8 accuracy, SparseEngine simulator ({f['test_images']:,} test images)", f"{100 * f['int8_accuracy']:.2f} %"),
        ("fake-quant accuracy (JAX QAT, the same images)", f"{100 * f['fake_quant_accuracy']:.2f} %"),
        ("flash (linked firmware / predicted)", f"{f['flash_bytes']:,} B / {p['flash_bytes']:,} B   "
                                                f"(limit {lim['flash_bytes']:,})"),
        ("SRAM (firmware / predicted)", f"{f['sram_bytes']:,} B / {p['sram_bytes']:,} B   (limit {lim['sram_bytes']:,})"),
        ("arena (firmware / predicted)", f"{f['arena_bytes']:,} B / {p['arena_bytes']:,} B"),
        ("Cortex-M7 instructions (firmware / predicted)", f"{f['instructions']:,} / {p['instructions']:,}"),
        *_cycle_rows(f),
        ("search", f"{f['search']['evaluated']} candidates, {f['search']['fitting']} fit, "
                   f"Pareto front {len(f['search']['pareto'])}"),
    ]
    width = max(len(k) for k, _ in rows)
    return ([f"{k:<{width}}  {v}" for k, v in rows] + ["verification ladder: " + "; ".join(rung_line(r) for r in f["ladder"])]
            + [PAPER])


def _save(fig, path: Path) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name


def _plots(f: dict, rep: dict, archive: dict, out: Path) -> dict[str, str]:
    rows = [r for r in archive.values() if r.get("accuracy") is not None]
    rejected = [r for r in archive.values() if not r["fits"]]
    front = f["search"]["pareto"]
    names = {}
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    if rows:
        sc = ax.scatter([r["flash_bytes"] / 1024 for r in rows], [100 * r["accuracy"] for r in rows],
                        c=[r["instructions"] / 1e6 for r in rows], cmap="viridis", s=22, label="fits")
        fig.colorbar(sc, ax=ax, label="M instructions")
    ax.plot([r["flash_bytes"] / 1024 for r in front], [100 * r["accuracy"] for r in front], "r-o", ms=4, lw=1,
            label="Pareto front")
    ax.axvline(f["budget"]["flash_bytes"] / 1024, color="gray", ls="--", lw=1, label="flash limit")
    ax.set(xlabel="flash (KiB, cost model)", ylabel="search accuracy (%)", title="SparseNAS: accuracy vs flash")
    ax.legend(fontsize=8)
    names["pareto"] = _save(fig, out / "pareto.png")

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    everything = list(archive.values())
    ax.scatter([r["flash_bytes"] / 1024 for r in everything], [r["sram_bytes"] / 1024 for r in everything],
               c=["tab:green" if r["fits"] else "tab:red" for r in everything], s=16)
    ax.axhline(f["budget"]["sram_bytes"] / 1024, color="gray", ls="--", lw=1)
    ax.axvline(f["budget"]["flash_bytes"] / 1024, color="gray", ls="--", lw=1)
    ax.set(xlabel="flash (KiB)", ylabel="SRAM (KiB)",
           title=f"candidates: {len(everything) - len(rejected)} fit (green), {len(rejected)} rejected (red)")
    names["memory"] = _save(fig, out / "candidates_memory.png")

    layers = rep["layers"]
    fig, axes = plt.subplots(3, 1, figsize=(9, 7.5), sharex=True)
    idx = [r["index"] for r in layers]
    axes[0].bar(idx, [(r["instructions"] or 0) / 1e3 for r in layers], color="tab:blue")
    axes[0].set(ylabel="k instructions", title="per layer (Cortex-M7 firmware)")
    axes[1].bar(idx, [r["weight_bytes"] / 1024 for r in layers], color="tab:orange")
    axes[1].set(ylabel="weights (KiB flash)")
    axes[2].bar(idx, [r["out_bytes"] / 1024 for r in layers], color="tab:purple")
    axes[2].set(ylabel="output (KiB SRAM)", xlabel="layer")
    names["layers"] = _save(fig, out / "layers.png")

    ch = f["chosen"]
    n = len(ch["layers"])
    fig, ax = plt.subplots(figsize=(max(6.5, 0.32 * n), 4.2))
    u = list(range(n))
    ax.bar([i - 0.2 for i in u], ch["sparsity_target"], 0.4, label="target (block share)")
    ax.bar([i + 0.2 for i in u], ch["sparsity_achieved"], 0.4, label="masked weights")
    ax.set_xticks(u, [f"{name.removesuffix('/w')} b{b}" for name, b in zip(ch["layers"], ch["block_sizes"])],
                  rotation=90, fontsize=6)
    ax.set(ylabel="sparsity", ylim=(0, 1), title="sparsity per prunable layer (b: block size)")
    ax.legend(fontsize=8)
    names["sparsity"] = _save(fig, out / "sparsity.png")
    return names


def write(f: dict, rep: dict, archive: dict, out: Path) -> Path:
    """report.md and its plots into `out` (written beside, renamed into place at the end)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    plots = _plots(f, rep, archive, out)
    sn = f["supernas"]
    lines = ["# TinyFormer-JAX: searched, pruned, quantized and deployed", "", "```", *summary_lines(f), "```", "",
             "## SuperNAS", "", "| space | override | fit rate | mean MACs of fitting subnets |", "|---|---|---|---|"]
    for r in sn["spaces"]:
        mark = " (chosen)" if r["space"] == sn["chosen"] else ""
        lines.append(f"| {r['space']}{mark} | `{r['override']}` | {100 * r['fit_rate']:.0f} % | "
                     f"{r['mean_fitting_macs']:,.0f} |")
    lines += ["", "## SparseNAS", "", f"![accuracy vs flash]({plots['pareto']})", "",
              f"![candidates]({plots['memory']})", "", "Pareto front (accuracy, flash, instructions):", "",
              "| candidate | accuracy | flash | SRAM | instructions |", "|---|---|---|---|---|"]
    for r in f["search"]["pareto"]:
        lines.append(f"| `{r['key']}` | {100 * r['accuracy']:.2f} % | {r['flash_bytes']:,} | {r['sram_bytes']:,} | "
                     f"{r['instructions']:,} |")
    ch = f["chosen"]
    lines += ["", "## Chosen model", "", "| # | block | output |", "|---:|---|---|"]
    lines += [f"| {i} | {text} | {shape} |" for i, (text, shape) in
              enumerate(describe_blocks(ch["blocks"], ch["stem"]), 1)]
    lines += ["", f"Config blocks: `{ch['blocks']}`", "",
              f"![sparsity]({plots['sparsity']})", "", "| prunable layer | block size | target sparsity | masked |",
              "|---|---|---|---|"]
    lines += [f"| `{name}` | {b} | {100 * t:.0f} % | {100 * a:.1f} % |" for name, b, t, a in
              zip(ch["layers"], ch["block_sizes"], ch["sparsity_target"], ch["sparsity_achieved"])]
    lines += ["", f"![layers]({plots['layers']})", "", f"SparseEngine's own report: `{f['engine']}/report.md`.", ""]
    return write_text(out / "report.md", "\n".join(lines) + "\n")
