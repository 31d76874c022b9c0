"""RDMSR and WRMSR as the VMM sees them.

The v3 engine (patch 0003, docs/engine.md) lets the VMM hook both instructions; the stock engine
does not, and then everything below is inactive (IA32_APIC_BASE reads 0 there, see docs/run.md).

Policy, for a guest's RDMSR/WRMSR at CPL 0 (CPL > 0 raises #GP in the engine itself):
- IA32_APIC_BASE (0x1B) is the local APIC's: base 0xFEE00000, the BSP flag, and the global
  enable flag, as the BIOS leaves them. With no LAPIC on the board the CPU has no APIC (CPUID
  says so) and the MSR raises #GP, as on a processor without one. Writes: the enable flag may
  be cleared (the APIC is then hardware-disabled until reset, and CPUID stops advertising it);
  setting reserved bits or the x2APIC flag (x2APIC is not advertised) raises #GP; moving the
  APIC elsewhere is a fail-stop, since nothing here relocates its MMIO window.
- IA32_PLATFORM_ID (0x17) reads 0 (platform 0 in bits 52:50, for microcode matching); it is
  read-only, a write raises #GP. IA32_TSC_ADJUST (0x3B, advertised in CPUID leaf 7) reads 0:
  no adjustment was ever made; writing 0 keeps it so, any other value would have to move the
  TSC, which is not modelled (fail-stop).
- The MSRs the engine itself implements (SYSENTER, EFER, STAR/LSTAR/CSTAR/SFMASK, the segment
  bases, TSC_AUX, PAT, the MTRRs, the machine-check MSRs, MISC_ENABLE ...) run as built in.
- IA32_ARCH_CAPABILITIES (0x10A, advertised in CPUID leaf 7 EDX bit 29 when these hooks are
  installed) is read-only and reports the CPU free of the speculative-execution and
  microarchitectural-sampling flaws that have a "not affected" bit (ARCH_CAPABILITIES_NO_BUGS).
  That is true of this CPU: the engine has no speculative execution, no caches or fill buffers
  a guest could sample. Without it Linux treats the Haswell-like model as affected and turns
  on page-table isolation (a CR3 switch, so a full TLB flush of the engine, on every kernel
  entry and exit), return thunks and buffer clearing: real costs under emulation for nothing.
  Spectre v1/v2 have no such bit; guests keep their own choice there.
- IA32_PERF_CTL and MSR_POWER_CTL (PLAIN_MSRS) hold what was written and do nothing else.
- Any other MSR raises #GP(0), as a real processor does for an MSR it does not have. (Stock
  Unicorn, like QEMU's TCG, reads 0 and drops the write.) Each such MSR is noted once in the
  `msr` debug log; Linux probes many MSRs with rdmsr_safe and handles the #GP.
"""
import ctypes

from unicorn import UC_HOOK_INSN
from unicorn import x86_const as X

from v3tools.errors import VMStop

IA32_PLATFORM_ID = 0x17
IA32_APIC_BASE = 0x1B
IA32_TSC_ADJUST = 0x3B
IA32_ARCH_CAPABILITIES = 0x10A
# IA32_ARCH_CAPABILITIES bits (SDM vol. 4, table 2-2; Intel's guidance for the later bits)
ARCH_CAPABILITIES_NO_BUGS = (
    (1 << 0)        # RDCL_NO: not affected by rogue data cache load (Meltdown)
    | (1 << 3)      # SKIP_L1DFL_VMENTRY: no L1D flush needed on VM entry
    | (1 << 4)      # SSB_NO: not affected by speculative store bypass
    | (1 << 5)      # MDS_NO: not affected by microarchitectural data sampling
    | (1 << 6)      # IF_PSCHANGE_MC_NO: no machine check on instruction-fetch page-size change
    | (1 << 8)      # TAA_NO: not affected by TSX asynchronous abort
    | (1 << 13)     # SBDR_SSDP_NO: no shared-buffer data read / sideband stale data
    | (1 << 14)     # FBSDP_NO: no fill-buffer stale data propagation
    | (1 << 15)     # PSDP_NO: no primary stale data propagation
    | (1 << 20)     # BHI_NO: not affected by branch history injection
    | (1 << 24)     # PBRSB_NO: not affected by post-barrier RSB predictions
    | (1 << 26)     # GDS_NO: not affected by gather data sampling
    | (1 << 27)     # RFDS_NO: not affected by register file data sampling
    | (1 << 62))    # ITS_NO: not affected by indirect target selection
