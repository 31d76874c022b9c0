"""The MP table (vmm/tables/mptable.py, device MPTABLE) as an operating system reads it: a
checker written from the MP specification 1.4 (chapter 4) finds the floating pointer in the F
segment and decodes the configuration table the built-in BIOS published for the standard PC."""
import struct

import pytest

from vmm.config import parse_vm_config
from vmm.launch import standard_pc_xml
from vmm.machine import Machine


def board(xml=None, memory_mb=32):
    m = Machine(memory_mb=memory_mb)
    cfg = parse_vm_config((xml or standard_pc_xml(memory_mb)).encode(), "<test>")
    m.add_devices(cfg.devices)
    m.finish_board()
    return m


def find_mp(read):
    """Search as Linux does (MP spec 4.1: the F segment, 16-byte aligned)."""
    for addr in range(0xF0000, 0x100000, 16):
        if read(addr, 4) == b"_MP_":
            return addr
    raise AssertionError("no MP floating pointer in 0xF0000-0xFFFFF")


def parse_mp(read):
    fp_addr = find_mp(read)
    fp = read(fp_addr, 16)
    assert sum(fp) % 256 == 0, "floating pointer checksum"
    table_addr, length16, rev, _, feat1 = struct.unpack_from("<IBBBB", fp, 4)
    assert length16 == 1 and rev == 4 and feat1 == 0
    head = read(table_addr, 44)
    sig, length, rev, _, oem, product, _, _, count, lapic, ext_len, _, _ = \
        struct.unpack("<4sHBB8s12sIHHIHBB", head)
    assert sig == b"PCMP" and rev == 4 and ext_len == 0
    table = read(table_addr, length)
    assert sum(table) % 256 == 0, "configuration table checksum"
    out = dict(lapic=lapic, cpus=[], buses={}, ioapics=[], ioints=[], lints=[], types=[])
    off = 44
    for _ in range(count):
        kind = table[off]
        out["types"].append(kind)
        if kind == 0:
            _, apic_id, ver, flags, sig, feat = struct.unpack_from("<BBBBII", table, off)
            out["cpus"].append((apic_id, flags, sig, feat))
            off += 20
            continue
        if kind == 1:
            out["buses"][table[off + 1]] = table[off + 2:off + 8].decode().rstrip()
        elif kind == 2:
            _, ident, ver, flags, addr = struct.unpack_from("<BBBBI", table, off)
            out["ioapics"].append((ident, flags, addr))
        elif kind in (3, 4):
            _, itype, flags, bus, irq, dest, pin = struct.unpack_from("<BBHBBBB", table, off)
            out["ioints" if kind == 3 else "lints"].append((itype, flags, bus, irq, dest, pin))
        else:
            raise AssertionError(f"entry type {kind}")
        off += 8
    assert off == length
    assert out["types"] == sorted(out["types"]), "entries are ordered by type (MP spec 4.3)"
    return out


def test_standard_pc_mp_table():
    m = board()
    mp = parse_mp(lambda a, n: bytes(m.ram[a:a + n]))
    assert mp["lapic"] == 0xFEE00000
    (apic_id, flags, sig, feat), = mp["cpus"]
    assert apic_id == 0 and flags == 3                    # enabled, bootstrap processor
    assert sig == m.cpu.cpuid.lookup(1, 0)[0] and feat & (1 << 9)   # APIC in the features
    ids = {v: k for k, v in mp["buses"].items()}
    assert set(ids) == {"PCI", "ISA"}
    assert mp["ioapics"] == [(1, 1, 0xFEC00000)]
    isa = {irq: pin for (t, fl, bus, irq, dest, pin) in mp["ioints"] if bus == ids["ISA"]}
    assert isa[0] == 2                                    # the PIT's override
    assert 2 not in isa and all(isa[i] == i for i in isa if i)
    assert sorted(isa) == [0, 1] + list(range(3, 16))
    assert {(t, pin) for (t, fl, bus, irq, dest, pin) in mp["lints"]} == {(3, 0), (1, 1)}


def test_pci_intx_entries_follow_the_functions_with_an_interrupt_pin():
    from vmm.devices.ioapic import pci_intx_pin
    from vmm.devices.pci import PciConfig
    m = Machine(memory_mb=32)
    cfg = parse_vm_config(standard_pc_xml(32).encode(), "<test>")
    m.add_devices(cfg.devices)
    nic = PciConfig(0x8086, 0x100E, 0x020000, interrupt_pin=1, name="test nic")
    slot, _ = m.ctx.pci_bus.register_function(config_space=nic)
    m.finish_board()
    mp = parse_mp(lambda a, n: bytes(m.ram[a:a + n]))
    pci = [e for e in mp["ioints"] if mp["buses"][e[2]] == "PCI"]
    assert pci == [(0, 0xF, 0, slot << 2, 1, pci_intx_pin(slot, 0))]   # level, active low


def test_mptable_needs_a_lapic():
    from v3tools.errors import ConfigError
    xml = '<vm><devices><device class="8259A" id="pic"/><device class="MPTABLE" id="mp"/></devices></vm>'
    with pytest.raises(ConfigError, match="no LAPIC"):
        board(xml)
