"""The RTL8139C+'s C+ mode: descriptor rings with scatter-gather, checksum offload and large
send (TSO), for the RTL8139 device (vmm/devices/rtl8139.py) built with `<cplus>on</cplus>`.
Facts from the RTL8139C+ datasheet and from how Linux's 8139cp drives the chip; the error
bits of the descriptors as 8139cp names them and as the RTL8169 datasheet (the gigabit chip
with the same descriptor format) describes them.

The card is then an RTL8139C+ (PCI revision 0x20, TCR hardware version 0x74800000). Its
classic registers all stay; CpCmd (0xE0) switches the transmit and receive paths to the
descriptor rings (CpTxOn bit 0, CpRxOn bit 1). While C+ transmit is on, offsets 0x10-0x17
are the statistics dump address and 0x20-0x2F the normal- and high-priority TX ring
addresses (instead of TSD0-3/TSAD0-3).

C+ registers (offset: name):
  10-17 StatsAddr (64-bit; a dump request, DumpStats bit 3, is a fail-stop)
  20-27 TxRingAddr (normal priority)   28-2F HiTxRingAddr (high priority)
  82 TxDmaOkLowDesc (read: low 16 bits of the last transmitted descriptor's address)
  D9 TxPoll: HPQ bit 7 / NPQ bit 6 make the card walk that ring; FSWInt bit 0 raises SWInt
     (all three only in C+ mode, CpCmd with CpTxOn or CpRxOn; the walks need CpTxOn and CR.TE)
  DA RxMaxSize, E2 IntrMitigate, EC TxThresh (early TX threshold / MTPS): stored, no effect
  E0 CpCmd: CpTxOn 0x01, CpRxOn 0x02, PCIMulRW 0x08, PCIDAC 0x10, RxChkSum 0x20, RxVlanOn 0x40
  E4-EB RxRingAddr (64-bit)
  3C/3E IMR/ISR with the C+ bits: RxOK 0x01, RxErr 0x02 (a packet received in error), TxOK
  0x04, TxErr 0x08 (a frame not sent), RxEmpty 0x10 (no free RX descriptor; the classic
  chip's RxOverflow), LinkChg 0x20, RxFIFOOvr 0x40 (a frame lost: the FIFO was full),
  TxEmpty 0x80 (the TX poll ran out of descriptors the card owns; a poll that finds none
  raises it alone, no TxOK), SWInt 0x100, TimerIntr 0x4000, PciErr 0x8000. IMR keeps the
  C+-only bits (TxEmpty, SWInt) while C+ mode is off, as it is one register, but nothing
  raises them then.

Descriptors are 16 bytes: u32 opts1, u32 opts2, u64 buffer address; a ring starts at its
ring address and ends at the descriptor with RingEnd. The card's index into a ring goes back
to the ring's start when the ring address (either half) is written, at CR.RST, and when that
engine is enabled: CpCmd.CpTxOn/CpRxOn or CR.TE/RE going from 0 to 1 (8139cp's timeout
recovery stops both and starts them again). CpCmd writes that leave the engines on (8139cp's
feature changes) keep the index.
  opts1: DescOwn 1<<31 (the card's), RingEnd 1<<30, FirstFrag 1<<29, LastFrag 1<<28;
  TX: LargeSend 1<<27 with the MSS in bits 16-26, else IPCS 1<<18 / UDPCS 1<<17 / TCPCS 1<<16
      ask for the IPv4 header / UDP / TCP checksum; bits 0-15 the buffer's length. opts2:
      TxVlanTag 1<<17 inserts the VLAN tag in bits 0-15 (byte-swapped, as the driver stores it).
      A frame runs from its FirstFrag descriptor to its LastFrag one; the card hands each
      descriptor back (DescOwn clear, no error bits) once the frame is sent, ISR.TxOK. A frame
      the chip cannot send (no large send, and empty or, with an inserted tag, longer than
      4096 bytes) is not sent: its descriptors come back with TES 1<<23 (the error summary,
      8139cp's TxError) on the LastFrag one, ISR.TxErr.
  RX: bits 0-12 the buffer size as given, the frame length plus the 4-byte CRC when returned;
      MAR 1<<26, PAM 1<<25, BAR 1<<24; protocol id bits 16-17 (1 TCP, 2 UDP, 3 other IPv4)
      and IPFail 1<<15, UDPFail 1<<14, TCPFail 1<<13 when CpCmd.RxChkSum is set. opts2:
      RxVlanTagged 1<<16 with the stripped tag when CpCmd.RxVlanOn is set. Errors: RES 1<<20
      (the summary, 8139cp's RxError) with RWT 1<<21 for a packet over 4096 bytes.
A received frame takes as many owned descriptors as its length with CRC needs (FirstFrag
on the first, LastFrag on the last): frames over 1514 bytes too (a full-size VLAN-tagged
frame, or longer), up to what the 13-bit length field holds; the classic path's 1514-byte
limit applies only while C+ receive is off. With too few free it waits in the card's FIFO
(the classic path's bounded queue; ISR.RxEmpty) and is delivered when the driver hands
descriptors back, which 8139cp follows with an ISR or IMR write: both drain the FIFO; a
frame that finds the FIFO full is lost (MPC, ISR.RxFIFOOvr). A packet over 4096 bytes is a
receive error (ISR.RxErr, no RxOK): dropped, or with RCR.AcceptErr stored with RES|RWT.
The chip's other error bits (CRC, runt, alignment, FIFO/buffer overflow in a descriptor;
collisions, underrun, link failure on transmit) report wire faults the model has none of.
A descriptor or buffer outside guest RAM, a large send or checksum request the frame does
not allow (not IPv4, not TCP/UDP), a gathered frame over 64 KiB, and a received frame longer
than the buffers of the whole RX ring (the chip would deliver it in pieces as descriptors
come back) are fail-stops naming the register or descriptor.

A helper of vmm/devices/rtl8139.py, not a device class of its own (it registers nothing). It
lives among the devices so that VM snapshots save its state as the card's (vmm/debug/snapshot.py
treats objects of vmm.net's modules as wiring).
"""
import struct

