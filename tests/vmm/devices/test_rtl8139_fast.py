"""The classic RTL8139's register fast path in C (vmm/devices/_rtl8139.c) against the Python
model alone: twin boards take the same MMIO accesses, frames and resets, one through the fast
path (the model when it declines), one through the model only, and must agree after every
step: values read, the card's registers and FIFO, its interrupt line and the 8259A's, the
frames sent and the receive ring in guest memory."""
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from v3tools.errors import V3Error
from vmm.devices import rtl8139
from vmm.devices.rtl8139 import RTL8139

MAC = bytes.fromhex("525400abcdef")
RING, TXBUF = 0x10000, 0x30000
STATE = ("tsd", "tsad", "rbstart", "cr", "read_ptr", "cbr", "imr", "isr", "tcr", "rcr", "mpc",
         "cr9346", "mulint")

# every register 8139too touches, and neighbours the fast path must leave to the model
READS = ([(0x10 + 4 * i, 4) for i in range(4)] + [(0x20 + 4 * i, 4) for i in range(4)] +
         [(0x30, 4), (0x37, 1), (0x38, 2), (0x3A, 2), (0x3C, 2), (0x3E, 2), (0x3C, 1),
          (0x3D, 1), (0x3E, 1), (0x3F, 1), (0x40, 4), (0x44, 4), (0x48, 4), (0x4C, 4),
          (0x54, 4), (0x00, 4), (0x50, 1), (0x58, 1), (0x60, 2), (0x64, 2), (0x74, 2),
          (0x11, 1), (0x3E, 4), (0x38, 4), (0x37, 2), (0x44, 2), (0x30, 2), (0x12, 2)])
WRITES = [(0x3E, 2), (0x3C, 2), (0x38, 2), (0x20, 4), (0x24, 4), (0x28, 4), (0x2C, 4),
          (0x30, 4), (0x3E, 1), (0x3C, 4), (0x38, 1), (0x4C, 4)]


class Twin:
    def __init__(self, nic_board, fast):
        self.c, self.nic, self.loop = nic_board(RTL8139, memory=1 << 20)
        self.base = self.nic.cfg.bar(1)
        self.fast = self.c.mmio.find(self.base).fast if fast else None
        self.fast_done = 0
        if not fast:
            self.nic.fast_rx = None              # the model's receive alone

    def read(self, offset, size):
        try:
            got = None if self.fast is None else self.fast.read(offset, size)
            if got is not None:
                self.fast_done += 1
                return got
            return self.nic._read(offset, size)
        except V3Error as exc:                      # a fail-stop: the same one on both sides
            return ("fail-stop", str(exc))

    def write(self, offset, size, value):
        try:
            if self.fast is not None and self.fast.write(offset, size, value):
                self.fast_done += 1
                return None
            self.nic._write(offset, size, value)
        except V3Error as exc:
            return ("fail-stop", str(exc))

    def apply(self, op):
        kind = op[0]
        if kind == "r":
            return self.read(op[1], op[2])
        if kind == "w":
            return self.write(op[1], op[2], op[3])
        if kind == "tx":                            # TSDn: a transmit (the model's)
            n, size = op[1], op[2]
            self.c.mem.write(TXBUF + 0x800 * n, bytes([n + 1]) * size)
            self.write(0x20 + 4 * n, 4, TXBUF + 0x800 * n)
            return self.write(0x10 + 4 * n, 4, size)
        if kind == "rx":                            # a frame from the wire
            dst = {"us": MAC, "bcast": b"\xff" * 6, "other": bytes.fromhex("020000000001"),
                   "multi": bytes.fromhex("01005e000001")}[op[1]]
            frame = dst + MAC + b"\x08\x00" + bytes([op[2] & 0xFF]) * op[2]
            try:
                # the backend's C half hands it to the card's receive in C; declined, the model
                if self.fast is None or not self.fast.receive(frame):
                    self.nic.receive(frame)
                else:
                    self.fast_done += 1
            except V3Error as exc:
                return ("fail-stop", str(exc))
            return None
        if kind == "cr":                            # CR: receiver/transmitter on or off, reset
            return self.write(0x37, 1, op[1])
        if kind == "rcr":
            return self.write(0x44, 4, op[1])
        raise AssertionError(op)

    def state(self):
        n = self.nic
        return ({k: getattr(n, k) for k in STATE}, len(n.fifo), n.irq.level,
                self.c.legacy_intc.slave.lines, list(self.loop.sent), dict(n.stats),
                bytes(self.c.mem.read(RING, 8192 + 16 + 2048)))


