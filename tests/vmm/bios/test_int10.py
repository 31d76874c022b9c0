"""INT 10h: teletype (control characters, wrapping, scrolling), windows, modes, mirroring."""
import pytest

from v3tools.errors import Unimplemented
from vmm.bios import bda

VGA = 0xB8000


def screen_row(b, row, n=80):
    return b.mem(VGA + row * 160, 2 * n)[::2].decode("latin-1")


def tty(b, text):
    for ch in text.encode("latin-1"):
        b.call(0x10, ah=0x0E, al=ch)


def cursor(b):
    c = b.call(0x10, ah=0x03, bh=0)
    return c.dh, c.dl


def test_teletype_control_characters(board):
    b = board()
    tty(b, "ab\bc\rX\nY\a")
    assert screen_row(b, 0, 2) == "Xc"
    assert screen_row(b, 1, 2) == " Y"
    assert cursor(b) == (1, 2)


def test_teletype_wraps_and_scrolls(board):
    b = board()
    for i in range(25):
        tty(b, f"line {i}\r\n")
    assert screen_row(b, 0, 7) == "line 1 "
    assert screen_row(b, 23, 7) == "line 24"
    assert screen_row(b, 24, 4) == "    "
    assert cursor(b) == (24, 0)
    tty(b, "x" * 81)
    assert screen_row(b, 23, 3) == "xxx" and screen_row(b, 24, 2) == "x "


def test_mirror_to_console_only_when_asked(board):
    b = board(serial=True)
    tty(b, "hi\r\n")
    assert bytes(b.ctx.console.captured) == b"hi\r\n"
    b = board()
    tty(b, "hi")
    assert bytes(b.ctx.console.captured) == b""


def test_scroll_window_and_clear(board):
    b = board()
    for r in range(5):
        b.call(0x10, ah=0x02, bh=0, dh=r, dl=0)
        tty(b, str(r) * 10)
    b.call(0x10, ah=0x06, al=2, bh=0x1F, ch=1, cl=2, dh=3, dl=5)
    assert screen_row(b, 1, 10) == "1133331111"
    assert screen_row(b, 2, 10) == "22    2222"
    assert b.mem(VGA + 2 * 160 + 4, 2) == b" \x1f"
    b.call(0x10, ah=0x07, al=1, bh=0x07, ch=0, cl=0, dh=4, dl=79)
    assert screen_row(b, 1, 4) == "0000" and screen_row(b, 0, 1) == " "
    b.call(0x10, ah=0x06, al=0, bh=0x07, ch=0, cl=0, dh=24, dl=79)
    assert all(screen_row(b, r).strip() == "" for r in range(25))


def test_write_char_attr_read_back_and_string(board):
    b = board()
    b.call(0x10, ah=0x02, bh=0, dh=3, dl=78)
    b.call(0x10, ah=0x09, al=ord("Z"), bh=0, bl=0x4E, cx=3)
    assert b.mem(VGA + 3 * 160 + 156, 6) == b"Z\x4eZ\x4eZ\x4e"
    assert cursor(b) == (3, 78)
    c = b.call(0x10, ah=0x08, bh=0)
    assert (c.al, c.ah) == (ord("Z"), 0x4E)
    b.ctx.mem.write(0x5000, b"Hello")
    b.call(0x10, ax=0x1301, bh=0, bl=0x2F, cx=5, dh=10, dl=0, es=0x500, bp=0)
    assert screen_row(b, 10, 5) == "Hello" and cursor(b) == (10, 5)
    assert b.mem(VGA + 10 * 160 + 1, 1) == b"\x2f"


def test_modes_and_queries(board):
    b = board()
    c = b.call(0x10, ah=0x0F)
    assert (c.ah, c.al, c.bh) == (80, 3, 0)
    b.call(0x10, ax=0x0001)
    assert b.call(0x10, ah=0x0F).ah == 40
    b.call(0x10, ax=0x0007)
    tty(b, "m")
    assert b.mem(0xB0000, 1) == b"m"
    c = b.call(0x10, ax=0x1A00)
    assert c.al == 0x1A and c.bl == 0x08
    c = b.call(0x10, ah=0x12, bl=0x10)
    assert c.bl != 0x10
    c = b.call(0x10, ax=0x1202, bl=0x30)                 # 400 scan lines (Xen asks for them)
    assert c.al == 0x12 and b.mem(0x489, 1)[0] & 0x90 == 0x10
    c = b.call(0x10, ax=0x1200, bl=0x30)                 # 200
    assert c.al == 0x12 and b.mem(0x489, 1)[0] & 0x90 == 0x80
    c = b.call(0x10, ax=0x1130, bh=6)
    assert (c.es, c.cx, c.dl) == (0xF000, 16, 24)
    c = b.call(0x10, ax=0x4F00)
    assert c.ax == 0x4F00                                # VBE absent
    with pytest.raises(Unimplemented, match="video mode 13h"):
        b.call(0x10, ax=0x0013)


def test_pages(board):
    b = board()
    b.call(0x10, ax=0x0501)
    assert b.mem(bda.VIDEO_PAGE, 1)[0] == 1
    tty(b, "p")
    assert b.mem(VGA + 0x1000, 1) == b"p"
