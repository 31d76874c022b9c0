"""INT 16h and the IRQ 1 handler: console input, escape sequences, scan codes, waiting."""
import pytest

from vmm.bios import BiosWait


def keys(b):
    out = []
    while not b.call(0x16, ah=0x11).zf:
        out.append(b.call(0x16, ah=0x10).ax)
    return out


def test_console_ascii_becomes_scan_ascii_pairs(board):
    b = board()
    b.ctx.console.feed(b"aZ1 \r\n\x1b\x7f\x03")
    assert keys(b) == [0x1E61, 0x2C5A, 0x0231, 0x3920, 0x1C0D, 0x011B, 0x0E08, 0x2E03]


def test_escape_sequences(board):
    b = board()
    b.ctx.console.feed(b"\x1b[A\x1b[B\x1bOP\x1b[5~x")
    assert keys(b) == [0x48E0, 0x50E0, 0x3B00, 0x49E0, 0x2D78]
    b.ctx.console.feed(b"\x1b[C")
    assert b.call(0x16, ah=0x00).ax == 0x4D00                  # classic call drops the E0h


def test_peek_does_not_consume_and_wait_when_empty(board):
    b = board()
    c = b.call(0x16, ah=0x01)
    assert c.zf
    with pytest.raises(BiosWait) as exc:
        b.call(0x16, ah=0x00)
    assert exc.value.until_ns is None
    b.ctx.console.feed(b"q")
    c = b.call(0x16, ah=0x01)
    assert not c.zf and c.ax == 0x1071
    assert b.call(0x16, ah=0x00).ax == 0x1071
    assert b.call(0x16, ah=0x01).zf


def test_buffer_holds_15_keys_and_store_key(board):
    b = board()
    b.ctx.console.feed(b"abcdefghijklmnopqrst")
    assert len(keys(b)) == 15
    assert b.call(0x16, ah=0x05, cx=0x1234).al == 0
    assert b.call(0x16, ah=0x10).ax == 0x1234


def test_irq1_scancodes_with_shift_and_ctrl(board, fake_call):
    seq = iter([0x2A, 0x1E, 0x9E, 0xAA, 0x1E, 0x1D, 0x2E, 0x9D, 0xE0, 0x48, 0xE0, 0xC8, 0x3A, 0x10])
    b = board(io_reads={0x60: lambda port: next(seq)})
    isr = b.service(0x09)
    for _ in range(14):
        isr(fake_call(b.ctx))
    assert keys(b) == [0x1E41, 0x1E61, 0x2E03, 0x48E0, 0x1051]
    assert b.call(0x16, ah=0x02).al & 0x40                      # caps lock on


def test_shift_flags(board):
    b = board()
    b.ctx.mem.write(0x417, b"\x05")
    c = b.call(0x16, ah=0x12)
    assert c.al == 0x05 and c.ah & 0x01
