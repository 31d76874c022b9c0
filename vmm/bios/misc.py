"""The small services: INT 11h equipment, 12h memory size, 14h serial, 17h printer, 18h boot
failure, 19h bootstrap loader, and the default handlers of CPU exceptions 00h and 06h.

INT 14h drives the 16550 UART of the COM port (base from BDA 0x400) through its registers on
ctx.io, so the serial device sees exactly what a real BIOS would program; receive (AH=02h)
does not wait: with no byte ready it answers time-out (AH bit 7) at once.
"""
from v3tools.errors import Unimplemented

from vmm.bios import bda
from vmm.bios import eltorito
from vmm.bios import rom
from vmm.bios.errors import BootFailed, GuestFault, NoBootableDevice
from vmm.media import MediumError

# 16550 registers (PC16550D datasheet), offsets from the port base
THR, RBR, DLL, DLM, LCR, MCR, LSR, MSR = 0, 0, 0, 1, 3, 4, 5, 6
LCR_DLAB = 0x80
MCR_DTR_RTS = 0x03
LSR_DR, LSR_THRE = 0x01, 0x20
LSR_ERRORS = 0x1E
SERIAL_TIMEOUT = 0x80
PRINTER_TIMEOUT = 0x01
BOOT_SEG, BOOT_OFF = 0x0000, 0x7C00


class MiscServices:
    def __init__(self, bios):
        self.bios = bios
        self.ctx = bios.ctx

    def int11(self, call):
        call.ax = self.bios.rd16(bda.EQUIPMENT)

    def int12(self, call):
        call.ax = self.bios.rd16(bda.MEMORY_KIB)

    # -- INT 14h ---------------------------------------------------------------------------------
    def int14(self, call):
        ah = call.ah
        if ah > 0x03:
            raise Unimplemented(f"INT 14h AH={ah:02X}h (serial function not implemented)")
        base = self.bios.rd16(bda.COM_PORTS + 2 * (call.dx & 3)) if call.dx < 4 else 0
        if base == 0:
            call.ah = SERIAL_TIMEOUT
            return
        io = self.ctx.io
        if ah == 0x00:
            divisor = rom.BAUD_DIVISORS[call.al >> 5]
            io.write(base + LCR, 1, LCR_DLAB)
            io.write(base + DLL, 1, divisor & 0xFF)
            io.write(base + DLM, 1, divisor >> 8)
            io.write(base + LCR, 1, call.al & 0x1F)
            io.write(base + MCR, 1, MCR_DTR_RTS)
            call.ah, call.al = io.read(base + LSR, 1), io.read(base + MSR, 1)
        elif ah == 0x01:
            lsr = io.read(base + LSR, 1)
            if not lsr & LSR_THRE:
                call.ah = SERIAL_TIMEOUT | lsr
                return
            io.write(base + THR, 1, call.al)
            call.ah = io.read(base + LSR, 1)
        elif ah == 0x02:
            lsr = io.read(base + LSR, 1)
            if lsr & LSR_DR:
                call.al = io.read(base + RBR, 1)
                call.ah = lsr & LSR_ERRORS
            else:
                call.ah = SERIAL_TIMEOUT | lsr & LSR_ERRORS
        else:
            call.ah, call.al = io.read(base + LSR, 1), io.read(base + MSR, 1)

    def int17(self, call):
        """No parallel ports are published (BDA 0x408 is zero): every call times out."""
        if call.ah > 0x02:
            raise Unimplemented(f"INT 17h AH={call.ah:02X}h (printer function)")
        call.ah = PRINTER_TIMEOUT

    # -- INT 18h, 19h ------------------------------------------------------------------------------
    def int18(self, call):
        raise BootFailed("boot failed: the boot loader called INT 18h (no ROM BASIC to run)")

    def int19(self, call):
        load_seg, image, drive, what = self.bootstrap()
        call.write(load_seg << 4, image)
        call.dl = drive
        if load_seg == eltorito.DEFAULT_LOAD_SEG:
            call.set_return(BOOT_SEG, BOOT_OFF)
        else:
            call.set_return(load_seg, 0)
        self.bios.log.debug(f"INT 19h: booting {what}: {len(image)} bytes at "
                            f"{load_seg:04X}:0000, DL={drive:02X}h")

    def bootstrap(self):
        """(load segment, boot image, DL, description) of the first bootable drive in the boot
        order, or NoBootableDevice listing every attempt."""
        disks = self.bios.disks
        disks.uninstall()
        disks.emulation = None
        tried = []
        for kind in self.ctx.boot_order:
            candidates = [d for n, d in sorted(disks.real.items()) if d.kind == kind]
            if not candidates:
                tried.append(f"{kind}: no drive attached")
                continue
            for disk in candidates:
                try:
                    load_seg, image, drive = self._load(disk)
                except (eltorito.NotBootable, MediumError) as exc:
                    tried.append(f"{kind} {disk.number:02X}h ({disk.medium.name}): {exc}")
                    disks.uninstall()
                    disks.emulation = None
                    continue
                return load_seg, image, drive, f"{kind} {disk.number:02X}h ({disk.medium.name})"
        raise NoBootableDevice("no bootable device: " + "; ".join(tried or ["empty boot order"]))

    def _load(self, disk):
        if disk.kind == "cdrom":
            return eltorito.prepare_boot(self.bios.disks, disk)
        if disk.sectors == 0:
            raise eltorito.NotBootable("empty medium")
        sector = disk.medium.read(0, 1)
        if disk.kind == "disk" and sector[510:512] != b"\x55\xAA":
            raise eltorito.NotBootable("no boot signature 55AAh in the MBR")
        if disk.kind == "floppy" and not any(sector):
            raise eltorito.NotBootable("the boot sector is empty")
        return eltorito.DEFAULT_LOAD_SEG, sector, disk.number

    # -- CPU exceptions nobody handles -------------------------------------------------------------
    def divide_error(self, call):
        raise GuestFault("divide error (#DE, vector 00h) in real mode with no handler installed "
                         "by the guest")

    def invalid_opcode(self, call):
        raise GuestFault("invalid opcode (#UD, vector 06h) in real mode with no handler "
                         "installed by the guest")
