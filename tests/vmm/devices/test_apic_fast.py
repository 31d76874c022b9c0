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
        if pic:                                 # initialised as a BIOS leaves it, unmasked
            for port, value in ((0x20, 0x11), (0x21, 0x08), (0x21, 0x04), (0x21, 0x01),
                                (0xA0, 0x11), (0xA1, 0x70), (0xA1, 0x02), (0xA1, 0x01),
                                (0x21, 0x00), (0xA1, 0x00)):
                ctx.io.write(port, 1, value)
        self.stops = 0
        ctx.stop_requested = self._stop
        self.lf = ctx.mmio.find(self.lapic.base).fast if fast else None
        self.iof = ctx.mmio.find(self.ioapic.base).fast if fast else None
        self.eng = m._intr                      # the engine's INTR input (vmm/cpu/intr.py)
        if not fast:
            self.ioapic._fast = None            # the model's set_pin alone

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
        try:
            return self._apply(op)
        except V3Error as exc:                    # a fail-stop: the same one on both sides
            return ("fail-stop", str(exc))

    def _apply(self, op):
        kind, *args = op
        la, io = self.lapic, self.ioapic
        if kind == "lapic":
            return self.access(la, self.lf, *args)
        if kind == "ioapic":
            return self.access(io, self.iof, *args)
        if kind == "seq":
            return [self.apply(o) for o in args[0]]
        if kind == "pin":
            io.set_pin(*args)
        elif kind == "isa":                     # an ISA line: the 8259A (if any) and the IOAPIC
            self.m.ctx.irq(args[0]).set(args[1])
        elif kind == "accept":
            return la.accept(*args)
        elif kind == "ack":                     # the engine's acknowledge cycle
            if self.eng is None:
                return la.acknowledge() if la.has_interrupt() else None
            return self.eng.fast.ack() if self.iof is not None else self.eng._ack(None)
        elif kind == "log":
            la.log.on = io.log.on = args[0]
        return None

    def state(self):
        la, io = self.lapic, self.ioapic
        eng = None if self.eng is None else (self.eng.level, self.eng.taken)
        return ({k: getattr(la, k) for k in LAPIC_STATE}, dict(la._sources),
                {k: _copy(getattr(io, k)) for k in IOAPIC_STATE}, self.stops, eng,
                dict(self.m.stats.events), list(self.m.stats.recent))


def _copy(v):
    return list(v) if isinstance(v, list) else v


def _redir_value():
    return st.builds(lambda vec, mode, logical, level, mask, hi:
                     vec | (mode << 8) | (logical << 11) | (level << 15) | (mask << 16) | hi,
                     st.sampled_from([0x05, 0x26, 0x31, 0x26, 0xEC]),
                     st.sampled_from([0, 0, 1, 3, 6, 7]), st.integers(0, 1),
                     st.integers(0, 1), st.integers(0, 1),
                     st.sampled_from([0, 0, 1 << 14, 1 << 12]))


PINS_USED = [1, 11, 16, 17]                   # ISA pins are the model's; PCI pins go to C
VECTORS = [0x26, 0x31, 0x41, 0xEC]


def _program(pin, vec, mode, logical, level, mask):
    """Redirection entry `pin` written through the index and data registers."""
    return [("ioapic", True, 0x00, 0x10 + 2 * pin),
            ("ioapic", True, 0x10,
             vec | (mode << 8) | (logical << 11) | (level << 15) | (mask << 16))]


def _dest(pin, dest):
    return [("ioapic", True, 0x00, 0x11 + 2 * pin), ("ioapic", True, 0x10, dest << 24)]


OPS = st.one_of(
    st.tuples(st.just("lapic"), st.just(False), st.sampled_from(LAPIC_REGS + [0x084, 0x400]),
              st.just(0)),
    st.tuples(st.just("lapic"), st.just(True), st.just(0x0B0), st.integers(0, 3)),
    st.tuples(st.just("lapic"), st.just(True), st.just(0x080), st.sampled_from([0, 0x20, 0x25, 0xF0])),
    st.tuples(st.just("lapic"), st.just(True), st.just(0x350),
              st.sampled_from([0x700, 0x10700, 0x10000])),
    st.tuples(st.just("lapic"), st.just(True), st.just(0x0D0), st.sampled_from([0, 1 << 24, 2 << 24,
                                                                              0x21 << 24])),
    st.tuples(st.just("lapic"), st.just(True), st.just(0x0E0), st.sampled_from([0xFFFFFFFF,
                                                                              0x0FFFFFFF])),
    st.tuples(st.just("lapic"), st.just(True), st.just(0x0F0), st.sampled_from([0x1FF, 0xFF])),
    st.tuples(st.just("ioapic"), st.just(True), st.just(0x00),
              st.one_of(st.sampled_from([0, 1, 2, 3, 0x48, 0x100]),
                        st.integers(0x10, 0x3F))),
    st.tuples(st.just("ioapic"), st.sampled_from([False, True]), st.sampled_from([0x10, 0x04]),
              _redir_value()),
    st.builds(lambda *a: ("seq", _program(*a)), st.sampled_from(PINS_USED),
              st.sampled_from(VECTORS + [0x05]), st.sampled_from([0, 0, 1, 3, 7]),
              st.integers(0, 1), st.integers(0, 1), st.sampled_from([0, 0, 1])),
    st.builds(lambda *a: ("seq", _dest(*a)), st.sampled_from(PINS_USED),
              st.sampled_from([0, 1, 2, 0x21, 0x12, 0xFF])),
    st.tuples(st.just("pin"), st.sampled_from(PINS_USED + [23]), st.integers(0, 1)),
    st.tuples(st.just("accept"), st.sampled_from(VECTORS), st.booleans()),
    st.tuples(st.just("isa"), st.sampled_from([1, 11]), st.integers(0, 1)),
    st.tuples(st.just("ack")),
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


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(OPS, max_size=60), st.booleans())
def test_fast_paths_agree_with_the_models(require_built, ops, pic):
    _run(require_built, ops, pic)


