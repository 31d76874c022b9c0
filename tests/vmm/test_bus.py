"""vmm/bus.py: attach rules, offsets, the access-width policy, unclaimed accesses."""
import pytest

from v3tools.errors import UnhandledIO, VMStop
from vmm.bus import Bus, BusError


class Regs:
    """A device with `n` byte registers that records every access it sees."""

    def __init__(self, n, fill=0):
        self.regs = bytearray([fill] * n) if isinstance(fill, int) else bytearray(fill)
        self.log = []

    def read(self, offset, size):
        self.log.append(("r", offset, size))
        return int.from_bytes(self.regs[offset:offset + size], "little")

    def write(self, offset, size, value):
        self.log.append(("w", offset, size, value))
        self.regs[offset:offset + size] = value.to_bytes(size, "little")


@pytest.fixture(params=["port", "mmio"])
def bus(request):
    return Bus("port", 0x10000) if request.param == "port" else Bus("mmio", 1 << 32)


def attach(bus, dev, base, length, owner, widths=(1, 2, 4)):
    return bus.attach(base, length, dev.read, dev.write, owner, widths=widths)


def test_device_sees_offsets(bus):
    dev = Regs(4, b"\x11\x22\x33\x44")
    attach(bus, dev, 0x70, 4, "rtc")
    assert bus.read(0x72, 1) == 0x33
    bus.write(0x73, 1, 0xAB)
    assert dev.log == [("r", 2, 1), ("w", 3, 1, 0xAB)]


@pytest.mark.parametrize("base, length", [(0x6F, 2), (0x73, 1), (0x60, 0x20), (0x71, 1)])
def test_overlap_names_both_owners(bus, base, length):
    attach(bus, Regs(4), 0x70, 4, "rtc")
    attach(bus, Regs(1), 0x80, 1, "post")
    with pytest.raises(BusError) as e:
        attach(bus, Regs(0x20), base, length, "intruder")
    msg = str(e.value)
    assert "intruder" in msg and ("rtc" in msg or "post" in msg)
    assert msg.startswith(f"{bus.kind} range {base:#x}-{base + length - 1:#x} of intruder overlaps")


def test_adjacent_ranges_are_fine(bus):
    attach(bus, Regs(4), 0x70, 4, "a")
    attach(bus, Regs(4), 0x6C, 4, "b")
    attach(bus, Regs(4), 0x74, 4, "c")
    assert [o for _, _, o in bus.owners()] == ["b", "a", "c"]


@pytest.mark.parametrize("length", [0, -1])
def test_zero_length_rejected(bus, length):
    with pytest.raises(BusError, match=r"^dev: zero-length .* range at 0x10$"):
        attach(bus, Regs(1), 0x10, length, "dev")
    assert bus.owners() == []


def test_range_outside_port_space():
    bus = Bus("port", 0x10000)
    with pytest.raises(BusError, match="outside the bus"):
        attach(bus, Regs(2), 0xFFFF, 2, "dev")


def test_dword_on_byte_device_splits_little_endian(bus):
    dev = Regs(4, b"\x11\x22\x33\x44")
    attach(bus, dev, 0x40, 4, "pit", widths=(1,))
    assert bus.read(0x40, 4) == 0x44332211
    assert dev.log == [("r", 0, 1), ("r", 1, 1), ("r", 2, 1), ("r", 3, 1)]
    dev.log.clear()
    bus.write(0x40, 4, 0xDDCCBBAA)
    assert dev.log == [("w", 0, 1, 0xAA), ("w", 1, 1, 0xBB), ("w", 2, 1, 0xCC), ("w", 3, 1, 0xDD)]


def test_dword_on_word_device_uses_words(bus):
    dev = Regs(4, b"\x11\x22\x33\x44")
    attach(bus, dev, 0x40, 4, "dev", widths=(1, 2))
    assert bus.read(0x40, 4) == 0x44332211
    assert dev.log == [("r", 0, 2), ("r", 2, 2)]


def test_unsplittable_width_is_a_fail_stop(bus):
    from v3tools.errors import Unimplemented
    attach(bus, Regs(4), 0x40, 4, "dev", widths=(2,))
    with pytest.raises(Unimplemented, match=r"^1-byte access to dev .* implements 2-byte accesses only"):
        bus.read(0x40, 1)
    with pytest.raises(Unimplemented):
        bus.write(0x40, 1, 0)


def test_values_are_masked_to_the_access_width(bus):
    seen = []
    bus.attach(0x10, 4, lambda o, s: 0xFFFFFFFF, lambda o, s, v: seen.append(v), "dev")
    assert bus.read(0x10, 1) == 0xFF
    assert bus.read(0x10, 2) == 0xFFFF
    bus.write(0x10, 1, 0x1234)
    assert seen == [0x34]


def test_split_access_running_off_a_device_is_unclaimed(bus):
    attach(bus, Regs(1), 0x40, 1, "dev", widths=(1,))
    with pytest.raises(UnhandledIO) as e:
        bus.read(0x40, 2)
    assert e.value.context["addr"] == 0x41


def test_unclaimed_read_and_write_raise(bus):
    with pytest.raises(UnhandledIO) as e:
        bus.read(0x1234, 2)
    assert isinstance(e.value, VMStop) and e.value.exit_status == 3
    assert str(e.value) == f"unclaimed read of 2 byte(s) {bus.kind} 0x1234"
    with pytest.raises(UnhandledIO) as e:
        bus.write(0x1234, 1, 0x5A)
    assert str(e.value) == f"unclaimed write of 1 byte(s) {bus.kind} 0x1234 value 0x5a"
    assert e.value.context == {"kind": bus.kind, "addr": 0x1234, "size": 1, "value": 0x5A,
                               "write": True}


def test_fallback_answers_unclaimed(bus):
    calls = []

    def fallback(kind, addr, size, value, write):
        calls.append((kind, addr, size, value, write))
        return None if write else 0xAB

    bus.fallback = fallback
    assert bus.read(0x99, 1) == 0xAB
    bus.write(0x99, 2, 0x1234)
    assert calls == [(bus.kind, 0x99, 1, None, False), (bus.kind, 0x99, 2, 0x1234, True)]


def test_find(bus):
    r = attach(bus, Regs(8), 0x100, 8, "dev")
    assert bus.find(0x100) is r and bus.find(0x107) is r
    assert bus.find(0xFF) is None and bus.find(0x108) is None
    assert bus.find(-1) is None


def test_port_table_follows_attach():
    bus = Bus("port", 0x10000)
    r = attach(bus, Regs(2), 0x3F8, 2, "com1")
    assert bus.table[0x3F8] is r and bus.table[0x3F9] is r and bus.table[0x3FA] is None
    assert Bus("mmio", 1 << 32).table is None
