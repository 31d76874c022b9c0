"""NE2000: the NE2000-compatible Realtek RTL8029 on PCI (10ec:8029), an 8390 core with 32 KiB of
packet memory, which Linux drives with ne2k-pci on top of 8390 (DP8390D datasheet; RTL8029AS
datasheet for the PCI side and page 3).

BAR0 is 32 I/O ports: 0x00-0x0F the 8390 registers in the page CR.PS selects, 0x10 the remote
DMA data port (8, 16 and 32-bit accesses; in word mode, DCR bit 0, a byte access still moves
two bytes, as on the chip), 0x18-0x1F the reset port (a read resets the NIC and sets ISR.RST).

Registers (page 0 write / read; page 1):
  00 CR (all pages): STP, STA, TXP, remote DMA command (read/write/abort), page select
  01/02 PSTART/PSTOP (read: CLDA)   03 BNRY   04 TPSR / TSR   05-06 TBCR (read: NCR, FIFO = 0)
  07 ISR (write 1 to clear; RST, RDC, CNT, OVW, TXE, RXE, PTX, PRX)   08-09 RSAR   0A-0B RBCR
  (read: the RTL8029 ID 0x50 0x43)   0C RCR / RSR   0D TCR / CNTR0   0E DCR / CNTR1
  0F IMR / CNTR2 (tally counters read 0)     page 1: 01-06 PAR, 07 CURR, 08-0F MAR
  page 3: 9346CR (01), CONFIG0-3 (03-06) stored; the RTL8029's full-duplex switch lives there.
Memory: the 32-byte station PROM at 0x0000 (the MAC, each byte doubled, 0x57 0x57 at the end
marking word mode) and packet RAM at 0x4000-0xBFFF.

Transmit: CR.TXP sends TBCR bytes from page TPSR, sets TSR.PTX and ISR.PTX. Receive: a frame
that passes RCR's filter (padded to 60 bytes) is stored at CURR behind a 4-byte header (RSR,
next page, byte count = frame + 4) and the ring wraps from PSTOP to PSTART; remote DMA reads
wrap the same way. A frame that does not fit before BNRY waits in the card's FIFO (a bounded
queue; overflow sets ISR.OVW) until the driver moves BNRY. INTA# is asserted while
ISR & IMR is non-zero (level-triggered).
Fail-stops: a page-2 access, a remote DMA that reaches outside the packet memory while
writing, a ring (PSTART/PSTOP) outside the packet memory, a transmit outside it.

Speed: the ~50 port accesses a frame costs Linux's 8390 driver are mostly plain register reads
and writes and remote DMA. When vmm/devices/_ne2000.c is built, those are done in C inside the
engine's run (the port dispatcher of vmm/cpu/portio.py asks it first) on this model's own
state: the registers are kept in one bytearray, `regs` (REG_LAYOUT; the attributes below are
views of it), and the packet memory in `mem`. The C path declines, unchanged, whatever would
move the interrupt line, transmit, start or stop the card, touch the ring bounds, let frames
waiting in the FIFO in (a BNRY write while some wait), pages 2/3, the PROM or the reset port;
this model does those, and its fail-stops.

    <device class="NE2000" id="nic0"><bus>pci0</bus><mac>52:54:00:12:34:56</mac></device>
"""

from vmm.devices import register
from vmm.devices.pci import PciConfig
from vmm.net.card import PciNic

try:
    from vmm.devices import _ne2000
except ImportError:                 # not built (no C compiler): the Python model does it all
    _ne2000 = None

VENDOR_REALTEK = 0x10EC
DEVICE_8029 = 0x8029
CLASS_ETHERNET = 0x020000
IO_SIZE = 32
DATA_PORT = 0x10
RESET_PORT = 0x18
MEM_START = 0x4000
MEM_END = 0xC000

CR_STP, CR_STA, CR_TXP = 0x01, 0x02, 0x04
RD_READ, RD_WRITE, RD_SEND, RD_ABORT = 1, 2, 3, 4
ISR_PRX, ISR_PTX, ISR_RXE, ISR_TXE, ISR_OVW, ISR_CNT, ISR_RDC, ISR_RST = (
    0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80)
RCR_SEP, RCR_AR, RCR_AB, RCR_AM, RCR_PRO, RCR_MON = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20
RSR_PRX, RSR_PHY = 0x01, 0x20
TSR_PTX = 0x01
DCR_WTS = 0x01
RX_FIFO_FRAMES = 512

