"""vmm/cpu/mmu.py: page walks over a bytearray: 32-bit (4 KiB, 4 MiB), PAE (4 KiB, 2 MiB), the
#PF error codes, CR0.WP, and the Accessed/Dirty bits."""
import struct

import pytest

from vmm.context import BytesMemory
from vmm.cpu.mmu import A, CR0_PG, CR0_WP, CR4_PAE, CR4_PSE, D, MMU, P, PS, PageFault, RW, US

PE = 1
PG = CR0_PG | PE


class Tables:
    def __init__(self):
        self.mem = BytesMemory(1 << 20)
        self.mmu = MMU(self.mem.read, self.mem.write)

    def put32(self, addr, value):
        self.mem.write(addr, struct.pack("<I", value))

    def get32(self, addr):
        return struct.unpack("<I", self.mem.read(addr, 4))[0]

    def put64(self, addr, value):
        self.mem.write(addr, struct.pack("<Q", value))

    def get64(self, addr):
        return struct.unpack("<Q", self.mem.read(addr, 8))[0]


# 32-bit: CR3 0x1000; PDE 0 -> page table 0x2000; PTE 5 -> 0x345000; PDE 1 is a 4 MiB page at
# 0xC00000; PTE 6 is read-only, PTE 7 supervisor-only, PTE 8 not present.
@pytest.fixture
def t32():
    t = Tables()
    t.put32(0x1000, 0x2000 | P | RW | US)
    t.put32(0x1004, 0x00C00000 | P | RW | US | PS)
    t.put32(0x1008, 0x00800000 | P | US | PS)              # read-only 4 MiB page
    t.put32(0x2000 + 5 * 4, 0x345000 | P | RW | US)
    t.put32(0x2000 + 6 * 4, 0x346000 | P | US)
    t.put32(0x2000 + 7 * 4, 0x347000 | P | RW)
    t.put32(0x2000 + 8 * 4, 0x348000)
    return t


def tr32(t, linear, write=False, user=False, wp=False, pse=True):
    return t.mmu.translate(linear, PG | (CR0_WP if wp else 0), 0x1000, CR4_PSE if pse else 0,
                           write=write, user=user)


def test_paging_off_is_identity(t32):
    assert t32.mmu.translate(0x12345678, PE, 0x1000, 0) == 0x12345678
    assert t32.mmu.translate(0x1_0000_0010, 0, 0, 0) == 0x10          # 32-bit linear wrap


def test_4k_page(t32):
    assert tr32(t32, 0x5123) == 0x345123
    assert tr32(t32, 0x5FFF, write=True, user=True) == 0x345FFF


def test_4m_page(t32):
    assert tr32(t32, 0x00412345) == 0x00C12345
    assert tr32(t32, 0x007FFFFF) == 0x00FFFFFF


@pytest.mark.parametrize("linear, write, user, code", [
    (0x8000, False, False, 0),             # not present, supervisor read
    (0x8000, True, False, 2),              # not present, supervisor write
    (0x8000, False, True, 4),              # not present, user read
    (0x8000, True, True, 6),               # not present, user write
    (0x00C00000 + 0x400000 * 2, False, False, 0),   # PDE 3 not present
    (0x7000, False, True, 5),              # user read of a supervisor page
    (0x7000, True, True, 7),               # user write of a supervisor page
    (0x6000, True, True, 7),               # user write of a read-only page
    (0x00800000, True, True, 7),           # user write of a read-only 4 MiB page
])
def test_32bit_faults(t32, linear, write, user, code):
    with pytest.raises(PageFault) as e:
        tr32(t32, linear + 0x10, write=write, user=user)
    assert (e.value.linear, e.value.error_code) == (linear + 0x10, code)


def test_supervisor_write_to_read_only_depends_on_wp(t32):
    assert tr32(t32, 0x6010, write=True) == 0x346010
    with pytest.raises(PageFault) as e:
        tr32(t32, 0x6010, write=True, wp=True)
    assert e.value.error_code == 3
    assert tr32(t32, 0x7010, write=True, wp=True) == 0x347010   # supervisor page, writable


def test_read_only_pde_protects_its_whole_table(t32):
    t32.put32(0x1000, 0x2000 | P | US)                    # PDE read-only, PTE writable
    with pytest.raises(PageFault) as e:
        tr32(t32, 0x5000, write=True, user=True)
    assert e.value.error_code == 7


def test_accessed_and_dirty_bits_4k(t32):
    tr32(t32, 0x5000)
    assert t32.get32(0x1000) & (A | D) == A
    assert t32.get32(0x2014) & (A | D) == A
    tr32(t32, 0x5000, write=True)
    assert t32.get32(0x1000) & (A | D) == A                # the PDE never gets D
    assert t32.get32(0x2014) & (A | D) == A | D


def test_accessed_and_dirty_bits_4m(t32):
    tr32(t32, 0x00400000)
    assert t32.get32(0x1004) & (A | D) == A
    tr32(t32, 0x00400000, write=True)
    assert t32.get32(0x1004) & (A | D) == A | D


