"""INT 1Ah: ticks and midnight, RTC through ports 70h/71h, the PCI BIOS."""
import pytest



class Cmos:
    def __init__(self, regs):
        self.regs = dict(regs)
        self.index = 0

    def attach(self, ctx):
        ctx.io.attach(0x70, 2, self.read, self.write, "cmos", widths=(1,))

    def read(self, off, size):
        return self.regs.get(self.index, 0) if off == 1 else 0xFF

    def write(self, off, size, value):
        if off == 0:
            self.index = value & 0x7F
        else:
            self.regs[self.index] = value


def test_ticks_and_midnight(board):
    b = board()
    tick = b.service(0x08)
    for _ in range(3):
        tick(None)
    c = b.call(0x1A, ah=0x00)
    assert (c.cx << 16 | c.dx) == 3 and c.al == 0
    b.call(0x1A, ah=0x01, cx=0x0018, dx=0x00AF)                 # one tick before midnight
    tick(None)
    c = b.call(0x1A, ah=0x00)
    assert c.cx == c.dx == 0 and c.al == 1
    assert b.call(0x1A, ah=0x00).al == 0


@pytest.mark.parametrize("binary", [False, True])
def test_rtc_time_and_date_in_bcd(board, binary):
    b = board()
    if binary:
        regs = {0: 56, 2: 34, 4: 12, 7: 31, 8: 12, 9: 99, 0x32: 19, 0x0B: 0x06}
    else:
        regs = {0: 0x56, 2: 0x34, 4: 0x12, 7: 0x31, 8: 0x12, 9: 0x99, 0x32: 0x19, 0x0B: 0x02}
    cmos = Cmos(regs)
    cmos.attach(b.ctx)
    c = b.call(0x1A, ah=0x02)
    assert (c.ch, c.cl, c.dh, c.dl, c.cf) == (0x12, 0x34, 0x56, 0, False)
    c = b.call(0x1A, ah=0x04)
    assert (c.ch, c.cl, c.dh, c.dl) == (0x19, 0x99, 0x12, 0x31)
    b.call(0x1A, ah=0x03, ch=0x23, cl=0x59, dh=0x01, dl=0)
    assert cmos.regs[4] == (23 if binary else 0x23)


class FakePci:
    last_bus = 0

    def __init__(self):
        self.space = {(0, 1, 0): bytearray(256)}
        self.space[(0, 1, 0)][0:4] = bytes((0x86, 0x80, 0x00, 0x70))
        self.space[(0, 1, 0)][8:12] = bytes((0, 0x80, 0x01, 0x01))   # IDE class 010180

    def find_device(self, vendor, device, index):
        hits = [k for k, v in self.space.items()
                if int.from_bytes(v[0:2], "little") == vendor
                and int.from_bytes(v[2:4], "little") == device]
        return hits[index] if index < len(hits) else None

    def find_class(self, code, index):
        hits = [k for k, v in self.space.items() if int.from_bytes(v[9:12], "little") == code]
        return hits[index] if index < len(hits) else None

    def read_config(self, bus, dev, fn, off, size):
        cfg = self.space.get((bus, dev, fn))
        return int.from_bytes(cfg[off:off + size], "little") if cfg else (1 << 8 * size) - 1

    def write_config(self, bus, dev, fn, off, size, value):
        self.space[(bus, dev, fn)][off:off + size] = value.to_bytes(size, "little")


def test_pci_bios(board):
    b = board()
    b.ctx.pci_bus = FakePci()
    c = b.call(0x1A, ax=0xB101)
    assert not c.cf and c.edx == 0x20494350 and c.al == 1 and c.bx == 0x0210
    c = b.call(0x1A, ax=0xB102, dx=0x8086, cx=0x7000, si=0)
    assert not c.cf and (c.bh, c.bl) == (0, 0x08)
    c = b.call(0x1A, ax=0xB102, dx=0x8086, cx=0x7000, si=1)
    assert c.cf and c.ah == 0x86
    c = b.call(0x1A, ax=0xB103, ecx=0x010180, si=0)
    assert not c.cf and c.bl == 0x08
    c = b.call(0x1A, ax=0xB10A, bx=0x0008, di=0)
    assert c.ecx == 0x70008086
    c = b.call(0x1A, ax=0xB109, bx=0x0008, di=1)
    assert c.cf and c.ah == 0x87
    b.call(0x1A, ax=0xB10C, bx=0x0008, di=0x3C, cx=0x010B)
    assert b.call(0x1A, ax=0xB108, bx=0x0008, di=0x3C).cl == 0x0B


def test_no_pci_bus(board):
    c = board().call(0x1A, ax=0xB101)
    assert c.cf and c.ah == 0x81
