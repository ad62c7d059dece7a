"""Whole-model benchmark: MLPerf Tiny's four int8 models (from their .tflite files), the main job's
CIFAR-10 hybrid (its exported QDQ ONNX, committed under benchmarks/models/) and an EEGFormer-shaped
transformer (zoo.eegformer, random weights, quantized by onnxruntime). Each is compiled for the
STM32F746 profile with the verification ladder (a few random inputs: host C, QEMU DSP and
portable kernels, plus LiteRT's reference kernels for .tflite), and reported with flash and SRAM
from the linked ELF, exact instructions, estimated cycles (docs/cycles.md), latency at the
profile's clock, and cycles per MAC per kernel; MLPerf rows next to the cycles published for
MLPerf Tiny v1.2 on Cortex-M7 boards, with X-CUBE-AI's as the target.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

from .. import cycles, profiles, zoo
from ..compiler import compile_model
from ..errors import EngineError

MLPERF = ("ic_resnet8", "kws_dscnn", "vww_mobilenetv1", "ad_autoencoder")
# MLPerf Tiny v1.2 closed division, measured on boards: cycles = latency x clock (Cortex-M7 both)
PUBLISHED_CYCLES = {
    "x_cube_ai_stm32h7a3_280mhz": dict(ic_resnet8=11.42e6, kws_dscnn=3.16e6, vww_mobilenetv1=6.66e6,
                                       ad_autoencoder=0.344e6),
    "hale_stm32f746_216mhz": dict(ic_resnet8=13.52e6, kws_dscnn=4.10e6, vww_mobilenetv1=12.36e6,
                                  ad_autoencoder=0.369e6),
}
TARGET = "x_cube_ai_stm32h7a3_280mhz"  # issue 31: at or below X-CUBE-AI's measured cycles
HYBRID = Path(__file__).resolve().parents[2] / "benchmarks" / "models" / "hybrid_cifar10_cpu_qdq.onnx"
PROFILE = "stm32f746"


def default_mlperf_dir() -> Path:
    """$MLPERF_TINY_DIR, else ../shared/data/mlperf_tiny beside the checkout."""
    env = os.environ.get("MLPERF_TINY_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[3] / "shared" / "data" / "mlperf_tiny"


def cycles_per_mac(rep: dict) -> dict:
    """Estimated cycles per MAC of each kernel function, over the layers that run it with MACs."""
    by_kernel: dict[str, list[int]] = {}
    for r in rep["layers"]:
        if r["macs"] and r.get("cycles"):
            acc = by_kernel.setdefault(r["kernel"], [0, 0])
            acc[0] += r["cycles"]
            acc[1] += r["macs"]
    return {k: round(c / m, 2) for k, (c, m) in sorted(by_kernel.items())}


def sources(work: Path, mlperf_dir: Path) -> list[tuple[str, Path]]:
    """(name, model file) of every benchmarked model; the EEGFormer model is written into work."""
    missing = [m for m in MLPERF if not (mlperf_dir / f"{m}_int8.tflite").exists()]
    if missing:
        raise EngineError(f"{mlperf_dir}: no {missing[0]}_int8.tflite (MLPerf Tiny's trained models; pass "
                          "--mlperf-dir or set MLPERF_TINY_DIR)")
    out = [(m, mlperf_dir / f"{m}_int8.tflite") for m in MLPERF]
    out.append(("hybrid_cifar10_cpu", HYBRID))
    eeg = work / "models" / "eegformer.onnx"
    if not eeg.exists():
        eeg.parent.mkdir(parents=True, exist_ok=True)
        zoo.quantize_qdq(zoo.eegformer(), eeg)
    out.append(("eegformer", eeg))
    return out


def run_model(name: str, path: Path, work: Path) -> dict:
    profile = profiles.get(PROFILE)
    rep = compile_model(path, work / name, "cortex-m7", profile, verify_ladder=True, n_random=3,
                        progress=lambda *_: None).report
    mcu = rep["mcu"]
    cyc, macs = mcu.get("cycles"), rep["totals"]["macs"]
    published = {k: v[name] for k, v in PUBLISHED_CYCLES.items() if name in v}
    target = published.get(TARGET)
    return dict(model=name, source=path.name, macs=macs, flash_bytes=mcu["flash_bytes"], sram_bytes=mcu["sram_bytes"],
                instructions=mcu["instructions"], cycles_estimate=cyc, cycles_note=mcu.get("cycles_note"),
                latency_ms_estimate=round(cyc / profile.clock_hz * 1e3, 2) if cyc else None,
                macs_per_cycle=round(macs / cyc, 3) if cyc else None, cycles_per_mac=cycles_per_mac(rep),
                attention=[{k: a.get(k) for k in ("name", "fwsa", "tile")} for a in rep.get("attention", [])],
                published_cycles=published, target_cycles_at_most=target,
                ratio_to_target=round(cyc / target, 3) if cyc and target else None,
                meets_target=None if not (cyc and target) else cyc <= target,
                bit_exact=all(r["exact"] for r in rep["verification"] if "exact" in r),
                ladder={r["rung"]: r.get("differing") for r in rep["verification"][1:]})


def run(work: Path, only: list[str] | None = None, progress=print, mlperf_dir: Path | None = None) -> dict:
    rows = []
    for name, path in sources(work, mlperf_dir or default_mlperf_dir()):
        if only and not any(o.lower() in name.lower() for o in only):
            continue
        progress(f"[{len(rows) + 1}] {name} ({path.name})")
        rows.append(run_model(name, path, work))
    return dict(date=time.strftime("%Y-%m-%d"), profile=PROFILE,
                cycles=(cycles.MODEL.format(version=cycles.mca_version(), cpu="cortex-m7")
                        if cycles.unavailable() is None else cycles.unavailable()),
                published="MLPerf Tiny v1.2 closed division results (latency x clock)", target=TARGET, cases=rows)


def table(results: dict) -> str:
    def fmt(v, spec: str = ",") -> str:
        return "–" if v is None else format(v, spec)

    lines = ["| model | MACs | flash B | SRAM B | instructions | est. cycles | ms @216 MHz | MAC/cycle | X-CUBE-AI "
             "| HALE | target | ours/target | meets | bit-exact |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|"]
    for c in results["cases"]:
        pub = c["published_cycles"]
        meets = "–" if c["meets_target"] is None else ("yes" if c["meets_target"] else "NO")
        lines.append(f"| {c['model']} | {c['macs']:,} | {c['flash_bytes']:,} | {c['sram_bytes']:,} | "
                     f"{c['instructions']:,} | {fmt(c['cycles_estimate'])} | {fmt(c['latency_ms_estimate'], '.2f')} | "
                     f"{fmt(c['macs_per_cycle'], '.2f')} | {fmt(pub.get('x_cube_ai_stm32h7a3_280mhz'), ',.0f')} | "
                     f"{fmt(pub.get('hale_stm32f746_216mhz'), ',.0f')} | {fmt(c['target_cycles_at_most'], ',.0f')} | "
                     f"{fmt(c['ratio_to_target'], '.2f')} | {meets} | {'yes' if c['bit_exact'] else 'NO'} |")
    lines += ["", "est. cycles per MAC by kernel:"]
    for c in results["cases"]:
        lines.append(f"- {c['model']}: " + ", ".join(f"{k} {v}" for k, v in c["cycles_per_mac"].items()))
    lines += ["", f"est. cycles: {results['cycles']} (docs/cycles.md); published: {results['published']}; "
              "target: X-CUBE-AI's measured cycles (issue 31)."]
    return "\n".join(lines)
