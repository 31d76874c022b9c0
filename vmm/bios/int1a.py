"""INT 1Ah time services (tick count, RTC time and date), the PCI BIOS (AX=B1xxh), and the
IRQ 0 tick service behind INT 08h.

The RTC is read and set through the NVRAM device's ports 70h/71h (MC146818 registers 00h-09h,
century at 32h); values are returned in BCD whatever the data mode in register B. The PCI BIOS
answers through `ctx.pci_bus` (configuration mechanism 1); without a PCI bus every B1xxh call
gets CF=1, AH=81h (function not supported).
"""
from v3tools.errors import Unimplemented

from vmm.bios import bda

CMOS_INDEX, CMOS_DATA = 0x70, 0x71
RTC_SEC, RTC_MIN, RTC_HOUR, RTC_DAY, RTC_MONTH, RTC_YEAR = 0x00, 0x02, 0x04, 0x07, 0x08, 0x09
RTC_REG_A, RTC_REG_B, RTC_CENTURY = 0x0A, 0x0B, 0x32
REG_A_UIP = 0x80             # update in progress
REG_B_BINARY, REG_B_24H, REG_B_DST = 0x04, 0x02, 0x01
NMI_DISABLE = 0x80           # keep NMI masked while the BIOS touches the CMOS index

PCI_SIGNATURE = 0x20494350   # 'PCI '
PCI_VERSION = 0x0210         # PCI BIOS 2.10
PCI_SUCCESSFUL, PCI_FUNC_NOT_SUPPORTED = 0x00, 0x81
PCI_BAD_VENDOR_ID, PCI_DEVICE_NOT_FOUND, PCI_BAD_REGISTER = 0x83, 0x86, 0x87


