"""KEYBOARD: the i8042 keyboard controller, a PS/2 keyboard behind it, and port 0x92.

Ports (PC port list): 0x60 data, 0x64 status (read) / command (write), 0x92 System Control
Port A (bit 0 fast reset, bit 1 A20). IRQ 1 (keyboard) and IRQ 12 (aux port).
Behaviour follows the IBM PC AT technical reference for the 8042 and the PS/2 keyboard command
set. The aux (mouse) port exists on the controller but no device is connected: a byte sent to
it with 0xD4 comes back as 0xFE with the timeout bit set in the status register, which is what
an AT-compatible controller reports when the device does not clock the byte in.

The controller processes commands instantly, so IBF never reads as 1. Output bytes wait in
two queues: controller replies (and 0xD2/0xD3 loop-backs) go first, then keyboard bytes, which
are held while the keyboard interface is disabled (command byte bit 4). IRQ 1/12 follow
"output buffer full with a byte from that side" and the enable bits of the command byte.
"""
from collections import deque

from vmm.devices import register
from vmm.devices.base import Device

DATA_PORT = 0x60
STATUS_PORT = 0x64
PORT_A = 0x92

ST_OBF = 0x01                     # output buffer full
ST_IBF = 0x02                     # input buffer full (never: commands complete at once)
ST_SYS = 0x04                     # system flag (self-test passed)
ST_CMD = 0x08                     # last write was to 0x64
ST_UNLOCKED = 0x10                # keyboard not inhibited by the key lock
ST_AUX_OBF = 0x20                 # the output buffer holds aux data
ST_TIMEOUT = 0x40
ST_PARITY = 0x80

CB_KBD_INT = 0x01                 # command byte: IRQ 1 enable
CB_AUX_INT = 0x02                 # IRQ 12 enable
CB_SYS = 0x04
CB_KBD_DISABLE = 0x10
CB_AUX_DISABLE = 0x20
CB_XLATE = 0x40                   # translate keyboard bytes to set 1

OP_RESET = 0x01                   # output port: 0 holds the CPU in reset
OP_A20 = 0x02
OP_KBD_OBF = 0x10
OP_AUX_OBF = 0x20
OP_KBD_CLOCK_DATA = 0xC0

PA_FAST_RESET = 0x01              # port 0x92
PA_A20 = 0x02

ACK, RESEND, BAT_OK, ECHO = 0xFA, 0xFE, 0xAA, 0xEE
KBD_ID = (0xAB, 0x83)
XLATE_ID2 = 0x41                  # 0x83 as the controller translates it
XLATE_SET = {1: 0x43, 2: 0x41, 3: 0x3F}   # scancode set numbers as translated
INPUT_PORT = 0x80                 # input port: keyboard not inhibited
DEFAULT_CB = CB_KBD_INT | CB_SYS | CB_XLATE


class _Keyboard:
    """The PS/2 keyboard: answers commands; its bytes go to the controller's keyboard queue."""

    def __init__(self):
        self.reset_state()

    def reset_state(self):
        self.scanning = True
        self.scancode_set = 2
        self.leds = 0
        self.typematic = 0x2B
        self.expect = None                # the command awaiting its parameter byte
        self.last_sent = ACK

    def command(self, byte, translate):
        """Bytes the keyboard sends in reply to `byte` from the host."""
        if self.expect is not None:
            cmd, self.expect = self.expect, None
            return self._parameter(cmd, byte, translate)
        if byte == 0xFF:
            self.reset_state()
            return [ACK, BAT_OK]
        if byte == 0xFE:
            return [self.last_sent]
        if byte == 0xEE:
            return [ECHO]
        if byte in (0xED, 0xF0, 0xF3):
            self.expect = byte
            return [ACK]
        if byte == 0xF2:
            return [ACK, KBD_ID[0], XLATE_ID2 if translate else KBD_ID[1]]
        if byte == 0xF4:
            self.scanning = True
        elif byte == 0xF5:
            self.reset_state()
            self.scanning = False
        elif byte == 0xF6:
            self.reset_state()
        elif not 0xF7 <= byte <= 0xFD:    # F7-FD: set-3 key type commands, acknowledged
            return [RESEND]               # not a keyboard command
        return [ACK]

    def _parameter(self, cmd, byte, translate):
        if cmd == 0xED:
            self.leds = byte & 0x07
        elif cmd == 0xF3:
            self.typematic = byte & 0x7F
        elif byte == 0:                   # 0xF0 0: report the current set
            code = self.scancode_set
            return [ACK, XLATE_SET[code] if translate else code]
        elif byte in (1, 2, 3):
            self.scancode_set = byte
        else:
            return [RESEND]
        return [ACK]


