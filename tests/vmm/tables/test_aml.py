"""The AML encoder (vmm/tables/aml.py) against encodings given in the ACPI specification and
produced by Intel's iasl."""
import pytest

from vmm.tables import aml


def test_pkg_length_encodings():
    assert aml.pkg_length(0) == b"\x01"
    assert aml.pkg_length(62) == b"\x3f"                # 63 fits one byte
    assert aml.pkg_length(63) == b"\x41\x04"            # 65 = 0x41: low nibble 1, then 4
    total = 5000 + 3
    assert aml.pkg_length(5000) == bytes(((2 << 6) | (total & 0xF), (total >> 4) & 0xFF, total >> 12))


def test_integers_take_the_shortest_form():
    assert aml.integer(0) == b"\x00" and aml.integer(1) == b"\x01"
    assert aml.integer(5) == b"\x0a\x05"
    assert aml.integer(0x1234) == b"\x0b\x34\x12"
    assert aml.integer(0x12345678) == b"\x0c\x78\x56\x34\x12"
    assert aml.integer(1 << 40) == b"\x0e" + (1 << 40).to_bytes(8, "little")


def test_names():
    assert aml.name_string("\\_S5") == b"\\_S5_"
    assert aml.name_string("\\_SB.PCI0") == b"\\\x2e_SB_PCI0"
    assert aml.name_string("A.B.C") == b"\x2f\x03A___B___C___"
    with pytest.raises(ValueError):
        aml.name_seg("TOOLONG")


def test_eisa_id_and_s5_package_as_iasl_writes_them():
    assert aml.eisa_id("PNP0A03") == bytes.fromhex("0c41d00a03")
    assert aml.name("_S5", aml.package(5, 5, 0, 0)) == bytes.fromhex("085f53355f1208040a050a050000")


def test_package_limit():
    with pytest.raises(ValueError):
        aml.package(*([0] * 256))
