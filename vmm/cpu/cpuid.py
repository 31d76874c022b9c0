"""The CPUID policy the VMM owns: advertise what it implements, hide what it does not.

The base values are Unicorn's own (its default Haswell-like model), read once without a hook;
the VMM then edits them:
- APIC (leaf 1 EDX bit 9): advertised when the board has a LAPIC device (`set_apic`);
  x2APIC and TSC-deadline: hidden (the LAPIC is an xAPIC with one-shot/periodic timer);
- long mode, NX, SYSCALL/SYSRET, RDTSCP (0x80000001 EDX bits 29, 20, 11, 27) and LAHF/SAHF in
  64-bit mode (ECX bit 0) are advertised: the engine runs them, the VMM delivers events in
  IA-32e mode and emulates SYSCALL (vmm/cpu/delivery.py);
- XSAVE/OSXSAVE/AVX: hidden (no XCR0 management); guests use FXSAVE;
- ERMS and FSRM: hidden so Linux does not copy with `rep movsb`, which Unicorn runs one byte per
  step;
- MCE/MCA: hidden (no machine-check MSRs);
- MONITOR/MWAIT: hidden: Unicorn runs MWAIT as a no-op, so a guest idling with it would spin
  instead of halting (HLT lets the VMM fast-forward an idle guest);
- HYPERVISOR (leaf 1 ECX bit 31) set, and leaf 0x40000000 identifies the VMM as "v3toolsv3vmm";
- IA32_ARCH_CAPABILITIES advertised when the VMM hooks RDMSR (advertise_arch_capabilities);
- invariant TSC and TSC_ADJUST advertised (see CpuidPolicy: the TSC never stops or drifts);
- the TSC frequency is reported (leaf 0x15: a 1 MHz crystal and the TSC/crystal ratio; leaf
  0x16: the base frequency in MHz), as some hypervisors do, so guests need not calibrate the
  TSC against the PIT. They could, but calibration loops time single port reads against a
  few microseconds, and the first run of freshly translated code makes such reads look slow.
  RDTSC is the host's TSC (plus the fast-forward offset), so the measured host rate is right.
"""
import struct

from unicorn import Uc, UC_ARCH_X86, UC_MODE_32
from unicorn import x86_const as X

HYPERVISOR_SIGNATURE = b"v3toolsv3vmm"

# leaf -> (register index 0..3 = EAX EBX ECX EDX, bits to clear)
_HIDE = {
    1: ((3, (1 << 9) | (1 << 7) | (1 << 14)),                # APIC, MCE, MCA
        (2, (1 << 21) | (1 << 24) | (1 << 26) | (1 << 27) | (1 << 28) | (1 << 12) | (1 << 29)
         | (1 << 3))),
    # x2APIC, TSC-deadline, XSAVE, OSXSAVE, AVX, FMA, F16C, MONITOR/MWAIT
    7: ((1, (1 << 9) | (1 << 5) | (1 << 16) | (1 << 3) | (1 << 8)), (3, 1 << 4)),
    # ERMS, AVX2, AVX512F, BMI1, BMI2 ; FSRM
}


def _native_table():
    """Run CPUID for the interesting leaves in a scratch Uc (no hook)."""
    uc = Uc(UC_ARCH_X86, UC_MODE_32)
    uc.mem_map(0, 0x1000)
    uc.mem_write(0, b"\x0f\xa2\xf4")          # cpuid; hlt
    table = {}
    leaves = [(leaf, 0) for leaf in range(0, 0xE)] + [(7, 1), (4, 1), (4, 2), (4, 3)]
    leaves += [(0x80000000 + i, 0) for i in range(0, 9)]
    for leaf, sub in leaves:
        uc.reg_write(X.UC_X86_REG_EAX, leaf)
        uc.reg_write(X.UC_X86_REG_ECX, sub)
        uc.emu_start(0, 3)
        table[(leaf, sub)] = [uc.reg_read(r) for r in (X.UC_X86_REG_EAX, X.UC_X86_REG_EBX,
                                                       X.UC_X86_REG_ECX, X.UC_X86_REG_EDX)]
    return table


CRYSTAL_HZ = 1_000_000            # the nominal crystal behind leaf 0x15
TSC_RATIO_DENOMINATOR = 100


class CpuidPolicy:
    def __init__(self, tsc_hz=None):
        self.table = _native_table()
        self.max_basic = min(self.table[(0, 0)][0], 0xD)
        if tsc_hz:
            self.max_basic = 0x16
            ratio = round(tsc_hz * TSC_RATIO_DENOMINATOR / CRYSTAL_HZ)
            self.table[(0x15, 0)] = [TSC_RATIO_DENOMINATOR, ratio, CRYSTAL_HZ, 0]
            mhz = round(tsc_hz / 1e6)
            self.table[(0x16, 0)] = [mhz, mhz, 100, 0]
        self.table[(0, 0)][0] = self.max_basic
        for leaf, edits in _HIDE.items():
            for key in [k for k in self.table if k[0] == leaf]:
                for reg, bits in edits:
                    self.table[key][reg] &= ~bits
        self.table[(1, 0)][2] |= 1 << 31                       # HYPERVISOR
        # The TSC is the host's, plus an offset that only fast-forwarding moves: it runs at a
        # constant rate and never stops, so it is invariant (0x80000007 EDX bit 8). With
        # TSC_ADJUST (leaf 7 EBX bit 1) as well, Linux trusts it without its clocksource
        # watchdog, whose only reference here would be the PIT clocksource, meaningless once
        # the PIT runs one-shot. IA32_TSC_ADJUST reads 0 (no adjustment was ever made);
        # Unicorn cannot trap WRMSR, so a write would not move the TSC: Linux writes it only
        # when it reads a non-zero value.
        if (0x80000007, 0) in self.table:
            self.table[(0x80000007, 0)][3] |= 1 << 8
        self.table[(7, 0)][1] |= 1 << 1
        # leaf 0xD describes XSAVE state: with XSAVE hidden it reads as zeros.
        for key in [k for k in self.table if k[0] == 0xD]:
            self.table[key] = [0, 0, 0, 0]
        sig = struct.unpack("<3I", HYPERVISOR_SIGNATURE)
        self.hv = [0x40000000, sig[0], sig[1], sig[2]]

    def set_apic(self, present, apic_id=0):
        """Advertise the local APIC (leaf 1 EDX bit 9, initial APIC ID in EBX[31:24]) when the
        board has a LAPIC device."""
        regs = self.table[(1, 0)]
        if present:
            regs[3] |= 1 << 9
            regs[1] = (regs[1] & 0x00FFFFFF) | (apic_id << 24)
        else:
            regs[3] &= ~(1 << 9)

    def advertise_arch_capabilities(self):
        """Advertise IA32_ARCH_CAPABILITIES (leaf 7 EDX bit 29) once the VMM answers RDMSR of
        it (vmm/cpu/msr.py says what it reports)."""
        self.table[(7, 0)][3] |= 1 << 29

    def lookup(self, leaf, subleaf):
        leaf &= 0xFFFFFFFF
        if leaf == 0x40000000:
            return self.hv
        if 0x40000000 < leaf < 0x40000100:
            return [0, 0, 0, 0]
        if leaf < 0x80000000 and leaf > self.max_basic:
            leaf, subleaf = self.max_basic, 0            # as hardware: the highest basic leaf
        if leaf in (4, 7, 0xB, 0xD):
            key = (leaf, subleaf)
        else:
            key = (leaf, 0)
        return list(self.table.get(key, [0, 0, 0, 0]))
