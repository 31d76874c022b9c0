"""HPET: a High Precision Event Timer block (IA-PC HPET specification 1.0a) at 0xFED00000.

One 64-bit main counter at 100 MHz (period 10 ns) on the machine's virtual clock and three
comparators (timers 0-2), each 64-bit capable, periodic capable, with a 32-bit mode.

Registers (32-bit accesses; the engine splits 64-bit ones; offsets within the 1 KiB block):
  000 GCAP_ID    revision 1, 3 timers, 64-bit counter, legacy replacement capable, vendor
                 0x8086, period 10 000 000 fs
  010 GEN_CONF   ENABLE_CNF (the counter runs), LEG_RT_CNF (legacy replacement: timer 0 drives
                 ISA IRQ 0, i.e. IOAPIC pin 2, and timer 1 ISA IRQ 8, and the PIT's and RTC's
                 own outputs are cut from those lines)
  020 GINTR_STA  level-triggered interrupt status, write 1 to clear (which lowers the line)
  0F0 MAIN_CNT   readable; writable while the counter is halted
  100+20n        Tn_CONF_CAP: INT_TYPE (edge/level), INT_ENB, TYPE (periodic), VAL_SET,
                 32MODE, INT_ROUTE (IOAPIC pins 20-23 outside legacy replacement); FSB
                 (MSI) delivery is not offered and is a fail-stop
  108+20n        Tn_COMPARATOR: in periodic mode a write sets the period, and with VAL_SET
                 also the next match value (VAL_SET then clears itself)

A timer fires when the counter reaches its comparator (in 32-bit mode, its low 32 bits), the
next event sitting on the machine's deadline queue; a periodic timer then adds its period.
Guest misuse (reserved registers, writes to read-only ones, a route the capabilities do not
offer) is a fail-stop naming the register.
"""
from vmm.devices import register
from vmm.devices.base import Device

DEFAULT_BASE = 0xFED00000
SIZE = 0x400
PERIOD_FS = 10_000_000                   # 10 ns: a 100 MHz counter
NS_PER_TICK = PERIOD_FS // 1_000_000
TIMERS = 3
VENDOR = 0x8086
ROUTE_CAP = 0x00F00000                   # IOAPIC pins 20-23
MIN_TICK = 100
MASK64 = (1 << 64) - 1
MAX_CATCHUP_NS = 50_000_000

ENABLE_CNF, LEG_RT_CNF = 1 << 0, 1 << 1
TN_INT_TYPE, TN_INT_ENB, TN_TYPE, TN_PER_CAP, TN_SIZE_CAP, TN_VAL_SET, TN_32MODE = \
    1 << 1, 1 << 2, 1 << 3, 1 << 4, 1 << 5, 1 << 6, 1 << 8
TN_ROUTE_SHIFT, TN_ROUTE_MASK = 9, 0x1F
TN_FSB_EN, TN_FSB_CAP = 1 << 14, 1 << 15
TN_WRITABLE = TN_INT_TYPE | TN_INT_ENB | TN_TYPE | TN_VAL_SET | TN_32MODE | \
    (TN_ROUTE_MASK << TN_ROUTE_SHIFT) | TN_FSB_EN


class Comparator:
    def __init__(self, index, owner=None):
        self.index = index
        self.owner = owner              # the HPET (its timers call back through `fire`)
        self.reset()

    def fire(self, when_ns):
        self.owner._fire(self, when_ns)

    def reset(self):
        self.config = 0
        self.cmp = MASK64
        self.period = 0
        self.timer = None
        self.fires = 0

    @property
    def caps(self):
        return TN_PER_CAP | TN_SIZE_CAP | (ROUTE_CAP << 32)


