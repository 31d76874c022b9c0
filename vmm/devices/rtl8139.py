"""RTL8139: Realtek's RTL8139C Fast Ethernet controller in its classic (non-C+) mode, the chip
Linux's 8139too drives (RTL8139C datasheet 1.4; register use as in Linux's 8139too); with
`<cplus>on</cplus>` (`--nic user,model=rtl8139,cplus=on`) the RTL8139C+ with its C+ mode, the
chip QEMU's rtl8139 is and Linux's 8139cp drives: revision 0x20, TCR version 0x74800000, and
the descriptor rings, scatter-gather, checksum offload and TSO of vmm/devices/rtl8139_cplus.py,
whose register handlers front the classic ones below (the classic path is unchanged).

PCI 10ec:8139, revision 0x10 (8139too refuses revision >= 0x20 as an 8139C+), class 0x020000,
INTA#. BAR0: 256 bytes of I/O ports, BAR1: the same registers as 256 bytes of memory (Debian's
8139too maps BAR1). TCR reports hardware version RTL8139C (0x74000000).

Registers modelled (offset: name):
  00-05 IDR (MAC)   08-0F MAR (multicast hash; multicast is accepted when AM is set)
  10-1C TSD0-3      write: size (bits 0-12) + threshold starts a transmit of TSAD[n]; the frame
                    goes out at once and TSD reads back OWN|TOK, ISR.TOK is raised
  20-2C TSAD0-3     30 RBSTART    37 CR (RST self-clears, RE, TE; BUFE read-only)
  38 CAPR           3A CBR        3C IMR       3E ISR (write 1 to clear)
  40 TCR (version bits read-only)  44 RCR       48 TSC (reads 0)   4C MPC (missed packets)
  50 9346CR: EEM bits 7-6, and the 93C46 serial EEPROM bit-bang (CS 0x08, SK 0x04, DI 0x02,
     DO 0x01) when EEM = 10. The EEPROM holds 0x8129, the IDs and the MAC in words 7-9.
  51-52 CONFIG0/1, 58 MSR (link up, 100 Mb/s), 59-5A CONFIG3/4, 5B HLTCLK, 5C MULINT,
  60 TSAD (summary), 62-6A BMCR/BMSR/ANAR/ANLPAR/ANER of the internal PHY (link up,
  autonegotiation complete, 100 Mb/s full duplex partner), 74 CSCR, D8 CONFIG5.
Any other register, or an access width the register does not have, is a fail-stop naming it.

Receive: a frame of up to 1514 bytes (longer ones are dropped; C+ receive has its own limit)
that passes the RCR filter is written to the ring at RBSTART+CBR as
u16 status, u16 length (frame + 4-byte CRC), the frame and its CRC; CBR advances to the next
dword. With RCR.WRAP (bit 7) set the record runs on past the ring's end (the driver allocates
the spare bytes); clear, it wraps to the start. The ring's free space runs from CBR to CAPR+16;
a frame that does not fit waits in the card's FIFO (a bounded queue, overflow counts in MPC and
raises RXOVW, or in C+ receive RxFIFOOvr) and is written when the driver frees space by writing
CAPR.
Interrupt: INTA# is asserted while ISR & IMR is non-zero (level-triggered).
Misprogramming: a TX buffer or RX ring outside guest RAM, or a TX size above 1792 bytes, is a
fail-stop naming the register.

    <device class="RTL8139" id="nic0"><bus>pci0</bus><mac>52:54:00:12:34:56</mac></device>
    <device class="RTL8139" id="nic0"><bus>pci0</bus><cplus>on</cplus></device>
"""
import struct

from v3tools.errors import ConfigError
from vmm.devices import register
from vmm.devices.pci import PciConfig
from vmm.net.card import PciNic, with_fcs
from vmm.devices.rtl8139_cplus import (CP_LAZY_BITS, HW_VERSION_8139CPLUS, REVISION_CPLUS,
                                       CPlusMode)

try:
    from vmm.devices import _rtl8139        # the classic registers' fast path in C (optional)
except ImportError:
    _rtl8139 = None

VENDOR_REALTEK = 0x10EC
DEVICE_8139 = 0x8139
REVISION = 0x10
CLASS_ETHERNET = 0x020000
REGS_SIZE = 256
HW_VERSION_8139C = 0x74000000
TCR_VERSION_MASK = 0x7C800000

