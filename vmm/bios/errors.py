"""Exceptions the BIOS services raise towards the core (kept apart to avoid import cycles)."""
from v3tools.errors import VMStop


class BiosWait(Exception):
    """Raised by a service that cannot complete yet; the core idles the guest with interrupts
    enabled and re-executes the trap after the next interrupt or at `until_ns` (virtual ns)."""

    def __init__(self, until_ns=None):
        super().__init__(f"BIOS wait until {until_ns}" if until_ns is not None else "BIOS wait")
        self.until_ns = until_ns


class NoBootableDevice(VMStop):
    """INT 19h found nothing to boot; the message lists every device tried and why it failed."""


class BootFailed(VMStop):
    """INT 18h: the boot loader gave up (there is no ROM BASIC to fall back to)."""


class GuestFault(VMStop):
    """A CPU exception reached the BIOS's default handler (nobody installed one)."""