from vmm.net.card import with_fcs
from vmm.net.offload import OffloadError, checksum_offload, rx_checksum_status, tso_segments

HW_VERSION_8139CPLUS = 0x74800000
REVISION_CPLUS = 0x20

STATS_ADDR, TX_RING, HI_TX_RING = 0x10, 0x20, 0x28
TX_DMA_OK_LOW_DESC, TX_POLL, RX_MAX_SIZE = 0x82, 0xD9, 0xDA
CP_CMD, INTR_MITIGATE, RX_RING, TX_THRESH = 0xE0, 0xE2, 0xE4, 0xEC
IMR, ISR = 0x3C, 0x3E

CR = 0x37
CR_RST, CR_RE, CR_TE = 0x10, 0x08, 0x04
RCR_AER = 0x20                     # RCR.AcceptErr: error packets are stored (with their status)

CP_TX_ON, CP_RX_ON, CP_RX_CHKSUM, CP_RX_VLAN = 0x01, 0x02, 0x20, 0x40
CP_CMD_BITS = 0x007B
TXPOLL_HPQ, TXPOLL_NPQ, TXPOLL_FSWINT = 0x80, 0x40, 0x01
DUMP_STATS = 0x08

INT_RX_OK, INT_RX_ERR, INT_TX_OK, INT_TX_ERR = 0x01, 0x02, 0x04, 0x08
INT_RX_EMPTY, INT_RX_FIFO_OVR, INT_TX_EMPTY, INT_SW = 0x10, 0x40, 0x80, 0x100
CP_ISR_MASK = 0xE5FF
CP_LAZY_BITS = INT_RX_OK | INT_TX_OK | INT_TX_EMPTY

