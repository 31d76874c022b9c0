"""INT 13h disk services: CHS and EDD (extended) access to floppies, hard disks and CDs.

Drive numbers: floppies 00h.., hard disks 80h.., CD-ROMs E0h.. (no-emulation access with
2048-byte sectors through the extensions only). After an El Torito emulation boot the image
inside the CD takes 00h (floppy emulation) or 80h (hard-disk emulation) and the real drives of
that class move up by one, until AX=4B00h terminates the emulation.

Every call returns its status in AH with CF set on error, and stores it in the BDA (0x441
for floppies, 0x474 for hard disks). References: IBM PC/AT Technical Reference (functions
00h-18h), Phoenix "BIOS Enhanced Disk Drive Specification" 1.1 and T13 EDD 3.0 (41h-48h),
"El Torito" Bootable CD-ROM Format Specification 1.0 (4Bh).
"""
from v3tools.errors import Unimplemented

from vmm.bios import bda
from vmm.bios import rom
from vmm.bios.post import make_drive_table

OK = 0x00
BAD_COMMAND = 0x01           # invalid function or parameter
WRITE_PROTECTED = 0x03
SECTOR_NOT_FOUND = 0x04
EDD_VERSION_30 = 0x30
EDD_SUBSETS = 0x0005         # bit 0: fixed disk access (42h-44h, 47h, 48h); bit 2: EDD (48h)
EDD_NO_DPTE = 0xFFFFFFFF
SPEC_PACKET_SIZE = 0x13
FLAT_BUFFER = 0xFFFFFFFF     # DAP segment:offset FFFF:FFFF: use the 64-bit address at +10h


