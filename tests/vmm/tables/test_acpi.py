"""ACPI tables (vmm/tables/acpi.py, device ACPI) as an operating system finds them: a checker
written from the ACPI specification (chapter 5) walks RSDP -> XSDT/RSDT -> FADT/MADT -> DSDT on
the standard PC, and Intel's disassembler (iasl, Debian acpica-tools) reads every table."""
import struct
import subprocess

from vmm.config import parse_vm_config
from vmm.launch import standard_pc_xml
from vmm.machine import Machine


def board(memory_mb=64):
    m = Machine(memory_mb=memory_mb)
    m.add_devices(parse_vm_config(standard_pc_xml(memory_mb).encode(), "<test>").devices)
    m.finish_board()
    return m


def find_rsdp(read):
    for addr in range(0xE0000, 0x100000, 16):        # ACPI 5.2.5.1: the BIOS read-only area
        if read(addr, 8) == b"RSD PTR ":
            return addr
    raise AssertionError("no RSDP")


def tables(read):
    """{signature: (address, bytes)}, every checksum verified."""
    rsdp = read(find_rsdp(read), 36)
    assert sum(rsdp[:20]) % 256 == 0 and sum(rsdp) % 256 == 0
    rsdt_addr, length, xsdt_addr = struct.unpack_from("<IIQ", rsdp, 16)
    assert rsdp[15] == 2 and length == 36

    def sdt(addr):
        length = struct.unpack("<I", read(addr + 4, 4))[0]
        data = read(addr, length)
        assert sum(data) % 256 == 0, f"{data[:4]} checksum"
        return data

    rsdt, xsdt = sdt(rsdt_addr), sdt(xsdt_addr)
    assert rsdt[:4] == b"RSDT" and xsdt[:4] == b"XSDT"
    r = struct.unpack(f"<{(len(rsdt) - 36) // 4}I", rsdt[36:])
    x = struct.unpack(f"<{(len(xsdt) - 36) // 8}Q", xsdt[36:])
    assert list(r) == list(x)
    out = {}
    for addr in x:
        data = sdt(addr)
        out[data[:4].decode()] = (addr, data)
    fadt = out["FACP"][1]
    facs, dsdt = struct.unpack_from("<II", fadt, 36)
    out["DSDT"] = (dsdt, sdt(dsdt))
    out["FACS"] = (facs, read(facs, 64))
    return out


def test_standard_pc_acpi_tables():
    m = board()
    t = tables(lambda a, n: bytes(m.ram[a:a + n]))
    assert {"FACP", "APIC", "HPET", "DSDT", "FACS"} <= set(t)
    hpet = t["HPET"][1]
    block_id, space, width, _, _, base, number, min_tick = struct.unpack_from("<IBBBBQBH", hpet, 36)
    assert block_id == m.ctx.hpet.capabilities() & 0xFFFFFFFF and block_id >> 16 == 0x8086
    assert (space, base, number) == (0, 0xFED00000, 0) and min_tick > 0
    fadt = t["FACP"][1]
    assert len(fadt) == 244 and fadt[8] == 3
    sci, smi_cmd = struct.unpack_from("<HI", fadt, 46)
    pm1a_evt, _, pm1a_cnt, _, _, pm_tmr = struct.unpack_from("<6I", fadt, 56)
    assert sci == 9 and smi_cmd == 0
    assert (pm1a_evt, pm1a_cnt, pm_tmr) == (0x600, 0x604, 0x608)
    assert fadt[88:92] == bytes((4, 2, 0, 4))              # PM1_EVT, PM1_CNT, PM2, PM_TMR lengths
    flags = struct.unpack_from("<I", fadt, 112)[0]
    assert flags & (1 << 8)                                # TMR_VAL_EXT: 32-bit PM timer
    assert t["FACS"][1][:4] == b"FACS"
    # MADT: LAPIC base, PCAT_COMPAT, entries
    madt = t["APIC"][1]
    lapic_base, madt_flags = struct.unpack_from("<II", madt, 36)
    assert lapic_base == 0xFEE00000 and madt_flags & 1
    entries, off = [], 44
    while off < len(madt):
        kind, length = madt[off], madt[off + 1]
        entries.append((kind, madt[off + 2:off + length]))
        off += length
    assert off == len(madt)
    assert (0, bytes((0, 0, 1, 0, 0, 0))) in entries                   # UID 0, APIC ID 0, enabled
    ioapics = [struct.unpack("<BxII", e) for k, e in entries if k == 1]
    assert ioapics == [(1, 0xFEC00000, 0)]
    overrides = {e[1]: struct.unpack_from("<IH", e, 2) for k, e in entries if k == 2}
    assert overrides == {0: (2, 0), 9: (9, 0xD)}                       # PIT -> 2; SCI level high
    assert [e for k, e in entries if k == 4] == [bytes((0xFF, 0, 0, 1))]   # LINT1 NMI
    dsdt = t["DSDT"][1]
    assert bytes.fromhex("085c5f53355f1208040a050a050000") in dsdt      # Name(\_S5, {5,5,0,0})
    assert bytes.fromhex("0c41d00a03") in dsdt                           # EisaId("PNP0A03")


def test_iasl_disassembles_every_table(tmp_path, require_tool):
    iasl = require_tool("iasl", "acpica-tools")
    m = board()
    t = tables(lambda a, n: bytes(m.ram[a:a + n]))
    for sig, (addr, data) in t.items():
        if sig == "FACS":
            continue
        path = tmp_path / f"{sig.lower()}.dat"
        path.write_bytes(data)
        proc = subprocess.run([iasl, "-d", str(path)], capture_output=True, text=True)
        dsl = (tmp_path / f"{sig.lower()}.dsl").read_text()
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "Error" not in proc.stdout + proc.stderr and "Warning" not in dsl, dsl
    dsdt = (tmp_path / "dsdt.dsl").read_text()
    assert "Name (\\_S5, Package (0x04)" in dsdt
    assert 'EisaId ("PNP0A03")' in dsdt and "WordBusNumber" in dsdt
    prt = dsdt[dsdt.index("Name (_PRT"):]
    assert "0x0001FFFF" in prt and prt.count("Package (0x04)") == 128
    assert 'EisaId ("PNP0103")' in dsdt and "Memory32Fixed" in dsdt      # the HPET device
    assert "FED00000" in (tmp_path / "hpet.dsl").read_text()
    madt = (tmp_path / "apic.dsl").read_text()
    assert "Interrupt Source Override" in madt and "Local APIC NMI" in madt
