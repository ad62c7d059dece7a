"""The Cortex-M7 cycle estimate (sparse_engine/cycles.py): the unicorn trace counts exactly the
instructions QEMU counts, layer by layer; blocks reach llvm-mca in a form it costs (IT blocks,
calls, branch targets); LLVM's M7 model encodes the pipeline rules docs/cycles.md relies on."""
from __future__ import annotations

import subprocess

import numpy as np
import pytest
from conftest import ROOT

from sparse_engine import compiler, cycles

pytestmark = pytest.mark.skipif(cycles.unavailable() is not None, reason=str(cycles.unavailable()))
MLPERF = ROOT.parent / "shared" / "data" / "mlperf_tiny"


def _mca_cycles(text: str) -> float:
    out = subprocess.run([cycles.mca_path(), "-mtriple=thumbv7em-none-eabi", "-mcpu=cortex-m7", "-iterations=100"], input=text,
                         capture_output=True, text=True, check=True).stdout
    return int(out.split("Total Cycles:")[1].split()[0]) / 100


@pytest.mark.parametrize("block, cycles_per_iteration", [
    ("add.w r0, r1, r2\nadd.w r3, r4, r5", 1.0),  # two ALU instructions issue together
    ("ldr r0, [r1]\nadd.w r4, r5, r6", 1.0),  # a load pairs with an ALU instruction
    ("ldrd r0, r3, [r1]\nadd.w r4, r5, r6", 2.0),  # LDRD issues alone
    ("ldm r1, {r2, r3}\nadd.w r4, r5, r6", 2.0),  # so does LDM
    ("smlad r0, r1, r2, r0\nsmlad r3, r1, r2, r3", 2.0),  # one MAC unit: one SMLAD a cycle
    ("ldrb r0, [r1]\nadd r2, r0, #1", 2.0),  # a byte load's result comes a cycle later than a word's
    ("ldr r0, [r1]\nadd r2, r0, #1", 1.0),
])
def test_llvm_cortex_m7_model_encodes_the_documented_pipeline_rules(block, cycles_per_iteration):
    assert _mca_cycles(block) == pytest.approx(cycles_per_iteration, abs=0.05)  # + pipeline fill


def test_blocks_reach_llvm_mca_in_a_form_it_costs():
    # itt gt; movgt r0, r1; addgt r2, r2, r3; bl <near>; bne <back> (Thumb-2 encodings)
    code = bytes.fromhex("c4bf0846d21800f000f8fed1")
    lines = cycles._mca_text(code, 0x1000).splitlines()
    assert lines == ["nop", "mov r0, r1", "add r2, r2, r3", "b .", "bne ."]
    res = subprocess.run([cycles.mca_path(), "-mtriple=thumbv7em-none-eabi", "-mcpu=cortex-m7"], input="\n".join(lines),
                         capture_output=True, text=True)
    assert res.returncode == 0 and "error" not in res.stderr and "call" not in res.stderr, res.stderr


@pytest.mark.skipif(not MLPERF.exists(), reason="../shared/data/mlperf_tiny is not beside the clone")
def test_trace_counts_what_qemu_counts_and_every_layer_gets_cycles(tmp_path):
    x = np.random.default_rng(0).integers(-128, 128, size=(2, 49, 10, 1)).astype(np.int8)
    rep = compiler.compile_model(MLPERF / "kws_dscnn_int8.tflite", tmp_path / "out", input_file=x,
                                 progress=lambda *_: None).report
    mcu = rep["mcu"]
    assert "cycles_note" not in mcu, mcu.get("cycles_note")  # trace == QEMU, layer by layer, else a note
    assert sum(mcu["layer_cycles"]) == mcu["cycles"] == rep["totals"]["cycles"]
    for row in rep["layers"]:
        assert 0.2 * row["instructions"] <= row["cycles"] <= 3 * row["instructions"], row["name"]
    assert rep["totals"]["latency_ms_estimate"] == pytest.approx(mcu["cycles"] / 216e3)

    elf = tmp_path / "out" / "build" / "cortex-m7" / "firmware.elf"
    again = cycles.for_firmware(elf, x[:1], mcu["layer_instructions"], "cortex-m7")
    assert again["layer_cycles"] == mcu["layer_cycles"]  # deterministic
    wrong = list(mcu["layer_instructions"])
    wrong[3] += 1
    dropped = cycles.for_firmware(elf, x[:1], wrong, "cortex-m7")
    assert dropped["cycles"] is None and "layer 3" in dropped["cycles_note"]
