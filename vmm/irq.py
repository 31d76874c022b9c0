"""Interrupt lines: devices drive an IrqLine and never reach into the interrupt controller."""


class IrqLine:
    """One input of the interrupt controller. `set(level)` forwards only level changes;
    `pulse()` is a rising then falling edge (for edge-triggered sources such as the PIT)."""

    __slots__ = ("number", "_sink", "level")

    def __init__(self, number, sink):
        self.number = number
        self._sink = sink          # callable(number, level)
        self.level = 0

    def set(self, level):
        level = 1 if level else 0
        if level != self.level:
            self.level = level
            self._sink(self.number, level)

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