class DiskServices:
    def __init__(self, bios):
        self.bios = bios
        self.ctx = bios.ctx
        self.by_number = {}
        self.real = {}               # the table without El Torito emulation
        self.emulation = None        # eltorito.Emulation while an image is emulated or booted
        self.functions = {
            0x00: self.reset, 0x01: self.status, 0x02: self.read_chs, 0x03: self.write_chs,
            0x04: self.verify_chs, 0x08: self.get_params, 0x0C: self.no_op_disk,
            0x0D: self.no_op_disk, 0x10: self.no_op_disk, 0x11: self.no_op_disk,
            0x14: self.no_op_disk, 0x15: self.get_type, 0x16: self.change_status,
            0x41: self.ext_check, 0x42: self.ext_read, 0x43: self.ext_write,
            0x44: self.ext_verify, 0x45: self.unsupported, 0x46: self.unsupported,
            0x47: self.ext_verify, 0x48: self.ext_params, 0x49: self.unsupported,
            0x4B: self.emulation_status, 0x4E: self.unsupported,
        }

    def detect(self):
        self.real = make_drive_table(self.ctx.drives)
        self.by_number = dict(self.real)
        self.emulation = None
        self._publish()

    def _publish(self):
        """BDA disk count and the INT 41h/46h fixed disk parameter tables in the EBDA."""
        disks = [d for n, d in sorted(self.by_number.items()) if d.kind == "disk"]
        self.bios.wr8(bda.NUM_HARD_DISKS, len(disks))
        for addr, disk in zip((bda.EBDA_FDPT0, bda.EBDA_FDPT1), disks):
            self.ctx.mem.write(addr, fdpt(disk))

    def install(self, emulated):
        """Put an emulated drive at its number (00h or 80h), moving the real ones up by one."""
        table = {}
        n0 = emulated.number
        for n, d in sorted(self.real.items()):
            same_class = (n < 0x80) == (n0 < 0x80) and n < 0xE0
            table[n + 1 if same_class else n] = d
        table[n0] = emulated
        self.by_number = table
        self._publish()

    def uninstall(self):
        self.by_number = dict(self.real)
        self._publish()

    # -- dispatch ------------------------------------------------------------------------------
    def service(self, call):
        fn = self.functions.get(call.ah)
        if fn is None:
            raise Unimplemented(f"INT 13h AH={call.ah:02X}h DL={call.dl:02X}h (disk function "
                                "not implemented)")
        drive = call.dl
        disk = self.by_number.get(drive)
        if disk is None and call.ah not in (0x01, 0x08, 0x15, 0x4B):
            self.finish(call, BAD_COMMAND)
            return
        status = fn(call, disk)
        if status is not None:
            self.finish(call, status)
        elif self.bios.log.on:
            self.bios.log.debug(f"INT 13h AH={call.ah:02X}h DL={drive:02X}h -> AH={call.ah:02X}h")

    def finish(self, call, status):
        drive = call.dl
        call.ah = status
        call.cf = status != OK
        self.bios.wr8(bda.FLOPPY_STATUS if drive < 0x80 else bda.DISK_STATUS, status)
        if self.bios.log.on:
            self.bios.log.debug(f"INT 13h DL={drive:02X}h status {status:02X}h")

    def unsupported(self, call, disk):
        return BAD_COMMAND

    # -- 00h-16h -------------------------------------------------------------------------------
    def reset(self, call, disk):
        return OK

    def no_op_disk(self, call, disk):
        """0Ch seek, 0Dh alternate reset, 10h test ready, 11h recalibrate, 14h diagnostics:
        nothing to do on an emulated drive (hard disks only, as on the AT)."""
        return OK if disk.kind == "disk" else BAD_COMMAND

    def status(self, call, disk):
        last = self.bios.rd8(bda.FLOPPY_STATUS if call.dl < 0x80 else bda.DISK_STATUS)
        call.ah = last
        call.cf = last != OK

    def _chs(self, call, disk):
        if not disk.has_chs or call.al == 0:
            return None, BAD_COMMAND
        cyl = call.ch | (call.cl & 0xC0) << 2
        lba = disk.chs_to_lba(cyl, call.dh, call.cl & 0x3F)
        if lba is None:
            return None, SECTOR_NOT_FOUND
        return lba, OK

    def read_chs(self, call, disk):
        lba, status = self._chs(call, disk)
        if lba is None:
            call.al = 0
            return status
        count, status = self._clip(disk, lba, call.al)
        if count:
            call.write(call.linear(call.es, call.bx), disk.medium.read(lba, count))
        call.al = count
        return status

    def write_chs(self, call, disk):
        lba, status = self._chs(call, disk)
        if lba is None:
            call.al = 0
            return status
        if not disk.writable:
            call.al = 0
            return WRITE_PROTECTED
        count, status = self._clip(disk, lba, call.al)
        if count:
            disk.medium.write(lba, call.read(call.linear(call.es, call.bx),
                                             count * disk.sector_size))
        call.al = count
        return status

    def verify_chs(self, call, disk):
        lba, status = self._chs(call, disk)
        if lba is None:
            call.al = 0
            return status
        call.al, status = self._clip(disk, lba, call.al)
        return status

    @staticmethod
    def _clip(disk, lba, count):
        """(sectors that exist from lba on, status)."""
        avail = max(0, min(count, disk.sectors - lba))
        return avail, OK if avail == count else SECTOR_NOT_FOUND

    def get_params(self, call, disk):
        floppy = call.dl < 0x80
        count = sum(1 for n in self.by_number if (n < 0x80) == floppy and n < 0xE0)
        if disk is None and floppy:            # absent floppy: zeros, CF clear, DL = count
            call.ax = call.bx = call.cx = call.dx = call.di = 0
            call.es = 0
            call.dl = count
            call.cf = False
            return None
        if disk is None or not disk.has_chs:
            return BAD_COMMAND
        max_cyl = min(disk.cylinders - 1, 1023)
        call.ch = max_cyl & 0xFF
        call.cl = (max_cyl >> 2 & 0xC0) | disk.spt & 0x3F
        call.dh = disk.heads - 1
        call.dl = count
        if disk.kind == "floppy":
            call.bx = disk.floppy_type
            call.es = rom.ROM_SEG
            call.di = rom.DISKETTE_TABLE
        call.ah = 0
        call.al = 0
        return OK

    def get_type(self, call, disk):
        call.cf = False
        if disk is None:
            call.ah = 0x00                      # no such drive
        elif disk.kind == "floppy":
            call.ah = 0x01                      # diskette, no change-line support
        else:
            call.ah = 0x03                      # fixed disk; CX:DX = number of sectors
            n = min(disk.sectors, 0xFFFFFFFF)
            call.cx, call.dx = n >> 16, n & 0xFFFF
        return None

    def change_status(self, call, disk):
        return OK if disk.kind == "floppy" else BAD_COMMAND

    # -- EDD 41h-48h -----------------------------------------------------------------------------
    def ext_check(self, call, disk):
        if call.bx != 0x55AA or disk.kind == "floppy":
            return BAD_COMMAND
        call.bx = 0xAA55
        call.cx = EDD_SUBSETS
        call.ah = EDD_VERSION_30
        call.cf = False
        return None

    def _dap(self, call, disk):
        """(lba, count, buffer linear address, dap address) or a status."""
        if disk.kind == "floppy":
            return BAD_COMMAND
        addr = call.linear(call.ds, call.si)
        dap = call.read(addr, 0x18)
        if dap[0] < 0x10:
            return BAD_COMMAND
        count = int.from_bytes(dap[2:4], "little")
        off, seg = int.from_bytes(dap[4:6], "little"), int.from_bytes(dap[6:8], "little")
        lba = int.from_bytes(dap[8:16], "little")
        if seg << 16 | off == FLAT_BUFFER and dap[0] >= 0x18:
            buf = int.from_bytes(dap[16:24], "little")
        else:
            buf = call.linear(seg, off)
        return lba, count, buf, addr

    def _ext_transfer(self, call, disk, write):
        parsed = self._dap(call, disk)
        if isinstance(parsed, int):
            return parsed
        lba, count, buf, addr = parsed
        if write and not disk.writable:
            done, status = 0, WRITE_PROTECTED
        else:
            done, status = self._clip(disk, lba, count) if lba < disk.sectors else (0, SECTOR_NOT_FOUND)
        if done:
            if write:
                disk.medium.write(lba, call.read(buf, done * disk.sector_size))
            else:
                call.write(buf, disk.medium.read(lba, done))
        call.write(addr + 2, done.to_bytes(2, "little"))
        return status

    def ext_read(self, call, disk):
        return self._ext_transfer(call, disk, write=False)

    def ext_write(self, call, disk):
        return self._ext_transfer(call, disk, write=True)

    def ext_verify(self, call, disk):
        """44h verify and 47h seek: the sectors exist."""
        parsed = self._dap(call, disk)
        if isinstance(parsed, int):
            return parsed
        lba, count, _, _ = parsed
        if call.ah == 0x47:
            count = 1
        return OK if lba + count <= disk.sectors else SECTOR_NOT_FOUND

    def ext_params(self, call, disk):
        if disk.kind == "floppy":
            return BAD_COMMAND
        addr = call.linear(call.ds, call.si)
        size = int.from_bytes(call.read(addr, 2), "little")
        if size < 0x1A:
            return BAD_COMMAND
        call.write(addr, edd_params(disk, size))
        return OK

    # -- 4Bh: El Torito ----------------------------------------------------------------------------
    def emulation_status(self, call, disk):
        emu = self.emulation
        if call.al not in (0x00, 0x01):
            raise Unimplemented(f"INT 13h AX={call.ax:04X}h (El Torito function)")
        if emu is None or (call.dl != emu.drive and not (call.al == 0 and call.dl == 0x7F)):
            return BAD_COMMAND
        call.write(call.linear(call.ds, call.si), emu.spec_packet())
        if call.al == 0x00:
            if emu.media_type != 0:
                self.uninstall()
            self.emulation = None
        return OK