def start(t):
    for offset, size, value in ((0x37, 1, 0x10), (0x30, 4, RING), (0x37, 1, 0x0C),
                                (0x44, 4, 0xE70A | 0x80), (0x3C, 2, 0xC07F)):
        t.nic._write(offset, size, value)


def run_twins(nic_board, ops):
    fast, slow = Twin(nic_board, True), Twin(nic_board, False)
    for t in (fast, slow):
        start(t)
    for op in ops:
        assert fast.apply(op) == slow.apply(op), op
        assert fast.state() == slow.state(), op
    return fast


def value16():
    return st.one_of(st.sampled_from([0, 1, 4, 5, 0xFFFF, 0xC07F, 0xE07F, 0x8000, 0x0004]),
                     st.integers(0, 0xFFFF))


OPS = st.one_of(
    st.sampled_from(READS).map(lambda r: ("r",) + r),
    st.tuples(st.sampled_from(WRITES), value16()).map(lambda t: ("w",) + t[0] + (t[1],)),
    st.tuples(st.just("w"), st.just(0x38), st.just(2), st.integers(0, 0xFFFF)),
    st.tuples(st.just("tx"), st.integers(0, 3), st.sampled_from([60, 100, 1514, 1800])),
    st.tuples(st.just("rx"), st.sampled_from(["us", "us", "us", "bcast", "other", "multi"]),
              st.sampled_from([20, 46, 200, 1000, 1500, 1600])),
    st.tuples(st.just("cr"), st.sampled_from([0x0C, 0x04, 0x08, 0x00, 0x10])),
    st.tuples(st.just("rcr"), st.sampled_from([0xE70A | 0x80, 0xE70A, 0xE70F | 0x880,
                                               0x0A, 0x1800 | 0x0A])),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(st.lists(OPS, min_size=1, max_size=60))
def test_fast_path_agrees_with_the_model(require_built, nic_board, ops):
    require_built(rtl8139._rtl8139 is not None, "the RTL8139 fast path (vmm/devices/_rtl8139.c)")
    run_twins(nic_board, ops)


# named scenarios: each condition the fast path declines on, and what 8139too does per frame
RX_US = ("rx", "us", 1000)
SCENARIOS = {
    # the driver's poll: ISR, CR (ring empty?), the record, CAPR, ISR acknowledge
    "receive and free": [RX_US, ("r", 0x3E, 2), ("r", 0x37, 1), ("w", 0x38, 2, 1000 + 8 - 16),
                         ("w", 0x3E, 2, 0x01), ("r", 0x37, 1), ("r", 0x38, 2), ("r", 0x3A, 2)],
    # acknowledging the only pending source lowers the line: the model's
    "ack lowers the line": [("tx", 0, 60), ("w", 0x3E, 2, 0x04), ("r", 0x3E, 2)],
    # acknowledging one of two sources keeps it up: the fast path's
    "ack keeps the line": [("tx", 0, 60), RX_US, ("w", 0x3E, 2, 0x04), ("w", 0x3E, 2, 0x01)],
    # IMR off and on while sources are pending (NAPI): line changes, the model's
    "mask and unmask": [RX_US, ("w", 0x3C, 2, 0), ("w", 0x3C, 2, 0xC07F), ("w", 0x3C, 2, 0x0F)],
    # masked writes that change nothing about the line
    "masked writes": [("w", 0x3C, 2, 0), RX_US, ("w", 0x3E, 2, 0xFFFF), ("w", 0x3C, 2, 0)],
    # a full ring puts frames in the FIFO; CAPR then drains it (the model's)
    "fifo drain": [RX_US] * 12 + [("w", 0x38, 2, 3 * 1032 - 16), ("r", 0x37, 1),
                                  ("w", 0x38, 2, 8 * 1032 - 16)],
    # with the receiver off, a CAPR write drains nothing: the fast path's
    "fifo with receiver off": [RX_US] * 12 + [("cr", 0x04), ("w", 0x38, 2, 0x100)],
    "transmit ring": [("tx", n % 4, 100) for n in range(6)] + [("r", 0x10 + 4 * n, 4)
                                                                 for n in range(4)],
    "transmitter off": [("cr", 0x08), ("tx", 1, 60), ("r", 0x14, 4), ("cr", 0x0C),
                        ("r", 0x14, 4)],
    "oversized transmit": [("tx", 2, 1800), ("r", 0x18, 4)],
    "reset": [RX_US, ("tx", 0, 60), ("cr", 0x10), ("r", 0x3E, 2), ("r", 0x37, 1)],
    # 8139too's CAPR counts on past the ring's length (a u16): empty is CBR == CAPR+16 mod length
    "capr beyond the ring": [RX_US, ("r", 0x3A, 2), ("w", 0x38, 2, 8192 + 1024 - 16),
                             ("r", 0x37, 1), ("r", 0x38, 2)],
    "ring sizes": [("rcr", 0x1800 | 0x0A), RX_US, ("r", 0x37, 1), ("w", 0x38, 2, 0xFFF0),
                   ("r", 0x37, 1)],
    "unmodelled registers": [("r", 0x3E, 4), ("r", 0x11, 1), ("w", 0x3E, 1, 1),
                             ("w", 0x4C, 4, 5), ("r", 0x4C, 4)],
}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_fast_path_agrees_in_scenarios(require_built, nic_board, name):
    require_built(rtl8139._rtl8139 is not None, "the RTL8139 fast path (vmm/devices/_rtl8139.c)")
    fast = run_twins(nic_board, SCENARIOS[name])
    assert fast.fast_done > 0


def test_fast_path_does_8139too_s_register_work(require_built, nic_board):
    """What 8139too does per frame (ISR, CR, TSD reads, CAPR, an acknowledge that keeps the
    line up) the fast path does without the model."""
    require_built(rtl8139._rtl8139 is not None, "the RTL8139 fast path (vmm/devices/_rtl8139.c)")
    t = Twin(nic_board, True)
    start(t)
    t.apply(("tx", 0, 60))
    t.apply(RX_US)
    calls = []
    for name in ("_read", "_write"):
        orig = getattr(t.nic, name)
        setattr(t.nic, name, lambda *a, _o=orig, _n=name: calls.append((_n, a)) or _o(*a))
    for op in [("r", 0x3E, 2), ("r", 0x37, 1), ("r", 0x10, 4), ("r", 0x14, 4),
               ("w", 0x38, 2, 1000 + 8 - 16), ("w", 0x3E, 2, 0x01), ("r", 0x3C, 2),
               ("r", 0x3A, 2), ("w", 0x20, 4, TXBUF)]:
        t.apply(op)
    assert calls == []
    assert t.nic.irq.level == 1 and t.nic.isr == 0x04 and t.nic.read_ptr == 1000 + 8


def test_cplus_mode_has_no_fast_path(nic_board):
    c, nic, _ = nic_board(RTL8139, options="<cplus>on</cplus>")
    assert c.mmio.find(nic.cfg.bar(1)).fast is None


def test_frames_cross_in_c_and_an_error_sending_is_the_models_fail_stop(require_built, nic_board):
    """A TSD write transmits in C (through the Python port when the backend has no C half) and a
    frame for us is stored in the ring in C; a port that raises makes the access raise, with
    TOK not raised, as the model's _transmit does."""
    require_built(rtl8139._rtl8139 is not None, "the RTL8139 fast path (vmm/devices/_rtl8139.c)")
    fast, slow = Twin(nic_board, True), Twin(nic_board, False)
    for t in (fast, slow):
        start(t)
        t.apply(("tx", 1, 100))
        t.apply(RX_US)
        t.apply(("rx", "us", 10))                     # 24 bytes: padded to 60, as the model does
    assert fast.state() == slow.state()
    f = fast.fast
    assert f.frames_sent == 1 and f.frames_stored == 2
    assert fast.loop.sent == [bytes([2]) * 100]

    def broken(frame):
        raise V3Error("the backend failed")
    for t in (fast, slow):
        t.loop.send = broken
        t.apply(("w", 0x3E, 2, 0xFFFF))
        assert t.apply(("tx", 2, 60)) == ("fail-stop", "the backend failed")
    assert fast.state() == slow.state()
    assert fast.nic.isr == 0 and fast.nic.tsd[2] & 0xA000 == 0xA000


def test_a_backend_error_in_a_c_transmit_is_a_fail_stop_of_the_guest(require_built,
                                                                       flat_protected_mode):
    """A guest's TSD write that the fast path transmits, into a backend that fails: the run
    stops with the backend's error and the machine's diagnostic (the MMIO dispatcher hands the
    fast path's exception to the fail-stop, vmm/cpu/fastmmio.h)."""
    from vmm.bios import pci_init
    from vmm.config import parse_vm_config
    from vmm.machine import Machine
    from vmm.net import Port
    from tests.vmm.conftest import LoopBackend
    m = Machine(memory_mb=4)
    m.add_devices(parse_vm_config(
        b'<vm><devices><device class="8259A" id="pic"/><device class="PCI" id="pci0"/>'
        b'<device class="i440FX" id="nb"><bus>pci0</bus></device>'
        b'<device class="PIIX3" id="sb"><bus>pci0</bus></device>'
        b'<device class="RTL8139" id="nic0"><bus>pci0</bus></device></devices></vm>').devices)
    m.finish_board()
    pci_init.assign(m.ctx)
    nic = m.ctx.devices["nic0"]
    require_built(m.memmap.fast is not None and nic.fast_rx is not None,
                  "the MMIO dispatcher and the RTL8139 fast path")

    class Failing(LoopBackend):
        def send(self, frame):
            raise V3Error("the backend failed")
    nic.connect_port(Port(Failing()))
    bar = nic.cfg.bar(1)
    # mov dword [bar+0x20], 0x20000 ; mov byte [bar+0x37], 0x0c ; mov dword [bar+0x10], 60 ; hlt
    code = (b"\xc7\x05" + (bar + 0x20).to_bytes(4, "little") + (0x20000).to_bytes(4, "little") +
            b"\xc6\x05" + (bar + 0x37).to_bytes(4, "little") + b"\x0c" +
            b"\xc7\x05" + (bar + 0x10).to_bytes(4, "little") + (60).to_bytes(4, "little") +
            b"\xf4")
    m.uc.mem_write(0x10000, code)
    flat_protected_mode(m)
    m.cpu.env.eip = 0x10000
    with pytest.raises(V3Error) as err:
        m.run(timeout=10)
    assert "the backend failed" in str(err.value)
    assert nic.fast_rx.frames_sent == 0 and nic.tsd[0] & 0xA000 == 0xA000 and not nic.isr
    assert m.memmap.fast.enabled is False


# -- C+ receive in C: twin C+ cards, frames into the RX descriptors -----------------------------
def cplus_frame(kind, n):
    """Frames 8139cp meets: TCP/UDP with right or damaged checksums, UDP without a checksum, an
    IP fragment, a non-IP frame, a broadcast, a VLAN-tagged frame, a short one, long ones."""
    from tests.vmm.devices.test_rtl8139 import ipv4_frame, rx_frame, tcp_segment, udp_datagram
    if kind in ("tcp", "udp"):
        return rx_frame(n, kind)
    if kind in ("tcp-bad", "udp-bad"):
        return rx_frame(n, kind[:3], bad=True)
    if kind == "udp-nosum":
        f = bytearray(ipv4_frame(17, udp_datagram(bytes(n)), src="10.0.2.2", dst="10.0.2.15"))
        f[0:6] = MAC
        return bytes(f)
    if kind == "fragment":
        f = bytearray(ipv4_frame(6, tcp_segment(bytes(n)), flags=0x2000))
        f[0:6] = MAC
        return bytes(f)
    if kind == "ip-bad":
        f = bytearray(rx_frame(n, "tcp"))
        f[24] ^= 0x55                                          # the IP header checksum
        return bytes(f)
    if kind == "arp":
        return MAC + bytes.fromhex("525500000202") + b"\x08\x06" + bytes(28)
    if kind == "bcast":
        return b"\xff" * 6 + bytes.fromhex("525500000202") + b"\x08\x06" + bytes(28)
    if kind == "vlan":
        f = rx_frame(n, "tcp")
        return f[:12] + b"\x81\x00\x00\x05" + f[12:]
    if kind == "other":
        return bytes.fromhex("020000000001") + rx_frame(n, "tcp")[6:]
    if kind == "truncated":                                    # IP total length beyond the frame
        f = bytearray(rx_frame(n, "tcp"))
        f[16:18] = (len(f) - 14 + 10).to_bytes(2, "big")
        return bytes(f)
    raise AssertionError(kind)


class CTwin(Twin):
    def __init__(self, nic_board, fast):
        self.c, self.nic, self.loop = nic_board(RTL8139, memory=1 << 20,
                                                options="<cplus>on</cplus>")
        self.fast = self.nic.fast_rx if fast else None
        self.fast_done = 0
        if not fast:
            self.nic.fast_rx = None

    def apply(self, op):
        from tests.vmm.devices.test_rtl8139 import EOR, OWN, RX_RING, put_desc
        kind = op[0]
        if kind == "crx":
            return self.apply(("raw", cplus_frame(op[1], op[2])))
        if kind == "raw":
            try:
                if self.fast is None or not self.fast.receive(op[1]):
                    self.nic.receive(op[1])
                else:
                    self.fast_done += 1
            except V3Error as exc:
                return ("fail-stop", str(exc))
            return None
        if kind == "give":                          # the driver hands descriptor i back
            i, size = op[1], op[2]
            put_desc(self.c, RX_RING, i, OWN | (EOR if i == 3 else 0) | size, 0x40000 + 0x2000 * i)
            return None
        if kind == "cpcmd":
            return self.write(0xE0, 2, op[1])
        return super().apply(op)

    def state(self):
        cp = self.nic.cp
        return (super().state(), cp.cpcmd, cp.rx_index, cp.rx_ring,
                bytes(self.c.mem.read(0x30000, 64)), bytes(self.c.mem.read(0x40000, 0x8000)))


def run_ctwins(nic_board, ops):
    from tests.vmm.devices.test_rtl8139 import cp_open
    fast, slow = CTwin(nic_board, True), CTwin(nic_board, False)
    for t in (fast, slow):
        cp_open(t.c, t.nic, rx_descs=4, buf_size=1536)
    for op in ops:
        assert fast.apply(op) == slow.apply(op), op
        assert fast.state() == slow.state(), op
    return fast


CKINDS = ["tcp", "tcp", "udp", "tcp-bad", "udp-bad", "udp-nosum", "fragment", "ip-bad", "arp",
          "bcast", "vlan", "other", "truncated"]
COPS = st.one_of(
    st.tuples(st.just("crx"), st.sampled_from(CKINDS),
              st.sampled_from([0, 1, 7, 100, 1000, 1400, 1460, 1600, 4000, 4100])),
    st.tuples(st.just("give"), st.integers(0, 3), st.sampled_from([1536, 8191, 64, 0x1000])),
    st.tuples(st.just("w"), st.just(0x3E), st.just(2), st.sampled_from([0x01, 0xFFFF, 0x10])),
    st.tuples(st.just("w"), st.just(0x3C), st.just(2), st.sampled_from([0, 0x80FF])),
    st.tuples(st.just("cpcmd"), st.sampled_from([0x3B, 0x1B, 0x7B, 0x39])),
    st.tuples(st.just("rcr"), st.sampled_from([0xA00A, 0xA02A, 0xA00B, 0xA008])),
    st.tuples(st.just("cr"), st.sampled_from([0x0C, 0x04])),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(st.lists(COPS, min_size=1, max_size=40))
def test_cplus_receive_in_c_agrees_with_the_model(require_built, nic_board, ops):
    require_built(rtl8139._rtl8139 is not None, "the RTL8139 fast path (vmm/devices/_rtl8139.c)")
    run_ctwins(nic_board, ops)


@pytest.mark.parametrize("kind", sorted(set(CKINDS)))
def test_cplus_receive_in_c_agrees_on_each_kind_of_frame(require_built, nic_board, kind):
    require_built(rtl8139._rtl8139 is not None, "the RTL8139 fast path (vmm/devices/_rtl8139.c)")
    ops = [("crx", kind, n) for n in (0, 1, 46, 100, 1400, 1460)] + [("cpcmd", 0x1B)] + \
          [("give", i, 1536) for i in range(4)] + [("crx", kind, n) for n in (7, 1000)]
    fast = run_ctwins(nic_board, ops)
    if kind in ("tcp", "udp", "tcp-bad", "udp-bad", "udp-nosum", "fragment", "ip-bad", "arp",
                "bcast", "truncated"):
        assert fast.fast.frames_stored > 0             # these the C path stores itself