@register("KEYBOARD")
class I8042(Device):
    """i8042 controller + PS/2 keyboard on 0x60/0x64, IRQ 1 and 12, and port 0x92."""

    def __init__(self, dev_id):
        super().__init__(dev_id)
        self.kbd = _Keyboard()
        self.ram = bytearray(32)          # controller RAM; byte 0 is the command byte
        self.power_on()

    def power_on(self):
        self.ram[:] = bytes(32)
        self.ram[0] = DEFAULT_CB          # as a BIOS POST leaves it
        self.kbd.reset_state()
        self.out = None                   # (byte, aux, timeout) in the output register
        self.last_out = 0
        self.ctl_queue = deque()
        self.kbd_queue = deque()
        self.pending_cmd = None           # controller command awaiting its data byte
        self.sys_flag = True
        self.cmd_flag = False
        self.timeout = False
        self.port_a = 0

    def attach(self, ctx):
        self.ctx = ctx
        self.irq1 = ctx.irq(1)
        self.irq12 = ctx.irq(12)
        ctx.io.attach(DATA_PORT, 1, self._data_read, self._data_write, self.id, widths=(1,))
        ctx.io.attach(STATUS_PORT, 1, self._status_read, self._command_write, self.id,
                      widths=(1,))
        ctx.io.attach(PORT_A, 1, self._porta_read, self._porta_write, self.id, widths=(1,))

    def reset(self):
        self.power_on()
        self._update()

    @property
    def cb(self):
        return self.ram[0]

    # -- input from the host side ---------------------------------------------------------------
    def inject_scancodes(self, data):
        """Key bytes as the guest reads them from port 0x60 (already in set 1 when the command
        byte's translation bit is on). Dropped while the keyboard has scanning disabled."""
        if not self.kbd.scanning:
            return
        self.kbd_queue.extend(data)
        self._update()

    # -- output buffer --------------------------------------------------------------------------
    def _reply(self, *data, aux=False, timeout=False):
        for b in data:
            self.ctl_queue.append((b, aux, timeout))

    def _kbd_send(self, data):
        if data:
            self.kbd.last_sent = data[-1]
        self.kbd_queue.extend(data)

    def _update(self):
        if self.out is None:
            if self.ctl_queue:
                self.out = self.ctl_queue.popleft()
            elif self.kbd_queue and not self.cb & CB_KBD_DISABLE:
                self.out = (self.kbd_queue.popleft(), False, False)
        aux = self.out is not None and self.out[1]
        self.irq1.set(self.out is not None and not aux and self.cb & CB_KBD_INT)
        self.irq12.set(aux and self.cb & CB_AUX_INT)

    # -- ports ----------------------------------------------------------------------------------
    def _status_read(self, offset, size):
        st = ST_UNLOCKED
        if self.out is not None:
            st |= ST_OBF
            if self.out[1]:
                st |= ST_AUX_OBF
            if self.out[2]:
                st |= ST_TIMEOUT
        if self.sys_flag:
            st |= ST_SYS
        if self.cmd_flag:
            st |= ST_CMD
        return st

    def _data_read(self, offset, size):
        if self.out is None:
            return self.last_out          # an empty buffer reads the previous byte
        self.last_out = self.out[0]
        self.out = None
        self.irq1.lower()                 # the next byte is a new edge
        self.irq12.lower()
        self._update()
        if self.log.on:
            self.log.debug(f"read 0x60 -> {self.last_out:#04x}")
        return self.last_out

    def _data_write(self, offset, size, value):
        self.cmd_flag = False
        if self.log.on:
            self.log.debug(f"write 0x60 <- {value:#04x}")
        cmd, self.pending_cmd = self.pending_cmd, None
        if cmd is None:
            self._kbd_send(self.kbd.command(value, bool(self.cb & CB_XLATE)))
        elif 0x60 <= cmd <= 0x7F:
            self.ram[cmd - 0x60] = value
            if cmd == 0x60:
                self.sys_flag = bool(value & CB_SYS)
        elif cmd == 0xD1:
            self._write_output_port(value)
        elif cmd == 0xD2:
            self._reply(value)
        elif cmd == 0xD3:
            self._reply(value, aux=True)
        elif cmd == 0xD4:
            self._reply(RESEND, aux=True, timeout=True)     # no mouse connected
        self._update()

    def _command_write(self, offset, size, value):
        self.cmd_flag = True
        self.pending_cmd = None
        if self.log.on:
            self.log.debug(f"command {value:#04x}")
        if 0x20 <= value <= 0x3F:
            self._reply(self.ram[value - 0x20])
        elif 0x60 <= value <= 0x7F or value in (0xD1, 0xD2, 0xD3, 0xD4):
            self.pending_cmd = value
        elif value == 0xA4:
            self._reply(0xF1)             # no password installed
        elif value in (0xA7, 0xA8):
            self.ram[0] = self.cb | CB_AUX_DISABLE if value == 0xA7 else self.cb & ~CB_AUX_DISABLE
        elif value in (0xA9, 0xAB):
            self._reply(0x00)             # interface test passed
        elif value == 0xAA:
            self.sys_flag = True
            self._reply(0x55)
        elif value in (0xAD, 0xAE):
            self.ram[0] = self.cb | CB_KBD_DISABLE if value == 0xAD else self.cb & ~CB_KBD_DISABLE
        elif value == 0xC0:
            self._reply(INPUT_PORT)
        elif value == 0xD0:
            self._reply(self._output_port())
        elif value in (0xDD, 0xDF):
            self.ctx.set_a20(value == 0xDF)
        elif value >= 0xF0:
            if not value & OP_RESET:      # pulse output line 0: CPU reset
                self.log.debug("reset pulse")
                self.ctx.request("reset")
        else:
            self.unimplemented(f"i8042 controller command {value:#04x}")
        self._update()

    def _output_port(self):
        value = OP_KBD_CLOCK_DATA | OP_RESET | (OP_A20 if self.ctx.a20 else 0)
        if self.out is not None:
            value |= OP_AUX_OBF if self.out[1] else OP_KBD_OBF
        return value

    def _write_output_port(self, value):
        self.ctx.set_a20(bool(value & OP_A20))
        if not value & OP_RESET:
            self.log.debug("reset via output port")
            self.ctx.request("reset")

    def _porta_read(self, offset, size):
        return (self.port_a & ~PA_A20) | (PA_A20 if self.ctx.a20 else 0)

    def _porta_write(self, offset, size, value):
        self.ctx.set_a20(bool(value & PA_A20))
        if value & PA_FAST_RESET:
            self.log.debug("fast reset via port 0x92")
            self.ctx.request("reset")
        self.port_a = value & ~PA_FAST_RESET   # the reset bit reads back as 0
