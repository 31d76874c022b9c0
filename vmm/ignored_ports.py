"""Legacy I/O ports PCs are known to ignore, and that guests probe, but that we do not model.

Everything else that no device claims stops the VM (UnhandledIO). Each entry is a range as the
PC port list names it and the byte a read returns; writes are dropped. `attach_ignored_ports`
runs after all devices are attached and claims only the ports no device has claimed, so a
configured device always wins (for example SERIAL over the COM entries, or an IDE device's
0x3F6/0x3F7 inside the floppy range).

Read values: 0xFF where the hardware is absent (an undriven ISA bus reads all ones, which is
how drivers conclude "nothing here"); 0x00 for the DMA controllers, which every PC has and which
a guest only programs (Palacios' GENERIC device, which its default configuration uses for these
ranges, returns 0 too).
"""
from dataclasses import dataclass


@dataclass(frozen=True)
class IgnoredRange:
    start: int
    end: int          # inclusive
    read: int         # byte returned by a read
    what: str


IGNORED_PORTS = (
    # PORT 0000-001F - DMA 1 (8237A, channels 0-3), incl. aliases. Reads 0: no channel has
    # reached terminal count or requests service. Floppy/ISA-sound DMA is not modelled.
    IgnoredRange(0x00, 0x1F, 0x00, "DMA controller 1 (8237A)"),
    # PORT 0080 - manufacturing POST code; Linux also writes it as its I/O delay. Reads 0xFF.
    IgnoredRange(0x80, 0x80, 0xFF, "POST code / I/O delay port"),
    # PORT 0081-008F - DMA page registers (0x81-0x83, 0x87 DMA 1; 0x89-0x8B, 0x8F DMA 2; the
    # rest unused). Reads 0 like the DMA controllers.
    IgnoredRange(0x81, 0x8F, 0x00, "DMA page registers"),
    # PORT 00C0-00DF - DMA 2 (8237A, channels 4-7, word-spaced). Reads 0.
    IgnoredRange(0xC0, 0xDF, 0x00, "DMA controller 2 (8237A)"),
    # PORT 00ED - unused port Linux can use as an I/O delay (io_delay=0xed). Reads 0xFF.
    IgnoredRange(0xED, 0xED, 0xFF, "I/O delay port"),
    # PORT 00F0-00FF - math coprocessor (0xF0 clear busy, 0xF1 reset); the FPU is internal to
    # the CPU, so these are no-ops. Reads 0xFF.
    IgnoredRange(0xF0, 0xFF, 0xFF, "math coprocessor"),
    # PORT 0201 - game port. Absent: reads 0xFF.
    IgnoredRange(0x201, 0x201, 0xFF, "game port"),
    # PORT 0278-027A - LPT2 data/status/control. Absent: reads 0xFF, so parport_pc's data
    # register read-back test fails and it finds no port.
    IgnoredRange(0x278, 0x27A, 0xFF, "parallel port LPT2"),
    # PORT 02E8-02EF - COM4, when no SERIAL device claims it. Absent: LSR reads 0xFF, which
    # Linux's 8250 driver (and the BIOS) take as "no UART".
    IgnoredRange(0x2E8, 0x2EF, 0xFF, "serial port COM4 (not configured)"),
    # PORT 02F8-02FF - COM2, when not configured. Reads 0xFF.
    IgnoredRange(0x2F8, 0x2FF, 0xFF, "serial port COM2 (not configured)"),
    # PORT 0378-037A - LPT1. Absent: reads 0xFF.
    IgnoredRange(0x378, 0x37A, 0xFF, "parallel port LPT1"),
    # PORT 03BC-03BE - LPT on monochrome adapters, inside the video range below; listed first
    # so it keeps its own read value. Absent: reads 0xFF.
    IgnoredRange(0x3BC, 0x3BE, 0xFF, "parallel port on MDA"),
    # PORT 03B0-03DF - VGA/MDA/CGA registers, when no video device claims them. Reads 0x00:
    # CRTC registers read as zero (cursor at 0,0), Input Status 1 (0x3BA/0x3DA) reads "display
    # enable, no retrace", so Linux's vgacon, which only writes the CRTC (cursor, origin) and
    # reads 0x3DA to reset the attribute flip-flop, runs unharmed on the text buffer at
    # 0xB8000, which is RAM here.
    IgnoredRange(0x3B0, 0x3DF, 0x00, "VGA registers (no video device)"),
    # PORT 03E8-03EF - COM3, when not configured. Reads 0xFF.
    IgnoredRange(0x3E8, 0x3EF, 0xFF, "serial port COM3 (not configured)"),
    # PORT 03F0-03F7 - floppy disk controller. Absent: MSR reads 0xFF, the floppy driver gives
    # up ("no floppy controllers found"). 0x3F6/0x3F7 are usually the IDE device's.
    IgnoredRange(0x3F0, 0x3F7, 0xFF, "floppy disk controller"),
    # PORT 03F8-03FF - COM1, when not configured. Reads 0xFF.
    IgnoredRange(0x3F8, 0x3FF, 0xFF, "serial port COM1 (not configured)"),
    # PORT 002E-002F, 004E-004F - Super I/O configuration index/data ports (Winbond, SMSC,
    # Fintek, ITE chips). Drivers such as 8250_fintek and parport_pc write an unlock sequence
    # and read a chip ID. No Super I/O chip here: writes go nowhere, reads 0xFF.
    IgnoredRange(0x2E, 0x2F, 0xFF, "Super I/O configuration ports"),
    IgnoredRange(0x4E, 0x4F, 0xFF, "Super I/O configuration ports"),
    # PORT 0510-051B - QEMU's firmware configuration interface (selector, data, DMA address).
    # Not a PC device: firmware built for QEMU (SeaBIOS) probes it for a "QEMU" signature and
    # carries on without it. Nothing here: reads 0xFF.
    IgnoredRange(0x510, 0x51B, 0xFF, "QEMU fw_cfg interface (absent)"),
    # PORT 0279 - ISA Plug and Play ADDRESS register (write-only; shares its number with the
    # LPT2 status port on read). No PnP cards: writes go nowhere, reads 0xFF.
    IgnoredRange(0x279, 0x279, 0xFF, "ISA PnP address port"),
    # PORT 0A79 - ISA Plug and Play WRITE_DATA register. No PnP cards: writes go nowhere.
    IgnoredRange(0xA79, 0xA79, 0xFF, "ISA PnP write-data port"),
    # ISA PnP READ_DATA ports: the OS picks one in 0x203-0x3FF during isolation (Linux tries
    # 0x213 and then every 32 ports). With no card an undriven bus reads 0xFF and isolation
    # finds nothing.
    *(IgnoredRange(p, p, 0xFF, "ISA PnP read-data port") for p in range(0x213, 0x400, 0x20)),
)


def attach_ignored_ports(ctx, log=None):
    """Claim every listed port no device has claimed. Returns the (start, length, what) claimed.
    `log` is the 'io' component log; each port's first access is logged there (debug)."""
    if log is None:
        log = ctx.vmmlog.component("io")
    claimed = []
    for entry in IGNORED_PORTS:
        run_start = None
        for port in range(entry.start, entry.end + 2):
            free = port <= entry.end and ctx.io.find(port) is None
            if free and run_start is None:
                run_start = port
            elif not free and run_start is not None:
                _attach_run(ctx, log, entry, run_start, port - run_start)
                claimed.append((run_start, port - run_start, entry.what))
                run_start = None
    return claimed


def _attach_run(ctx, log, entry, start, length):
    seen = set()

    def note(port, access):
        if port not in seen:
            seen.add(port)
            log.debug(f"port {port:#x} ({entry.what}) is ignored: first {access} "
                      f"(reads return {entry.read:#04x})")

    def read(offset, size):
        note(start + offset, "read")
        return entry.read

    def write(offset, size, value):
        note(start + offset, f"write {value:#x}")

    ctx.io.attach(start, length, read, write, owner=f"ignored ({entry.what})", widths=(1,))
