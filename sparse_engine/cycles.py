"""Cortex-M7 cycle estimate of a firmware: executed basic blocks, each costed by LLVM's Cortex-M7
scheduling model.

1. Trace (`trace`): the firmware runs one inference in unicorn (the emulator library, a Cortex-M7
   CPU model); a block hook counts how often each basic block (start address, byte size) executes,
   split by layer at the harness's `model_mark` calls. The block counts give the executed
   instructions too, which must equal QEMU's exact count (a test checks it).
2. Cost (`block_cycles`): every executed block is disassembled (capstone) and handed to
   `llvm-mca -mcpu=cortex-m7` as one analysis region; its steady-state cycles per iteration
   (total cycles / iterations) is the block's cost. A layer's estimate is the sum over its blocks
   of executions x cost.

Assumptions (docs/cycles.md): zero wait states (TCM or caches that always hit), LLVM's in-order
M7 model (dual issue, single-issue LDRD/LDM, load latencies; what it leaves out is below), every
block costed as if it ran in a loop of itself (its pipeline fill and a taken branch's refill are
not charged), no branch mispredictions.
"""
from __future__ import annotations

import functools
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import EngineError

FLASH_BASE, RAM_BASE, RAM_SIZE = 0x0, 0x20000000, 0x400000  # QEMU's mps2 maps 4 MB there
PERIPHERALS = ((0x40000000, 0x10000), (0xE000E000, 0x1000))  # timer 0, system control space
SEMIHOSTING_BKPT = 0xBEAB  # Thumb `bkpt 0xAB`
MCA_ITERATIONS = 100


@dataclass
class Trace:
    """Per layer: how often each block (address, size) ran; `code` the bytes of every block that
    ran, `instructions_per_block` their instruction counts."""
    layers: list[dict] = field(default_factory=list)
    empty: dict = field(default_factory=dict)  # between the harness's empty pair of marks
    code: dict[tuple[int, int], bytes] = field(default_factory=dict)
    instructions_per_block: dict[tuple[int, int], int] = field(default_factory=dict)

    def instructions(self, layer: int) -> int:
        """Layer `layer`'s executed instructions, the mark overhead taken off (QEMU's count)."""
        count = lambda blocks: sum(n * self.instructions_per_block[b] for b, n in blocks.items())  # noqa: E731
        return count(self.layers[layer]) - count(self.empty)


def _symbol(elf: Path, name: str) -> int:
    from elftools.elf.elffile import ELFFile

    with open(elf, "rb") as f:
        sym = ELFFile(f).get_section_by_name(".symtab").get_symbol_by_name(name)
    if not sym:
        raise EngineError(f"{elf}: no symbol {name}")
    return sym[0]["st_value"] & ~1


def _load(uc, elf: Path) -> tuple[int, int]:
    """Map flash, RAM and the peripherals; copy the loadable segments; return (sp, entry)."""
    from elftools.elf.elffile import ELFFile
    from unicorn import UC_PROT_ALL, UC_PROT_EXEC, UC_PROT_READ

    uc.mem_map(FLASH_BASE, RAM_SIZE, UC_PROT_READ | UC_PROT_EXEC)
    uc.mem_map(RAM_BASE, RAM_SIZE, UC_PROT_ALL)
    for base, size in PERIPHERALS:
        uc.mem_map(base, size, UC_PROT_ALL)
    with open(elf, "rb") as f:
        for seg in ELFFile(f).iter_segments():
            if seg["p_type"] == "PT_LOAD" and seg["p_filesz"]:
                uc.mem_write(seg["p_paddr"], seg.data())
    vectors = uc.mem_read(FLASH_BASE, 8)
    return int.from_bytes(vectors[:4], "little"), int.from_bytes(vectors[4:], "little")


@functools.lru_cache(maxsize=1)
def _disassembler():
    from capstone import CS_ARCH_ARM, CS_MODE_MCLASS, CS_MODE_THUMB, Cs

    return Cs(CS_ARCH_ARM, CS_MODE_THUMB | CS_MODE_MCLASS)


class _Semihosting:
    """The harness's semihosting calls: open, read input.bin, write (output.bin and the console:
    discarded), file length, exit."""

    def __init__(self, inputs: bytes):
        self.inputs, self.pos = inputs, 0

    def call(self, uc, op: int, arg: int) -> int | None:
        from unicorn.arm_const import UC_ARM_REG_R0

        words = lambda n: [int.from_bytes(uc.mem_read(arg + 4 * i, 4), "little") for i in range(n)]  # noqa: E731
        if op == 0x01:  # open: any positive handle serves (writes are discarded, reads are the input)
            res = 3
        elif op == 0x06:  # read: returns the bytes not read
            fd, buf, length = words(3)
            chunk = self.inputs[self.pos:self.pos + length]
            self.pos += len(chunk)
            uc.mem_write(buf, chunk)
            res = length - len(chunk)
        elif op == 0x05:  # write
            res = 0
        elif op == 0x0C:  # file length
            res = len(self.inputs)
        elif op in (0x18, 0x20):  # exit
            uc.emu_stop()
            return None
        else:
            raise EngineError(f"cycle trace: semihosting call 0x{op:x} is not served")
        uc.reg_write(UC_ARM_REG_R0, res)
        return res


