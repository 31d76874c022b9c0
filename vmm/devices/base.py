"""The base class every device derives from.

A device is built from its XML by `from_spec(spec, ctx)` (spec is a `vmm.config.DeviceSpec`, a
plain tree: devices never import lxml), then `attach(ctx)` hooks it to the buses and IRQ lines
of the board context (`vmm.context.BoardContext`). Devices raise `Unimplemented` (with what they
know) for guest behaviour they do not model; the run loop adds the CPU state.
"""
from v3tools.errors import Unimplemented


class Device:
    CLASS_NAME = "?"              # set by @register

    def __init__(self, dev_id):
        self.id = dev_id
        self.log = None           # set by attach(): a vmm.log.ComponentLog

    @classmethod
    def from_spec(cls, spec, ctx):
        """Build from a DeviceSpec. The default takes no options."""
        return cls(spec.id)

    def attach(self, ctx):
        """Claim ports, MMIO ranges and IRQ lines on the board context."""

    def reset(self):
        """Machine reset (power-on state)."""

    def unimplemented(self, what, **context):
        raise Unimplemented(f"{self.CLASS_NAME} {self.id}: {what}", device=self.id, **context)

    def __repr__(self):
        return f"<{self.CLASS_NAME} {self.id}>"