APIC_BASE_BSP = 1 << 8
APIC_BASE_X2APIC = 1 << 10
APIC_BASE_ENABLE = 1 << 11
APIC_BASE_ADDR_MASK = 0x000F_FFFF_FFFF_F000      # bits 12..51 (MAXPHYADDR bounds them below)

BUILTIN, HANDLED, ENGINE_RAISE_GP = 0, 1, 2      # what a hook callback returns to the engine


class _RaiseGP:
    """read()/write()'s answer for "#GP(0)": an object of its own, so that no MSR value (2 is
    the engine's code for #GP) can be taken for it."""

    def __repr__(self):
        return "RAISE_GP"


RAISE_GP = _RaiseGP()

# MSRs kept as plain read/write registers (reset value 0), with no effect on the machine:
# IA32_PERF_CTL (0x199, the requested P-state; SDM vol. 4 table 2-2) and MSR_POWER_CTL (0x1FC,
# C1E and related power controls of family 6 processors such as the Haswell-like model CPUID
# reports). Kitten reads both while it brings up a CPU.
PLAIN_MSRS = {0x199: 0, 0x1FC: 0}

MCE_BANKS_MAX = 32


def _engine_msrs():
    """The MSR numbers Unicorn 2.1.4's helpers implement (target/i386/misc_helper.c)."""
    msrs = {0x10,                                  # IA32_TSC
            0x174, 0x175, 0x176,                   # SYSENTER_CS/ESP/EIP
            0x8B,                                  # IA32_UCODE_REV
            0x34,                                  # SMI_COUNT
            0xFE,                                  # MTRRcap
            0x179, 0x17A, 0x17B,                   # MCG_CAP, MCG_STATUS, MCG_CTL
            0x198,                                 # PERF_STATUS
            0x1A0,                                 # MISC_ENABLE
            0x250, 0x258, 0x259,                   # fixed MTRRs 64K, 16K
            0x277,                                 # PAT
            0x2FF,                                 # MTRRdefType
            0xD90,                                 # BNDCFGS
            0xC0000080, 0xC0000081, 0xC0000082, 0xC0000083, 0xC0000084,   # EFER STAR LSTAR ...
            0xC0000100, 0xC0000101, 0xC0000102, 0xC0000103,               # FS/GS/KGS base, TSC_AUX
            0xC0010117}                            # VM_HSAVE_PA
    msrs.update(range(0x200, 0x210))              # variable MTRRs
    msrs.update(range(0x268, 0x270))              # fixed MTRRs 4K
    msrs.update(range(0x400, 0x400 + 4 * MCE_BANKS_MAX))   # MCi_CTL/STATUS/ADDR/MISC
    return frozenset(msrs)


ENGINE_MSRS = _engine_msrs()

HOOK_MSR_CFUNC = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)


