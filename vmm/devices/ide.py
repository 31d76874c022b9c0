"""IDE: the PC's two legacy ATA channels, PIO only, with ATA disks and ATAPI CD-ROMs.

Primary channel: command block 0x1F0-0x1F7, control block 0x3F6, IRQ 14.
Secondary channel: command block 0x170-0x177, control block 0x376, IRQ 15.
(0x3F7/0x377 belong to the floppy controller and are not claimed.)

Register semantics follow ATA/ATAPI-6 (T13/1410D); ATAPI packet handling (in atapi.py) follows
SFF-8020i and MMC-2. Commands complete at once (no BSY period is modelled): the interrupt of a
command is raised while the guest is still in its OUT instruction, which the ATA protocols allow.

Block backends (RAMDISK, FILEDISK) attach drives with `connect(...)`; the XML of their
<frontend tag="ide"> element is read by `parse_frontend` here, since the frontend owns it in
Palacios too (bus_num = channel, drive_num = 0 master / 1 slave, type, model).

Bus-level behaviour with missing drives (ATA-6 section 9.16 and the PC's floating bus): a channel
with no drive reads 0xFF on every register (SeaBIOS and Linux both treat a status of 0xFF as
"nothing there"); with a master but no slave, selecting the slave reads 0x00 on every register
(device 0 answers for device 1; QEMU does the same). Probes then see "not busy" at once instead of
waiting for a timeout, the 0x55/0xAA register echo (SeaBIOS, Linux's ata_devchk) fails, and Linux's
classification gives "no device" (ATA signature with status 0), even when the master is ATAPI.
Commands written to an absent drive are ignored.
"""

from v3tools.errors import ConfigError
from vmm.devices import register
from vmm.devices.base import Device
from vmm.devices.ata import (BSY, HOB, IDNF, KINDS, MAX_MULTIPLE, NIEN, READY, REG_ERROR,
                              REG_NSECTOR, REG_SELECT, REG_STATUS, SEL_DEV, SEL_LBA, SRST,
                              DMA_COMMANDS, AbsentDrive, AttachedDrive)
from vmm.devices.atapi import AtapiDrive
from vmm.media import CD_SECTOR, HD_SECTOR, Drive

CHANNELS = ((0x1F0, 0x3F6, 14), (0x170, 0x376, 15))   # command block, control block, IRQ


