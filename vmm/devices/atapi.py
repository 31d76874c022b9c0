"""ATAPI CD-ROMs (a helper of ide.py, not a registered device class).

`AtapiDrive` is the ATA side of a packet device on an IDE channel: its signature, IDENTIFY
PACKET DEVICE, and the PACKET protocol phases (command packet, DRQ blocks cut to the byte count
limit, status), with the interrupt reason in the sector count register.

`CdromCommands.execute(cdb)` runs one 12-byte command packet against a read-only medium of
2048-byte sectors and returns `(sense_key, reply)`: sense key 0 means GOOD status and `reply` is
None (no data) or a stream with `remaining` and `take(n)` that the IDE side cuts into DRQ blocks;
a non-zero key means CHECK CONDITION, with the sense data kept for REQUEST SENSE.

Command formats and data layouts follow SFF-8020i (ATAPI for CD-ROMs), MMC-2 (T10/1228D) and
SPC-2 for INQUIRY and REQUEST SENSE. The medium is always present and never changes: there is no
UNIT ATTENTION, no tray, and no audio.
"""
import struct

from vmm.devices.ata import (DMA_COMMANDS, DRDY, ERR, IR_COD, IR_IO, SEL_DEV, AttachedDrive)
from vmm.media import CD_SECTOR

# Sense keys and additional sense codes
NO_SENSE = 0x0
NOT_READY = 0x2
ILLEGAL_REQUEST = 0x5
ASC_INVALID_OPCODE = 0x20
ASC_LBA_OUT_OF_RANGE = 0x21
ASC_INVALID_FIELD = 0x24
ASC_SAVING_NOT_SUPPORTED = 0x39

PROFILE_CDROM = 0x0008            # MMC profile: CD-ROM
READ_AHEAD = 32                   # sectors fetched from the medium at a time


class CheckCondition(Exception):
    def __init__(self, key, asc, ascq=0):
        super().__init__(key, asc, ascq)
        self.sense = (key, asc, ascq)


class BytesStream:
    """A reply held in memory."""

    def __init__(self, data):
        self.data, self.pos = bytes(data), 0

    @property
    def remaining(self):
        return len(self.data) - self.pos

    def take(self, n):
        chunk = self.data[self.pos:self.pos + n]
        self.pos += len(chunk)
        return chunk


class SectorStream:
    """READ(10)/READ(12) data, fetched from the medium a few sectors at a time."""

    def __init__(self, medium, lba, count):
        self.medium, self.lba, self.left = medium, lba, count
        self.pending = b""
        self.remaining = count * CD_SECTOR

    def take(self, n):
        while len(self.pending) < n and self.left:
            k = min(self.left, READ_AHEAD)
            self.pending += self.medium.read(self.lba, k)
            self.lba, self.left = self.lba + k, self.left - k
        chunk, self.pending = self.pending[:n], self.pending[n:]
        self.remaining -= len(chunk)
        return chunk


def _be16(v):
    return struct.pack(">H", v)


def _be32(v):
    return struct.pack(">I", v)


def _msf(lba):
    """LBA to the 4-byte (0, M, S, F) form; LBA 0 is 00:02:00."""
    m, rest = divmod(lba + 150, 75 * 60)
    s, f = divmod(rest, 75)
    return bytes((0, m & 0xFF, s, f))


