"""Build and run generated C: host gcc (with sanitizers) and arm-none-eabi-gcc + QEMU.

QEMU runs with `-icount shift=7`: one instruction advances virtual time by 128 ns, and the
CMSDK timer counts 25 MHz ticks, so instructions = round(ticks * 10 / 32) exactly
(docs/architecture.md, "How cost is measured"). Flash and static SRAM come from the linked ELF's section sizes.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .codegen import RUNTIME, environment, kernel_headers
from .errors import EngineError
from .profiles import MCUProfile

HOST_CFLAGS = ("-std=c99", "-O2", "-g", "-Wall", "-Wextra", "-Werror")
SANITIZE = ("-fsanitize=address,undefined", "-fno-sanitize-recover=all")
LIB_SOURCES = ("model.c", "weights.c", "kernels.c", "kernels_dsp.c")
SHARED_SOURCES = ("kernels.c", "kernels_dsp.c", "startup.c")  # the same in every model (verbatim copies)
SHARED_HEADERS = tuple(h.name for h in kernel_headers())  # all they include from the library folder
FLASH_SECTIONS = (".isr_vector", ".text", ".rodata", ".ARM.exidx", ".data")
RAM_SECTIONS = (".data", ".bss")


def _tool(env_var: str, default: str, package: str) -> str:
    name = os.environ.get(env_var, default)
    path = shutil.which(name)
    if path is None:
        raise EngineError(f"{name} not found on PATH: install the Debian package(s) {package} "
                          f"(or set {env_var})")
    return path


def arm_tool(suffix: str) -> str:
    """A cross tool such as arm-none-eabi-gcc; SPARSE_ENGINE_ARM_PREFIX replaces the prefix."""
    name = os.environ.get("SPARSE_ENGINE_ARM_PREFIX", "arm-none-eabi-") + suffix
    path = shutil.which(name)
    if path is None:
        raise EngineError(f"{name} not found on PATH: install the Debian packages gcc-arm-none-eabi "
                          "libnewlib-arm-none-eabi binutils-arm-none-eabi (or set SPARSE_ENGINE_ARM_PREFIX)")
    return path


_SETPRIV = shutil.which("setpriv")  # util-linux; sets the child's parent-death signal


def _exec(cmd: list[str], what: str, timeout: float, cwd: Path | None = None,
          env: dict | None = None) -> subprocess.CompletedProcess:
    """Run a tool and capture its output. It gets SIGKILL when the compiler dies (even by kill -9),
    and running past `timeout` seconds is an EngineError."""
    wrapped = [_SETPRIV, "--pdeathsig", "KILL", "--", *cmd] if _SETPRIV else cmd
    try:
        return subprocess.run(wrapped, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        raise EngineError(f"{what}: {Path(cmd[0]).name} ran past its time-out of {timeout:.0f} s") from None


def _run(cmd: list[str], what: str, cwd: Path | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    proc = _exec(cmd, what, timeout, cwd)
    if proc.returncode != 0:
        msg = (proc.stderr or proc.stdout).strip()
        if "overflowed" in msg or "region RAM" in msg:
            region = "flash" if "FLASH" in msg else "SRAM"
            raise EngineError(f"{what}: the firmware does not fit the {region} budget: "
                              f"{next(ln for ln in msg.splitlines() if 'overflow' in ln).strip()}")
        first = "; ".join(msg.splitlines()[:3])
        raise EngineError(f"{what} failed (exit {proc.returncode}): {first}")
    return proc


OBJECT_CACHE_ENV = "SPARSE_ENGINE_OBJECT_CACHE"


def object_cache() -> Path | None:
    """A folder (from $SPARSE_ENGINE_OBJECT_CACHE) where the kernels' objects are kept across
    builds and processes, keyed by compiler, flags and source bytes; None: no cache beyond a build's."""
    d = os.environ.get(OBJECT_CACHE_ENV)
    return Path(d) if d else None


def build_host(lib: Path, build: Path, sanitize: bool = True, objects: Path | None = None) -> Path:
    """Host build of the library in `lib` with the stdio harness (ASan + UBSan unless `sanitize`
    is off). `objects` (default: object_cache()): a folder caching the shared kernels' objects."""
    gcc = _tool("SPARSE_ENGINE_CC", "gcc", "gcc")
    build.mkdir(parents=True, exist_ok=True)
    exe = build / "model_host"
    flags = list(HOST_CFLAGS) + (list(SANITIZE) if sanitize else [])
    srcs = _with_shared_objects(gcc, flags, [lib / s for s in LIB_SOURCES] + [RUNTIME / "harness.c"], lib, objects)
    _run([gcc, *flags, f"-I{lib}", *map(str, srcs), "-o", str(exe)], "host gcc build")
    return exe


