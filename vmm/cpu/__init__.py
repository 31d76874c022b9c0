"""The virtual CPU: the engine wrapper (`core`), event delivery (`delivery`), the guest MMU
walker (`mmu`), the CPUID policy (`cpuid`), model-specific registers (`msr`) and the engine
internals the VMM reads and writes (`ucinternals`)."""
from vmm.cpu.core import CPU

__all__ = ["CPU"]