def trace(elf: Path, inputs: np.ndarray, n_layers: int, limit: int = 2_000_000_000) -> Trace:
    """Run the firmware on one input (int8 bytes) in unicorn, counting executed blocks per layer."""
    try:
        import capstone  # noqa: F401  (the blocks' instruction counts)
        from unicorn import UC_ARCH_ARM, UC_HOOK_BLOCK, UC_HOOK_CODE, UC_HOOK_INTR, UC_MODE_MCLASS, UC_MODE_THUMB, Uc
        from unicorn.arm_const import UC_ARM_REG_PC, UC_ARM_REG_R0, UC_ARM_REG_R1, UC_ARM_REG_SP, UC_CPU_ARM_CORTEX_M7
    except ImportError as exc:
        raise EngineError(f"the cycle estimate needs unicorn and capstone ({exc.name} is missing)") from None
    uc = Uc(UC_ARCH_ARM, UC_MODE_THUMB | UC_MODE_MCLASS)
    uc.ctl_set_cpu_model(UC_CPU_ARM_CORTEX_M7)
    sp, entry = _load(uc, elf)
    uc.reg_write(UC_ARM_REG_SP, sp)
    mark = _symbol(elf, "model_mark")
    t = Trace(layers=[{} for _ in range(n_layers)])
    semi = _Semihosting(np.ascontiguousarray(inputs, dtype=np.int8).tobytes())
    state = {"marks": 0, "sink": None}  # marks seen; the counts the running code adds to (None: none)

    def on_block(uc, addr, size, _):
        counts = state["sink"]
        if counts is not None:
            key = (addr, size)
            counts[key] = counts.get(key, 0) + 1

    def on_mark(uc, addr, size, _):
        # the harness's empty mark pair (0, 1) comes first: what runs between its two marks is the
        # overhead of one mark, subtracted from every layer as QEMU's count does
        state["marks"] += 1
        layer = uc.reg_read(UC_ARM_REG_R0)
        if state["marks"] == 1:
            state["sink"] = t.empty
        elif state["marks"] == 2:
            state["sink"] = None
        else:
            state["sink"] = t.layers[layer] if layer < n_layers else None

    def on_intr(uc, intno, _):
        pc = uc.reg_read(UC_ARM_REG_PC)
        if intno == 7 and int.from_bytes(uc.mem_read(pc, 2), "little") == SEMIHOSTING_BKPT:
            semi.call(uc, uc.reg_read(UC_ARM_REG_R0), uc.reg_read(UC_ARM_REG_R1))
            uc.reg_write(UC_ARM_REG_PC, (pc + 2) | 1)
            return
        uc.emu_stop()
        raise EngineError(f"cycle trace: the core faulted (exception {intno}) at pc 0x{pc:08x}")

    uc.hook_add(UC_HOOK_BLOCK, on_block)
    uc.hook_add(UC_HOOK_CODE, on_mark, begin=mark, end=mark)
    uc.hook_add(UC_HOOK_INTR, on_intr)
    uc.emu_start(entry | 1, 0xFFFFFFFF, count=limit)
    for key in set(t.empty).union(*t.layers):
        t.code[key] = bytes(uc.mem_read(*key))
        t.instructions_per_block[key] = sum(1 for _ in _disassembler().disasm_lite(t.code[key], key[0]))
    return t


INVERSE = {"eq": "ne", "ne": "eq", "hs": "lo", "lo": "hs", "cs": "cc", "cc": "cs", "mi": "pl", "pl": "mi",
           "vs": "vc", "vc": "vs", "hi": "ls", "ls": "hi", "ge": "lt", "lt": "ge", "gt": "le", "le": "gt"}


def _mca_text(code: bytes, addr: int) -> str:
    """A block in the syntax llvm-mca takes, costed alike: capstone's text with
    - branch targets replaced by `.` (llvm-mca cannot resolve absolute targets; where a branch goes
      does not change its cost), calls (BL, BLX) written as branches (llvm-mca charges a call 100
      cycles),
    - an IT instruction as a NOP (llvm-mca does not take IT; it holds an issue slot like one) and
      the conditional instructions of its block unconditional (their cost is the same: a
      condition-failed instruction still issues)."""
    lines, it_conds, it_left = [], set(), 0
    for _, _, mnemonic, ops in _disassembler().disasm_lite(code, addr):
        if re.fullmatch(r"it[te]{0,3}", mnemonic):
            it_conds, it_left = {ops.strip(), INVERSE.get(ops.strip(), "")}, len(mnemonic) - 1
            lines.append("nop")
            continue
        if it_left:
            it_left -= 1
            base, _, width = mnemonic.partition(".")
            for c in it_conds:
                if c and base.endswith(c) and len(base) > len(c):
                    mnemonic = base[:-len(c)] + (f".{width}" if width else "")
                    break
        if mnemonic in ("bl", "blx"):
            mnemonic, ops = ("b", ".") if ops.startswith("#") else ("bx", ops)
        elif mnemonic.startswith(("b", "cb")) and re.search(r"#0x[0-9a-f]+$", ops) and not mnemonic.startswith(
                ("bic", "bfc", "bfi")):
            ops = re.sub(r"#0x[0-9a-f]+$", ".", ops)
        lines.append(f"{mnemonic} {ops}".strip())
    return "\n".join(lines)