def fdpt(disk):
    """16-byte fixed disk parameter table (INT 41h/46h), AT layout."""
    t = bytearray(16)
    t[0:2] = min(disk.cylinders, 1024).to_bytes(2, "little")
    t[2] = disk.heads
    t[5:7] = (0xFFFF).to_bytes(2, "little")      # no write precompensation
    t[8] = 0x08 if disk.heads > 8 else 0x00      # control byte: more than 8 heads
    t[12:14] = min(disk.cylinders, 1024).to_bytes(2, "little")   # landing zone
    t[14] = disk.spt
    return bytes(t)


def edd_params(disk, size):
    """INT 13h AH=48h result buffer: 1Ah bytes (EDD 1.x), 1Eh (2.x) or 42h (3.0)."""
    out = bytearray(0x42)
    if disk.kind == "cdrom":
        flags, c, h, s = 0x0074, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF   # removable, CHS invalid
    else:
        flags, c, h, s = 0x0002, disk.cylinders, disk.heads, disk.spt  # CHS valid
    out[2:4] = flags.to_bytes(2, "little")
    out[4:8] = c.to_bytes(4, "little")
    out[8:12] = h.to_bytes(4, "little")
    out[12:16] = s.to_bytes(4, "little")
    out[16:24] = disk.sectors.to_bytes(8, "little")
    out[24:26] = disk.sector_size.to_bytes(2, "little")
    n = 0x1A
    if size >= 0x1E:
        out[26:30] = EDD_NO_DPTE.to_bytes(4, "little")
        n = 0x1E
    if size >= 0x42 and not disk.emulated:
        out[0x1E:0x20] = (0xBEDD).to_bytes(2, "little")   # device path present
        out[0x20] = 0x24                                 # length of the device path info
        out[0x24:0x28] = b"ISA "
        out[0x28:0x30] = b"ATAPI   " if disk.kind == "cdrom" else b"ATA     "
        out[0x30:0x32] = (0x1F0 if disk.channel == 0 else 0x170).to_bytes(2, "little")
        out[0x38] = disk.position                         # 0 master, 1 slave
        out[0x41] = -sum(out[0x1E:0x41]) & 0xFF           # checksum of bytes 1Eh-41h
        n = 0x42
    out[0:2] = n.to_bytes(2, "little")
    return bytes(out[:n])