def to_bcd(v):
    return (v // 10) << 4 | v % 10


def from_bcd(v):
    return (v >> 4) * 10 + (v & 0x0F)


class TimeServices:
    def __init__(self, bios):
        self.bios = bios
        self.ctx = bios.ctx

    def reset(self):
        self.bios.wr32(bda.TICKS, 0)
        self.bios.wr8(bda.MIDNIGHT, 0)

    # -- IRQ 0 --------------------------------------------------------------------------------
    def tick(self, call=None):
        b = self.bios
        ticks = b.rd32(bda.TICKS) + 1
        if ticks >= bda.TICKS_PER_DAY:
            ticks = 0
            b.wr8(bda.MIDNIGHT, 1)
        b.wr32(bda.TICKS, ticks)

    # -- INT 1Ah -------------------------------------------------------------------------------
    def service(self, call):
        ah = call.ah
        if ah == 0xB1:
            self.pci(call)
            return
        fn = {0x00: self.get_ticks, 0x01: self.set_ticks, 0x02: self.get_time,
              0x03: self.set_time, 0x04: self.get_date, 0x05: self.set_date}.get(ah)
        if fn is None:
            raise Unimplemented(f"INT 1Ah AH={ah:02X}h (time function not implemented)")
        fn(call)

    def get_ticks(self, call):
        b = self.bios
        ticks = b.rd32(bda.TICKS)
        call.cx, call.dx = ticks >> 16, ticks & 0xFFFF
        call.al = b.rd8(bda.MIDNIGHT)
        b.wr8(bda.MIDNIGHT, 0)
        call.cf = False

    def set_ticks(self, call):
        self.bios.wr32(bda.TICKS, call.cx << 16 | call.dx)
        self.bios.wr8(bda.MIDNIGHT, 0)
        call.ah = 0
        call.cf = False

    def cmos_read(self, reg):
        self.ctx.io.write(CMOS_INDEX, 1, NMI_DISABLE | reg)
        return self.ctx.io.read(CMOS_DATA, 1)

    def cmos_write(self, reg, value):
        self.ctx.io.write(CMOS_INDEX, 1, NMI_DISABLE | reg)
        self.ctx.io.write(CMOS_DATA, 1, value)

    def _binary(self):
        return bool(self.cmos_read(RTC_REG_B) & REG_B_BINARY)

    def _read_bcd(self, reg, binary):
        v = self.cmos_read(reg)
        if not binary:
            return v
        if reg == RTC_HOUR and v & 0x80:               # 12-hour PM flag kept as is
            return 0x80 | to_bcd(v & 0x7F)
        return to_bcd(v)

    def _write_bcd(self, reg, value, binary):
        self.cmos_write(reg, from_bcd(value) if binary else value)

    def get_time(self, call):
        binary = self._binary()
        call.ch = self._read_bcd(RTC_HOUR, binary)
        call.cl = self._read_bcd(RTC_MIN, binary)
        call.dh = self._read_bcd(RTC_SEC, binary)
        call.dl = self.cmos_read(RTC_REG_B) & REG_B_DST
        call.cf = False

    def set_time(self, call):
        binary = self._binary()
        self._write_bcd(RTC_HOUR, call.ch, binary)
        self._write_bcd(RTC_MIN, call.cl, binary)
        self._write_bcd(RTC_SEC, call.dh, binary)
        reg_b = self.cmos_read(RTC_REG_B)
        self.cmos_write(RTC_REG_B, reg_b & ~REG_B_DST | (call.dl & REG_B_DST))
        call.ah = 0
        call.cf = False

    def get_date(self, call):
        binary = self._binary()
        call.ch = self._read_bcd(RTC_CENTURY, binary)
        call.cl = self._read_bcd(RTC_YEAR, binary)
        call.dh = self._read_bcd(RTC_MONTH, binary)
        call.dl = self._read_bcd(RTC_DAY, binary)
        call.cf = False

    def set_date(self, call):
        binary = self._binary()
        self._write_bcd(RTC_CENTURY, call.ch, binary)
        self._write_bcd(RTC_YEAR, call.cl, binary)
        self._write_bcd(RTC_MONTH, call.dh, binary)
        self._write_bcd(RTC_DAY, call.dl, binary)
        call.ah = 0
        call.cf = False

    # -- PCI BIOS (AX=B1xxh) ---------------------------------------------------------------------
    def pci(self, call):
        bus = self.ctx.pci_bus
        al = call.al
        if bus is None or al in (0x06, 0x0E, 0x0F):    # special cycle, IRQ routing: none
            self._pci_status(call, PCI_FUNC_NOT_SUPPORTED)
            return
        if al == 0x01:
            call.edx = PCI_SIGNATURE
            call.al = 0x01                             # configuration mechanism 1
            call.bx = PCI_VERSION
            call.cl = getattr(bus, "last_bus", 0)
            call.edi = 0                               # no protected-mode entry point
            self._pci_status(call, PCI_SUCCESSFUL)
        elif al == 0x02:
            if call.dx == 0xFFFF:
                self._pci_status(call, PCI_BAD_VENDOR_ID)
                return
            self._found(call, bus.find_device(call.dx, call.cx, call.si))
        elif al == 0x03:
            self._found(call, bus.find_class(call.ecx & 0xFFFFFF, call.si))
        elif 0x08 <= al <= 0x0D:
            self._config(call, bus, al)
        else:
            raise Unimplemented(f"INT 1Ah AX={call.ax:04X}h (PCI BIOS function)")

    @staticmethod
    def _pci_status(call, status):
        call.ah = status
        call.cf = status != PCI_SUCCESSFUL

    def _found(self, call, where):
        if where is None:
            self._pci_status(call, PCI_DEVICE_NOT_FOUND)
            return
        busno, dev, fn = where
        call.bh = busno
        call.bl = dev << 3 | fn
        self._pci_status(call, PCI_SUCCESSFUL)

    def _config(self, call, bus, al):
        size = {0x08: 1, 0x09: 2, 0x0A: 4, 0x0B: 1, 0x0C: 2, 0x0D: 4}[al]
        reg = call.di
        if reg % size or reg + size > 256:
            self._pci_status(call, PCI_BAD_REGISTER)
            return
        busno, dev, fn = call.bh, call.bl >> 3, call.bl & 7
        if al <= 0x0A:
            value = bus.read_config(busno, dev, fn, reg, size)
            if size == 1:
                call.cl = value
            elif size == 2:
                call.cx = value
            else:
                call.ecx = value
        else:
            value = call.ecx & ((1 << (8 * size)) - 1)
            bus.write_config(busno, dev, fn, reg, size, value)
        self._pci_status(call, PCI_SUCCESSFUL)
