"""The LAPIC's and IOAPIC's register fast paths in C (vmm/devices/_apic.c) against the Python
models alone: twin machines take the same accesses, one through the fast path (the model when
it declines), one through the model only, and must agree after every access."""
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from v3tools.errors import V3Error
from vmm.machine import Machine

LAPIC_REGS = [0x020, 0x030, 0x080, 0x090, 0x0A0, 0x0B0, 0x0C0, 0x0D0, 0x0E0, 0x0F0, 0x280,
              0x300, 0x310, 0x320, 0x350, 0x360, 0x380, 0x390, 0x3E0] + \
             [0x100 + 16 * i for i in range(24)]
LAPIC_STATE = ("irr", "isr", "tmr", "tpr", "eoi_count", "apic_id", "ldr", "dfr", "svr", "lvt",
               "esr")
IOAPIC_STATE = ("ioregsel", "apic_id", "redir", "dest", "levels", "sent")


class Twin:
    """A machine with a LAPIC and an IOAPIC (and, with `pic`, an 8259A on LINT0)."""

    def __init__(self, fast, pic):
        from vmm.devices.i8259 import PIC8259
        from vmm.devices.ioapic import IOAPIC
        from vmm.devices.lapic import LocalAPIC
        self.m = m = Machine(memory_mb=16)
        ctx = m.ctx
        if pic:
            ctx.add_device(PIC8259("pic"))
        self.lapic = ctx.add_device(LocalAPIC("apic"))
        self.ioapic = ctx.add_device(IOAPIC("ioapic", lapic_id="apic"))
        m.finish_board()
        self.stops = 0
        ctx.stop_requested = self._stop
        self.lf = ctx.mmio.find(self.lapic.base).fast if fast else None
        self.iof = ctx.mmio.find(self.ioapic.base).fast if fast else None

    def _stop(self):
        self.stops += 1

    def access(self, dev, fast, write, offset, value):
        """One MMIO access as the dispatcher makes it: the fast path, else the model."""
        try:
            if write:
                if fast is None or not fast.write(offset, 4, value):
                    dev._write(offset, 4, value)
                return None
            got = None if fast is None else fast.read(offset, 4)
            return dev._read(offset, 4) & 0xFFFFFFFF if got is None else got
        except V3Error as exc:                    # a fail-stop: the same one on both sides
            return ("fail-stop", str(exc))

    def apply(self, op):
        kind, *args = op
        la, io = self.lapic, self.ioapic
        if kind == "lapic":
            return self.access(la, self.lf, *args)
        if kind == "ioapic":
            return self.access(io, self.iof, *args)
        if kind == "pin":
            io.set_pin(*args)
        elif kind == "accept":
            return la.accept(*args)
        elif kind == "ack":
            return la.acknowledge() if la.has_interrupt() else None
        elif kind == "log":
            la.log.on = io.log.on = args[0]
        return None

    def state(self):
        la, io = self.lapic, self.ioapic
        return ({k: getattr(la, k) for k in LAPIC_STATE},
                {k: _copy(getattr(io, k)) for k in IOAPIC_STATE}, self.stops)


def _copy(v):
    return list(v) if isinstance(v, list) else v


def _redir_value():
    return st.builds(lambda vec, mode, logical, level, mask, hi:
                     vec | (mode << 8) | (logical << 11) | (level << 15) | (mask << 16) | hi,
                     st.sampled_from([0x05, 0x26, 0x31, 0x26, 0xEC]),
                     st.sampled_from([0, 0, 1, 3, 6, 7]), st.integers(0, 1),
                     st.integers(0, 1), st.integers(0, 1),
                     st.sampled_from([0, 0, 1 << 14, 1 << 12]))


OPS = st.one_of(
    st.tuples(st.just("lapic"), st.just(False), st.sampled_from(LAPIC_REGS + [0x084, 0x400]),
              st.just(0)),
    st.tuples(st.just("lapic"), st.just(True), st.just(0x0B0), st.integers(0, 3)),
    st.tuples(st.just("lapic"), st.just(True), st.just(0x080), st.sampled_from([0, 0x20, 0x25, 0xF0])),
    st.tuples(st.just("lapic"), st.just(True), st.just(0x350),
              st.sampled_from([0x700, 0x10700, 0x10000])),
    st.tuples(st.just("ioapic"), st.just(True), st.just(0x00),
              st.one_of(st.sampled_from([0, 1, 2, 3, 0x48, 0x100]),
                        st.integers(0x10, 0x3F))),
    st.tuples(st.just("ioapic"), st.sampled_from([False, True]), st.sampled_from([0x10, 0x04]),
              _redir_value()),
    st.tuples(st.just("ioapic"), st.just(True), st.just(0x10),
              st.sampled_from([0x0F000000, 0x01000000, 0xFF000000])),
    st.tuples(st.just("pin"), st.sampled_from([1, 4, 11, 16, 17, 23]), st.integers(0, 1)),
    st.tuples(st.just("accept"), st.sampled_from([0x26, 0x31, 0x41, 0xEC]), st.booleans()),
    st.tuples(st.just("ack")),
    st.tuples(st.just("log"), st.booleans()),
)


