"""vmm/cpu/cpuid.py: what the CPUID policy hides, what it adds, and the TSC frequency leaves."""
import struct

import pytest

from vmm.cpu.cpuid import CpuidPolicy

EAX, EBX, ECX, EDX = range(4)


@pytest.fixture(scope="module")
def policy():
    return CpuidPolicy()


@pytest.fixture(scope="module")
def tsc_policy():
    return CpuidPolicy(tsc_hz=2_400_000_000)


def bit(policy, leaf, reg, n, sub=0):
    return (policy.lookup(leaf, sub)[reg] >> n) & 1


@pytest.mark.parametrize("leaf, reg, n, what", [
    (1, EDX, 9, "APIC"),
    (1, ECX, 21, "x2APIC"),
    (1, ECX, 24, "TSC-deadline"),
    (1, ECX, 3, "MONITOR/MWAIT"),
    (1, ECX, 26, "XSAVE"),
    (1, ECX, 27, "OSXSAVE"),
    (1, ECX, 28, "AVX"),
    (1, EDX, 7, "MCE"),
    (1, EDX, 14, "MCA"),
    (7, EBX, 9, "ERMS"),
    (7, EDX, 4, "FSRM"),
    (7, EBX, 5, "AVX2"),
])
def test_hidden_features(policy, tsc_policy, leaf, reg, n, what):
    assert bit(policy, leaf, reg, n) == 0, what
    assert bit(tsc_policy, leaf, reg, n) == 0, what


def test_kept_features(policy):
    assert bit(policy, 0x80000001, EDX, 29) == 1  # long mode: delivered by the VMM
    assert bit(policy, 0x80000001, EDX, 20) == 1  # NX
    assert bit(policy, 0x80000001, EDX, 11) == 1  # SYSCALL/SYSRET: emulated by the VMM
    assert bit(policy, 0x80000001, ECX, 0) == 1   # LAHF/SAHF in 64-bit mode
    assert bit(policy, 1, EDX, 4) == 1          # TSC
    assert bit(policy, 1, EDX, 24) == 1         # FXSR: guests save FPU state with FXSAVE
    assert bit(policy, 1, EDX, 0) == 1          # FPU


def test_hypervisor_bit_and_signature(policy):
    assert bit(policy, 1, ECX, 31) == 1
    a, b, c, d = policy.lookup(0x40000000, 0)
    assert a == 0x40000000
    assert struct.pack("<3I", b, c, d) == b"v3toolsv3vmm"
    assert policy.lookup(0x40000001, 0) == [0, 0, 0, 0]


def test_xsave_leaf_reads_as_zeros(policy):
    assert policy.lookup(0xD, 0) == [0, 0, 0, 0]
    assert policy.lookup(0xD, 1) == [0, 0, 0, 0]


def test_no_tsc_leaves_without_a_frequency(policy):
    assert policy.lookup(0, 0)[EAX] <= 0xD
    # a leaf above the maximum reads as the highest basic leaf, as on hardware
    assert policy.lookup(0x15, 0) == policy.lookup(policy.lookup(0, 0)[EAX], 0)


def test_lookup_returns_a_copy(policy):
    policy.lookup(1, 0)[ECX] = 0
    assert bit(policy, 1, ECX, 31) == 1


@pytest.mark.parametrize("tsc_hz", [2_400_000_000, 1_000_000_000, 3_192_610_000, 2_345_678_901])
def test_tsc_frequency_leaves(tsc_hz):
    p = CpuidPolicy(tsc_hz=tsc_hz)
    assert p.lookup(0, 0)[EAX] == 0x16
    denominator, numerator, crystal, _ = p.lookup(0x15, 0)
    assert crystal and denominator and numerator
    assert abs(crystal * numerator / denominator - tsc_hz) <= crystal / denominator / 2
    assert p.lookup(0x16, 0)[EAX] == round(tsc_hz / 1e6)


def test_exact_frequency(tsc_policy):
    denominator, numerator, crystal, _ = tsc_policy.lookup(0x15, 0)
    assert crystal * numerator // denominator == 2_400_000_000
    assert tsc_policy.lookup(0x16, 0)[:2] == [2400, 2400]


def test_guest_sees_the_policy(bare):
    """CPUID in a guest answers from the policy: leaf 0x40000000 in real mode."""
    from v3tools.errors import VMStop
    b = bare()
    # mov eax,0x40000000; cpuid; cli; hlt
    b.machine.uc.mem_write(0x7C00, bytes.fromhex("66b800000040" "0fa2" "faf4"))
    b.machine.cpu.reset(cs=0, ip=0x7C00)
    with pytest.raises(VMStop):
        b.run(timeout=5)
    cpu = b.machine.cpu
    assert struct.pack("<3I", cpu.reg("ebx"), cpu.reg("ecx"), cpu.reg("edx")) == b"v3toolsv3vmm"