@register("HPET")
class HPET(Device):
    def __init__(self, dev_id, base=DEFAULT_BASE):
        super().__init__(dev_id)
        self.base = base
        self.min_tick = MIN_TICK
        self.comparators = [Comparator(i, self) for i in range(TIMERS)]
        self._pin_lines = {}                 # IOAPIC pin -> its IrqLine (one per pin: levels)
        self.power_on()

    def attach(self, ctx):
        self.ctx = ctx
        self.clock = ctx.clock
        self.timers = ctx.timers
        ctx.hpet = self
        ctx.mmio.attach(self.base, SIZE, self._read, self._write, self.id, widths=(4,))
        self.legacy_lines = (ctx.replacement_line(0), ctx.replacement_line(8))

    def power_on(self):
        self.conf = 0
        self.isr = 0
        self._counter_base = 0               # counter value when it was last started/written
        self._start_ns = 0
        for c in self.comparators:
            if c.timer is not None and hasattr(self, "timers"):
                self.timers.cancel(c.timer)
            c.reset()

    def reset(self):
        if getattr(self, "ctx", None) is not None:
            self.ctx.replace_isa_line(0, False)
            self.ctx.replace_isa_line(8, False)
        self.power_on()

    def capabilities(self):
        return 1 | ((TIMERS - 1) << 8) | (1 << 13) | (1 << 15) | (VENDOR << 16) | (PERIOD_FS << 32)

    # -- the counter ---------------------------------------------------------------------------
    def counter(self, now=None):
        if not self.conf & ENABLE_CNF:
            return self._counter_base
        now = self.clock.now_ns() if now is None else now
        return (self._counter_base + (now - self._start_ns) // NS_PER_TICK) & MASK64

    def _ns_at(self, count):
        """Virtual time at which the running counter reads `count` (>= the current value)."""
        return self._start_ns + (count - self._counter_base) * NS_PER_TICK

    # -- comparators ---------------------------------------------------------------------------
    def _schedule(self, c, just_fired=False):
        if c.timer is not None:
            self.timers.cancel(c.timer)
            c.timer = None
        if not self.conf & ENABLE_CNF or not c.config & TN_INT_ENB:
            return                  # nothing to deliver: the comparator is looked at when read
        mask = 0xFFFFFFFF if c.config & TN_32MODE else MASK64
        now_count = self.counter()
        now = self.clock.now_ns()
        if c.config & TN_32MODE:       # a 32-bit match passed: within half a wrap behind
            passed = ((now_count - c.cmp) & mask) <= mask >> 1
        else:
            passed = c.cmp <= now_count
        if c.config & TN_TYPE and c.period and passed:
            when = now              # a periodic match already passed: deliver it (catch up)
            target = c.cmp
        else:
            delta = (c.cmp - now_count) & mask
            if just_fired and delta == 0:
                delta = mask + 1    # a one-shot matches again only when the counter wraps
            if delta > 1 << 62:     # a 64-bit comparator behind the counter: never in practice
                return
            target = now_count + delta
            when = max(self._ns_at(target), now)
        if self.log is not None and self.log.on:
            self.log.debug(f"timer {c.index}: fires at counter {target:#x} (in {when - now} ns)")
        c.timer = self.timers.schedule(when, c.fire, f"hpet-t{c.index}")

    def _fire(self, c, when_ns):
        c.timer = None
        c.fires += 1
        if self.log is not None and self.log.on:
            self.log.debug(f"timer {c.index} fired (counter {self.counter():#x})")
        if c.config & TN_INT_ENB:
            self._interrupt(c)
        if c.config & TN_TYPE and c.period:
            mask = 0xFFFFFFFF if c.config & TN_32MODE else MASK64
            now = self.counter()
            c.cmp = (c.cmp + c.period) & mask
            lag = (now - c.cmp) & mask if c.config & TN_32MODE else now - c.cmp
            if 0 < lag <= mask >> 1 and lag * NS_PER_TICK > MAX_CATCHUP_NS:
                c.cmp = (now + c.period) & mask     # a long backlog (a clock jump): coalesce
        self._schedule(c, just_fired=True)

    def _line(self, c):
        if self.conf & LEG_RT_CNF and c.index < 2:
            return self.legacy_lines[c.index]
        route = (c.config >> TN_ROUTE_SHIFT) & TN_ROUTE_MASK
        ioapic = self.ctx.ioapic
        if ioapic is None:
            self.unimplemented(f"timer {c.index} fires with route {route} outside legacy "
                               f"replacement, and there is no IOAPIC")
        line = self._pin_lines.get(route)
        if line is None:
            line = self._pin_lines[route] = ioapic.pin_line(route)
        return line

    def _interrupt(self, c):
        line = self._line(c)
        if c.config & TN_INT_TYPE:               # level: held until GINTR_STA is cleared
            self.isr |= 1 << c.index
            line.set(1)
        else:
            line.pulse()

    # -- registers -------------------------------------------------------------------------------
    def _misuse(self, offset, what):
        self.unimplemented(f"{self._reg_name(offset)} (offset {offset:#05x}): {what}",
                           register=self._reg_name(offset))

    @staticmethod
    def _reg_name(offset):
        names = {0x000: "GCAP_ID", 0x004: "COUNTER_CLK_PERIOD", 0x010: "GEN_CONF",
                 0x014: "GEN_CONF high", 0x020: "GINTR_STA", 0x024: "GINTR_STA high",
                 0x0F0: "MAIN_CNT", 0x0F4: "MAIN_CNT high"}
        if offset in names:
            return names[offset]
        if 0x100 <= offset < 0x100 + 0x20 * TIMERS:
            n, r = divmod(offset - 0x100, 0x20)
            return {0x00: f"T{n}_CONF_CAP", 0x04: f"T{n}_CONF_CAP high",
                    0x08: f"T{n}_COMPARATOR", 0x0C: f"T{n}_COMPARATOR high",
                    0x10: f"T{n}_FSB_ROUTE", 0x14: f"T{n}_FSB_ROUTE high"}.get(r, f"{offset:#x}")
        return f"reserved register {offset:#05x}"

    def _read(self, offset, size):
        if offset & 3:
            self._misuse(offset, "unaligned read")
        reg, high = offset & ~7, offset & 4
        value = self._read64(reg, offset)
        return (value >> 32) if high else value & 0xFFFFFFFF

    def _read64(self, reg, offset):
        if reg == 0x000:
            return self.capabilities()
        if reg == 0x010:
            return self.conf
        if reg == 0x020:
            return self.isr
        if reg == 0x0F0:
            return self.counter()
        if 0x100 <= reg < 0x100 + 0x20 * TIMERS:
            c = self.comparators[(reg - 0x100) // 0x20]
            r = (reg - 0x100) % 0x20
            if r == 0x00:
                return c.config | c.caps
            if r == 0x08:
                return c.cmp & (0xFFFFFFFF if c.config & TN_32MODE else MASK64)
            if r == 0x10:
                return 0
        self._misuse(offset, "read of a reserved register")

    def _write(self, offset, size, value):
        if offset & 3:
            self._misuse(offset, f"unaligned write of {value:#x}")
        reg, high = offset & ~7, bool(offset & 4)
        if self.log is not None and self.log.on:
            self.log.debug(f"{self._reg_name(offset)} <- {value:#010x}")
        if reg == 0x000:
            self._misuse(offset, f"write of {value:#x} to a read-only register")
        elif reg == 0x010:
            if not high:
                self._write_conf(value & (ENABLE_CNF | LEG_RT_CNF))
        elif reg == 0x020:
            if not high:
                cleared = value & self.isr
                self.isr &= ~cleared
                for c in self.comparators:
                    if cleared & (1 << c.index):
                        self._line(c).set(0)
        elif reg == 0x0F0:
            if self.conf & ENABLE_CNF:
                self._misuse(offset, f"write of {value:#x} while the counter runs")
            shift = 32 if high else 0
            self._counter_base = (self._counter_base & ~(0xFFFFFFFF << shift)) | (value << shift)
        elif 0x100 <= reg < 0x100 + 0x20 * TIMERS:
            c = self.comparators[(reg - 0x100) // 0x20]
            r = (reg - 0x100) % 0x20
            if r == 0x00:
                if not high:
                    self._write_tn_conf(c, offset, value)
            elif r == 0x08:
                self._write_cmp(c, high, value)
            else:
                self._misuse(offset, f"write of {value:#x}: FSB (MSI) delivery is not offered")
        else:
            self._misuse(offset, f"write of {value:#x} to a reserved register")

    def _write_conf(self, value):
        old = self.conf
        if (value ^ old) & ENABLE_CNF:
            if value & ENABLE_CNF:
                self._start_ns = self.clock.now_ns()
            else:
                self._counter_base = self.counter()
        self.conf = value
        if (value ^ old) & LEG_RT_CNF:
            legacy = bool(value & LEG_RT_CNF)
            self.ctx.replace_isa_line(0, legacy)
            self.ctx.replace_isa_line(8, legacy)
        for c in self.comparators:
            self._schedule(c)

    def _write_tn_conf(self, c, offset, value):
        if value & TN_FSB_EN:
            self._misuse(offset, f"{value:#x}: FSB (MSI) delivery is not offered")
        route = (value >> TN_ROUTE_SHIFT) & TN_ROUTE_MASK
        if value & TN_INT_ENB and not (self.conf & LEG_RT_CNF and c.index < 2) and \
                not ROUTE_CAP & (1 << route):
            self._misuse(offset, f"{value:#x}: IOAPIC pin {route} is not in the route "
                                 f"capabilities (pins 20-23)")
        was_level = c.config & TN_INT_TYPE
        c.config = value & TN_WRITABLE
        if was_level and not c.config & TN_INT_TYPE and self.isr & (1 << c.index):
            self.isr &= ~(1 << c.index)
            self._line(c).set(0)
        if c.config & TN_32MODE:
            c.cmp &= 0xFFFFFFFF
        self._schedule(c)

    def _write_cmp(self, c, high, value):
        shift = 32 if high else 0
        if high and c.config & TN_32MODE:
            return                              # the upper half does not exist in 32-bit mode
        keep = ~(0xFFFFFFFF << shift) & MASK64
        periodic = c.config & TN_TYPE
        if not periodic or c.config & TN_VAL_SET:
            c.cmp = (c.cmp & keep) | (value << shift)
        if periodic:
            c.period = (c.period & keep) | (value << shift)
        c.config &= ~TN_VAL_SET
        self._schedule(c)
