"""RDMSR/WRMSR through the VMM (vmm/cpu/msr.py) on the v3 engine's MSR hooks (patch 0003), driven by
the msrtest guest on a LAPIC + IOAPIC board; and the same guest on the stock engine, which
cannot hook them."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from vmm import engine
from vmm.cpu.msr import ENGINE_RAISE_GP, HANDLED, IA32_APIC_BASE, MSRs, RAISE_GP

IA32_PERF_CTL, MSR_POWER_CTL = 0x199, 0x1FC

ROOT = Path(__file__).resolve().parents[3]
EXPECTED = ("A00000000FEE00900 E0000000000000800 P0000000100001D00 C0000000000000002 G W X "
            "D00000000FEE00100 S00000000000000FF DONE")


def _require_msr_hooks(require_built):
    require_built(engine.has("uc_msr_hooks"), "the v3 engine with MSR hooks")


@pytest.fixture(scope="module")
def board(require_built):
    _require_msr_hooks(require_built)
    sys.path.insert(0, str(ROOT / "tests" / "vmm"))
    from test_apic import ApicBoard
    b = ApicBoard()
    b.run_guest("msrtest.bin")
    return b


def test_msrtest_output(board):
    """APIC base as the BIOS leaves it; EFER still the engine's; PERF_CTL and POWER_CTL read
    back what was written (POWER_CTL = 2, the engine's #GP code, too); #GP for an MSR no CPU has, a
    reserved bit and the unadvertised x2APIC flag; clearing the enable flag disables the APIC."""
    assert board.text == EXPECTED


def test_hardware_disable_routes_the_pic_to_the_cpu(board):
    ctx = board.machine.ctx
    assert board.lapic.hw_disabled and not board.lapic.enabled
    assert ctx.intc is ctx.legacy_intc
    assert board.machine.cpu.cpuid.lookup(1, 0)[3] & (1 << 9) == 0      # CPUID: no APIC any more
    assert board.machine.cpu.msrs.gp == 3


def test_reset_brings_the_apic_back(board):
    m = board.machine
    m.cpu.reset()
    board.lapic.reset()
    assert m.cpu.msrs.read(IA32_APIC_BASE) == 0xFEE00900
    assert not board.lapic.hw_disabled and m.ctx.intc is board.lapic


def test_no_lapic_means_no_apic_base_msr():
    msrs = MSRs(cpu=None)
    assert msrs.read(IA32_APIC_BASE) is RAISE_GP
    assert msrs.write(IA32_APIC_BASE, 0xFEE00900) is RAISE_GP
    assert msrs.read(0xC0000080) is None                 # EFER: the engine's own
    assert msrs.read(0x4B564D99) is RAISE_GP


def test_raise_gp_is_no_msr_value():
    """The #GP answer is an object of its own: no value an MSR can hold (2 is the engine's code
    for #GP) is taken for it."""
    assert RAISE_GP is not ENGINE_RAISE_GP and RAISE_GP != ENGINE_RAISE_GP
    assert all(v is not RAISE_GP for v in range(0, 4))


@pytest.mark.parametrize("msr", [IA32_PERF_CTL, MSR_POWER_CTL])
def test_plain_msrs_hold_what_was_written(msr):
    msrs = MSRs(cpu=None)
    assert msrs.read(msr) == 0
    for value in (2, 0x1_0000_1D00, 0):
        assert msrs.write(msr, value) == HANDLED
        assert msrs.read(msr) == value and msrs.read(msr) is not RAISE_GP
    msrs.write(msr, 7)
    msrs.reset()
    assert msrs.read(msr) == 0


class _FakeUc:
    """Just the register file the hooks read and write."""

    def __init__(self, regs):
        self.regs = regs

    def reg_read(self, reg):
        return self.regs.get(reg, 0)

    def reg_write(self, reg, value):
        self.regs[reg] = value


def test_rdmsr_hook_returns_a_value_of_two_as_a_value():
    """The hook path: an MSR holding 2 is loaded into EDX:EAX, not answered with #GP."""
    from unicorn import x86_const as X
    cpu = type("Cpu", (), {})()
    cpu.uc = _FakeUc({X.UC_X86_REG_ECX: MSR_POWER_CTL, X.UC_X86_REG_RAX: 2, X.UC_X86_REG_RDX: 0})
    msrs = MSRs(cpu)
    assert msrs._on_wrmsr(None, None) == HANDLED
    cpu.uc.regs.update({X.UC_X86_REG_RAX: 0xDEAD, X.UC_X86_REG_RDX: 0xBEEF})
    assert msrs._on_rdmsr(None, None) == HANDLED
    assert (cpu.uc.regs[X.UC_X86_REG_RDX], cpu.uc.regs[X.UC_X86_REG_RAX]) == (0, 2)
    assert msrs.gp == 0
    cpu.uc.regs[X.UC_X86_REG_ECX] = 0x4B564D99                   # no such MSR: the engine's #GP
    assert msrs._on_rdmsr(None, None) == ENGINE_RAISE_GP and msrs.gp == 1


RUN_MSRTEST = """
import sys
sys.path.insert(0, {tests!r})
from vmm import engine
from test_apic import ApicBoard
b = ApicBoard()
b.run_guest("msrtest.bin")
print(engine.info().describe(), "|", b.text)
"""


def test_stock_engine_cannot_see_the_msrs():
    """On the wheel's library the APIC base reads 0 and no MSR raises #GP."""
    import unicorn
    stock = Path(unicorn.__file__).parent / "lib"
    if not (stock / "libunicorn.so.2").exists():
        pytest.skip("the unicorn wheel carries no library of its own")
    env = dict(os.environ, LIBUNICORN_PATH=str(stock), PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c",
                          RUN_MSRTEST.format(tests=str(ROOT / "tests" / "vmm"))],
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    what, text = out.stdout.strip().rsplit("|", 1)
    assert "stock" in what
    assert text.strip().startswith("A0000000000000000 E0000000000000800 P0000000000000000 "
                                   "C0000000000000000 D0000000000000000")


def test_platform_id_and_tsc_adjust():
    """IA32_PLATFORM_ID reads 0 and is read-only; IA32_TSC_ADJUST (advertised in CPUID leaf 7)
    reads 0, takes 0, and a non-zero write, which would move the TSC, is a fail-stop."""
    from v3tools.errors import VMStop
    from vmm.cpu.msr import IA32_PLATFORM_ID, IA32_TSC_ADJUST
    msrs = MSRs(cpu=None)
    assert msrs.read(IA32_PLATFORM_ID) == 0
    assert msrs.write(IA32_PLATFORM_ID, 0) is RAISE_GP
    assert msrs.read(IA32_TSC_ADJUST) == 0
    assert msrs.write(IA32_TSC_ADJUST, 0) is not RAISE_GP
    with pytest.raises(VMStop, match="TSC_ADJUST"):
        msrs.write(IA32_TSC_ADJUST, 5)


def test_arch_capabilities_report_no_flaws_and_are_read_only(require_built):
    """IA32_ARCH_CAPABILITIES reads the "not affected" bits (RDCL_NO, MDS_NO, ... ITS_NO) and
    is read-only; CPUID leaf 7 advertises it once the hooks are installed."""
    from vmm.cpu.core import CPU
    from vmm.cpu.msr import ARCH_CAPABILITIES_NO_BUGS, IA32_ARCH_CAPABILITIES
    msrs = MSRs(cpu=None)
    value = msrs.read(IA32_ARCH_CAPABILITIES)
    assert value == ARCH_CAPABILITIES_NO_BUGS
    assert value & 1 and value & (1 << 5) and value & (1 << 62)     # RDCL_NO, MDS_NO, ITS_NO
    assert not value & (1 << 1)             # no IBRS_ALL: there is no IA32_SPEC_CTRL here
    assert msrs.write(IA32_ARCH_CAPABILITIES, value) is RAISE_GP
    _require_msr_hooks(require_built)
    cpu = CPU(None)
    assert not cpu.cpuid.lookup(7, 0)[3] & (1 << 29)
    cpu.install_hooks()
    assert cpu.cpuid.lookup(7, 0)[3] & (1 << 29)