class CdromCommands:
    def __init__(self, medium, model, log, unimplemented):
        self.medium, self.model, self.log, self.unimplemented = medium, model, log, unimplemented
        self.sense = (NO_SENSE, 0, 0)
        self.prevent = False
        self.logged = set()
        self.handlers = {
            0x00: self.test_unit_ready, 0x03: self.request_sense, 0x12: self.inquiry,
            0x1A: self.mode_sense, 0x5A: self.mode_sense, 0x1B: self.start_stop,
            0x1E: self.prevent_allow, 0x25: self.read_capacity, 0x28: self.read,
            0xA8: self.read, 0x43: self.read_toc, 0x46: self.get_configuration,
            0x4A: self.event_status, 0x51: self.disc_information, 0xBD: self.mechanism_status,
            0xBB: self.set_speed,
        }

    def execute(self, cdb):
        op = cdb[0]
        if self.log.on:
            self.log.debug(f"ATAPI packet {cdb.hex(' ')}")
        handler = self.handlers.get(op)
        try:
            if handler is None:
                if op not in self.logged:
                    self.logged.add(op)
                    self.log.info(f"ATAPI command {op:#04x} not supported: CHECK CONDITION, "
                                  f"ILLEGAL REQUEST (as a drive without it answers)")
                raise CheckCondition(ILLEGAL_REQUEST, ASC_INVALID_OPCODE)
            reply = handler(cdb)
        except CheckCondition as cc:
            self.sense = cc.sense
            return cc.sense[0], None
        if op != 0x03:
            self.sense = (NO_SENSE, 0, 0)
        if isinstance(reply, (bytes, bytearray)):
            reply = BytesStream(reply)
        return 0, reply

    # -- status and identification --------------------------------------------------------------
    def test_unit_ready(self, cdb):
        return None

    def request_sense(self, cdb):
        key, asc, ascq = self.sense
        data = bytearray(18)
        data[0] = 0x70                      # current error, fixed format
        data[2] = key
        data[7] = 10                        # additional sense length
        data[12], data[13] = asc, ascq
        self.sense = (NO_SENSE, 0, 0)
        return bytes(data[:cdb[4]])

    def inquiry(self, cdb):
        if cdb[1] & 0x01:                   # EVPD: no vital product data pages
            raise CheckCondition(ILLEGAL_REQUEST, ASC_INVALID_FIELD)
        data = bytearray(36)
        data[0] = 0x05                      # CD/DVD device
        data[1] = 0x80                      # removable medium
        data[3] = 0x21                      # ATAPI version 2, response data format 1
        data[4] = 31                        # additional length
        data[8:16] = b"V3VEE   "
        data[16:32] = self.model.encode("ascii", "replace")[:16].ljust(16, b" ")
        data[32:36] = b"1.0 "
        return bytes(data[:cdb[4]])

    def read_capacity(self, cdb):
        return _be32(self.medium.num_sectors - 1) + _be32(CD_SECTOR)

    # -- data -----------------------------------------------------------------------------------
    def read(self, cdb):
        lba = struct.unpack_from(">I", cdb, 2)[0]
        if cdb[0] == 0x28:
            count = struct.unpack_from(">H", cdb, 7)[0]
        else:
            count = struct.unpack_from(">I", cdb, 6)[0]
        if lba + count > self.medium.num_sectors:
            raise CheckCondition(ILLEGAL_REQUEST, ASC_LBA_OUT_OF_RANGE)
        return SectorStream(self.medium, lba, count) if count else None

    def read_toc(self, cdb):
        msf = bool(cdb[1] & 0x02)
        fmt = cdb[2] & 0x0F or cdb[9] >> 6  # MMC format field, or SFF-8020i's in the control byte
        alloc = struct.unpack_from(">H", cdb, 7)[0]
        addr = _msf if msf else _be32
        if fmt == 0:
            start = cdb[6]
            if start > 1 and start != 0xAA:
                raise CheckCondition(ILLEGAL_REQUEST, ASC_INVALID_FIELD)
            body = b""
            if start <= 1:
                body += bytes((0, 0x14, 1, 0)) + addr(0)             # track 1: data, ADR 1
            body += bytes((0, 0x14, 0xAA, 0)) + addr(self.medium.num_sectors)   # lead-out
            data = _be16(len(body) + 2) + bytes((1, 1)) + body
        elif fmt == 1:                      # multi-session information: one session
            data = _be16(10) + bytes((1, 1)) + bytes((0, 0x14, 1, 0)) + addr(0)
        else:
            self.unimplemented(f"READ TOC format {fmt}")
        return data[:alloc]

    # -- mode pages -----------------------------------------------------------------------------
    def mode_page(self, page, changeable):
        if page == 0x01:                    # read error recovery: 5 retries
            body = bytes((0x01, 0x06, 0x00, 0x05, 0x00, 0x00, 0x00, 0x00))
        elif page == 0x2A:                  # CD capabilities and mechanical status
            body = bytearray(22)
            body[0], body[1] = 0x2A, 20
            body[6] = 0x29 | (0x02 if self.prevent else 0)   # tray, eject, lock (+ state)
            body[8:10] = _be16(2816)        # maximum read speed (kB/s, 16x)
            body[12:14] = _be16(512)        # buffer size (KiB)
            body[14:16] = _be16(2816)       # current read speed
            body = bytes(body)
        else:
            return None
        if changeable:                      # nothing can be changed
            return body[:2] + bytes(len(body) - 2)
        return body

    def mode_sense(self, cdb):
        pc, page = cdb[2] >> 6, cdb[2] & 0x3F
        if pc == 3:
            raise CheckCondition(ILLEGAL_REQUEST, ASC_SAVING_NOT_SUPPORTED)
        pages = (0x01, 0x2A) if page == 0x3F else (page,)
        body = b""
        for p in pages:
            chunk = self.mode_page(p, pc == 1)
            if chunk is None:
                raise CheckCondition(ILLEGAL_REQUEST, ASC_INVALID_FIELD)
            body += chunk
        medium_type = 0x01                  # 120 mm CD-ROM data disc
        if cdb[0] == 0x1A:
            data = bytes((len(body) + 3, medium_type, 0, 0)) + body
            return data[:cdb[4]]
        data = _be16(len(body) + 6) + bytes((medium_type, 0, 0, 0, 0, 0)) + body
        return data[:struct.unpack_from(">H", cdb, 7)[0]]

    # -- MMC features, events, disc information --------------------------------------------------
    def features(self):
        """(feature code, current, data) for GET CONFIGURATION."""
        return [
            (0x0000, True, _be16(PROFILE_CDROM) + bytes((0x01, 0))),    # profile list
            (0x0001, True, _be32(0x00000002) + bytes(4)),               # core: ATAPI
            (0x0003, True, bytes((0x29, 0, 0, 0))),                     # removable: tray
            (0x0010, True, _be32(CD_SECTOR) + bytes((0, 1, 0, 0))),     # random readable
            (0x001E, True, bytes(4)),                                   # CD read
        ]

    def get_configuration(self, cdb):
        rt, first = cdb[1] & 0x03, struct.unpack_from(">H", cdb, 2)[0]
        if rt == 3:
            raise CheckCondition(ILLEGAL_REQUEST, ASC_INVALID_FIELD)
        body = b""
        for code, current, data in self.features():
            if code < first or (rt == 2 and code != first):
                continue
            version = 0x01 if code == 0x0001 else 0x00
            body += _be16(code) + bytes((version << 2 | 0x02 | int(current), len(data))) + data
        header = _be32(len(body) + 4) + bytes(2) + _be16(PROFILE_CDROM)
        return (header + body)[:struct.unpack_from(">H", cdb, 7)[0]]

    def event_status(self, cdb):
        if not cdb[1] & 0x01:               # asynchronous notification is not supported
            raise CheckCondition(ILLEGAL_REQUEST, ASC_INVALID_FIELD)
        alloc = struct.unpack_from(">H", cdb, 7)[0]
        if cdb[4] & 0x10:                   # media class: no change, medium present
            data = _be16(6) + bytes((0x04, 0x10)) + bytes((0x00, 0x02, 0, 0))
        else:
            data = _be16(2) + bytes((0x80, 0x10))    # no event of a requested class
        return data[:alloc]

    def disc_information(self, cdb):
        if cdb[1] & 0x07:
            raise CheckCondition(ILLEGAL_REQUEST, ASC_INVALID_FIELD)
        data = bytearray(34)
        data[0:2] = _be16(32)
        data[2] = 0x0E                      # last session complete, disc complete
        data[3] = data[4] = data[5] = data[6] = 1   # first track, sessions, tracks of last one
        data[16:24] = b"\xff" * 8           # no lead-in / lead-out for a complete disc
        return bytes(data[:struct.unpack_from(">H", cdb, 7)[0]])

    def mechanism_status(self, cdb):
        data = bytes(8)                     # idle, no changer, door closed, no slot tables
        return data[:struct.unpack_from(">H", cdb, 8)[0]]

    # -- mechanics ------------------------------------------------------------------------------
    def start_stop(self, cdb):
        loej, start = cdb[4] & 0x02, cdb[4] & 0x01
        if loej and not start:
            self.unimplemented("START STOP UNIT eject (the tray is not modelled)")
        return None

    def prevent_allow(self, cdb):
        self.prevent = bool(cdb[4] & 0x01)
        return None

    def set_speed(self, cdb):
        return None