def test_no_bits_set_on_a_fault(t32):
    with pytest.raises(PageFault):
        tr32(t32, 0x7000, user=True)
    assert t32.get32(0x201C) & A == 0


# PAE: CR3 0x3000; PDPTE 0 -> page directory 0x4000; PDE 0 -> page table 0x5000 (PTE 3 ->
# 0x9876543000, above 4 GiB); PDE 1 is a 2 MiB page at 0x123400000; PDPTE 1 not present.
@pytest.fixture
def tpae():
    t = Tables()
    t.put64(0x3000, 0x4000 | P)
    t.put64(0x4000, 0x5000 | P | RW | US)
    t.put64(0x4008, 0x123400000 | P | RW | US | PS)
    t.put64(0x4010, 0x200000 | P | US | PS)                # read-only 2 MiB page
    t.put64(0x5000 + 3 * 8, 0x9876543000 | P | RW | US)
    t.put64(0x5000 + 4 * 8, 0x1000 | P | RW)               # supervisor only
    return t


def trpae(t, linear, write=False, user=False, wp=False):
    return t.mmu.translate(linear, PG | (CR0_WP if wp else 0), 0x3000, CR4_PAE,
                           write=write, user=user)


def test_pae_4k_page(tpae):
    assert trpae(tpae, 0x3456) == 0x9876543456


def test_pae_2m_page(tpae):
    assert trpae(tpae, 0x00212345) == 0x123412345
    assert trpae(tpae, 0x003FFFFF) == 0x1235FFFFF


@pytest.mark.parametrize("linear, write, user, code", [
    (0x40000000, False, False, 0),         # PDPTE not present
    (0x00600000, True, True, 6),           # PDE not present
    (0x5000, False, False, 0),             # PTE not present
    (0x4000, False, True, 5),              # supervisor page from user mode
    (0x00400000, True, True, 7),           # read-only 2 MiB page
])
def test_pae_faults(tpae, linear, write, user, code):
    with pytest.raises(PageFault) as e:
        trpae(tpae, linear, write=write, user=user)
    assert e.value.error_code == code


def test_pae_wp(tpae):
    assert trpae(tpae, 0x00400000, write=True) == 0x200000
    with pytest.raises(PageFault) as e:
        trpae(tpae, 0x00400000, write=True, wp=True)
    assert e.value.error_code == 3


def test_pae_accessed_and_dirty(tpae):
    trpae(tpae, 0x3000, write=True)
    assert tpae.get64(0x4000) & (A | D) == A
    assert tpae.get64(0x5018) & (A | D) == A | D
    trpae(tpae, 0x00200000)
    assert tpae.get64(0x4008) & (A | D) == A
    trpae(tpae, 0x00200000, write=True)
    assert tpae.get64(0x4008) & (A | D) == A | D


def test_page_fault_message():
    assert str(PageFault(0xDEAD000, 6)) == "#PF at 0xdead000 (error code 0x6)"


def test_four_level_paging_4k_2m_1g_nx_and_canonical():
    """IA-32e paging: PML4 0x1000 -> PDPT 0x2000; PDPT[0] -> PD 0x3000 -> PT 0x4000;
    PD[1] a 2 MiB page; PDPT[1] a 1 GiB page; the top PML4 slot maps the kernel half.
    The XD bit (63) is not part of the address."""
    from vmm.cpu.mmu import NonCanonical
    t = Tables()
    XD = 1 << 63
    t.put64(0x1000, 0x2000 | P | RW | US)
    t.put64(0x1000 + 511 * 8, 0x2000 | P | RW)             # 0xFFFFFF80_00000000 -> same PDPT
    t.put64(0x2000, 0x3000 | P | RW | US)
    t.put64(0x2008, 0x40000000 | P | RW | US | PS | XD)     # 1 GiB at 0x40000000
    t.put64(0x3000, 0x4000 | P | RW | US)
    t.put64(0x3008, 0x00600000 | P | US | PS)               # read-only 2 MiB page
    t.put64(0x4000 + 5 * 8, 0x345000 | P | RW | US | XD)
    tr = lambda lin, **kw: t.mmu.translate(lin, PG | CR0_WP, 0x1000, CR4_PAE, long_mode=True, **kw)
    assert tr(0x5123) == 0x345123
    assert t.get64(0x4000 + 5 * 8) & (A | D) == A
    assert tr(0x5123, write=True) == 0x345123
    assert t.get64(0x4000 + 5 * 8) & D
    assert tr(0x212345) == 0x612345
    assert tr(0x40000000 + 0x1234567) == 0x41234567
    assert tr(0xFFFFFF8000005000) == 0x345000               # kernel half, supervisor
    with pytest.raises(PageFault) as e:
        tr(0xFFFFFF8000005000, user=True)
    assert e.value.error_code == 5
    with pytest.raises(PageFault) as e:
        tr(0x212345, write=True)
    assert e.value.error_code == 3
    with pytest.raises(PageFault) as e:
        tr(0x8000000000)                                    # PML4 slot 1 not present
    assert e.value.error_code == 0 and e.value.linear == 0x8000000000
    with pytest.raises(NonCanonical):
        tr(0x0000800000000000)
