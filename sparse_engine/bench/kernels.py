"""Dense kernel benchmark: each case is a small QDQ model compiled with the project's own harness,
run in QEMU (mps2-an500, -icount: exact instruction counts) with the DSP and the portable kernels,
checked bit-exact against the simulator, and compared with the CMSIS-NN figures measured under
the same flags and counting (measured once, figures below; docs/architecture.md).
"""
from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from .. import cycles, profiles, toolchain, zoo
from ..compiler import compile_model

# (case name, zoo case, layer kind measured, CMSIS-NN instructions, target at most); None where
# no CMSIS-NN figure was measured (no target: compared with our portable kernel only).
# CMSIS-NN cycles: the same calls costed by another M7 model (an in-order pairing model on the same
# published rules, not llvm-mca; docs/cycles.md), so ours / CMSIS-NN in cycles mixes two estimators.
CMSIS_CYCLES = {"conv 3x3, 32x32x16 -> 16, pad 1": 4_560_597, "depthwise 3x3, 16x16x64": 1_038_370,
                "fully connected 1x256 -> 256": 126_215, "64 rows x 256 -> 256 (batched FC)": 4_745_675,
                "Q.K^T, 64x64 . (64x64)^T": 387_755, "softmax, 64 rows x 64": 1_829_102}
CASES = [
    ("conv 3x3, 32x32x16 -> 16, pad 1", dict(op="conv", shape=(1, 16, 32, 32), cout=16), "conv2d", 5_505_049, 4_600_000),
    ("depthwise 3x3, 16x16x64", dict(op="depthwise", shape=(1, 64, 16, 16)), "conv2d", 1_249_841, 900_000),
    ("depthwise 5x5, 16x16x64", dict(op="depthwise", shape=(1, 64, 16, 16), k=5), "conv2d", None, None),
    ("fully connected 1x256 -> 256", dict(op="gemm", shape=(1, 256), n=256), "fc", 135_688, 130_000),
    ("64 rows x 256 -> 256 (batched FC)", dict(op="gemm", shape=(64, 256), n=256), "fc", 6_698_212, 6_000_000),
    ("Q.K^T, 64x64 . (64x64)^T", dict(op="matmul_aa", shape=(64, 64)), "matmul", 544_132, 480_000),
    ("softmax, 64 rows x 64", dict(op="softmax", shape=(64, 64)), "softmax", 2_193_247, 800_000),
    ("residual add, 32x32x32 + 32x32x32", dict(op="add", shape=(1, 32, 32, 32)), "add", None, None),
    # small channel counts, where per-output requantization and per-pixel overhead weigh most
    ("first conv 3x3, 32x32x3 -> 16, pad 1", dict(op="conv", shape=(1, 3, 32, 32), cout=16), "conv2d", None, None),
    ("pointwise 1x1, 16x16x8 -> 32", dict(op="conv", shape=(1, 8, 16, 16), cout=32, k=1), "conv2d", None, None),
    ("pointwise 1x1, 16x16x16 -> 32", dict(op="conv", shape=(1, 16, 16, 16), cout=32, k=1), "conv2d", None, None),
    ("pointwise 1x1, 16x16x24 -> 32", dict(op="conv", shape=(1, 24, 16, 16), cout=32, k=1), "conv2d", None, None),
    ("pointwise 1x1, 16x16x32 -> 32", dict(op="conv", shape=(1, 32, 16, 16), cout=32, k=1), "conv2d", None, None),
    ("depthwise 3x3, 48x48x8", dict(op="depthwise", shape=(1, 8, 48, 48)), "conv2d", None, None),
    ("depthwise 3x3, 24x24x32", dict(op="depthwise", shape=(1, 32, 24, 24)), "conv2d", None, None),
]
# issue 31's cycle targets, as MACs per estimated cycle at least: dense 3x3 and 1x1 conv with
# C_in >= 16 at 1.2, depthwise 3x3 at 1 / 1.5 (at most 1.5 cycles per MAC)
CYCLE_TARGETS = {"conv 3x3, 32x32x16 -> 16, pad 1": 1.2, "pointwise 1x1, 16x16x16 -> 32": 1.2,
                 "pointwise 1x1, 16x16x24 -> 32": 1.2, "pointwise 1x1, 16x16x32 -> 32": 1.2,
                 "depthwise 3x3, 16x16x64": 1 / 1.5, "depthwise 3x3, 48x48x8": 1 / 1.5,
                 "depthwise 3x3, 24x24x32": 1 / 1.5}
CMSIS_SOURCE = "CMSIS-NN 99f736a6, -O3, same flags and counting, exact QEMU instructions"


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name).strip("_")[:40]


def kernel_code(elf: Path) -> dict[str, int]:
    """Bytes of every linked kernel function (symbols se_*) in the firmware."""
    out = subprocess.run([toolchain.arm_tool("nm"), "-S", "--size-sort", str(elf)], capture_output=True, text=True,
                         check=True).stdout
    sizes = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[2].lower() == "t" and parts[3].startswith("se_"):
            sizes[parts[3]] = sizes.get(parts[3], 0) + int(parts[1], 16)
    return sizes