# ATA commands an ATAPI drive aborts (leaving its signature in place: how OSes detect ATAPI).
ATAPI_ABORTED = {0x00, 0xEC, 0x20, 0x21, 0x24, 0x29, 0x30, 0x31, 0x34, 0x39, 0x40, 0x41, 0x42,
                 0x91, 0xC4, 0xC5, 0xC6, 0xE7, 0xEA} | set(range(0x10, 0x20)) | set(range(0x70, 0x80))


class AtapiDrive(AttachedDrive):
    """An ATAPI CD-ROM: the ATA side (signature, IDENTIFY PACKET, PACKET protocol phases).

    The SCSI/MMC commands inside the packets are `atapi.CdromCommands`.
    """

    kind = "cdrom"

    def __init__(self, channel, position, medium, model, serial):
        self.cmds = CdromCommands(medium, model, channel.log, self.unimplemented)
        super().__init__(channel, position, medium, model, serial)

    def power_on(self):
        self.stream = None
        self.limit = 0
        super().power_on()

    def set_signature(self):
        self.nsector, self.lbal, self.lbam, self.lbah = 1, 1, 0x14, 0xEB
        self.select &= SEL_DEV
        self.error = 0x01
        self.status = 0                     # packet devices keep DRDY clear after a reset

    def command(self, cmd):
        if cmd == 0xA0:
            self.packet()
        elif cmd == 0xA1:
            self.identify_packet()
        elif cmd == 0xEF:
            self.set_features()
        elif cmd == 0x08:                   # DEVICE RESET: no interrupt
            self.cancel_transfer()
            self.set_signature()
        elif cmd in (0xE0, 0xE1, 0xE2, 0xE3, 0xE5):
            self.nsector = 0xFF if cmd == 0xE5 else self.nsector
            self.complete()
        elif cmd in ATAPI_ABORTED:
            self.abort()
            self.set_signature_registers()
        elif cmd in DMA_COMMANDS:
            self.unimplemented(f"DMA command {cmd:#04x} (DMA is not advertised)")
        else:
            self.unimplemented(f"ATA command {cmd:#04x} to an ATAPI drive")

    def set_signature_registers(self):
        self.nsector, self.lbal, self.lbam, self.lbah = 1, 1, 0x14, 0xEB

    def identify_packet(self):
        w = [0] * 256
        w[0] = 0x85C0                       # ATAPI, CD-ROM, removable, 50us DRQ, 12-byte packets
        self.identity_words(w)
        w[82] = w[85] = 0x0210              # PACKET and DEVICE RESET
        w[83] = w[84] = w[87] = 0x4000
        self.send_identify(w)

    # -- PACKET protocol ------------------------------------------------------------------------
    def packet(self):
        if self.features & 0x01:
            self.unimplemented("PACKET with DMA (DMA is not advertised)")
        limit = self.lbah << 8 | self.lbam
        self.limit = (limit or 0xFFFE) & ~1 or 2
        self.receive(12, self.run_packet)
        self.nsector = IR_COD               # ready for the command packet; no interrupt
        self.stream = None

    def run_packet(self, cdb):
        key, reply = self.cmds.execute(cdb)
        if key:
            self.error = key << 4
            self.nsector = IR_IO | IR_COD
            self.status = DRDY | ERR
            self.interrupt()
        elif reply is None or reply.remaining == 0:
            self.finish_packet()
        else:
            self.stream = reply
            self.next_packet_block()

    def next_packet_block(self):
        s = self.stream
        n = min(s.remaining, self.limit)
        if n < s.remaining and n >= CD_SECTOR:
            n -= n % CD_SECTOR              # whole sectors per DRQ block when the limit allows
        self.lbam, self.lbah = n & 0xFF, (n >> 8) & 0xFF
        self.nsector = IR_IO
        self.send(s.take(n), self.packet_block_done)
        self.interrupt()

    def packet_block_done(self):
        if self.stream.remaining:
            self.next_packet_block()
        else:
            self.finish_packet()

    def finish_packet(self):
        self.stream = None
        self.error = 0
        self.nsector = IR_IO | IR_COD
        self.complete()