class MSRs:
    """The VMM's side of RDMSR/WRMSR for one CPU."""

    def __init__(self, cpu, log=None, on_failure=None):
        self.cpu = cpu
        self.log = log
        self.on_failure = on_failure       # callable(exc): a fail-stop raised inside the hook
        self.lapic = None
        self.apic_base = 0xFEE00000 | APIC_BASE_BSP | APIC_BASE_ENABLE
        self.plain = dict(PLAIN_MSRS)
        self.noted = set()
        self.reads = self.writes = self.gp = 0
        self._callbacks = None

    def install(self, uc):
        """Hook both instructions (only on an engine that carries the MSR-hook patch)."""
        from vmm import engine
        if not engine.has("uc_msr_hooks"):
            return False
        self._callbacks = (HOOK_MSR_CFUNC(self._on_rdmsr), HOOK_MSR_CFUNC(self._on_wrmsr))
        add = uc._Uc__do_hook_add
        add(UC_HOOK_INSN, self._callbacks[0], 1, 0, ctypes.c_int(X.UC_X86_INS_RDMSR))
        add(UC_HOOK_INSN, self._callbacks[1], 1, 0, ctypes.c_int(X.UC_X86_INS_WRMSR))
        self.cpu.cpuid.advertise_arch_capabilities()
        return True

    def reset(self):
        self.apic_base = 0xFEE00000 | APIC_BASE_BSP | APIC_BASE_ENABLE
        self.plain = dict(PLAIN_MSRS)

    # -- the hooks -------------------------------------------------------------------------------
    def _on_rdmsr(self, _uc, _data):
        try:
            self.reads += 1
            msr = self.cpu.uc.reg_read(X.UC_X86_REG_ECX) & 0xFFFFFFFF
            value = self.read(msr)
            if value is None:
                return BUILTIN
            if value is RAISE_GP:
                return self._gp("RDMSR", msr)
            self.cpu.uc.reg_write(X.UC_X86_REG_RAX, value & 0xFFFFFFFF)
            self.cpu.uc.reg_write(X.UC_X86_REG_RDX, (value >> 32) & 0xFFFFFFFF)
            return HANDLED
        except BaseException as exc:        # never let an exception cross into the engine
            return self._failed(exc)

    def _on_wrmsr(self, _uc, _data):
        try:
            self.writes += 1
            uc = self.cpu.uc
            msr = uc.reg_read(X.UC_X86_REG_ECX) & 0xFFFFFFFF
            value = (uc.reg_read(X.UC_X86_REG_RAX) & 0xFFFFFFFF) | \
                ((uc.reg_read(X.UC_X86_REG_RDX) & 0xFFFFFFFF) << 32)
            r = self.write(msr, value)
            if r is RAISE_GP:
                return self._gp(f"WRMSR of {value:#x} to", msr)
            return BUILTIN if r is None else HANDLED
        except BaseException as exc:
            return self._failed(exc)

    def _gp(self, what, msr):
        self.gp += 1
        if msr not in self.noted and self.log is not None:
            self.noted.add(msr)
            self.log.debug(f"{what} MSR {msr:#x}: #GP (an MSR this CPU does not have)")
        return ENGINE_RAISE_GP

    def _failed(self, exc):
        if self.on_failure is not None:
            self.on_failure(exc)
        return HANDLED

    # -- the policy ------------------------------------------------------------------------------
    def read(self, msr):
        """The value to return, None for the engine's own, or RAISE_GP."""
        if msr == IA32_APIC_BASE:
            return self.apic_base if self.lapic is not None else RAISE_GP
        if msr in self.plain:
            return self.plain[msr]
        if msr in (IA32_PLATFORM_ID, IA32_TSC_ADJUST):
            return 0
        if msr == IA32_ARCH_CAPABILITIES:
            return ARCH_CAPABILITIES_NO_BUGS
        if msr in ENGINE_MSRS:
            return None
        return RAISE_GP

    def write(self, msr, value):
        """None for the engine's own, HANDLED, or RAISE_GP."""
        if msr == IA32_APIC_BASE:
            if self.lapic is None:
                return RAISE_GP
            reserved = ~(APIC_BASE_ADDR_MASK | APIC_BASE_BSP | APIC_BASE_ENABLE | APIC_BASE_X2APIC)
            if value & reserved & 0xFFFF_FFFF_FFFF_FFFF or value & APIC_BASE_X2APIC:
                return RAISE_GP
            # the BSP flag is the hardware's (set at reset); a write to it is ignored
            value = (value & ~APIC_BASE_BSP) | (self.apic_base & APIC_BASE_BSP)
            if value & APIC_BASE_ADDR_MASK != self.apic_base & APIC_BASE_ADDR_MASK:
                raise VMStop(f"WRMSR IA32_APIC_BASE {value:#x}: moving the local APIC away from "
                             f"{self.apic_base & APIC_BASE_ADDR_MASK:#x} is not modelled")
            if self.apic_base & APIC_BASE_ENABLE and not value & APIC_BASE_ENABLE:
                self.lapic.hardware_disable()
                self.cpu.cpuid.set_apic(False)
            elif not self.apic_base & APIC_BASE_ENABLE and value & APIC_BASE_ENABLE:
                # SDM 10.4.3: once globally disabled, the APIC comes back only after a reset
                raise VMStop(f"WRMSR IA32_APIC_BASE {value:#x}: re-enabling a local APIC that "
                             f"was disabled through the MSR needs a reset")
            self.apic_base = value
            return HANDLED
        if msr in self.plain:
            self.plain[msr] = value
            return HANDLED
        if msr == IA32_TSC_ADJUST:
            if value:
                raise VMStop(f"WRMSR IA32_TSC_ADJUST {value:#x}: adjusting the TSC is not "
                             f"modelled")
            return HANDLED
        if msr in ENGINE_MSRS:
            return None
        return RAISE_GP