class AtaDisk(AttachedDrive):
    """An ATA hard disk with 512-byte sectors, LBA28/LBA48 and CHS addressing, PIO only."""

    kind = "disk"

    def __init__(self, channel, position, medium, model, serial):
        n = medium.num_sectors
        self.default_heads, self.default_spt = 16, 63
        self.default_cyls = max(1, min(16383, n // (16 * 63)))
        super().__init__(channel, position, medium, model, serial)

    def power_on(self):
        self.multiple = 0
        self.heads, self.spt = self.default_heads, self.default_spt
        self.xfer_lba = self.xfer_left = self.xfer_blk = 0
        self.xfer_48 = False
        super().power_on()

    def set_signature(self):
        self.nsector, self.lbal, self.lbam, self.lbah = 1, 1, 0, 0
        self.select &= SEL_DEV
        self.error = 0x01                   # diagnostics passed
        self.status = READY

    # -- command dispatch -----------------------------------------------------------------------
    def command(self, cmd):
        handler = ATA_COMMANDS.get(cmd)
        if handler is not None:
            handler(self)
        elif (cmd & 0xF0) in (0x10, 0x70):  # RECALIBRATE, SEEK (all 16 variants)
            self.seek()
        elif cmd in ATA_ABORTED:
            self.abort()
        elif cmd in DMA_COMMANDS:
            self.unimplemented(f"DMA command {cmd:#04x} (DMA is not advertised in IDENTIFY)")
        else:
            self.unimplemented(f"ATA command {cmd:#04x}")

    def identify(self):
        w = [0] * 256
        w[0] = 0x0040                       # fixed disk
        w[1], w[3], w[6] = self.default_cyls, self.default_heads, self.default_spt
        self.identity_words(w)
        w[47] = 0x8000 | MAX_MULTIPLE
        w[50] = 0x4000
        w[53] |= 0x0001                     # words 54-58 valid
        cyls = self.cylinders()
        w[54], w[55], w[56] = cyls, self.heads, self.spt
        chs = cyls * self.heads * self.spt
        w[57], w[58] = chs & 0xFFFF, chs >> 16
        w[59] = (0x0100 | self.multiple) if self.multiple else 0
        n = self.medium.num_sectors
        lba28 = min(n, 0x0FFFFFFF)
        w[60], w[61] = lba28 & 0xFFFF, lba28 >> 16
        w[82] = w[85] = 0x0060              # write cache, look-ahead: supported and enabled
        w[83] = w[86] = 0x3400              # LBA48, FLUSH CACHE, FLUSH CACHE EXT
        w[83] |= 0x4000
        w[84] = w[87] = 0x4000
        for i in range(4):
            w[100 + i] = (n >> (16 * i)) & 0xFFFF
        self.send_identify(w)

    def cylinders(self):
        return max(1, min(16383, self.medium.num_sectors // (self.heads * self.spt)))

    # -- addressing -----------------------------------------------------------------------------
    def address(self, lba48):
        """(lba, count) from the task file, or (None, count) for an invalid CHS address."""
        if lba48:
            h = self.hob
            count = (h[0] << 8 | self.nsector) or 65536
            lba = (h[3] << 40 | h[2] << 32 | h[1] << 24 | self.lbah << 16 | self.lbam << 8
                   | self.lbal)
            return lba, count
        count = self.nsector or 256
        if self.select & SEL_LBA:
            return ((self.select & 0x0F) << 24 | self.lbah << 16 | self.lbam << 8 | self.lbal,
                    count)
        cyl, head, sec = self.lbah << 8 | self.lbam, self.select & 0x0F, self.lbal
        if sec == 0 or sec > self.spt or head >= self.heads:
            return None, count
        return (cyl * self.heads + head) * self.spt + sec - 1, count

    def set_address(self, lba, remaining):
        """Leave the address of the last sector transferred in the task file."""
        if self.xfer_48:
            self.lbal, self.lbam, self.lbah = lba & 0xFF, (lba >> 8) & 0xFF, (lba >> 16) & 0xFF
            self.hob[1:] = [(lba >> 24) & 0xFF, (lba >> 32) & 0xFF, (lba >> 40) & 0xFF]
            self.nsector, self.hob[0] = remaining & 0xFF, (remaining >> 8) & 0xFF
            return
        self.nsector = remaining & 0xFF
        if self.select & SEL_LBA:
            self.lbal, self.lbam, self.lbah = lba & 0xFF, (lba >> 8) & 0xFF, (lba >> 16) & 0xFF
            self.select = (self.select & 0xF0) | ((lba >> 24) & 0x0F)
        else:
            cyl, rest = divmod(lba, self.heads * self.spt)
            head, sec = divmod(rest, self.spt)
            self.lbam, self.lbah, self.lbal = cyl & 0xFF, (cyl >> 8) & 0xFF, sec + 1
            self.select = (self.select & 0xF0) | head

    def start(self, lba48, multiple):
        """Check the addressed range; sets up xfer_* and returns False after aborting."""
        if multiple and not self.multiple:
            self.abort()                    # READ/WRITE MULTIPLE before SET MULTIPLE MODE
            return False
        lba, count = self.address(lba48)
        if lba is None or lba + count > self.medium.num_sectors:
            self.log.debug(f"access beyond the disk: lba={lba} count={count}")
            self.abort(IDNF)
            return False
        self.xfer_lba, self.xfer_left, self.xfer_48 = lba, count, lba48
        self.xfer_blk = self.multiple if multiple else 1
        return True

    # -- data commands --------------------------------------------------------------------------
    def read_sectors(self, lba48=False, multiple=False):
        if self.start(lba48, multiple):
            self.read_block()

    def read_block(self):
        n = min(self.xfer_left, self.xfer_blk)
        lba = self.xfer_lba
        data = self.medium.read(lba, n)
        self.xfer_lba, self.xfer_left = lba + n, self.xfer_left - n
        self.set_address(lba + n - 1, self.xfer_left)
        self.send(data, self.read_block_done)
        self.interrupt()                    # one interrupt per DRQ block, none at the end

    def read_block_done(self):
        if self.xfer_left:
            self.read_block()
        else:
            self.status = READY

    def write_sectors(self, lba48=False, multiple=False):
        if self.start(lba48, multiple):
            self.receive(min(self.xfer_left, self.xfer_blk) * HD_SECTOR, self.write_block_done)

    def write_block_done(self, data):
        n = len(data) // HD_SECTOR
        lba = self.xfer_lba
        self.medium.write(lba, data)
        self.xfer_lba, self.xfer_left = lba + n, self.xfer_left - n
        self.set_address(lba + n - 1, self.xfer_left)
        if self.xfer_left:
            self.receive(min(self.xfer_left, self.xfer_blk) * HD_SECTOR, self.write_block_done)
        else:
            self.status = READY
        self.interrupt()

    def read_verify(self, lba48=False):
        if self.start(lba48, False):
            self.set_address(self.xfer_lba + self.xfer_left - 1, 0)
            self.complete()

    # -- non-data commands ----------------------------------------------------------------------
    def seek(self):
        self.complete()

    def set_multiple(self):
        n = self.nsector
        if n == 0 or (n <= MAX_MULTIPLE and n & (n - 1) == 0):
            self.multiple = n
            self.complete()
        else:
            self.abort()

    def init_params(self):
        if self.nsector == 0:
            self.abort()
            return
        self.spt, self.heads = self.nsector, (self.select & 0x0F) + 1
        self.complete()

    def check_power_mode(self):
        self.nsector = 0xFF                 # active or idle
        self.complete()


def _read_ext(d):
    d.read_sectors(lba48=True)


def _write_ext(d):
    d.write_sectors(lba48=True)


ATA_COMMANDS = {
    0xEC: AtaDisk.identify,
    0x20: AtaDisk.read_sectors, 0x21: AtaDisk.read_sectors,     # with / without retries
    0x30: AtaDisk.write_sectors, 0x31: AtaDisk.write_sectors,
    0x24: _read_ext, 0x34: _write_ext,
    0xC4: lambda d: d.read_sectors(multiple=True),
    0xC5: lambda d: d.write_sectors(multiple=True),
    0x29: lambda d: d.read_sectors(lba48=True, multiple=True),
    0x39: lambda d: d.write_sectors(lba48=True, multiple=True),
    0x40: AtaDisk.read_verify, 0x41: AtaDisk.read_verify,
    0x42: lambda d: d.read_verify(lba48=True),
    0xC6: AtaDisk.set_multiple,
    0x91: AtaDisk.init_params,
    0xEF: AtaDisk.set_features,
    0xE5: AtaDisk.check_power_mode, 0x98: AtaDisk.check_power_mode,
    # IDLE / STANDBY (immediate and timer forms, current and pre-ATA-4 opcodes), FLUSH CACHE
    **{op: AtaDisk.seek for op in (0xE0, 0xE1, 0xE2, 0xE3, 0x94, 0x95, 0x96, 0x97, 0xE7, 0xEA)},
}
ATA_ABORTED = {0x00, 0x08, 0xA0, 0xA1}     # NOP; DEVICE RESET, PACKET, IDENTIFY PACKET: ATAPI only



class Channel:
    """One ATA channel: two device positions, the shared registers' decoding and the IRQ line."""

    def __init__(self, ide, index, irq):
        self.ide, self.index, self.irq = ide, index, irq
        self.log = ide.log
        self.drives = [AbsentDrive(self, 0), AbsentDrive(self, 1)]
        self.control = 0
        self.sel = 0

    @property
    def empty(self):
        return not (self.drives[0].present or self.drives[1].present)

    def power_on(self):
        self.control = 0
        self.sel = 0
        for d in self.drives:
            d.power_on()
        self.update_irq()

    def update_irq(self):
        d = self.drives[self.sel]
        self.irq.set(d.intrq and not self.control & NIEN)

    # -- data port ------------------------------------------------------------------------------
    def data_read(self, offset, size):
        d = self.drives[self.sel]
        if not d.data_in or d.pos >= d.end:
            if self.empty:
                return (1 << (8 * size)) - 1
            self.ide.unimplemented(f"channel {self.index}: data port read without DRQ")
        if size == 1:
            self.ide.unimplemented("8-bit data transfers (SET FEATURES 0x01 is not supported)")
        b, p = d.buf, d.pos
        if size == 2:
            v = b[p] | b[p + 1] << 8
        else:
            v = int.from_bytes(b[p:p + 4], "little")
        p += size
        d.pos = p
        if p >= d.end:
            d.block_done()
        return v

    def data_write(self, offset, size, value):
        d = self.drives[self.sel]
        if d.data_in or d.pos >= d.end:
            if self.empty:
                return
            self.ide.unimplemented(f"channel {self.index}: data port write without DRQ")
        if size == 1:
            self.ide.unimplemented("8-bit data transfers (SET FEATURES 0x01 is not supported)")
        p = d.pos
        d.buf[p:p + size] = value.to_bytes(size, "little")[:d.end - p]
        p += size
        d.pos = p
        if p >= d.end:
            d.block_done()

    def data_read_block(self, size, count):
        """Up to `count` data-port reads at once (REP INSW/INSD, vmm/cpu/stringio.py): the
        rest of the current DRQ block at most; anything unusual goes through data_read."""
        d = self.drives[self.sel]
        n = min(count, (d.end - d.pos) // size) if d.data_in and size != 1 else 0
        if n <= 1:
            return self.data_read(0, size).to_bytes(size, "little")
        p = d.pos
        d.pos = p + n * size
        data = bytes(d.buf[p:d.pos])
        if d.pos >= d.end:
            d.block_done()
        return data

    def data_write_block(self, size, data):
        d = self.drives[self.sel]
        n = len(data)
        if d.data_in or size == 1 or d.pos + n > d.end:
            for i in range(0, n, size):
                self.data_write(0, size, int.from_bytes(data[i:i + size], "little"))
            return
        p = d.pos
        d.buf[p:p + n] = data
        d.pos = p + n
        if d.pos >= d.end:
            d.block_done()

    # -- task file ------------------------------------------------------------------------------
    def reg_read(self, offset, size):
        offset += 1                         # the range starts at the error register
        if self.empty:
            return 0xFF                     # floating bus
        if self.control & SRST:
            return BSY if offset == REG_STATUS else 0
        d = self.drives[self.sel]
        if not d.present:
            return 0x00                     # device 0 answers for an absent device 1
        if offset == REG_STATUS:
            if d.intrq:
                d.intrq = False
                self.update_irq()
            return d.status
        hob = self.control & HOB
        if offset == REG_ERROR:
            return d.error
        if offset == REG_SELECT:
            return d.select | 0xA0
        i = offset - REG_NSECTOR
        if hob:
            return d.hob[i]
        return (d.nsector, d.lbal, d.lbam, d.lbah)[i]

    def reg_write(self, offset, size, value):
        offset += 1
        if offset == REG_STATUS:
            self.command(value)
            return
        self.control &= ~HOB
        for d in self.drives:
            if offset == REG_ERROR:
                d.features = value
            elif offset == REG_SELECT:
                d.select = value & 0x5F
            else:
                self.write_lba_reg(d, offset, value)
        if offset == REG_SELECT:
            self.sel = 1 if value & SEL_DEV else 0
            self.update_irq()

    @staticmethod
    def write_lba_reg(d, offset, value):
        i = offset - REG_NSECTOR
        if i == 0:
            d.hob[0], d.nsector = d.nsector, value
        elif i == 1:
            d.hob[1], d.lbal = d.lbal, value
        elif i == 2:
            d.hob[2], d.lbam = d.lbam, value
        else:
            d.hob[3], d.lbah = d.lbah, value

    def command(self, cmd):
        if self.empty or self.control & SRST:
            return
        if cmd == 0x90:                     # EXECUTE DEVICE DIAGNOSTIC: both devices
            self.diagnose()
            return
        d = self.drives[self.sel]
        if d.present:
            if d.log.on:
                d.log.debug(f"ch{self.index}.{self.sel} command {cmd:#04x} feat={d.features:#x} "
                            f"nsect={d.nsector} lba={d.lbah:02x}{d.lbam:02x}{d.lbal:02x} "
                            f"sel={d.select:#x}")
            d.cancel_transfer()
            d.intrq = False
            d.error = 0
            d.command(cmd)
        self.update_irq()

    def diagnose(self):
        for d in self.drives:
            d.cancel_transfer()
            d.set_signature()
            d.select = 0
        self.sel = 0
        master = self.drives[0]
        if master.present:
            master.intrq = True
        self.update_irq()

    # -- control block --------------------------------------------------------------------------
    def ctl_read(self, offset, size):
        if self.empty:
            return 0xFF
        d = self.drives[self.sel]
        if self.control & SRST:
            return BSY
        return d.status if d.present else 0x00    # alternate status: no interrupt side effect

    def ctl_write(self, offset, size, value):
        old, self.control = self.control, value & (HOB | SRST | NIEN)
        if value & SRST and not old & SRST:
            for d in self.drives:
                d.cancel_transfer()
                d.intrq = False
                d.status = BSY
        elif old & SRST and not value & SRST:
            for d in self.drives:
                d.set_signature()
                d.select = 0
            self.sel = 0
        self.update_irq()


@register("IDE")
class IDE(Device):
    """The two legacy IDE channels; backends attach drives through `connect()`."""

    def __init__(self, dev_id, pci_bus=None, controller=None):
        super().__init__(dev_id)
        self.pci_bus, self.controller = pci_bus, controller
        self.channels = []
        self.ctx = None

    @classmethod
    def from_spec(cls, spec, ctx):
        found = []
        for name in ("bus", "controller"):
            ref = spec.value(name)
            found.append(ctx.find_device(ref, wanted_by=spec.id) if ref else None)
        return cls(spec.id, *found)

    def attach(self, ctx):
        self.ctx = ctx
        for index, (cmd_base, ctl_base, irq) in enumerate(CHANNELS):
            ch = Channel(self, index, ctx.irq(irq))
            ctx.io.attach(cmd_base, 1, ch.data_read, ch.data_write, self.id, widths=(1, 2, 4),
                          blocks={0: (ch.data_read_block, ch.data_write_block)})
            ctx.io.attach(cmd_base + 1, 7, ch.reg_read, ch.reg_write, self.id, widths=(1,))
            ctx.io.attach(ctl_base, 1, ch.ctl_read, ch.ctl_write, self.id, widths=(1,))
            self.channels.append(ch)

    def reset(self):
        for ch in self.channels:
            ch.power_on()

    def connect(self, channel, position, drive_kind, medium, model, owner=""):
        """Attach `medium` at `channel` (0, 1) / `position` (0 master, 1 slave)."""
        who = f"{owner}: " if owner else ""
        if channel not in (0, 1) or position not in (0, 1):
            raise ConfigError(f"{who}IDE '{self.id}' has channels 0-1 and drives 0-1, "
                              f"not {channel}/{position}")
        ch = self.channels[channel]
        if ch.drives[position].present:
            raise ConfigError(f"{who}IDE '{self.id}' channel {channel} drive {position} is "
                              f"already occupied")
        cls = {"disk": AtaDisk, "cdrom": AtapiDrive}.get(drive_kind)
        if cls is None:
            raise ConfigError(f"{who}unknown IDE drive kind {drive_kind!r}")
        serial = f"V3V-{self.id[:12]}-{channel}{position}"
        ch.drives[position] = cls(ch, position, medium, model, serial)
        ch.update_irq()
        self.log.debug(f"{drive_kind} '{model}' at channel {channel} drive {position}: "
                       f"{medium.num_sectors} sectors of {medium.sector_size}")
        return ch.drives[position]


class Frontend:
    """The <frontend tag="ide"> block of a block backend, as the IDE device reads it."""

    def __init__(self, tag, kind, channel, position, model):
        self.tag, self.kind, self.channel, self.position, self.model = (
            tag, kind, channel, position, model)

    @property
    def sector_size(self):
        return CD_SECTOR if self.kind == "cdrom" else HD_SECTOR


def parse_frontend(spec, owner):
    """Read a backend's <frontend> child: tag, type (CDROM, HD or DISK), bus_num, drive_num, model."""
    fe = spec.child("frontend")
    if fe is None:
        raise ConfigError(f"{spec.where()}: {owner} has no <frontend tag=...> block")
    where = f"{fe.where()}: {owner} <frontend>"
    tag = fe.value("tag")
    if not tag:
        raise ConfigError(f"{where} has no tag naming the IDE device")
    for name in ("type", "bus_num", "drive_num"):
        if fe.value(name) in (None, ""):
            raise ConfigError(f"{where} lacks <{name}> (the IDE frontend needs type, bus_num "
                              f"and drive_num)")
    kind = KINDS.get(fe.value("type").strip().lower())
    if kind is None:
        raise ConfigError(f"{where}: <type> must be CDROM or HD (or DISK), not "
                          f"{fe.value('type')!r}")
    default = "V3Vee CDROM" if kind == "cdrom" else "V3Vee HARDDISK"
    return Frontend(tag, kind, fe.int_value("bus_num"), fe.int_value("drive_num"),
                    (fe.value("model") or default)[:40])


def connect_backend(ctx, owner, frontend, medium):
    """Connect a backend's medium to the IDE device its frontend names; record the drive."""
    ide = ctx.find_device(frontend.tag, wanted_by=owner)
    if not isinstance(ide, IDE):
        raise ConfigError(f"device '{owner}': frontend '{frontend.tag}' is a {ide.CLASS_NAME}, "
                          f"not an IDE controller")
    ide.connect(frontend.channel, frontend.position, frontend.kind, medium, frontend.model,
                owner=owner)
    ctx.drives.append(Drive(frontend.kind, medium, frontend.channel, frontend.position, owner))