# registers
IDR0, MAR0, TSD0, TSAD0, RBSTART = 0x00, 0x08, 0x10, 0x20, 0x30
ERBCR, ERSR, CR, CAPR, CBR, IMR, ISR = 0x34, 0x36, 0x37, 0x38, 0x3A, 0x3C, 0x3E
TCR, RCR, TSC, MPC, CR9346 = 0x40, 0x44, 0x48, 0x4C, 0x50
CONFIG0, CONFIG1, TIMERINT, MSR, CONFIG3, CONFIG4 = 0x51, 0x52, 0x54, 0x58, 0x59, 0x5A
HLTCLK, MULINT, RERID, TSAD_SUMMARY = 0x5B, 0x5C, 0x5E, 0x60
BMCR, BMSR, ANAR, ANLPAR, ANER, DIS, FCSC, NWAYTR, REC, CSCR = (
    0x62, 0x64, 0x66, 0x68, 0x6A, 0x6C, 0x6E, 0x70, 0x72, 0x74)
PHY1_PARM, TW_PARM, PHY2_PARM, CONFIG5 = 0x78, 0x7C, 0x80, 0xD8

CR_RST, CR_RE, CR_TE, CR_BUFE = 0x10, 0x08, 0x04, 0x01
ISR_ROK, ISR_RER, ISR_TOK, ISR_TER, ISR_RXOVW, ISR_FOVW = 0x01, 0x02, 0x04, 0x08, 0x10, 0x40
ISR_MASK = 0xE07F
LAZY_ISR_BITS = ISR_ROK | ISR_TOK          # interrupts that may wait for the next exit
TSD_OWN, TSD_TOK, TSD_SIZE = 0x2000, 0x8000, 0x1FFF
TSD_WRITABLE = 0x003F1FFF          # early TX threshold and size
RCR_AAP, RCR_APM, RCR_AM, RCR_AB, RCR_WRAP = 0x01, 0x02, 0x04, 0x08, 0x80
RX_ROK, RX_BAR, RX_PAM, RX_MAR = 0x0001, 0x2000, 0x4000, 0x8000
RX_SPARE = 16 + 2048               # bytes the driver allocates past the ring when WRAP is set
MAX_TX = 1792
MAX_RX = 1514                      # the longest frame the classic receive path takes (no CRC)

RX_FIFO_FRAMES = 512               # frames the card holds while the ring is full

BMSR_VALUE = 0x782D                # 100/10 full/half capable, autoneg complete, link up
ANLPAR_VALUE = 0x45E1              # partner: 100 full/half, 10 full/half, ack

# register name, width set and reset value for the plain ("stored") registers
NAMES = {IDR0: "IDR", MAR0: "MAR", TSD0: "TSD", TSAD0: "TSAD", RBSTART: "RBSTART",
         CR: "CR", CAPR: "CAPR", CBR: "CBR", IMR: "IMR", ISR: "ISR", TCR: "TCR", RCR: "RCR",
         TSC: "TSC", MPC: "MPC", CR9346: "9346CR", CONFIG0: "CONFIG0", CONFIG1: "CONFIG1",
         MSR: "MSR", CONFIG3: "CONFIG3", CONFIG4: "CONFIG4", HLTCLK: "HLTCLK",
         MULINT: "MULINT", TSAD_SUMMARY: "TSAD", BMCR: "BMCR", BMSR: "BMSR", ANAR: "ANAR",
         ANLPAR: "ANLPAR", ANER: "ANER", CSCR: "CSCR", CONFIG5: "CONFIG5"}


def reg_name(offset):
    if TSD0 <= offset < TSD0 + 16:
        return f"TSD{(offset - TSD0) // 4}"
    if TSAD0 <= offset < TSAD0 + 16:
        return f"TSAD{(offset - TSAD0) // 4}"
    for base, name in sorted(NAMES.items(), reverse=True):
        if base <= offset:
            return name if base == offset else f"{name}+{offset - base}"
    return f"{offset:#x}"