def run_host(exe: Path, inputs: np.ndarray, output_size: int) -> np.ndarray:
    exe = exe.resolve()
    work = exe.parent
    (work / "input.bin").write_bytes(np.ascontiguousarray(inputs, dtype=np.int8).tobytes())
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=0",
               UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
    proc = _exec([str(exe), "input.bin", "output.bin"], "host run", 600, work, env)
    if proc.returncode != 0 or "runtime error" in proc.stderr:
        raise EngineError(f"host run failed (exit {proc.returncode}): {proc.stderr.strip().splitlines()[:2]}")
    return np.frombuffer((work / "output.bin").read_bytes(), np.int8).reshape(-1, output_size)


@dataclass
class McuBuild:
    elf: Path
    flash_bytes: int
    static_ram_bytes: int
    sections: dict[str, int]


def _with_shared_objects(gcc: str, flags: list[str], srcs: list[Path], lib: Path, objects: Path | None) -> list[Path]:
    """`srcs` with the sources every model shares replaced by their cached objects (`objects`,
    default object_cache(); none: `srcs` as they are)."""
    objects = objects or object_cache()
    if objects is None:
        return srcs
    return [_shared_object(gcc, flags, s, lib, objects) if s.name in SHARED_SOURCES else s for s in srcs]


def _shared_object(gcc: str, flags: list[str], src: Path, lib: Path, objects: Path) -> Path:
    """`src` compiled once into the `objects` cache, keyed by compiler, flags and every byte it reads."""
    key = hashlib.sha1("\0".join([gcc, *flags]).encode())
    for f in (src, *(lib / h for h in SHARED_HEADERS)):
        key.update(f.read_bytes())
    obj = objects / f"{src.stem}-{key.hexdigest()[:16]}.o"
    if not obj.exists():
        objects.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(suffix=".o", dir=objects)
        os.close(fd)
        try:
            _run([gcc, *flags, f"-I{lib}", "-c", str(src), "-o", tmp], f"{Path(gcc).name} compile of {src.name}")
            os.replace(tmp, obj)  # whole or absent, also with builds running beside this one
        finally:
            Path(tmp).unlink(missing_ok=True)
    return obj


def build_mcu(lib: Path, build: Path, profile: MCUProfile, objects: Path | None = None) -> McuBuild:
    """Cross build of the library in `lib` with the harness. `objects` (default: object_cache()):
    a folder caching the objects of the sources every model shares (the ELF is the same; a
    search's many builds then compile only the model's own files)."""
    gcc = arm_tool("gcc")
    build.mkdir(parents=True, exist_ok=True)
    ld = build / "mcu.ld"
    ld.write_text(environment(RUNTIME).get_template("mcu.ld").render(
        banner=f"linker script for {profile.name}", flash_bytes=profile.flash_bytes,
        sram_bytes=profile.sram_bytes, stack_bytes=profile.stack_bytes))
    elf = build / "firmware.elf"
    flags = [*profile.cflags, "-O3", "-ffunction-sections", "-fdata-sections", "-std=c99", "-Wall", "-Wextra",
             "-DMODEL_PROFILE"]
    srcs = [lib / s for s in LIB_SOURCES] + [RUNTIME / "harness.c", RUNTIME / "startup.c"]
    srcs = _with_shared_objects(gcc, flags, srcs, lib, objects)
    link = ["-nostartfiles", "--specs=nano.specs", "-Wl,--gc-sections", f"-T{ld}",
            f"-Wl,-Map={build / 'firmware.map'}"]
    _run([gcc, *flags, f"-I{lib}", *map(str, srcs), *link, "-lm", "-o", str(elf)], f"{profile.core} cross build")
    sections = section_sizes(elf)
    flash = sum(sections.get(s, 0) for s in FLASH_SECTIONS)
    ram = sum(sections.get(s, 0) for s in RAM_SECTIONS)
    return McuBuild(elf, flash, ram, sections)


def section_sizes(elf: Path) -> dict[str, int]:
    proc = _run([arm_tool("size"), "-A", str(elf)], "arm-none-eabi-size")
    sizes = {}
    for line in proc.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0].startswith(".") and parts[1].isdigit():
            sizes[parts[0]] = int(parts[1])
    return sizes


@dataclass
class QemuRun:
    outputs: np.ndarray
    layer_instructions: list[int]
    total_instructions: int
    stack_bytes: int
    log: str = field(repr=False, default="")


CFSR_BITS = {0: "instruction access violation", 1: "data access violation", 8: "instruction bus error",
             9: "precise data bus error", 10: "imprecise data bus error", 16: "undefined instruction",
             17: "invalid state", 18: "invalid PC load", 19: "no coprocessor", 24: "unaligned access",
             25: "division by zero"}


class McuFault(EngineError):
    """A fault of the core while the firmware ran: which input, which layer (index into the
    model's layers, None when not known), the PC and its function, the CFSR."""

    def __init__(self, message: str, input_index: int, layer: int | None, pc: int, cfsr: int):
        super().__init__(message)
        self.input_index, self.layer, self.pc, self.cfsr = input_index, layer, pc, cfsr


def _function_at(elf: Path, pc: int) -> str | None:
    """The function holding address `pc` in `elf` (addr2line), None if unknown."""
    try:
        out = _run([arm_tool("addr2line"), "-f", "-e", str(elf), hex(pc)], "arm-none-eabi-addr2line", timeout=60)
    except EngineError:
        return None
    name = out.stdout.splitlines()[0].strip() if out.stdout.strip() else ""
    return name if name and name != "??" else None