OWN, RING_END, FIRST, LAST, LARGE_SEND = 1 << 31, 1 << 30, 1 << 29, 1 << 28, 1 << 27
IPCS, UDPCS, TCPCS = 1 << 18, 1 << 17, 1 << 16
MSS_SHIFT, MSS_MASK = 16, 0x7FF
TX_LEN_MASK = 0xFFFF
TX_ERR = 1 << 23                   # TES, the transmit error summary (8139cp's TxError)
TX_VLAN_TAG = 1 << 17
RX_VLAN_TAGGED = 1 << 16
RX_LEN_MASK = 0x1FFF
RX_MAR, RX_PAM, RX_BAR = 1 << 26, 1 << 25, 1 << 24
RX_PROTO_TCP, RX_PROTO_UDP, RX_PROTO_IP = 1 << 16, 2 << 16, 3 << 16
RX_IP_FAIL, RX_UDP_FAIL, RX_TCP_FAIL = 1 << 15, 1 << 14, 1 << 13
RX_ERR, RX_ERR_LONG = 1 << 20, 1 << 21    # RES, the receive error summary; RWT, a long packet
MAX_TX_FRAME = 65536               # what a chain of descriptors may gather (a large send's frame)
MAX_PACKET = 4096                  # the longest packet the chip sends or receives (no CRC)
# the longest frame C+ receive takes from the wire: its length with the CRC must fit the RX
# descriptor's 13-bit length field (a longer one is dropped, as the classic path drops those
# over 1514 bytes)
RX_LIMIT = RX_LEN_MASK - 4
RING_LIMIT = 1024                  # descriptors walked without a RingEnd before giving up

_DESC = struct.Struct("<IIQ")       # opts1, opts2, buffer address
_STATUS = struct.Struct("<II")      # opts1, opts2 as the card writes them back

# the classic receive filter's kinds (RX record status bits) as C+ descriptor bits
_KIND_BITS = {0: 0, 0x2000: RX_BAR, 0x4000: RX_PAM, 0x8000: RX_MAR}



def _half(value64, byte):
    """The 32-bit half at byte offset `byte` (0 or 4) of a 64-bit register."""
    return (value64 >> (8 * byte)) & 0xFFFFFFFF


def _with_half(value64, byte, half):
    """The 64-bit register with its 32-bit half at byte offset `byte` replaced."""
    shift = 8 * byte
    return (value64 & ~(0xFFFFFFFF << shift)) | (half << shift)

