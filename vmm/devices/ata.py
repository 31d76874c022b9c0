"""What ATA disks and ATAPI drives on an IDE channel share: the command and control block
register offsets and bits (ATA/ATAPI-6, T13/1410D), the drive state machine base class
(`IdeDrive`), the empty position (`AbsentDrive`) and the identity/IDENTIFY/SET FEATURES code of a
present drive (`AttachedDrive`). ide.py (the controller, the ATA disk) and atapi.py (the packet
device) both build on this module.
"""
import struct

# Command block register offsets (offset 0 is the data port).
REG_ERROR = 1           # read: error; write: features
REG_NSECTOR = 2         # sector count (ATAPI: interrupt reason)
REG_LBAL = 3            # sector number / LBA 7:0
REG_LBAM = 4            # cylinder low / LBA 15:8 (ATAPI: byte count low)
REG_LBAH = 5            # cylinder high / LBA 23:16 (ATAPI: byte count high)
REG_SELECT = 6          # device/head
REG_STATUS = 7          # read: status; write: command

# Status register bits
BSY = 0x80              # busy
DRDY = 0x40             # device ready
DF = 0x20               # device fault
DSC = 0x10              # seek complete (ATAPI: service)
DRQ = 0x08              # data request
ERR = 0x01              # error
READY = DRDY | DSC      # idle ATA status

# Error register bits
ABRT = 0x04             # command aborted
IDNF = 0x10             # ID not found (address out of range)

# Device control register bits
NIEN = 0x02             # interrupts disabled
SRST = 0x04             # software reset
HOB = 0x80              # read the high-order bytes of the LBA48 registers

# Device/head register bits
SEL_DEV = 0x10          # device 1 (slave)
SEL_LBA = 0x40          # LBA addressing

# ATAPI interrupt reason (sector count register)
IR_COD = 0x01           # command (packet or status), not data
IR_IO = 0x02            # to the host

MAX_MULTIPLE = 16       # sectors per DRQ block in multiple mode (IDENTIFY word 47)
KINDS = {"cdrom": "cdrom", "hd": "disk", "disk": "disk"}       # <type> -> drive kind


class IdeDrive:
    """One device position on a channel: its task-file registers and its PIO data buffer.

    A position with no medium is `present == False`; it still latches register writes, as the
    registers are written to both devices of a channel.
    """

    present = False
    kind = None

    def __init__(self, channel, position):
        self.channel, self.position = channel, position
        self.log = channel.log
        self.power_on()

    def power_on(self):
        self.error = self.features = 0
        self.nsector = self.lbal = self.lbam = self.lbah = 0
        self.hob = [0, 0, 0, 0]            # previous nsector, lbal, lbam, lbah (LBA48)
        self.select = 0
        self.status = 0
        self.intrq = False
        self.cancel_transfer()

    # -- PIO data buffer ------------------------------------------------------------------------
    def cancel_transfer(self):
        self.buf = b""
        self.pos = self.end = 0
        self.data_in = False               # True: device -> host; False: host -> device
        self.on_done = None

    def send(self, data, on_done):
        """Offer `data` to the host (one DRQ block); `on_done()` runs once it is all read."""
        if len(data) & 1:
            data += b"\0"
        self.buf, self.pos, self.end, self.data_in, self.on_done = data, 0, len(data), True, on_done
        self.status = READY | DRQ

    def receive(self, nbytes, on_done):
        """Ask the host for `nbytes` (one DRQ block); `on_done(data)` runs once it is all written."""
        self.buf, self.pos, self.end = bytearray(nbytes), 0, nbytes
        self.data_in, self.on_done = False, on_done
        self.status = READY | DRQ

    def block_done(self):
        done, data, data_in = self.on_done, self.buf, self.data_in
        self.status &= ~DRQ
        self.cancel_transfer()
        if data_in:
            done()
        else:
            done(bytes(data))

    # -- completion helpers ---------------------------------------------------------------------
    def interrupt(self):
        self.intrq = True
        self.channel.update_irq()

    def complete(self, irq=True):
        self.status = READY
        if irq:
            self.interrupt()

    def abort(self, error=ABRT):
        self.cancel_transfer()
        self.error = error
        self.status = (self.status & READY) | ERR
        self.interrupt()

    def set_signature(self):
        raise NotImplementedError

    def command(self, cmd):
        raise NotImplementedError


class AbsentDrive(IdeDrive):
    def command(self, cmd):
        self.log.debug(f"command {cmd:#04x} to absent drive {self.channel.index}:{self.position}")

    def set_signature(self):
        pass


class AttachedDrive(IdeDrive):
    """What ATA disks and ATAPI drives share: identity, IDENTIFY strings, SET FEATURES."""

    present = True

    def __init__(self, channel, position, medium, model, serial):
        self.medium, self.model, self.serial = medium, model, serial
        super().__init__(channel, position)

    def power_on(self):
        super().power_on()
        self.set_signature()

    def identity_words(self, words):
        _put_string(words, 10, 20, self.serial)
        _put_string(words, 23, 8, "1.0")
        _put_string(words, 27, 40, self.model)
        words[49] = 0x0200                  # LBA supported; no DMA (so guests never use it)
        words[51] = 0x0200                  # PIO mode 2 timing (obsolete field)
        words[53] = 0x0002                  # words 64-70 valid
        words[64] = 0x0003                  # PIO modes 3 and 4
        words[65] = words[66] = words[67] = words[68] = 120   # cycle times (ns)
        words[80] = 0x007E                  # ATA/ATAPI-1 .. -6

    def send_identify(self, words):
        self.send(struct.pack("<256H", *words), self.complete_no_irq)
        self.interrupt()

    def complete_no_irq(self):
        self.complete(irq=False)

    def set_features(self):
        sub = self.features
        if sub == 0x03:                     # set transfer mode (mode in the sector count)
            mode = self.nsector
            if mode in (0x00, 0x01) or 0x08 <= mode <= 0x0C:
                self.complete()             # PIO default / PIO mode 0-4
            else:
                self.log.info(f"drive {self.channel.index}:{self.position}: SET FEATURES transfer "
                              f"mode {mode:#04x} (DMA, not advertised) aborted")
                self.abort()
        elif sub in (0x02, 0x82, 0xAA, 0x55, 0x66, 0xCC):
            self.complete()                 # write cache, read look-ahead, revert to defaults
        else:
            self.log.info(f"SET FEATURES subcommand {sub:#04x} not supported: aborted")
            self.abort()

    def unimplemented(self, what):
        self.channel.ide.unimplemented(f"channel {self.channel.index} drive {self.position}: {what}")


DMA_COMMANDS = {0xC8, 0xC9, 0xCA, 0xCB, 0x25, 0x35, 0x3D, 0xC7, 0xCC}


def _put_string(words, first, length, text):
    """ATA strings: space padded, two characters per word, the first in the high byte."""
    raw = text.encode("ascii", "replace")[:length].ljust(length, b" ")
    for i in range(0, length, 2):
        words[first + i // 2] = raw[i] << 8 | raw[i + 1]