def _fault(build: McuBuild, profile: MCUProfile, inputs: np.ndarray, output_size: int, log: str, done: int,
           timeout: float, layer_names: list[str] | None, retry: bool) -> McuFault | None:
    """The McuFault a run's log reports, None if it reports none. `done`: inputs finished before
    the fault. Only the first (profiled) inference records layer marks, so a fault on a later
    input is located by running that input alone."""
    lines = [line.split() for line in log.splitlines()]
    fault = next((w for w in lines if w[:1] == ["FAULT"]), [])
    fields = dict(w.split("=", 1) for w in fault[1:] if "=" in w)
    if not {"pc", "cfsr"} <= fields.keys() or not all(v.isdigit() for v in fields.values()):
        return None
    pc, cfsr = int(fields["pc"]), int(fields["cfsr"])
    mark = next((w[1] for w in lines if w[:1] == ["MARK"] and len(w) > 1), "")
    layer = int(mark) if done == 0 and mark.isdigit() else None
    if done > 0 and retry:
        try:
            run_qemu(build, profile, inputs[done:done + 1], output_size, timeout, retry=False)
        except McuFault as alone:
            layer = alone.layer
        except EngineError:
            pass
    what = ", ".join(d for b, d in CFSR_BITS.items() if cfsr >> b & 1) or "fault"
    fn = _function_at(build.elf, pc)
    if layer is None:
        where = ""
    elif layer_names is not None and layer >= len(layer_names):
        where = " after the last layer"
    else:
        where = f" in layer {layer}" + (f" {layer_names[layer]}" if layer_names else "")
    return McuFault(f"{profile.core} fault in QEMU on input {done}{where}: {what} (CFSR 0x{cfsr:08x}) at PC "
                    f"0x{pc:08x}{f' in {fn}' if fn else ''}", done, layer, pc, cfsr)


def ticks_to_instructions(ticks: int) -> int:
    return int(round(ticks * 10 / 32))


def run_qemu(build: McuBuild, profile: MCUProfile, inputs: np.ndarray, output_size: int,
             timeout: float = 600, layer_names: list[str] | None = None, retry: bool = True) -> QemuRun:
    """Run the firmware on `inputs` in QEMU: outputs, per-layer and total instructions, stack.
    A fault of the core raises McuFault naming the input and the layer (`layer_names[i]` where
    given; `retry`: run a later input alone to find its layer)."""
    qemu = _tool("SPARSE_ENGINE_QEMU", "qemu-system-arm", "qemu-system-arm")
    work = build.elf.resolve().parent
    (work / "input.bin").write_bytes(np.ascontiguousarray(inputs, dtype=np.int8).tobytes())
    out_path = work / "output.bin"
    out_path.unlink(missing_ok=True)
    cmd = [qemu, "-M", profile.qemu_machine, "-cpu", profile.qemu_cpu, "-nographic", "-monitor", "none",
           "-serial", "none", "-semihosting-config", "enable=on,target=native",
           "-icount", "shift=7,align=off,sleep=off", "-kernel", str(build.elf)]
    proc = _exec(cmd, f"QEMU run of {build.elf.name}", timeout, work)
    log = proc.stdout + proc.stderr
    if proc.returncode != 0:
        done = (out_path.stat().st_size if out_path.exists() else 0) // max(output_size, 1)
        fault = _fault(build, profile, inputs, output_size, proc.stdout, done, timeout, layer_names, retry)
        if fault is not None:
            raise fault
        raise EngineError(f"QEMU run of {build.elf.name} failed (exit {proc.returncode}): "
                          f"{' | '.join(log.strip().splitlines()[-3:])}")
    empty, total, stack, layers = 0, 0, 0, []
    try:
        for line in proc.stdout.splitlines():
            parts = line.split()
            if parts[:1] == ["EMPTY"]:
                empty = int(parts[1])
            elif parts[:1] == ["TOTAL"]:
                total = int(parts[1])
            elif parts[:1] == ["STACK"]:
                stack = int(parts[1])
            elif parts[:1] == ["LAYER"]:
                layers.append(int(parts[2]))
    except (IndexError, ValueError):
        raise EngineError(f"QEMU run of {build.elf.name}: cannot read its counts from the line {line!r}") from None
    got = out_path.stat().st_size if out_path.exists() else 0
    if got != inputs.shape[0] * output_size:
        raise EngineError(f"QEMU run of {build.elf.name} exited 0 but wrote {got} output bytes, not "
                          f"{inputs.shape[0]} x {output_size}: {' | '.join(log.strip().splitlines()[-3:]) or 'no log'}")
    overhead = ticks_to_instructions(empty)
    outputs = np.frombuffer(out_path.read_bytes(), np.int8).reshape(-1, output_size)
    return QemuRun(outputs, [ticks_to_instructions(t) - overhead for t in layers],
                   ticks_to_instructions(total), stack, log)
