"""INT 15h: E820 walk, E801, 88h, 87h block move, A20, wait, configuration table."""
import pytest

from v3tools.errors import Unimplemented
from vmm.bios import BiosWait

SMAP = 0x534D4150


def e820_walk(b, size=20):
    entries, ebx = [], 0
    while True:
        c = b.call(0x15, eax=0xE820, edx=SMAP, ebx=ebx, ecx=size, es=0x100, di=0)
        assert not c.cf and c.eax == SMAP and c.ecx == (24 if size >= 24 else 20)
        raw = b.mem(0x1000, c.ecx)
        entries.append((int.from_bytes(raw[0:8], "little"), int.from_bytes(raw[8:16], "little"),
                         int.from_bytes(raw[16:20], "little")))
        ebx = c.ebx
        if ebx == 0:
            return entries


def test_e820_map(board):
    b = board(memory=64 << 20)
    assert e820_walk(b) == [(0, 0x9FC00, 1), (0x9FC00, 0x400, 2), (0xF0000, 0x10000, 2),
                            (0x100000, (64 << 20) - 0x100000, 1)]
    assert len(e820_walk(b, 24)) == 4
    assert b.mem(0x1000 + 20, 4) == b"\x01\0\0\0"


def test_e820_errors(board):
    b = board()
    assert b.call(0x15, eax=0xE820, edx=0, ecx=20).cf
    assert b.call(0x15, eax=0xE820, edx=SMAP, ecx=20, ebx=99).cf
    assert b.call(0x15, eax=0xE820, edx=SMAP, ecx=16).cf


def test_e801_and_88(board):
    b = board(memory=64 << 20)
    c = b.call(0x15, ax=0xE801)
    assert not c.cf and c.ax == c.cx == 15 * 1024 and c.bx == c.dx == 48 * 16
    assert b.call(0x15, ah=0x88).ax == 63 * 1024
    b = board(memory=8 << 20)
    assert b.call(0x15, ax=0xE801).bx == 0 and b.call(0x15, ah=0x88).ax == 7 * 1024


def descriptor(base, limit):
    return limit.to_bytes(2, "little") + (base & 0xFFFFFF).to_bytes(3, "little") + b"\x93\x00" + bytes((base >> 24,))


def test_block_move_above_1mib_keeps_a20_state(board):
    b = board()
    b.ctx.mem.write(0x1500000, bytes(range(256)) * 4)
    gdt = bytes(16) + descriptor(0x1500000, 0xFFFF) + descriptor(0x20000, 0xFFFF) + bytes(16)
    b.ctx.mem.write(0x800, gdt)
    b.ctx.set_a20(False)
    seen = []
    b.ctx.a20_listeners.append(seen.append)
    c = b.call(0x15, ah=0x87, cx=512, es=0, si=0x800)
    assert not c.cf and c.ah == 0
    assert b.mem(0x20000, 1024) == bytes(range(256)) * 4
    assert seen == [True, False] and b.ctx.a20 is False


def test_block_move_beyond_limit_fails_stop(board):
    b = board()
    b.ctx.mem.write(0x800, bytes(16) + descriptor(0x100000, 0xFF) + descriptor(0x20000, 0xFFFF))
    with pytest.raises(Unimplemented, match="limit"):
        b.call(0x15, ah=0x87, cx=512, si=0x800)


def test_a20_functions(board):
    b = board()
    assert not b.call(0x15, ax=0x2400).cf and b.ctx.a20 is False
    assert b.call(0x15, ax=0x2402).al == 0
    b.call(0x15, ax=0x2401)
    assert b.ctx.a20 and b.call(0x15, ax=0x2402).al == 1
    assert b.call(0x15, ax=0x2403).bx == 3


def test_wait_86h(board):
    b = board()
    with pytest.raises(BiosWait) as exc:
        b.call(0x15, ah=0x86, cx=0x000F, dx=0x4240)           # 1 s
    assert exc.value.until_ns == 1_000_000_000
    b.ctx.clock.advance(500_000_000)
    with pytest.raises(BiosWait):
        b.call(0x15, ah=0x86, cx=0x000F, dx=0x4240)
    b.ctx.clock.advance(500_000_000)
    c = b.call(0x15, ah=0x86, cx=0x000F, dx=0x4240)
    assert not c.cf


def test_config_table_and_unsupported(board):
    b = board()
    c = b.call(0x15, ah=0xC0)
    assert not c.cf and b.mem((c.es << 4) + c.bx + 2, 1) == b"\xfc"
    for ax in (0x5300, 0xE980, 0xC207, 0xEC00):
        c = b.call(0x15, ax=ax)
        assert c.cf and c.ah == 0x86
    assert b.call(0x15, ah=0x4F, al=0x1E).cf
    assert b.call(0x15, ah=0xC1).es == 0x9FC0
    with pytest.raises(Unimplemented):
        b.call(0x15, ah=0x89)