def run_case(name: str, case: dict, kind: str, cmsis: int | None, target: int | None, work: Path) -> dict:
    slug = _slug(name)
    model = work / "models" / f"{slug}.onnx"
    model.parent.mkdir(parents=True, exist_ok=True)
    if not model.exists():
        zoo.quantize_qdq(zoo.single_op(case), model)
    out = work / slug
    rep = compile_model(model, out, "cortex-m7", profiles.get("stm32f746"), verify_ladder=True, n_random=3,
                        progress=lambda *_: None, kernels="dsp").report
    layer = next(r for r in rep["layers"] if r["kind"] == kind)
    code = kernel_code(out / "build" / "cortex-m7" / "firmware.elf")
    exact = all(r["exact"] for r in rep["verification"] if "exact" in r)
    ins, cyc = layer["instructions"], layer.get("cycles")
    cmsis_cyc = CMSIS_CYCLES.get(name)
    mpc = round(layer["macs"] / cyc, 3) if layer["macs"] and cyc else None
    cyc_target = CYCLE_TARGETS.get(name)
    return dict(case=name, kernel=layer["kernel"], macs=layer["macs"], instructions=ins, cycles_estimate=cyc,
                macs_per_cycle=mpc, target_macs_per_cycle_at_least=None if cyc_target is None else round(cyc_target, 3),
                meets_cycle_target=None if cyc_target is None or mpc is None else mpc >= round(cyc_target, 3),
                cmsis_nn_cycles_other_model=cmsis_cyc,
                cycle_ratio_to_cmsis_nn=round(cyc / cmsis_cyc, 3) if cyc and cmsis_cyc else None,
                portable_instructions=layer["portable_instructions"],
                macs_per_instruction=round(layer["macs"] / ins, 3) if layer["macs"] else None,
                kernel_code_bytes=code.get(layer["kernel"], 0), linked_kernel_code_bytes=sum(code.values()),
                linked_kernels=code, cmsis_nn_instructions=cmsis,
                ratio_to_cmsis_nn=None if cmsis is None else round(ins / cmsis, 3),
                target_at_most=target, meets_target=None if target is None else ins <= target, bit_exact=exact,
                ladder=[{k: v for k, v in r.items() if k in ("rung", "exact", "differing", "elements", "max_abs_diff")}
                        for r in rep["verification"]])


def run(work: Path, only: list[str] | None = None, progress=print) -> dict:
    cases = []
    for name, case, kind, cmsis, target in CASES:
        if only and not any(o.lower() in name.lower() for o in only):
            continue
        progress(f"[{len(cases) + 1}] {name}")
        cases.append(run_case(name, case, kind, cmsis, target, work))
    gcc = subprocess.run([toolchain.arm_tool("gcc"), "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    return dict(date=time.strftime("%Y-%m-%d"), compiler=gcc, flags="-O3 " + " ".join(profiles.get("stm32f746").cflags),
                counting="QEMU mps2-an500 -icount shift=7, CMSDK timer, empty mark pair subtracted",
                cycles=(cycles.MODEL.format(version=cycles.mca_version(), cpu="cortex-m7")
                        if cycles.unavailable() is None else cycles.unavailable()),
                cmsis_nn=CMSIS_SOURCE, cases=cases)


def table(results: dict) -> str:
    lines = ["| case | kernel | MACs | instructions | MAC/instr | est. cycles | MAC/cycle | cycle target MAC/cycle "
             "| meets | code B | portable C | CMSIS-NN | ours/CMSIS | cycles ours/CMSIS* | instr. target | meets "
             "| bit-exact |",
             "|---|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---|---|"]
    def fmt(v, spec: str) -> str:
        return "–" if v is None else format(v, spec)

    def yes_no(v) -> str:
        return "–" if v is None else ("yes" if v else "NO")

    for c in results["cases"]:
        meets = yes_no(c["meets_target"])
        lines.append(f"| {c['case']} | {c['kernel']} | {c['macs']:,} | {c['instructions']:,} | "
                     f"{fmt(c['macs_per_instruction'], '.2f')} | {fmt(c.get('cycles_estimate'), ',')} | "
                     f"{fmt(c.get('macs_per_cycle'), '.2f')} | {fmt(c.get('target_macs_per_cycle_at_least'), '.2f')} "
                     f"| {yes_no(c.get('meets_cycle_target'))} | {c['kernel_code_bytes']:,} | "
                     f"{c['portable_instructions']:,} | {fmt(c['cmsis_nn_instructions'], ',')} | "
                     f"{fmt(c['ratio_to_cmsis_nn'], '.2f')} | {fmt(c.get('cycle_ratio_to_cmsis_nn'), '.2f')} | "
                     f"{fmt(c['target_at_most'], ',')} | {meets} | "
                     f"{'yes' if c['bit_exact'] else 'NO'} |")
    lines.append("")
    lines.append("est. cycles: LLVM's M7 model over the executed blocks (docs/cycles.md); *CMSIS-NN's cycles come "
                 "from another estimator (a pairing model on the same rules), so that ratio mixes two models.")
    lines.append("code B = bytes of the measured kernel function alone; every case's linked se_* kernel code: "
                 + ", ".join(f"{_slug(c['case'])[:14]} {c['linked_kernel_code_bytes']:,} B" for c in results["cases"]))
    return "\n".join(lines)


def save(results: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(results, indent=1) + "\n")
    tmp.rename(path)