class Eeprom93C46:
    """A 93C46 serial EEPROM (64 x 16 bits) driven through CS/SK/DI/DO (read command only;
    write and erase commands are fail-stops through `unsupported`)."""

    def __init__(self, words, unsupported):
        self.words = list(words) + [0] * (64 - len(words))
        self.unsupported = unsupported
        self.cs = self.sk = 0
        self.do = 1
        self._reset()

    def _reset(self):
        self.state = "idle"        # idle -> command -> read
        self.shift = 0
        self.bits = 0
        self.address = 0
        self.out = 0
        self.out_bits = 0

    def set_pins(self, cs, sk, di):
        if cs and not self.cs:
            self._reset()
            self.do = 1
        self.cs = cs
        rising = sk and not self.sk
        self.sk = sk
        if not cs or not rising:
            return
        if self.state == "idle":
            if di:                  # the start bit
                self.state = "command"
                self.shift = 0
                self.bits = 0
            return
        if self.state == "command":
            self.shift = (self.shift << 1) | di
            self.bits += 1
            if self.bits == 8:      # 2 opcode bits + 6 address bits
                opcode, address = self.shift >> 6, self.shift & 0x3F
                if opcode != 0b10:
                    self.unsupported(f"93C46 EEPROM command {opcode:02b} (only READ, 10, is "
                                     f"modelled)")
                self.state = "read"
                self.address = address
                self.out = self.words[address]
                self.out_bits = 16
                self.do = 0         # the dummy zero before the data
            return
        if self.state == "read":
            if self.out_bits == 0:  # sequential read: the next word
                self.address = (self.address + 1) & 0x3F
                self.out = self.words[self.address]
                self.out_bits = 16
            self.out_bits -= 1
            self.do = (self.out >> self.out_bits) & 1


