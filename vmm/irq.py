"""Interrupt lines: devices drive an IrqLine and never reach into the interrupt controller.

Urgent and non-urgent interrupts. Raising a line normally stops the running guest at once (at
the end of the current block) so the run loop can inject the interrupt: that is one stop and
restart of the engine per interrupt, the main cost of a device that interrupts per frame.
Some interrupts only report work the driver will pick up anyway: a network card's "transmit
done" or "frame received" while the driver is busy sending or polling. A device raises those
with `set(level, urgent=False)`: the level changes at once (the controllers latch it, a guest
that reads the status sees it, an unmasked line is pending), but the CPU is not stopped for
it. The run loop injects it at its next exit (another device's stop, HLT, a timer, a poll of
the host inputs) and in any case within LAZY_IRQ_NS of host time, which the run loop
guarantees by pulling its deadline in (Machine._device_stop). A guest that waits for the
interrupt halts or keeps exiting, so a deferred interrupt never holds up a waiting guest
for longer than that bound.

The deferral is carried down the (synchronous) delivery chain by `delivering_lazily()`: the
machine's stop request checks it. Delivery happens only on the run loop's thread.
"""

LAZY_IRQ_NS = 1_000_000       # a non-urgent interrupt reaches the CPU at most this late

_lazy_depth = 0


def delivering_lazily():
    """True while a non-urgent line change is being delivered (the stop it asks for may wait)."""
    return _lazy_depth > 0


def deliver(sink, args, urgent):
    """Call sink(*args), marking the delivery as non-urgent unless `urgent`."""
    global _lazy_depth
    if urgent:
        sink(*args)
        return
    _lazy_depth += 1
    try:
        sink(*args)
    finally:
        _lazy_depth -= 1


class IrqLine:
    """One input of the interrupt controller. `set(level)` forwards only level changes;
    `pulse()` is a rising then falling edge (for edge-triggered sources such as the PIT).
    `urgent=False`: see the module's description."""

    __slots__ = ("number", "_sink", "level")

    def __init__(self, number, sink):
        self.number = number
        self._sink = sink          # callable(number, level)
        self.level = 0

    def set(self, level, urgent=True):
        level = 1 if level else 0
        if level != self.level:
            self.level = level
            deliver(self._sink, (self.number, level), urgent)

    def raise_(self):
        self.set(1)

    def lower(self):
        self.set(0)

    def pulse(self):
        self.set(1)
        self.set(0)


class NullSink:
    """Used before an interrupt controller is attached (and in device unit tests)."""

    def __init__(self):
        self.events = []

    def __call__(self, number, level):
        self.events.append((number, level))
