"""MCU profiles are data: memory budgets, core, clock, compiler flags and the QEMU board."""
from __future__ import annotations

from dataclasses import dataclass

from .errors import EngineError


@dataclass(frozen=True)
class MCUProfile:
    name: str
    core: str
    flash_bytes: int
    sram_bytes: int
    clock_hz: int
    cflags: tuple[str, ...]
    qemu_machine: str
    qemu_cpu: str
    stack_bytes: int = 8 * 1024
    cpi_assumed: float = 1.0  # latency estimate where no cycle model covers the core
    mca_cpu: str | None = None  # LLVM's scheduling model of the core, for the cycle estimate (cycles.py)


PROFILES = {
    "stm32f746": MCUProfile("stm32f746", "cortex-m7", 1024 * 1024, 320 * 1024, 216_000_000,
                            ("-mcpu=cortex-m7", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv5-sp-d16"),
                            "mps2-an500", "cortex-m7", mca_cpu="cortex-m7"),
    "stm32l476": MCUProfile("stm32l476", "cortex-m4", 1024 * 1024, 128 * 1024, 80_000_000,
                            ("-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"),
                            "mps2-an386", "cortex-m4"),
}
DEFAULT = "stm32f746"


def get(name: str) -> MCUProfile:
    if name not in PROFILES:
        raise EngineError(f"unknown MCU profile '{name}'; known: {', '.join(sorted(PROFILES))}")
    return PROFILES[name]
