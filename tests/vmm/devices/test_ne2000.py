"""NE2000 (RTL8029) on a board with PCI, PIIX3 and 8259A: PROM through remote DMA as ne2k-pci
reads it, transmit, the receive ring and its wrap, CR semantics and fail-stops."""
import struct

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from lxml import etree

from v3tools.errors import Unimplemented
from vmm.config import DeviceSpec
from vmm.devices.ne2000 import NE2000

MAC = bytes.fromhex("525400abcdef")


def spec(xml):
    return DeviceSpec.from_element(etree.fromstring(xml))


@pytest.fixture
def board(nic_board):
    c, nic, loop = nic_board(NE2000, memory=1 << 20)
    return c, nic, nic.cfg.bar(0), loop


def init(c, b, start=0x4C, stop=0x80):
    o = lambda reg, v: c.io.write(b + reg, 1, v)
    o(0, 0x21)                    # stop, no DMA, page 0
    o(0x0E, 0x49)                 # word mode
    o(0x0C, 0x0C)                 # broadcast + multicast
    o(0x04, 0x40)
    o(0x01, start)
    o(0x03, stop - 1)
    o(0x02, stop)
    o(0x07, 0xFF)
    o(0x0F, 0x3F)
    o(0, 0x61)                    # page 1
    for i, byte in enumerate(MAC):
        o(1 + i, byte)
    o(0x07, start)
    o(0, 0x22)                    # start, page 0


