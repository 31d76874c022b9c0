"""GENERIC: Palacios' generic device, claiming port and memory ranges a guest may touch.

    <device class="GENERIC" id="generic" [forward="physical_device"]>
        <ports>  <start>0x3c0</start> <end>0x3df</end> <mode>PRINT_AND_IGNORE</mode> </ports>
        <memory> <start>0xd0000</start> <end>0xd0fff</end> <mode>IGNORE</mode> </memory>
    </device>

Each `<ports>` or `<memory>` element is one inclusive range. Numbers are hexadecimal with or
without `0x`, as Palacios' atox reads them. Modes (case-insensitive, with or without the
`GENERIC_` prefix): IGNORE, PRINT_AND_IGNORE, PASSTHROUGH, PRINT_AND_PASSTHROUGH.

- IGNORE: reads return 0 (Palacios returns a zeroed buffer), writes are dropped.
- PRINT_*: additionally every access goes to the debug log (`--debug generic`), as Palacios'
  PrintDebug does.
- PASSTHROUGH: the host hardware this VMM has is its serial ports: ports of COM1-COM4
  (0x3F8, 0x2F8, 0x3E8, 0x2E8, eight each) reach the VMM's own 16550 UARTs (COM1 is the
  console, `--serial`), as Palacios' passthrough reaches the host's. Other ports have no host
  hardware behind them and behave as IGNORE, said once in the VMM log; a memory range cannot
  stand in for host memory and raises Unimplemented. `forward="host_device"` (Palacios host devices) is a configuration error.
"""
from v3tools.errors import ConfigError
from vmm.devices import register
from vmm.devices.base import Device

MODES = ("IGNORE", "PRINT_AND_IGNORE", "PASSTHROUGH", "PRINT_AND_PASSTHROUGH")


class Range:
    __slots__ = ("kind", "start", "end", "mode", "noted", "host")

    def __init__(self, kind, start, end, mode):
        self.kind, self.start, self.end, self.mode = kind, start, end, mode
        self.noted = False
        self.host = {}          # port -> name of the host COM port behind it (passthrough)

    @property
    def prints(self):
        return self.mode.startswith("PRINT")

    @property
    def passthrough(self):
        return self.mode.endswith("PASSTHROUGH")

    def __str__(self):
        return f"{self.kind} {self.start:#x}-{self.end:#x} ({self.mode})"


@register("GENERIC")
class Generic(Device):
    def __init__(self, dev_id, ranges):
        super().__init__(dev_id)
        self.ranges = ranges
        self.host_serial = None     # the host's UARTs, when a passthrough range covers a COM port

    @classmethod
    def from_spec(cls, spec, ctx):
        forward = (spec.value("forward") or "physical_device").lower()
        if forward == "host_device":
            raise ConfigError(f"{spec.where()}: GENERIC '{spec.id}': forward=\"host_device\" "
                              f"needs Palacios host devices, which this VMM does not have")
        if forward != "physical_device":
            raise ConfigError(f"{spec.where()}: GENERIC '{spec.id}': unknown forward "
                              f"\"{forward}\" (physical_device or host_device)")
        ranges = []
        for kind, tag, limit in (("port", "ports", 0xFFFF), ("mmio", "memory", 0xFFFFFFFF)):
            for r in spec.all(tag):
                start, end = _hex(r, "start", spec), _hex(r, "end", spec)
                if start > end or end > limit:
                    raise ConfigError(f"{r.where()}: GENERIC '{spec.id}': bad <{tag}> range "
                                      f"{start:#x}-{end:#x}")
                ranges.append(Range(kind, start, end, _mode(r, spec)))
        return cls(spec.id, ranges)

    def attach(self, ctx):
        from vmm.devices.serial import com_port_of, host_serial
        for r in self.ranges:
            if r.kind == "mmio" and r.passthrough:
                self.unimplemented(f"memory passthrough of {r.start:#x}-{r.end:#x}: there is no "
                                   f"host memory to forward to")
            if r.kind == "port" and r.passthrough:
                r.host = {p: com_port_of(p) for p in range(r.start, r.end + 1) if com_port_of(p)}
                if r.host and self.host_serial is None:
                    self.host_serial = host_serial(ctx)
            bus = ctx.io if r.kind == "port" else ctx.mmio
            bus.attach(r.start, r.end - r.start + 1, self._reader(r), self._writer(r),
                       owner=f"{self.id} ({r.mode.lower()})", widths=(1, 2, 4, 8))

    def _note_passthrough(self, r):
        if r.passthrough and not r.noted:
            r.noted = True
            self.log.info(f"{r}: no host hardware to pass through to; ignoring accesses")

    def _reader(self, r):
        def read(offset, size):
            port = r.start + offset
            if port in r.host:
                value = 0
                for i in range(size):       # a 16550 has byte registers
                    if port + i in r.host:
                        u = self.host_serial.port(r.host[port + i])
                        value |= u.read(port + i - u.base, 1) << (8 * i)
                return value
            self._note_passthrough(r)
            if r.prints:
                self.log.debug(f"read  {r.kind} {r.start + offset:#x} size {size} -> 0 ({r.mode})")
            return 0
        return read

    def _writer(self, r):
        def write(offset, size, value):
            port = r.start + offset
            if port in r.host:
                for i in range(size):
                    if port + i in r.host:
                        u = self.host_serial.port(r.host[port + i])
                        u.write(port + i - u.base, 1, (value >> (8 * i)) & 0xFF)
                return
            self._note_passthrough(r)
            if r.prints:
                self.log.debug(f"write {r.kind} {r.start + offset:#x} size {size} <- {value:#x} "
                               f"({r.mode})")
        return write


def _hex(r, name, spec):
    text = r.value(name)
    if text is None:
        raise ConfigError(f"{r.where()}: GENERIC '{spec.id}': <{r.tag}> needs <{name}>")
    digits = text.strip()
    if digits[:2].lower() == "0x":
        digits = digits[2:]
    try:
        return int(digits, 16)
    except ValueError:
        raise ConfigError(f"{r.where()}: GENERIC '{spec.id}': <{name}> is not a hexadecimal "
                          f"number: {text!r}")


def _mode(r, spec):
    text = r.value("mode")
    if text is None:
        raise ConfigError(f"{r.where()}: GENERIC '{spec.id}': <{r.tag}> needs <mode>")
    mode = text.strip().upper()
    if mode.startswith("GENERIC_"):
        mode = mode[len("GENERIC_"):]
    if mode not in MODES:
        raise ConfigError(f"{r.where()}: GENERIC '{spec.id}': unknown mode {text!r} "
                          f"(one of {', '.join(MODES)})")
    return mode
