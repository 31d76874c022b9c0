"""vmm/irq.py: interrupt lines forward level changes only; pulse is an edge."""
from vmm.irq import IrqLine, NullSink


def test_set_forwards_only_changes():
    sink = NullSink()
    line = IrqLine(4, sink)
    line.set(0)                      # already low
    line.set(1)
    line.set(1)
    line.set(True)
    line.set(5)                      # any true value is "high"
    line.set(0)
    line.set(None)
    assert sink.events == [(4, 1), (4, 0)]
    assert line.level == 0


def test_raise_and_lower():
    sink = NullSink()
    line = IrqLine(3, sink)
    line.raise_()
    line.raise_()
    line.lower()
    assert sink.events == [(3, 1), (3, 0)]


def test_pulse_is_rising_then_falling_edge():
    sink = NullSink()
    line = IrqLine(0, sink)
    line.pulse()
    line.pulse()
    assert sink.events == [(0, 1), (0, 0), (0, 1), (0, 0)]
    assert line.level == 0


def test_pulse_on_a_high_line_only_lowers_it():
    sink = NullSink()
    line = IrqLine(8, sink)
    line.set(1)
    line.pulse()
    assert sink.events == [(8, 1), (8, 0)]


def test_board_lines_are_shared_and_buffer_until_a_controller():
    from vmm.context import BoardContext

    class Intc:
        def __init__(self):
            self.calls = []

        def set_irq(self, n, level):
            self.calls.append((n, level))

    ctx = BoardContext()
    assert ctx.irq(4) is ctx.irq(4)
    ctx.irq(4).set(1)
    intc = Intc()
    ctx.set_interrupt_controller(intc)
    assert intc.calls == [(4, 1)] and ctx.pending_irq_events == []
    ctx.irq(4).set(0)
    assert intc.calls == [(4, 1), (4, 0)]


def test_non_urgent_change_is_delivered_lazily():
    from vmm import irq
    seen = []
    line = IrqLine(9, lambda n, level: seen.append((n, level, irq.delivering_lazily())))
    line.set(1, urgent=False)
    line.set(0)
    line.set(1)
    assert seen == [(9, 1, True), (9, 0, False), (9, 1, False)]
    assert not irq.delivering_lazily()


def test_lazy_flag_is_cleared_when_the_sink_fails():
    from vmm import irq

    def sink(n, level):
        raise RuntimeError("boom")
    line = IrqLine(2, sink)
    try:
        line.set(1, urgent=False)
    except RuntimeError:
        pass
    assert not irq.delivering_lazily()