def dma_read(c, b, addr, count):
    o = lambda reg, v: c.io.write(b + reg, 1, v)
    o(0x0A, count & 0xFF)
    o(0x0B, count >> 8)
    o(0x08, addr & 0xFF)
    o(0x09, addr >> 8)
    o(0, 0x0A)                    # remote read, start
    data = b"".join(struct.pack("<I", c.io.read(b + 0x10, 4)) for _ in range(count // 4))
    assert c.io.read(b + 0x07, 1) & 0x40            # RDC
    c.io.write(b + 0x07, 1, 0x40)
    return data


def test_reset_port_and_prom_as_ne2k_pci_reads_them(board):
    c, nic, b, _ = board
    c.io.write(b + 0x1F, 1, c.io.read(b + 0x1F, 1))
    assert c.io.read(b + 0x07, 1) & 0x80            # ISR.RST
    c.io.write(b + 0x0E, 1, 0x49)
    c.io.write(b + 0x0A, 1, 32)
    c.io.write(b + 0x0B, 1, 0)
    c.io.write(b + 0x08, 1, 0)
    c.io.write(b + 0x09, 1, 0)
    c.io.write(b, 1, 0x0A)
    prom = bytes(c.io.read(b + 0x10, 1) for _ in range(16))   # word mode: a byte moves two
    assert prom[:6] == MAC and prom[14:16] == b"\x57\x57"
    assert nic.cfg.read(0x3C, 1) in (10, 11)


def test_transmit_through_remote_dma(board):
    c, nic, b, loop = board
    init(c, b)
    frame = bytes(range(64))
    o = lambda reg, v: c.io.write(b + reg, 1, v)
    o(0x0A, 64), o(0x0B, 0), o(0x08, 0), o(0x09, 0x40), o(0, 0x12)
    for i in range(0, 64, 4):
        c.io.write(b + 0x10, 4, int.from_bytes(frame[i:i + 4], "little"))
    assert c.io.read(b + 0x07, 1) & 0x40
    o(0x04, 0x40), o(0x05, 64), o(0x06, 0), o(0, 0x26)
    assert loop.sent == [frame]
    assert c.io.read(b + 0x07, 1) & 0x02 and c.io.read(b + 0x04, 1) & 1
    assert not c.io.read(b, 1) & 0x04                # TXP clear: done
    o(0, 0x20)                                       # neither STA nor STP: still running
    assert c.io.read(b, 1) & 0x02


def test_receive_ring_wraps_and_holds_frames_until_bnry_moves(board):
    c, nic, b, _ = board
    init(c, b, 0x4C, 0x58)                           # a 12-page ring
    frame = MAC + bytes(6) + b"\x08\x00" + bytes(586)    # 600 bytes: 3 pages each
    bnry, got = 0x57, 0
    for n in range(10):
        nic.receive(frame)
        while True:
            c.io.write(b, 1, 0x62)
            curr = c.io.read(b + 0x07, 1)
            c.io.write(b, 1, 0x22)
            this = bnry + 1 if bnry + 1 < 0x58 else 0x4C
            if this == curr:
                break
            hdr = dma_read(c, b, this << 8, 4)
            status, nxt, count = hdr[0], hdr[1], hdr[2] | hdr[3] << 8
            assert status & 1 and count == len(frame) + 4
            got += 1
            bnry = nxt - 1 if nxt > 0x4C else 0x57
            c.io.write(b + 0x03, 1, bnry)
    assert got == 10
    for n in range(6):                               # 18 pages wanted, 11 free
        nic.receive(frame)
    assert len(nic.fifo) == 3


def test_page_two_is_a_fail_stop(board):
    c, nic, b, _ = board
    c.io.write(b, 1, 0xA1)
    with pytest.raises(Unimplemented, match="page-2"):
        c.io.read(b + 0x01, 1)


def dma_setup(c, b, addr, count, cmd):
    o = lambda reg, v: c.io.write(b + reg, 1, v)
    o(0x0A, count & 0xFF), o(0x0B, count >> 8), o(0x08, addr & 0xFF), o(0x09, addr >> 8)
    o(0, cmd)


@pytest.mark.parametrize("addr", [0x4C00, 0x57F0])       # inside the ring; across PSTOP
def test_data_port_blocks_match_element_reads(board, addr):
    """The block port (REP INSD/OUTSD in one exit) moves what element accesses would."""
    c, nic, b, _ = board
    init(c, b, 0x4C, 0x58)
    nic.mem[0x4C00:0x5800] = bytes(range(256)) * 12
    read_block = c.io.find(b + 0x10).blocks[0x10][0]
    ref = dma_read(c, b, addr, 64)
    dma_setup(c, b, addr, 64, 0x0A)
    assert read_block(4, 16) == ref
    assert c.io.read(b + 0x07, 1) & 0x40            # RDC at the end of the count
    assert (nic.rsar, nic.rbcr) == ((addr + 64 - 0x5800 + 0x4C00) if addr > 0x5700
                                    else addr + 64, 0)
    write_block = c.io.find(b + 0x10).blocks[0x10][1]
    dma_setup(c, b, 0x4000, 64, 0x12)
    write_block(4, bytes(range(64)))
    assert nic.mem[0x4000:0x4040] == bytes(range(64)) and c.io.read(b + 0x07, 1) & 0x40


# -- the register fast path in C (vmm/devices/_ne2000.c) ----------------------------------------
def _require_fast(require_built):
    from vmm.devices import ne2000
    require_built(ne2000._ne2000 is not None, "vmm/devices/_ne2000.c")


def test_fast_path_layout_is_the_models(require_built):
    _require_fast(require_built)
    from vmm.devices import _ne2000, ne2000
    assert _ne2000.LAYOUT == ne2000.REG_LAYOUT


# CR values a driver writes (start, stop, page 1/2/3, remote read/write/abort/send, transmit),
# and a random byte now and then
_CR = [0x21, 0x22, 0x20, 0x62, 0x61, 0xE2, 0x0A, 0x12, 0x1A, 0x26, 0x24, 0x02, 0x42, 0x0B]
_OPS = st.one_of(
    st.tuples(st.just("w"), st.integers(0, 0x0F),
              st.one_of(st.integers(0, 255), st.sampled_from([0x40, 0x4C, 0x50, 0x7F, 0x80]))),
    st.tuples(st.just("w"), st.sampled_from([4, 5, 6, 7, 8, 9, 10, 11, 15]),
              st.integers(0, 255)),
    st.tuples(st.just("cr"), st.sampled_from(_CR)),
    st.tuples(st.just("cr"), st.integers(0, 255)),       # page 2, "send packet": fail-stops
    st.tuples(st.just("r"), st.integers(0, 0x0F)),
    st.tuples(st.just("dr"), st.sampled_from([1, 2, 4])),
    st.tuples(st.just("dw"), st.sampled_from([1, 2, 4]), st.integers(0, 0xFFFFFFFF)),
    st.tuples(st.just("rx"), st.integers(0, 1600)),
    st.tuples(st.just("rxk"), st.sampled_from(["other", "multi", "bcast", "us"]),
              st.integers(0, 1600)),
    st.tuples(st.just("w"), st.just(0x0C), st.sampled_from([0x04, 0x08, 0x0C, 0x10, 0x20, 0])),
    st.tuples(st.just("free"), st.just(0)),
    st.tuples(st.just("reset"), st.just(0)),
    # a driver's remote DMA set-up, then its data accesses (a short count meets its end)
    st.tuples(st.just("dma"), st.sampled_from([0x3F, 0x4B, 0x4C, 0x7F, 0x80, 0xBF]) |
              st.integers(0x3F, 0xC0), st.sampled_from([0, 0xFC, 0xFD, 0xFE, 0xFF]) |
              st.integers(0, 255), st.integers(0, 24),
              st.sampled_from([0x0A, 0x12]), st.sampled_from([1, 2, 4]), st.integers(0, 12)),
)


def _primitive(op):
    if op[0] != "dma":
        return [op]
    _, page, low, count, cmd, size, n = op
    kind = [("dr", size)] if cmd == 0x0A else [("dw", size, 0x1234567 * (n + 1))]
    return [("w", 10, count), ("w", 11, 0), ("w", 8, low), ("w", 9, page), ("cr", cmd)] + \
        kind * n


def _apply(c, nic, b, op, fast):
    """One access; with `fast`, the C fast path is tried first, as the dispatcher does.
    Returns what the guest would see (a read's value, or the fail-stop's message)."""
    kind = op[0]
    try:
        if kind in ("rx", "rxk"):
            n = op[-1]
            if kind == "rx":
                dst = bytes(nic.mac) if n % 3 else b"\xff" * 6
            else:
                dst = {"other": bytes.fromhex("020000000001"), "us": bytes(nic.mac),
                       "multi": bytes.fromhex("01005e000001"), "bcast": b"\xff" * 6}[op[1]]
            frame = dst + bytes(6) + bytes((i * 7) & 0xFF for i in range(n))
            nic.receive(frame)                  # the fast twin's tries the C path first
            return None
        if kind == "free":                      # the driver takes every frame: BNRY = CURR - 1
            cur = nic.curr
            c.io.write(b + 3, 1, cur - 1 if cur > nic.pstart else nic.pstop - 1)
            return None
        if kind in ("r", "dr", "reset"):
            off, size = {"r": (op[1], 1), "dr": (0x10, op[1]), "reset": (0x1F, 1)}[kind]
            if fast:
                v = nic.fast.port_in(off, size)
                if v is not None:
                    return v
            return c.io.read(b + off, size)
        if kind == "w":
            off, size, value = op[1], 1, op[2]
        elif kind == "cr":
            off, size, value = 0, 1, op[1]
        else:
            off, size, value = 0x10, op[1], op[2] & ((1 << (8 * op[1])) - 1)
        if fast and nic.fast.port_out(off, size, value):
            return None
        c.io.write(b + off, size, value)
        return None
    except Unimplemented as exc:
        return ("fail-stop", str(exc))


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(_OPS, min_size=10, max_size=150), word=st.booleans())
def test_fast_path_and_the_model_agree_on_any_access_sequence(nic_board, require_built, ops,
                                                             word):
    """The same accesses through the fast path (falling back to the model where it declines)
    and through the model alone leave the same registers, packet memory, FIFO, interrupt line
    and sent frames, and give the guest the same values."""
    _run_twins(nic_board, require_built, ops, word)


@pytest.mark.parametrize("word", [True, False])
@pytest.mark.parametrize("cmd", [0x0A, 0x12])
def test_fast_path_and_the_model_agree_at_the_ends_of_ring_and_count(nic_board, require_built,
                                                                    word, cmd):
    """Remote DMA that starts just before PSTOP (the model wraps to PSTART; the fast path must
    decline a crossing) or runs out its count (RDC) on every alignment and width."""
    ops = []
    for page, low in ((0x7F, 0xFC), (0x7F, 0xFD), (0x7F, 0xFE), (0x7F, 0xFF), (0xBF, 0xFE),
                      (0x4C, 0x00)):
        for size in (1, 2, 4):
            for count in (1, 2, 3, 4, 5, 8):
                ops.append(("dma", page, low, count, cmd, size, 3))
    _run_twins(nic_board, require_built, ops, word)


def test_fast_path_and_the_model_agree_when_frames_wait_in_the_fifo(nic_board, require_built):
    """A full ring: frames wait in the FIFO, and the driver's BNRY writes let them in (the fast
    path must leave those to the model); with the FIFO empty again BNRY is a plain register."""
    ops = [("rx", 1000 + 37 * i) for i in range(14)]
    for bnry in (0x50, 0x58, 0x60, 0x68, 0x70, 0x7F, 0x4C, 0x55):
        ops += [("w", 3, bnry), ("r", 3), ("rx", 700)]
    _run_twins(nic_board, require_built, ops, True)


def _run_twins(nic_board, require_built, ops, word):
    _require_fast(require_built)
    twins = []
    for fast in (True, False):
        c, nic, loop = nic_board(NE2000, memory=1 << 20)
        if not fast:
            nic.fast_rx = None                  # the model's receive alone
        b = nic.cfg.bar(0)
        init(c, b)
        if not word:
            c.io.write(b + 0x0E, 1, 0x48)
        twins.append((c, nic, loop, b, fast))
    (_, f, lf, _, _), (_, p, lp, _, _) = twins
    ops = [p for op in ops for p in _primitive(op)]
    for step, op in enumerate(ops):
        got = [_apply(c, nic, b, op, fast) for c, nic, loop, b, fast in twins]
        where = f"after {ops[:step + 1]}"
        assert got[0] == got[1], where
        assert f.regs == p.regs, where
        assert f.mem == p.mem, where
        assert list(f.fifo) == list(p.fifo), where
        assert f.irq.level == p.irq.level == f.irq_level, where
        assert lf.sent == lp.sent, where
        if isinstance(got[0], tuple):
            break                         # a fail-stop ends the guest


def test_fast_path_declines_what_changes_the_interrupt_line(board, require_built):
    _require_fast(require_built)
    c, nic, b, _ = board
    init(c, b)
    assert nic.irq.level == 0
    nic.receive(bytes(nic.mac) + bytes(60))          # PRX: the line goes up (IMR 0x3F)
    assert nic.irq.level == 1 and nic.irq_level == 1
    assert nic.fast.port_in(0x07, 1) & 0x01          # reading ISR: done in C
    assert nic.fast.port_out(0x07, 1, 0x01) is False  # clearing PRX lowers the line: declined
    assert nic.regs[7] & 0x01                         # ... with nothing changed
    c.io.write(b + 0x07, 1, 0x01)
    assert nic.irq.level == 0 and nic.irq_level == 0
    assert nic.fast.port_out(0x0F, 1, 0x00) is True  # IMR 0 with nothing pending: done in C
    assert nic.fast.port_out(0x00, 1, 0x26) is False  # a transmit: the model's
    assert nic.fast.port_out(0x03, 1, 0x50) is True   # BNRY with no frame waiting: done in C
    nic.fifo_waiting = 1
    assert nic.fast.port_out(0x03, 1, 0x51) is False  # ... with frames waiting: the model's


def test_frames_are_stored_in_c_as_the_model_stores_them(nic_board, require_built):
    """The receive half in C (framepath.h) takes the frames the model would store at once and
    declines the rest; both twins end the same (the random sequences above cover the rest)."""
    _require_fast(require_built)
    ops = [("rx", 100), ("rx", 61), ("rx", 1500), ("rxk", "us", 10), ("rxk", "multi", 80),
           ("rxk", "other", 80), ("w", 0x0C, 0x10), ("rxk", "other", 80), ("w", 7, 0xFF)]
    ops += [("rx", 1000 + 37 * i) for i in range(14)] + [("w", 3, 0x60), ("rx", 700)]
    # records of 3 pages in a ring of 52: every so often one wraps from PSTOP to PSTART
    ops += [op for i in range(40) for op in (("rx", 700 + i), ("free",))]
    _run_twins(nic_board, require_built, ops, True)
    c, nic, loop = nic_board(NE2000, memory=1 << 20)
    init(c, nic.cfg.bar(0))
    nic.receive(bytes(nic.mac) + bytes(100))
    assert nic.fast.frames_stored == 1 and nic.stats["rx"] == 1 and nic.irq.level == 1
    assert nic.fast.receive(bytes.fromhex("020000000001") + bytes(100)) == 0   # not for us