def mca_path() -> str | None:
    """llvm-mca on PATH (Debian's `llvm`, or `llvm-15`'s versioned name), or None."""
    return shutil.which("llvm-mca") or shutil.which("llvm-mca-15")


def block_cycles(code: dict[tuple[int, int], bytes], cpu: str = "cortex-m7") -> dict[tuple[int, int], float]:
    """Steady-state cycles per execution of each block (its bytes at its address), from one
    llvm-mca run (a region a block)."""
    mca = mca_path()
    if mca is None:
        raise EngineError("llvm-mca not found on PATH: install the Debian package llvm (or llvm-15)")
    blocks = list(code)
    regions = [f"# LLVM-MCA-BEGIN b{i}\n{_mca_text(code[b], b[0])}\n# LLVM-MCA-END" for i, b in enumerate(blocks)]
    proc = subprocess.run([mca, "-mtriple=thumbv7em-none-eabi", f"-mcpu={cpu}", f"-iterations={MCA_ITERATIONS}",
                           "-instruction-info=false", "-resource-pressure=false"], input="\n".join(regions),
                          capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise EngineError(f"llvm-mca failed: {proc.stderr.strip().splitlines()[:1]}")
    totals = [int(v) for v in re.findall(r"^Total Cycles:\s+(\d+)", proc.stdout, re.M)]
    names = re.findall(r"\[\d+\] Code Region - b(\d+)", proc.stdout)
    if len(totals) != len(blocks) or len(names) != len(blocks):
        raise EngineError(f"llvm-mca reported {len(totals)} regions for {len(blocks)} blocks")
    return {blocks[int(n)]: c / MCA_ITERATIONS for n, c in zip(names, totals)}


@dataclass
class Estimate:
    """Estimated cycles per layer (the mark overhead taken off, as for instructions) and their sum;
    the trace's instructions per layer, which equal QEMU's exact count."""
    layer_cycles: list[int]
    layer_instructions: list[int]

    @property
    def cycles(self) -> int:
        return sum(self.layer_cycles)


def unavailable() -> str | None:
    """Why the estimate cannot run here (a missing tool or package), or None."""
    for module in ("unicorn", "capstone", "elftools"):
        try:
            __import__(module)
        except ImportError:
            return f"Python package {module} is not installed"
    if mca_path() is None:
        return "llvm-mca is not on PATH (Debian package llvm)"
    return None


def estimate(elf: Path, x: np.ndarray, n_layers: int, cpu: str = "cortex-m7") -> Estimate:
    """Cycles of one inference on input x, per layer: trace, then one llvm-mca run."""
    t = trace(elf, x, n_layers)
    cost = block_cycles(t.code, cpu)
    total = lambda counts: sum(n * cost[b] for b, n in counts.items())  # noqa: E731
    overhead = total(t.empty)
    return Estimate([max(0, round(total(layer) - overhead)) for layer in t.layers],
                    [t.instructions(i) for i in range(n_layers)])


MODEL = "llvm-mca {version}, -mcpu={cpu}, basic blocks of a unicorn trace, zero wait states"


def for_firmware(elf: Path, x: np.ndarray, qemu_layer_instructions: list[int], cpu: str) -> dict:
    """The report's cycle fields for a firmware whose first input x QEMU counted: cycles and
    layer_cycles, or cycles_note saying why there are none. The trace's instructions per layer
    must equal QEMU's, else the estimate is dropped (it would cost other code than QEMU ran)."""
    why = unavailable()
    if why is None:
        est = estimate(elf, x, len(qemu_layer_instructions), cpu)
        if est.layer_instructions == list(qemu_layer_instructions):
            return dict(cycles=est.cycles, layer_cycles=est.layer_cycles,
                        cycle_model=MODEL.format(version=mca_version(), cpu=cpu))
        bad = next(i for i, (a, b) in enumerate(zip(est.layer_instructions, qemu_layer_instructions)) if a != b)
        why = (f"the trace counted {est.layer_instructions[bad]:,} instructions in layer {bad}, QEMU "
               f"{qemu_layer_instructions[bad]:,}")
    return dict(cycles=None, layer_cycles=None, cycles_note=f"no cycle estimate: {why}")


@functools.lru_cache(maxsize=1)
def mca_version() -> str:
    out = subprocess.run([mca_path(), "--version"], capture_output=True, text=True).stdout
    m = re.search(r"LLVM version (\S+)", out)
    return m.group(1) if m else "?"