def _run(require_built, ops, pic):
    from vmm.devices import ioapic
    require_built(ioapic._apic is not None, "the APIC fast paths (vmm/devices/_apic.c)")
    fast, slow = Twin(True, pic), Twin(False, pic)
    assert fast.lf is not None and fast.iof is not None
    for op in ops:
        got = fast.apply(op), slow.apply(op)
        assert got[0] == got[1], (op, got)
        assert fast.state() == slow.state(), op
    fast.m.close()
    slow.m.close()


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(OPS, max_size=60), st.booleans())
def test_fast_paths_agree_with_the_models(require_built, ops, pic):
    _run(require_built, ops, pic)


def _pin16_ops():
    return _pin16()


def _pin16(vector=0x26, masked=False):
    return [("ioapic", True, 0x00, 0x30), ("ioapic", True, 0x10,
                                              vector | (1 << 15) | (masked << 16))]


@pytest.mark.parametrize("ops", [
    # an EOI that uncovers a lower request waiting in IRR: the model asks for a stop
    [("accept", 0x41, False), ("ack",), ("accept", 0x26, False), ("lapic", True, 0x0B0, 0)],
    # a level pin in service rewritten as an edge pin: its remote IRR goes
    _pin16_ops() + [("pin", 16, 1), ("ack",), ("ioapic", True, 0x10, 0x26)],
    # PPR with TPR and the in-service vector in one priority class
    [("accept", 0x26, False), ("ack",), ("lapic", True, 0x080, 0x25),
     ("lapic", False, 0x0A0, 0)],
], ids=["eoi-uncovers-irr", "edge-rewrite", "ppr-same-class"])
def test_fast_paths_agree_on_corner_cases(require_built, ops):
    _run(require_built, ops, False)


def test_level_eoi_clears_remote_irr_in_c(require_built):
    # the common case of a card interrupt: raised, taken, lowered by the handler, EOI
    ops = _pin16() + [("pin", 16, 1), ("ack",), ("pin", 16, 0),
                      ("lapic", True, 0x0B0, 0), ("ioapic", True, 0x00, 0x30),
                      ("ioapic", False, 0x10, 0)]
    _run(require_built, ops, False)
    t = Twin(True, False)
    for op in ops[:-3]:
        t.apply(op)
    assert t.ioapic.redir[16] & (1 << 14)                # remote IRR set while in service
    assert t.lf.write(0x0B0, 4, 0) is True               # done in C
    assert not t.ioapic.redir[16] & (1 << 14) and t.lapic.isr == 0 and t.lapic.eoi_count == 1


def test_eoi_declines_when_the_pin_must_be_delivered_again(require_built):
    ops = _pin16() + [("pin", 16, 1), ("ack",)]
    t = Twin(True, False)
    require_built(t.lf is not None, "the APIC fast paths")
    for op in ops:
        t.apply(op)
    before = t.state()
    assert t.lf.write(0x0B0, 4, 0) is False              # still asserted: the model sends it
    assert t.state() == before
    t.lapic._write(0x0B0, 4, 0)
    assert t.lapic.irr == 1 << 0x26 and t.ioapic.sent[16] == 2


def test_unmasking_an_asserted_pin_declines(require_built):
    t = Twin(True, False)
    require_built(t.lf is not None, "the APIC fast paths")
    for op in _pin16(masked=True) + [("pin", 16, 1)]:
        t.apply(op)
    assert t.iof.write(0x10, 4, 0x26 | (1 << 15)) is False
    assert t.ioapic.redir[16] & (1 << 16)                # unchanged: still masked
    assert t.iof.write(0x10, 4, 0x26 | (1 << 15) | (1 << 16)) is True   # masking is C's


def test_machine_mmio_goes_through_the_c_dispatcher(require_built):
    """The apictest guest (tests/test_apic.py) runs with its EOIs and register reads done in C,
    and telemetry counts them with the LAPIC's page."""
    from tests.vmm.test_apic import ApicBoard
    b = ApicBoard()
    require_built(b.machine.memmap.fast is not None, "the MMIO dispatcher (vmm/cpu/_fastmmio.c)")
    b.run_guest("apictest.bin")
    counts = b.machine.memmap.fast.counts()
    assert counts.get(0xFEE00000, (0, 0))[1] > 0            # EOIs in C
    assert b.machine.stats.mmio_counts()[0xFEE00000] >= sum(counts[0xFEE00000])


def test_a_failstop_turns_the_mmio_fast_paths_off(require_built):
    t = Twin(True, False)
    require_built(t.m.memmap.fast is not None, "the MMIO dispatcher")
    with pytest.raises(V3Error):
        t.lapic._write(0x084, 4, 0)                        # misaligned: the model fail-stops
    t.m._fail_in_hook(V3Error("x"))
    assert t.m.memmap.fast.enabled is False