@register("RTL8139")
class RTL8139(PciNic):
    def __init__(self, dev_id, bus_id, mac=None, cplus=False):
        self.cplus = cplus              # before make_config (the revision)
        self.cp = None                  # the C+ mode's state and rings, made with the BARs
        self.fast_rx = None             # the classic mode's frame paths in C, when they run
        super().__init__(dev_id, bus_id, mac)

    @classmethod
    def from_spec(cls, spec, ctx):
        nic = super().from_spec(spec, ctx)
        text = spec.value("cplus")
        if text is not None:
            v = text.strip().lower()
            if v in ("on", "yes", "1", "true"):
                nic.cplus = True
            elif v not in ("off", "no", "0", "false"):
                raise ConfigError(f"{spec.where()}: RTL8139 '{spec.id}': <cplus> must be on "
                                  f"or off, got {text.strip()!r}")
            nic.cfg = nic.make_config()
        return nic

    def make_config(self):
        revision = REVISION_CPLUS if self.cplus else REVISION
        cfg = PciConfig(VENDOR_REALTEK, DEVICE_8139, CLASS_ETHERNET, revision=revision,
                        name=f"{self.id} (RTL8139)", interrupt_pin=1,
                        subsystem_vendor=VENDOR_REALTEK, subsystem=DEVICE_8139,
                        status=0x0280)
        cfg.set_bar(0, REGS_SIZE, io=True)
        cfg.set_bar(1, REGS_SIZE)
        return cfg

    def bar_handlers(self):
        # The frames' paths in C (vmm/devices/_rtl8139.c, vmm/net/framepath.h), when guest
        # memory is in C's reach: receive into the classic ring or the C+ descriptors, and the
        # classic transmit.
        fast = _rtl8139.Rtl8139Fast(self) if _rtl8139 is not None else None
        access = getattr(self.ctx.mem, "raw_access", None) if fast is not None else None
        memory = access() if access is not None else None
        if memory is not None:
            fast.set_memory(*memory)
            self.fast_rx = fast
        if self.cplus:
            # the C+ registers front the classic ones (vmm/devices/rtl8139_cplus.py)
            self.cp = CPlusMode(self)
            return {0: (self.cp.read, self.cp.write, (1, 2, 4)),
                    1: (self.cp.read, self.cp.write, (1, 2, 4))}
        # BAR1, the one Linux's 8139too maps: the MMIO dispatcher tries the classic registers'
        # fast path in C before _read/_write
        return {
            0: (self._read, self._write, (1, 2, 4)),
            1: (self._read, self._write, (1, 2, 4), None, fast)}

    # -- state -------------------------------------------------------------------------------------
    def power_on(self):
        self.idr = bytearray(self.mac)
        self.mar = bytearray(8)
        self.hw_version = HW_VERSION_8139CPLUS if self.cplus else HW_VERSION_8139C
        self.tcr = self.hw_version
        self.lazy_bits = CP_LAZY_BITS if self.cplus else LAZY_ISR_BITS
        self.classic_rx_path()
        self.config = {CONFIG0: 0x00, CONFIG1: 0x00, CONFIG3: 0x00, CONFIG4: 0x00,
                       CONFIG5: 0x00, HLTCLK: 0x00}
        self.cr9346 = 0
        self.bmcr = 0x1000            # autonegotiation enabled
        self.anar = 0x05E1
        self.cscr = 0
        self.mulint = 0
        self.eeprom = Eeprom93C46(self._eeprom_words(), self._fail)
        self._soft_reset()

    def classic_rx_path(self):
        """The receive path is the classic ring: where a frame goes, the longest frame taken
        from the wire and the ISR bit a frame lost to a full FIFO raises (C+ receive switches
        all three with CpCmd.CpRxOn, vmm/devices/rtl8139_cplus.py)."""
        self.store, self.rx_limit, self.rx_lost_bit = self._store, MAX_RX, ISR_RXOVW

    def _soft_reset(self):
        """CR.RST: what the datasheet resets (the MAC and configuration stay)."""
        self.tsd = [TSD_OWN] * 4
        self.tsad = [0] * 4
        self.rbstart = 0
        self.cr = 0
        self.read_ptr = 0             # CAPR + 16
        self.cbr = 0
        self.imr = 0
        self.isr = 0
        self.rcr = 0
        self.mpc = 0
        self.fifo.clear()
        if self.cp is not None:
            self.cp.reset()
        self._update_irq()

    def reset(self):
        self.cfg.reset()
        self.bars.update()
        self.power_on()

    def connect_port(self, port):
        super().connect_port(port)
        if self.fast_rx is not None:
            # the backend's C half, when the port joins the two (no packet capture)
            self.fast_rx.connect(port.fast_tx())

    def _eeprom_words(self):
        words = [0] * 64
        words[0] = 0x8129
        words[1] = VENDOR_REALTEK
        words[2] = DEVICE_8139
        words[3] = VENDOR_REALTEK
        words[4] = DEVICE_8139
        for i in range(3):
            words[7 + i] = self.mac[2 * i] | (self.mac[2 * i + 1] << 8)
        return words

    def _fail(self, what):
        self.unimplemented(what)

    def _update_irq(self):
        """Drive INTA# from ISR & IMR. Transmit-done and frame-received interrupts are not
        urgent (vmm/irq.py): they report work the driver picks up in its own time, and taking
        them at the guest's next exit (a HLT once the driver waits for a free transmit buffer,
        or within LAZY_IRQ_NS) makes a burst of frames cost one engine stop instead of one per
        frame and per interrupt-mask write. Error and overflow interrupts stop the guest."""
        if getattr(self, "irq", None) is not None:
            pending = self.isr & self.imr
            self.irq.set(pending, urgent=bool(pending & ~self.lazy_bits))

    # -- registers ---------------------------------------------------------------------------------
    def _read(self, offset, size):
        if size == 4:
            if TSD0 <= offset < TSD0 + 16 and not offset & 3:
                return self.tsd[(offset - TSD0) >> 2]
            if TSAD0 <= offset < TSAD0 + 16 and not offset & 3:
                return self.tsad[(offset - TSAD0) >> 2]
            if offset in (IDR0, IDR0 + 4):
                return int.from_bytes((self.idr + b"\0\0")[offset:offset + 4], "little")
            if offset in (MAR0, MAR0 + 4):
                return int.from_bytes(self.mar[offset - MAR0:offset - MAR0 + 4], "little")
            if offset == RBSTART:
                return self.rbstart
            if offset == TCR:
                return self.tcr
            if offset == RCR:
                return self.rcr
            if offset in (TSC, TIMERINT):
                return 0
            if offset == MPC:
                return self.mpc
        elif size == 2:
            if offset == ISR:
                return self.isr
            if offset == IMR:
                return self.imr
            if offset == CAPR:
                return (self.read_ptr - 16) & 0xFFFF
            if offset == CBR:
                return self.cbr
            if offset == MULINT:
                return self.mulint
            if offset == TSAD_SUMMARY:
                return self._tsad_summary()
            if offset == BMCR:
                return self.bmcr
            if offset == BMSR:
                return BMSR_VALUE
            if offset == ANAR:
                return self.anar
            if offset == ANLPAR:
                return ANLPAR_VALUE
            if offset == ANER:
                return 0x0001      # link partner is autonegotiation-able
            if offset == CSCR:
                return self.cscr | 0x0400 | 0x0008   # LinkOK, and the reserved bit that reads 1
            if offset == TCR + 2:
                return self.tcr >> 16
            if offset == RCR:
                return self.rcr & 0xFFFF
        if size == 1:
            if offset < 6:
                return self.idr[offset]
            if MAR0 <= offset < MAR0 + 8:
                return self.mar[offset - MAR0]
            if offset == CR:
                return self.cr | (CR_BUFE if self._ring_empty() else 0)
            if offset == CR9346:
                ee = self.eeprom
                value = self.cr9346 & 0xC0
                if (self.cr9346 >> 6) == 2:
                    value |= (ee.cs << 3) | (ee.sk << 2) | (self.cr9346 & 0x02) | ee.do
                return value
            if offset in self.config:
                return self.config[offset]
            if offset == MSR:
                return 0x00         # link OK (bit 2 = 0), 100 Mb/s (bit 3 = 0)
            if offset == ISR:
                return self.isr & 0xFF
            if offset == ISR + 1:
                return self.isr >> 8
            if offset == IMR:
                return self.imr & 0xFF
            if offset == IMR + 1:
                return self.imr >> 8
            if TSD0 <= offset < TSD0 + 16:
                return (self.tsd[(offset - TSD0) >> 2] >> (8 * (offset & 3))) & 0xFF
            if offset == TCR + 3:
                return self.tcr >> 24
        self.unimplemented(f"{size}-byte read of register {reg_name(offset)} "
                           f"(offset {offset:#04x}), which is not modelled")

    def _write(self, offset, size, value):
        if size == 4:
            if TSD0 <= offset < TSD0 + 16 and not offset & 3:
                self._transmit((offset - TSD0) >> 2, value)
                return
            if TSAD0 <= offset < TSAD0 + 16 and not offset & 3:
                self.tsad[(offset - TSAD0) >> 2] = value
                return
            if offset in (IDR0, IDR0 + 4):
                data = value.to_bytes(4, "little")
                n = 4 if offset == 0 else 2      # IDR4-5; bytes 6-7 are reserved
                self.idr[offset:offset + n] = data[:n]
                return
            if offset in (MAR0, MAR0 + 4):
                self.mar[offset - MAR0:offset - MAR0 + 4] = value.to_bytes(4, "little")
                return
            if offset == RBSTART:
                self.rbstart = value
                return
            if offset == TCR:
                self.tcr = self.hw_version | (value & ~TCR_VERSION_MASK & ~1)
                return
            if offset == RCR:
                self.rcr = value & 0xF0FFFF
                return
            if offset == MPC:
                self.mpc = 0
                return
            if offset == TSC:
                return              # any write resets the timer count, which reads 0 anyway
        elif size == 2:
            if offset == ISR:
                self.isr &= ~value & 0xFFFF
                self._update_irq()
                return
            if offset == IMR:
                self.imr = value & ISR_MASK
                self._update_irq()
                return
            if offset == CAPR:
                self.read_ptr = (value + 16) & 0xFFFF
                self._drain_fifo()
                return
            if offset == MULINT:
                self.mulint = value & 0x0FFF
                return
            if offset == BMCR:
                self.bmcr = value & ~0x8000 & 0xFFFF      # reset self-clears
                return
            if offset == ANAR:
                self.anar = value
                return
            if offset == CSCR:
                self.cscr = value & ~0x0C00
                return
        if size == 1:
            if offset < 6:
                self.idr[offset] = value
                return
            if MAR0 <= offset < MAR0 + 8:
                self.mar[offset - MAR0] = value
                return
            if offset == CR:
                self._command(value)
                return
            if offset == CR9346:
                self.cr9346 = value & 0xCF
                if (value >> 6) == 2:
                    self.eeprom.set_pins((value >> 3) & 1, (value >> 2) & 1, (value >> 1) & 1)
                elif (value >> 6) == 1:
                    self.unimplemented("9346CR: auto-load of the EEPROM (EEM = 01) is not "
                                       "modelled")
                return
            if offset in self.config:
                self.config[offset] = value
                return
        self.unimplemented(f"{size}-byte write of {value:#x} to register {reg_name(offset)} "
                           f"(offset {offset:#04x}), which is not modelled")

    def _command(self, value):
        if value & CR_RST:
            self._soft_reset()
            return
        was_rx = self.cr & CR_RE
        self.cr = value & (CR_RE | CR_TE)
        if not self.cr & CR_RE:
            self.fifo.clear()
        elif not was_rx:
            self._drain_fifo()

    def _tsad_summary(self):
        v = 0
        for i, t in enumerate(self.tsd):
            if t & TSD_OWN:
                v |= 1 << i
            if t & TSD_TOK:
                v |= 1 << (12 + i)
        return v

    # -- transmit ----------------------------------------------------------------------------------
    def _transmit(self, n, value):
        size = value & TSD_SIZE
        self.tsd[n] = value & TSD_WRITABLE
        if not self.cr & CR_TE:
            return                  # OWN stays clear until the transmitter is enabled
        if size > MAX_TX:
            self.unimplemented(f"TSD{n}: transmit size {size} is larger than the chip's "
                               f"{MAX_TX}-byte FIFO allows")
        addr = self.tsad[n]
        if addr + size > self.ctx.memory_size:
            self.unimplemented(f"TSAD{n}: transmit buffer {addr:#x}+{size} is outside guest RAM")
        frame = self.ctx.mem.read(addr, size)
        self.tsd[n] = (value & TSD_WRITABLE) | TSD_OWN | TSD_TOK
        self.stats["tx"] += 1
        if self.port is not None:
            self.port.send(frame)
        self.isr |= ISR_TOK
        self._update_irq()

    # -- receive -----------------------------------------------------------------------------------
    def _ring_len(self):
        return 8192 << ((self.rcr >> 11) & 3)

    def _ring_empty(self):
        return self.cbr == self.read_ptr % self._ring_len()

    def _accepts(self, frame):
        rcr = self.rcr
        dst = frame[:6]
        if dst == b"\xff\xff\xff\xff\xff\xff":
            return RX_BAR if rcr & (RCR_AB | RCR_AAP) else None
        if dst[0] & 1:
            if rcr & RCR_AAP:
                return RX_MAR
            if rcr & RCR_AM:
                # the hash is the top 6 bits of the big-endian Ethernet CRC
                h = _ether_crc_be(dst) >> 26
                if self.mar[h >> 3] & (1 << (h & 7)):
                    return RX_MAR
            return None
        if dst == bytes(self.idr[:6]):
            return RX_PAM if rcr & (RCR_APM | RCR_AAP) else None
        return 0 if rcr & RCR_AAP else None

    def receive(self, frame):
        """A frame from the wire (the backend, through the port)."""
        fast = self.fast_rx
        if fast is not None and fast.receive(frame):
            return                      # stored in C (the common case; the same result)
        if not self.cr & CR_RE:
            self.stats["rx_dropped"] += 1
            return
        if len(frame) < 60:
            frame = bytes(frame) + bytes(60 - len(frame))
        if len(frame) > self.rx_limit:
            self.stats["rx_dropped"] += 1
            return
        kind = self._accepts(frame)
        if kind is None:
            self.stats["rx_filtered"] += 1
            return
        if self.fifo or not self.store(frame, kind):
            if len(self.fifo) >= RX_FIFO_FRAMES:
                self.mpc = (self.mpc + 1) & 0xFFFFFF
                self.stats["rx_dropped"] += 1
                self.isr |= self.rx_lost_bit
                self._update_irq()
                return
            self.fifo.append((frame, kind))

    def _drain_fifo(self):
        while self.fifo and self.cr & CR_RE:
            frame, kind = self.fifo[0]
            if not self.store(frame, kind):
                break
            self.fifo.popleft()

    def _store(self, frame, kind):
        """Write one record into the ring; False if it does not fit now."""
        ring = self._ring_len()
        length = len(frame) + 4
        need = (length + 4 + 3) & ~3
        free = (self.read_ptr - self.cbr) % ring
        if free == 0:
            free = ring                 # empty ring: read pointer == write pointer
        if need >= free:
            return False
        if self.rbstart + ring + (RX_SPARE if self.rcr & RCR_WRAP else 0) > self.ctx.memory_size:
            self.unimplemented(f"RBSTART: receive ring {self.rbstart:#x}+{ring} is outside "
                               f"guest RAM")
        record = struct.pack("<HH", RX_ROK | kind, length) + with_fcs(frame)
        start = self.cbr
        if self.rcr & RCR_WRAP or start + len(record) <= ring:
            self.ctx.mem.write(self.rbstart + start, record)
        else:
            first = ring - start
            self.ctx.mem.write(self.rbstart + start, record[:first])
            self.ctx.mem.write(self.rbstart, record[first:])
        self.cbr = (start + need) % ring
        self.stats["rx"] += 1
        self.isr |= ISR_ROK
        self._update_irq()
        return True


def _ether_crc_be(data):
    """The Ethernet CRC-32 as the multicast hash uses it (big-endian bit order)."""
    crc = 0xFFFFFFFF
    for byte in data:
        for bit in range(8):
            msb = (crc >> 31) & 1
            crc = (crc << 1) & 0xFFFFFFFF
            if msb ^ ((byte >> bit) & 1):
                crc ^= 0x04C11DB7
    return crc
