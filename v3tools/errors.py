"""The one exception hierarchy of the project, split by audience.

User-input errors carry enough context (file, line, column, entry) to be printed as one line.
VM stops carry what the device knew; the run loop adds the CPU state at its boundary.
"""


class V3Error(Exception):
    """Base of every error the CLI prints as one line (exit status 1)."""

    exit_status = 1


# --- bad input -------------------------------------------------------------------------------
class ConfigError(V3Error):
    """A Palacios XML configuration that cannot be used (file:line:col or the entry at fault)."""


class ImageFormatError(V3Error):
    """A guest image (.dat) that is truncated, corrupted or not an image at all."""


class ToolMissing(V3Error):
    """A host artefact (isolinux, busybox, a kernel) was not found; the message names the package."""


# --- VM stops --------------------------------------------------------------------------------
class VMStop(V3Error):
    """The VM stopped; `diagnostic` is filled in by the run loop (CS:RIP, mode, registers, exits)."""

    exit_status = 3

    def __init__(self, message, **context):
        super().__init__(message)
        self.context = context
        self.diagnostic = None


class Unimplemented(VMStop):
    """The guest used a feature the VMM does not implement (fail-stop, as Palacios demands)."""


class UnhandledIO(VMStop):
    """A port or MMIO access no device claims."""

    def __init__(self, kind, addr, size, value=None, write=False):
        what = f"{'write' if write else 'read'} of {size} byte(s) {kind} {addr:#x}"
        if write:
            what += f" value {value:#x}"
        super().__init__(f"unclaimed {what}", kind=kind, addr=addr, size=size, value=value, write=write)


class SnapshotError(V3Error):
    """A VM snapshot that cannot be written or loaded (vmm/debug/snapshot.py)."""