# The registers live in one bytearray, `regs`, which the C fast path (vmm/devices/_ne2000.c)
# reads and writes in place; the attributes below (self.cr, self.isr, ...) are views of it.
REG_LAYOUT = {"CR": 0, "PSTART": 1, "PSTOP": 2, "BNRY": 3, "TPSR": 4, "TBCR": 5, "ISR": 7,
              "RSAR": 8, "RBCR": 10, "RCR": 12, "TCR": 13, "DCR": 14, "IMR": 15, "CURR": 16,
              "TSR": 17, "RSR": 18, "LEVEL": 19, "PAR": 20, "MAR": 26, "PAGE3": 34, "FIFO": 50,
              "SIZE": 64,
              "MEM_SIZE": MEM_END, "DATA_PORT": DATA_PORT}
R = REG_LAYOUT


class _Reg:
    """An 8- or 16-bit (little-endian) register in the device's `regs` bytearray."""

    def __init__(self, index, width=1):
        self.index, self.width = index, width

    def __get__(self, dev, owner=None):
        if dev is None:
            return self
        i = self.index
        return dev.regs[i] if self.width == 1 else dev.regs[i] | dev.regs[i + 1] << 8

    def __set__(self, dev, value):
        i = self.index
        if self.width == 1:
            dev.regs[i] = value
        else:
            dev.regs[i] = value & 0xFF
            dev.regs[i + 1] = value >> 8


class _Bytes:
    """A run of bytes in `regs` (PAR, MAR, page 3): reads give a memoryview to index and
    compare, a write copies the bytes in (so snapshots of older layouts load)."""

    def __init__(self, index, length):
        self.index, self.length = index, length

    def __get__(self, dev, owner=None):
        if dev is None:
            return self
        return memoryview(dev.regs)[self.index:self.index + self.length]

    def __set__(self, dev, value):
        if len(value) != self.length:
            raise ValueError(f"{self.length} bytes expected, got {len(value)}")
        dev.regs[self.index:self.index + self.length] = value


PAGE0_NAMES = {0: "CR", 1: "PSTART", 2: "PSTOP", 3: "BNRY", 4: "TPSR", 5: "TBCR0", 6: "TBCR1",
               7: "ISR", 8: "RSAR0", 9: "RSAR1", 10: "RBCR0", 11: "RBCR1", 12: "RCR",
               13: "TCR", 14: "DCR", 15: "IMR"}


