"""INT 11h, 12h, 14h, 17h, 18h and the default exception handlers."""
import pytest

from v3tools.errors import VMStop
from vmm.bios import BootFailed, bda


def test_equipment_and_memory(board):
    b = board()
    assert b.call(0x11).ax == int.from_bytes(b.mem(bda.EQUIPMENT, 2), "little")
    assert b.call(0x12).ax == 639


class Uart:
    base = 0x3F8

    def __init__(self):
        self.regs = {5: 0x60}
        self.sent = bytearray()
        self.log = []

    def read(self, off, size):
        return self.regs.get(off, 0)

    def write(self, off, size, value):
        self.log.append((off, value))
        if off == 0 and not self.regs.get(3, 0) & 0x80:
            self.sent.append(value)
        else:
            self.regs[off] = value


def test_int14_programs_the_uart(board):
    b = board(post=False)
    uart = Uart()
    b.ctx.serial_ports = {"COM1": uart}
    b.ctx.io.attach(0x3F8, 8, uart.read, uart.write, "com1", widths=(1,))
    b.bios.post.run()
    c = b.call(0x14, ah=0x00, al=0xE3, dx=0)                       # 9600 8N1
    assert (0, 0x0C) in uart.log and uart.regs[3] == 0x03 and c.ah == 0x60
    b.call(0x14, ah=0x01, al=ord("A"), dx=0)
    assert uart.sent == b"A"
    c = b.call(0x14, ah=0x02, dx=0)
    assert c.ah & 0x80                                            # nothing received
    uart.regs[5] |= 1
    uart.regs[0] = ord("k")
    c = b.call(0x14, ah=0x02, dx=0)
    assert c.al == ord("k") and not c.ah & 0x80
    assert b.call(0x14, ah=0x03, dx=1).ah == 0x80                 # no COM2


def test_int17_no_printer(board):
    assert board().call(0x17, ah=0x01, dx=0).ah == 0x01


def test_int18_stops(board):
    with pytest.raises(BootFailed):
        board().call(0x18)


def test_unhandled_divide_error_stops(board):
    b = board()
    svc = b.bios.trap_service(b.bios.image.traps["divide_error"])
    with pytest.raises(VMStop, match="divide error"):
        svc(None)