class CPlusMode:
    """The C+ state and rings of one RTL8139 (`nic`); its handlers front the classic ones."""

    def __init__(self, nic):
        self.nic = nic
        # frames the driver gave in several descriptors, with large send, with a checksum
        # request; frames not sent (TES) and packets received in error (RES)
        nic.stats.update(tx_gather=0, tx_large_send=0, tx_checksum=0, tx_errors=0, rx_errors=0)
        self.reset()

    def reset(self):
        """Power-on and CR.RST: C+ mode off, ring indices back to the rings' starts."""
        self.cpcmd = 0
        self.stats_addr = 0
        self.tx_ring = [0, 0]          # normal, high priority
        self.tx_index = [0, 0]
        self.rx_ring = 0
        self.rx_index = 0
        self.rx_max_size = 0
        self.intr_mitigate = 0
        self.tx_thresh = 0
        self.last_tx_desc = 0
        self._rx_path(False)

    def _rx_path(self, cplus):
        """Point the card's receive path at the RX descriptors (`cplus`) or the classic ring:
        where a frame goes, the longest frame taken (the classic path drops frames over 1514
        bytes; C+ receive takes longer ones into big enough buffers and reports packets over
        MAX_PACKET as errors) and the ISR bit a frame lost to a full FIFO raises (the classic
        RxOverflow, bit 4, is the C+ RxEmpty; the C+ chip reports the loss as RxFIFOOvr, bit 6)."""
        nic = self.nic
        if cplus:
            nic.store, nic.rx_limit, nic.rx_lost_bit = self._store, RX_LIMIT, INT_RX_FIFO_OVR
        else:
            nic.classic_rx_path()

    # -- registers ---------------------------------------------------------------------------------
    def read(self, offset, size):
        tx_on = self.cpcmd & CP_TX_ON
        if size == 2:
            if offset == CP_CMD:
                return self.cpcmd
            if offset == INTR_MITIGATE:
                return self.intr_mitigate
            if offset == RX_MAX_SIZE:
                return self.rx_max_size
            if offset == TX_DMA_OK_LOW_DESC:
                return self.last_tx_desc & 0xFFFF
        elif size == 4:
            if offset in (RX_RING, RX_RING + 4):
                return _half(self.rx_ring, offset - RX_RING)
            if tx_on and TX_RING <= offset < TX_RING + 16 and not offset & 3:
                return _half(self.tx_ring[(offset - TX_RING) >> 3], offset & 4)
            if tx_on and offset in (STATS_ADDR, STATS_ADDR + 4):
                return _half(self.stats_addr, offset - STATS_ADDR)
        elif size == 1:
            if offset == TX_POLL:
                return 0                   # polls are done at once
            if offset == TX_THRESH:
                return self.tx_thresh
        if tx_on and (STATS_ADDR <= offset < STATS_ADDR + 8 or TX_RING <= offset < TX_RING + 16):
            self.nic.unimplemented(f"{size}-byte read of C+ register "
                                   f"{'StatsAddr' if offset < TX_RING else 'TxRingAddr'} "
                                   f"(offset {offset:#04x}); only 32-bit halves are modelled")
        return self.nic._read(offset, size)

    def write(self, offset, size, value):
        nic = self.nic
        tx_on = self.cpcmd & CP_TX_ON
        if size == 2:
            if offset in (ISR, IMR):
                if offset == ISR:
                    nic.isr &= ~value & 0xFFFF
                else:
                    nic.imr = value & CP_ISR_MASK
                if nic.fifo:               # 8139cp follows handing descriptors back with these
                    nic._drain_fifo()
                nic._update_irq()
                return
            if offset == CP_CMD:
                self._cp_command(value)
                return
            if offset == INTR_MITIGATE:
                self.intr_mitigate = value
                return
            if offset == RX_MAX_SIZE:
                self.rx_max_size = value & 0x1FFF
                return
        elif size == 4:
            if offset in (RX_RING, RX_RING + 4):
                self.rx_ring = _with_half(self.rx_ring, offset - RX_RING, value)
                self.rx_index = 0
                return
            if tx_on and TX_RING <= offset < TX_RING + 16 and not offset & 3:
                which = (offset - TX_RING) >> 3
                self.tx_ring[which] = _with_half(self.tx_ring[which], offset & 4, value)
                self.tx_index[which] = 0
                return
            if tx_on and offset in (STATS_ADDR, STATS_ADDR + 4):
                if offset == STATS_ADDR and value & DUMP_STATS:
                    nic.unimplemented("StatsAddr: the statistics dump (DumpStats, as "
                                      "`ethtool -S` asks) is not modelled")
                self.stats_addr = _with_half(self.stats_addr, offset - STATS_ADDR, value)
                return
        elif size == 1:
            if offset == TX_POLL:
                self._tx_poll(value)
                return
            if offset == CR and not value & CR_RST:
                # the descriptor engines start again at their rings' first descriptor when the
                # receiver or transmitter is enabled (as after 8139cp's stop and start)
                if value & CR_RE and not nic.cr & CR_RE:
                    self.rx_index = 0
                if value & CR_TE and not nic.cr & CR_TE:
                    self.tx_index = [0, 0]
            if offset == TX_THRESH:
                self.tx_thresh = value & 0x3F
                return
        if tx_on and (STATS_ADDR <= offset < STATS_ADDR + 8 or TX_RING <= offset < TX_RING + 16):
            nic.unimplemented(f"{size}-byte write of {value:#x} to C+ register "
                              f"{'StatsAddr' if offset < TX_RING else 'TxRingAddr'} "
                              f"(offset {offset:#04x}); only 32-bit halves are modelled")
        nic._write(offset, size, value)

    def _cp_command(self, value):
        """CpCmd: switching C+ receive on or off changes the receive path (frames waiting in
        the FIFO for the other path are dropped); switching C+ receive or transmit on starts
        that descriptor engine at its ring's first descriptor."""
        nic = self.nic
        was = self.cpcmd
        self.cpcmd = value & CP_CMD_BITS
        if self.cpcmd & CP_TX_ON and not was & CP_TX_ON:
            self.tx_index = [0, 0]
        if (self.cpcmd ^ was) & CP_RX_ON:
            nic.fifo.clear()               # frames do not carry over between the paths
            self._rx_path(bool(self.cpcmd & CP_RX_ON))
            self.rx_index = 0

    # -- memory ------------------------------------------------------------------------------------
    def _check(self, addr, size, what):
        if addr + size > self.nic.ctx.memory_size:
            self.nic.unimplemented(f"{what}: {addr:#x}+{size} is outside guest RAM")

    # -- transmit ----------------------------------------------------------------------------------
    def _tx_poll(self, value):
        """TxPoll: FSWInt raises SWInt and NPQ/HPQ walk a ring, only in C+ mode (CpCmd with
        CpTxOn or CpRxOn; the walks also need CpTxOn and CR.TE). With C+ mode off, the C+
        interrupt bits (TxEmpty, SWInt) are kept in IMR, as the one register holds them, but
        nothing raises them."""
        nic = self.nic
        if value & TXPOLL_FSWINT and self.cpcmd & (CP_TX_ON | CP_RX_ON):
            nic.isr |= INT_SW
        for bit, which in ((TXPOLL_HPQ, 1), (TXPOLL_NPQ, 0)):
            if value & bit and self.cpcmd & CP_TX_ON and nic.cr & 0x04:
                self._walk_tx(which)
        nic._update_irq()

    def _walk_tx(self, which):
        """Send every complete frame the driver has handed to the card on ring `which`, and
        hand its descriptors back (TES on the LastFrag one if the frame could not be sent).
        ISR: TxOK if a frame went out, TxErr if one could not, and TxEmpty always, as the walk
        ends at a descriptor the card does not own (a poll that finds none raises only that)."""
        nic = self.nic
        mem = nic.ctx.mem
        ring = self.tx_ring[which]
        name = "HiTxRingAddr" if which else "TxRingAddr"
        index = self.tx_index[which]
        sent = failed = 0
        while True:
            descs = []                     # (address, opts1, opts2, buffer) of one frame
            i = index
            while True:
                addr = ring + 16 * i
                self._check(addr, 16, f"{name} descriptor {i}")
                opts1, opts2, buf = _DESC.unpack(mem.read(addr, 16))
                if not opts1 & OWN:
                    break
                if not descs and not opts1 & FIRST:
                    nic.unimplemented(f"{name} descriptor {i}: owned by the card without "
                                      f"FirstFrag after the previous frame's LastFrag")
                if descs and opts1 & FIRST:
                    nic.unimplemented(f"{name} descriptor {i}: FirstFrag inside a frame "
                                      f"(no LastFrag since descriptor {descs[0][4]})")
                descs.append((addr, opts1, opts2, buf, i))
                i = 0 if opts1 & RING_END else i + 1
                if i >= RING_LIMIT or len(descs) > RING_LIMIT:
                    nic.unimplemented(f"{name}: no RingEnd within {RING_LIMIT} descriptors, "
                                      f"or a frame without LastFrag round the whole ring")
                if opts1 & LAST:
                    break
            if not descs or not descs[-1][1] & LAST:
                break                      # nothing more, or a frame not handed over whole
            ok = self._send(descs, name)
            for addr, opts1, _, _, _ in descs:
                status = opts1 & (RING_END | FIRST | LAST | TX_LEN_MASK)
                if not ok and opts1 & LAST:
                    status |= TX_ERR
                mem.write(addr, status.to_bytes(4, "little"))
            self.last_tx_desc = descs[-1][0]
            index = i
            if ok:
                sent += 1
            else:
                failed += 1
        self.tx_index[which] = index
        if sent:
            nic.isr |= INT_TX_OK
        if failed:
            nic.isr |= INT_TX_ERR
        nic.isr |= INT_TX_EMPTY

    def _send(self, descs, name):
        """Gather, offload and send one frame; False if the chip cannot send it: a frame
        without large send that is empty or, as it would go on the wire (with an inserted VLAN
        tag), longer than MAX_PACKET."""
        nic = self.nic
        mem = nic.ctx.mem
        parts = []
        total = 0
        for _, opts1, _, buf, i in descs:
            n = opts1 & TX_LEN_MASK
            total += n
            if total > MAX_TX_FRAME:
                nic.unimplemented(f"{name} descriptor {i}: a frame of more than "
                                  f"{MAX_TX_FRAME} bytes")
            self._check(buf, n, f"{name} descriptor {i} buffer")
            parts.append(mem.read(buf, n))
        stats = nic.stats
        if len(parts) == 1:
            frame = parts[0]
        else:
            frame = b"".join(parts)
            stats["tx_gather"] += 1
        opts1, opts2, first = descs[0][1], descs[0][2], descs[0][4]
        try:
            if opts1 & LARGE_SEND:
                frames = tso_segments(frame, (opts1 >> MSS_SHIFT) & MSS_MASK)
                stats["tx_large_send"] += 1
            elif opts1 & (IPCS | UDPCS | TCPCS):
                stats["tx_checksum"] += 1
                l4 = "tcp" if opts1 & TCPCS else "udp" if opts1 & UDPCS else None
                if opts1 & TCPCS and opts1 & UDPCS:
                    raise OffloadError("both TCPCS and UDPCS set")
                frames = [bytes(checksum_offload(bytearray(frame), bool(opts1 & IPCS), l4))]
            else:
                frames = [frame]
        except OffloadError as e:
            nic.unimplemented(f"{name} descriptor {first}: "
                              f"{'large send' if opts1 & LARGE_SEND else 'checksum offload'}: "
                              f"{e}")
        if opts2 & TX_VLAN_TAG:
            tag = ((opts2 & 0xFF) << 8 | (opts2 >> 8) & 0xFF).to_bytes(2, "big")
            frames = [f[:12] + b"\x81\x00" + tag + f[12:] for f in frames]
        if not opts1 & LARGE_SEND and (total == 0 or len(frames[0]) > MAX_PACKET):
            stats["tx_errors"] += 1
            return False
        port = nic.port
        for f in frames:
            stats["tx"] += 1
            if port is not None:
                port.send(f)
        return True

    # -- receive -----------------------------------------------------------------------------------
    def _store(self, frame, kind):
        """Write one frame into the RX descriptor ring; False (and ISR.RxEmpty) if the ring
        has not enough descriptors owned by the card now. A frame longer than MAX_PACKET is a
        long packet (RES|RWT, ISR.RxErr): dropped unless RCR.AcceptErr asks for error packets,
        then stored with those bits and no RxOK."""
        nic = self.nic
        mem = nic.ctx.mem
        status = FIRST | _KIND_BITS[kind]    # FirstFrag on the first descriptor only
        if len(frame) > MAX_PACKET:
            nic.stats["rx_errors"] += 1
            nic.isr |= INT_RX_ERR
            if not nic.rcr & RCR_AER:
                nic.stats["rx_dropped"] += 1
                nic._update_irq()
                return True
            status |= RX_ERR | RX_ERR_LONG
        opts2 = 0
        if self.cpcmd & CP_RX_VLAN and frame[12] == 0x81 and frame[13] == 0x00:
            tci = frame[14:16]
            frame = frame[:12] + frame[16:]
            opts2 = RX_VLAN_TAGGED | tci[1] << 8 | tci[0]
        if self.cpcmd & CP_RX_CHKSUM:
            proto, ip_ok, l4_ok = rx_checksum_status(frame)
            if proto is not None:
                status |= {"tcp": RX_PROTO_TCP, "udp": RX_PROTO_UDP, "ip": RX_PROTO_IP}[proto]
                if not ip_ok:
                    status |= RX_IP_FAIL
                if not l4_ok:
                    status |= RX_TCP_FAIL if proto == "tcp" else RX_UDP_FAIL
        data = with_fcs(frame)
        ring = self.rx_ring
        i = self.rx_index
        # the common case: the next descriptor is free and its buffer holds the frame
        addr = ring + 16 * i
        limit = nic.ctx.memory_size
        if addr + 16 <= limit:
            opts1, _, buf = _DESC.unpack(mem.read(addr, 16))
            if opts1 & OWN and opts1 & RX_LEN_MASK >= len(data) and buf + len(data) <= limit:
                mem.write(buf, data)
                mem.write(addr, _STATUS.pack((opts1 & RING_END) | status | LAST | len(data),
                                             opts2))
                return self._received(0 if opts1 & RING_END else i + 1, status)
        # else the descriptors the frame needs, all owned by the card, before writing any
        used = []
        left = len(data)
        start = i
        while left > 0:
            addr = ring + 16 * i
            self._check(addr, 16, f"RxRingAddr descriptor {i}")
            opts1, _, buf = _DESC.unpack(mem.read(addr, 16))
            if not opts1 & OWN:
                nic.isr |= INT_RX_EMPTY
                nic._update_irq()
                return False
            size = opts1 & RX_LEN_MASK
            if size == 0:
                nic.unimplemented(f"RxRingAddr descriptor {i}: a receive buffer of 0 bytes")
            used.append((addr, opts1, buf, min(size, left), i))
            left -= size
            i = 0 if opts1 & RING_END else i + 1
            if len(used) > RING_LIMIT:
                nic.unimplemented(f"RxRingAddr: no RingEnd within {RING_LIMIT} descriptors")
            if left > 0 and i == start:
                # the chip would hand the frame over in pieces as descriptors come back
                nic.unimplemented(f"RxRingAddr: a {len(data)}-byte frame (with its CRC) is "
                                  f"longer than the buffers of the whole ring ({len(used)} "
                                  f"descriptors, {len(data) - left} bytes) hold; receiving "
                                  f"it in several passes round the ring is not modelled")
        pos = 0
        for n, (addr, opts1, buf, chunk, di) in enumerate(used):
            self._check(buf, chunk, f"RxRingAddr descriptor {di} buffer")
            mem.write(buf, data[pos:pos + chunk])
            pos += chunk
            st = (opts1 & RING_END) | status
            if n:
                st &= ~FIRST
            st |= (LAST | len(data)) if n == len(used) - 1 else chunk
            mem.write(addr, _STATUS.pack(st, opts2))
        return self._received(i, status)

    def _received(self, next_index, status):
        """A frame is in the ring: the next one goes to descriptor `next_index`; RxOK unless
        its `status` has RES (ISR.RxErr is then already raised)."""
        nic = self.nic
        self.rx_index = next_index
        if not status & RX_ERR:
            nic.stats["rx"] += 1
            nic.isr |= INT_RX_OK
        nic._update_irq()
        return True