@register("NE2000")
class NE2000(PciNic):
    cr, pstart, pstop, bnry, tpsr = (_Reg(R[n]) for n in ("CR", "PSTART", "PSTOP", "BNRY", "TPSR"))
    isr, rcr, tcr, dcr, imr = (_Reg(R[n]) for n in ("ISR", "RCR", "TCR", "DCR", "IMR"))
    curr, tsr, rsr, irq_level = (_Reg(R[n]) for n in ("CURR", "TSR", "RSR", "LEVEL"))
    fifo_waiting = _Reg(R["FIFO"])          # frames wait in the FIFO: a BNRY write may drain
    tbcr, rsar, rbcr = (_Reg(R[n], 2) for n in ("TBCR", "RSAR", "RBCR"))
    par, mar, page3 = _Bytes(R["PAR"], 6), _Bytes(R["MAR"], 8), _Bytes(R["PAGE3"], 16)

    def __init__(self, dev_id, bus_id, mac=None):
        # both buffers are filled in place from here on: the fast path holds them
        self.regs = bytearray(R["SIZE"])
        self.mem = bytearray(MEM_END)
        self.fast = _ne2000.Ne2000Fast(self.regs, self.mem) if _ne2000 else None
        # frames into the ring in C too (vmm/net/framepath.h): libslirp's glue hands them to
        # it, and receive() tries it first
        self.fast_rx = self.fast
        if self.fast is not None:
            self.fast.set_model(self)
        super().__init__(dev_id, bus_id, mac)

    def make_config(self):
        cfg = PciConfig(VENDOR_REALTEK, DEVICE_8029, CLASS_ETHERNET, revision=0,
                        name=f"{self.id} (NE2000/RTL8029)", interrupt_pin=1,
                        subsystem_vendor=VENDOR_REALTEK, subsystem=DEVICE_8029,
                        status=0x0200)
        cfg.set_bar(0, IO_SIZE, io=True)
        return cfg

    def bar_handlers(self):
        return {0: (self._read, self._write, (1, 2, 4),
                    {DATA_PORT: (self._dma_read_block, self._dma_write_block)}, self.fast)}

    # -- state -------------------------------------------------------------------------------------
    def power_on(self):
        prom = bytearray(16)
        prom[:6] = self.mac
        prom[14] = prom[15] = 0x57          # 'W': a word-wide card
        for i in range(16):
            self.mem[2 * i] = self.mem[2 * i + 1] = prom[i]
        self.regs[:] = bytes(len(self.regs))
        self._nic_reset()

    def _nic_reset(self):
        self.cr = CR_STP | 0x20             # stopped, remote DMA aborted, page 0
        self.pstart = self.pstop = self.bnry = self.curr = 0x40
        self.tpsr = 0
        self.tbcr = 0
        self.isr = ISR_RST
        self.imr = 0
        self.rsar = 0
        self.rbcr = 0
        self.rcr = 0
        self.tcr = 0
        self.dcr = 0
        self.tsr = 0
        self.rsr = 0
        self.fifo.clear()
        self._fifo_changed()
        self._update_irq()

    def restored(self):
        """After a snapshot restore: what the fast path reads about the model's other state
        (the line's level, frames waiting) follows the restored line and FIFO, whatever the
        file's layout."""
        self.irq_level = self.irq.level if self.irq is not None else 0
        self._fifo_changed()

    def _fifo_changed(self):
        self.fifo_waiting = 1 if self.fifo else 0   # for the fast path's BNRY

    def reset(self):
        self.cfg.reset()
        self.bars.update()
        self.power_on()

    def _update_irq(self):
        level = 1 if self.isr & self.imr & 0x7F else 0
        self.irq_level = level              # the fast path declines what would change it
        if self.irq is not None:
            self.irq.set(level)

    # -- ports -------------------------------------------------------------------------------------
    def _read(self, offset, size):
        if offset == DATA_PORT:
            return self._dma_read(size)
        if offset >= RESET_PORT:
            self._nic_reset()
            return 0
        if size != 1:
            self.unimplemented(f"{size}-byte read of register {offset:#04x} (the 8390 "
                               f"registers are bytes)")
        if offset == 0:
            return self.cr
        page = self.cr >> 6
        if page == 0:
            return self._read_page0(offset)
        if page == 1:
            if offset <= 6:
                return self.par[offset - 1]
            if offset == 7:
                return self.curr
            return self.mar[offset - 8]
        if page == 3:
            return self.page3[offset]
        self.unimplemented(f"read of page-2 register {offset:#04x}, which is not modelled")

    def _read_page0(self, offset):
        if offset in (1, 2):                # CLDA: the local DMA address (the receive point)
            return (self.curr << 8 >> (8 * (offset - 1))) & 0xFF
        if offset == 3:
            return self.bnry
        if offset == 4:
            return self.tsr
        if offset in (5, 6):                # NCR, FIFO
            return 0
        if offset == 7:
            return self.isr
        if offset == 8:
            return self.rsar & 0xFF
        if offset == 9:
            return self.rsar >> 8
        if offset == 10:
            return 0x50                     # RTL8029 ID: 'P'
        if offset == 11:
            return 0x43                     # 'C'
        if offset == 12:
            return self.rsr
        return 0                            # CNTR0-2: tally counters (nothing counted)

    def _write(self, offset, size, value):
        if offset == DATA_PORT:
            self._dma_write(size, value)
            return
        if offset >= RESET_PORT:
            return                          # writing the reset port ends the reset pulse
        if size != 1:
            self.unimplemented(f"{size}-byte write of {value:#x} to register {offset:#04x} "
                               f"(the 8390 registers are bytes)")
        if offset == 0:
            self._command(value)
            return
        page = self.cr >> 6
        if page == 0:
            self._write_page0(offset, value)
        elif page == 1:
            if offset <= 6:
                self.par[offset - 1] = value
            elif offset == 7:
                self.curr = value
                self._check_page("CURR", value)
            else:
                self.mar[offset - 8] = value
        elif page == 3:
            self.page3[offset] = value
        else:
            self.unimplemented(f"write of {value:#x} to page-2 register {offset:#04x}, which "
                               f"is not modelled")

    def _write_page0(self, offset, value):
        if offset == 1:
            self.pstart = value
            self._check_page("PSTART", value)
        elif offset == 2:
            self.pstop = value
            if not MEM_START >> 8 < value <= MEM_END >> 8:
                self.unimplemented(f"PSTOP: page {value:#x} is outside the packet memory "
                                   f"(pages {MEM_START >> 8:#x}-{MEM_END >> 8:#x})")
        elif offset == 3:
            self.bnry = value
            self._drain_fifo()
        elif offset == 4:
            self.tpsr = value
        elif offset == 5:
            self.tbcr = (self.tbcr & 0xFF00) | value
        elif offset == 6:
            self.tbcr = (self.tbcr & 0xFF) | (value << 8)
        elif offset == 7:
            self.isr &= ~(value & 0x7F)     # RST clears when the NIC is started
            self._update_irq()
        elif offset == 8:
            self.rsar = (self.rsar & 0xFF00) | value
        elif offset == 9:
            self.rsar = (self.rsar & 0xFF) | (value << 8)
        elif offset == 10:
            self.rbcr = (self.rbcr & 0xFF00) | value
        elif offset == 11:
            self.rbcr = (self.rbcr & 0xFF) | (value << 8)
        elif offset == 12:
            self.rcr = value & 0x3F
        elif offset == 13:
            self.tcr = value & 0x1F
        elif offset == 14:
            self.dcr = value & 0x7F
        elif offset == 15:
            self.imr = value & 0x7F
            self._update_irq()

    def _check_page(self, name, page):
        if not MEM_START >> 8 <= page < MEM_END >> 8:
            self.unimplemented(f"{name}: page {page:#x} is outside the packet memory "
                               f"(pages {MEM_START >> 8:#x}-{(MEM_END >> 8) - 1:#x})")

    def _command(self, value):
        # STP stops the NIC, STA starts it; a write with neither keeps the state (the driver
        # writes NODMA+PAGE0 in its interrupt handler without meaning to stop anything).
        state = self.cr & (CR_STP | CR_STA)
        if value & CR_STP:
            state = CR_STP
            self.isr |= ISR_RST
            self.fifo.clear()
            self._fifo_changed()
        elif value & CR_STA:
            if state & CR_STP:
                self.isr &= ~ISR_RST
            state = CR_STA
        was_running = bool(self.cr & CR_STA)
        self.cr = (value & ~(CR_STP | CR_STA | CR_TXP)) | state | (self.cr & CR_TXP)
        if state & CR_STA and not was_running:
            self._drain_fifo()
        rd = (value >> 3) & 7
        if rd & RD_ABORT:
            pass
        elif rd == RD_SEND:
            self.unimplemented("CR: the 'send packet' remote DMA command is not modelled")
        elif rd in (RD_READ, RD_WRITE) and self.rbcr == 0:
            self.isr |= ISR_RDC             # a zero-length transfer completes at once
        if value & CR_TXP and self.cr & CR_STA:
            self.cr |= CR_TXP
            self._transmit()
        self._update_irq()

    # -- remote DMA --------------------------------------------------------------------------------
    def _dma_step(self, n):
        self.rsar = (self.rsar + n) & 0xFFFF
        if self.pstop and self.rsar == self.pstop << 8:
            self.rsar = self.pstart << 8
        if self.rbcr <= n:
            self.rbcr = 0
            self.isr |= ISR_RDC
            self._update_irq()
        else:
            self.rbcr -= n

    def _dma_fast(self, n):
        """The start of an n-byte transfer inside the packet RAM that neither crosses PSTOP
        nor ends the count (the common case, done in one step), else None."""
        a = self.rsar
        end = a + n
        stop = self.pstop << 8
        if a < MEM_START or end > MEM_END or self.rbcr <= n or (a < stop < end):
            return None
        self.rsar = (self.pstart << 8) if end == stop else end
        self.rbcr -= n
        return a

    def _dma_read(self, size):
        n = 2 if size == 1 and self.dcr & DCR_WTS else size
        a = self._dma_fast(n)
        if a is not None:
            return int.from_bytes(self.mem[a:a + size], "little")
        value = 0
        for i in range(n):
            a = self.rsar
            b = self.mem[a] if a < 32 or MEM_START <= a < MEM_END else 0xFF
            value |= b << (8 * i)
            self._dma_step(1)
        return value & ((1 << (8 * size)) - 1)

    def _dma_write(self, size, value):
        n = 2 if size == 1 and self.dcr & DCR_WTS else size
        a = self._dma_fast(n)
        if a is not None:
            self.mem[a:a + n] = value.to_bytes(n, "little") if n == size else \
                (value & ((1 << (8 * size)) - 1)).to_bytes(n, "little")
            return
        for i in range(n):
            a = self.rsar
            if not MEM_START <= a < MEM_END:
                self.unimplemented(f"RSAR: remote DMA write to {a:#06x}, outside the packet "
                                   f"memory ({MEM_START:#06x}-{MEM_END - 1:#06x})")
            self.mem[a] = (value >> (8 * i)) & 0xFF
            self._dma_step(1)

    def _dma_block(self, size, count):
        """The packet-RAM address of a `count`-element remote-DMA block that stays inside the
        packet memory and the ring and within the byte count, else None."""
        n = size * count
        a = self.rsar
        stop = self.pstop << 8
        if size == 1 and self.dcr & DCR_WTS or a < MEM_START or a + n > MEM_END \
                or a < stop < a + n or self.rbcr < n:
            return None
        return a

    def _dma_read_block(self, size, count):
        a = self._dma_block(size, count)
        if a is None:
            return b"".join(self._dma_read(size).to_bytes(size, "little") for _ in range(count))
        n = size * count
        self._dma_step(n)
        return bytes(self.mem[a:a + n])

    def _dma_write_block(self, size, data):
        a = self._dma_block(size, len(data) // size)
        if a is None:
            for i in range(0, len(data), size):
                self._dma_write(size, int.from_bytes(data[i:i + size], "little"))
            return
        self.mem[a:a + len(data)] = data
        self._dma_step(len(data))

    # -- transmit ----------------------------------------------------------------------------------
    def _transmit(self):
        start = self.tpsr << 8
        length = self.tbcr
        if not MEM_START <= start or start + length > MEM_END:
            self.unimplemented(f"TPSR/TBCR: transmit of {length} bytes from {start:#06x} "
                               f"reaches outside the packet memory")
        frame = bytes(self.mem[start:start + length])
        self.cr &= ~CR_TXP
        self.tsr = TSR_PTX
        self.stats["tx"] += 1
        if self.port is not None:
            self.port.send(frame)
        self.isr |= ISR_PTX
        self._update_irq()

    # -- receive -----------------------------------------------------------------------------------
    def _accepts(self, frame):
        rcr = self.rcr
        if rcr & RCR_MON:
            return None
        dst = frame[:6]
        if dst == b"\xff" * 6:
            return RSR_PHY if rcr & (RCR_AB | RCR_PRO) else None
        if dst[0] & 1:
            return RSR_PHY if rcr & (RCR_AM | RCR_PRO) else None
        if dst == bytes(self.par) or rcr & RCR_PRO:
            return 0
        return None

    def receive(self, frame):
        fast = self.fast_rx
        if fast is not None and fast.receive(frame):
            return                          # stored in C (the common case; the same result)
        if not self.cr & CR_STA or self.cr & CR_STP:
            self.stats["rx_dropped"] += 1
            return
        if len(frame) < 60:
            frame = bytes(frame) + bytes(60 - len(frame))
        if len(frame) > 1514:
            self.stats["rx_dropped"] += 1
            return
        kind = self._accepts(frame)
        if kind is None:
            self.stats["rx_filtered"] += 1
            return
        if self.fifo or not self._store(frame, kind):
            if len(self.fifo) >= RX_FIFO_FRAMES:
                self.stats["rx_dropped"] += 1
                self.isr |= ISR_OVW
                self._update_irq()
                return
            self.fifo.append((frame, kind))
            self._fifo_changed()

    def _drain_fifo(self):
        while self.fifo and self.cr & CR_STA:
            frame, kind = self.fifo[0]
            if not self._store(frame, kind):
                break
            self.fifo.popleft()
        self._fifo_changed()

    def _store(self, frame, kind):
        start, stop = self.pstart, self.pstop
        pages = stop - start
        if pages <= 0:
            self.unimplemented(f"PSTART/PSTOP: empty receive ring ({start:#x}-{stop:#x})")
        count = len(frame) + 4
        need = (count + 255) >> 8
        free = (self.bnry - self.curr) % pages
        if need > free:
            return False
        nxt = self.curr + need
        if nxt >= stop:
            nxt -= pages
        record = bytes([RSR_PRX | kind, nxt, count & 0xFF, count >> 8]) + bytes(frame)
        addr = self.curr << 8
        end = stop << 8
        first = min(len(record), end - addr)
        self.mem[addr:addr + first] = record[:first]
        if first < len(record):
            rest = record[first:]
            self.mem[start << 8:(start << 8) + len(rest)] = rest
        self.curr = nxt
        self.rsr = RSR_PRX | kind
        self.stats["rx"] += 1
        self.isr |= ISR_PRX
        self._update_irq()
        return True