def _pin16(masked=False):
    """Pin 16 (a PCI pin): vector 0x26, fixed, physical, level-triggered."""
    return _program(16, 0x26, 0, 0, 1, 1 if masked else 0)


@pytest.mark.parametrize("ops", [
    # an EOI that uncovers a lower request waiting in IRR: the model asks for a stop
    [("accept", 0x41, False), ("ack",), ("accept", 0x26, False), ("lapic", True, 0x0B0, 0)],
    # a level pin in service rewritten as an edge pin: its remote IRR goes
    _pin16() + [("pin", 16, 1), ("ack",), ("ioapic", True, 0x10, 0x26)],
    # PPR with TPR and the in-service vector in one priority class
    [("accept", 0x26, False), ("ack",), ("lapic", True, 0x080, 0x25),
     ("lapic", False, 0x0A0, 0)],
], ids=["eoi-uncovers-irr", "edge-rewrite", "ppr-same-class"])
def test_fast_paths_agree_on_corner_cases(require_built, ops):
    _run(require_built, ops, False)


SCENARIOS = {
    # the acknowledge of an ISA pin's vector runs its line's ack listeners: the model's
    "ack-isa-source": (False, _program(1, 0x31, 0, 0, 0, 0) + [("pin", 1, 1), ("ack",)]),
    # an 8259A asking through LINT0 (ExtINT, unmasked) keeps INTR up after the acknowledge
    "ack-extint-waiting": (True, [("lapic", True, 0x350, 0x700), ("isa", 11, 1),
                                  ("accept", 0x41, False), ("ack",)]),
    # an edge pin sends on its rising edge only
    "edge-pin-held": (False, _program(16, 0x26, 0, 0, 0, 0) + [("pin", 16, 1), ("pin", 16, 1),
                                                               ("pin", 16, 0), ("pin", 16, 1)]),
    # a logical destination that names no APIC (flat model, LDR 0) drops the message
    "logical-no-match": (False, _program(16, 0x26, 0, 1, 0, 0) + _dest(16, 0x01) +
                         [("pin", 16, 1), ("lapic", True, 0x0D0, 1 << 24), ("pin", 16, 0),
                          ("pin", 16, 1)]),
    # cluster model: cluster 2, member bit 1
    "logical-cluster": (False, [("lapic", True, 0x0E0, 0x0FFFFFFF),
                                ("lapic", True, 0x0D0, 0x21 << 24)] +
                        _program(16, 0x26, 0, 1, 0, 0) + _dest(16, 0x12) +
                        [("pin", 16, 1), ("pin", 16, 0)] + _dest(16, 0x21) + [("pin", 16, 1)]),
    # a vector taken level-triggered, then edge-triggered: its TMR bit goes
    "tmr-edge-after-level": (False, [("accept", 0x41, True), ("ack",),
                                     ("lapic", True, 0x0B0, 0)] +
                             _program(16, 0x41, 0, 0, 0, 0) + [("pin", 16, 1)]),
    # a software-disabled LAPIC refuses the message
    "lapic-disabled": (False, [("lapic", True, 0x0F0, 0xFF)] + _program(16, 0x26, 0, 0, 1, 0) +
                       [("pin", 16, 1)]),
    # an ISA pin's message carries its line (for the ack listeners): the model's
    "isa-pin-source": (False, _program(11, 0x31, 0, 0, 1, 0) + [("pin", 11, 1), ("ack",)]),
}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_fast_paths_agree_in_scenarios(require_built, name):
    pic, ops = SCENARIOS[name]
    _run(require_built, [("seq", o) if isinstance(o, list) else o for o in ops], pic)


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


def test_unmasking_an_asserted_pin_sends_it_from_c_for_pci_pins_only(require_built):
    t = Twin(True, False)
    require_built(t.lf is not None, "the APIC fast paths")
    for op in _pin16(masked=True) + [("pin", 16, 1)]:
        t.apply(op)
    assert t.ioapic.sent[16] == 0
    assert t.iof.write(0x10, 4, 0x26 | (1 << 15)) is True         # unmasked: sent in C
    assert t.ioapic.sent[16] == 1 and t.ioapic.redir[16] & (1 << 14)
    assert t.lapic.irr == 1 << 0x26 and t.stops == 1
    # an ISA pin (its vector may have an ack listener, the PIT's) is the model's
    for op in [("ioapic", True, 0x00, 0x10 + 2 * 11), ("ioapic", True, 0x10, 0x31 | (1 << 16)
                                                      | (1 << 15)), ("pin", 11, 1)]:
        t.apply(op)
    assert t.iof.write(0x10, 4, 0x31 | (1 << 15)) is False
    assert t.ioapic.redir[11] & (1 << 16)


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
