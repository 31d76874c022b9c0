"""8254_PIT: the programmable interval timer (three channels) and system control port B.

Ports (PC port list): 0x40-0x42 counters 0-2, 0x43 control word, 0x61 system control port B
(bit 0 gate of counter 2, bit 1 speaker data, bit 4 refresh toggle, bit 5 OUT of counter 2).
Behaviour follows the Intel 8254 datasheet (231164): modes 0-5, LSB/MSB/LSB-then-MSB access,
counter latch, read-back (status and count), BCD counting, the null count flag.

Time is lazy: the input clock (1.193182 MHz) is derived from the virtual clock as an absolute
tick number, `T = floor(now_ns * 1193182 / 1e9)`. A count written at tick T0 is loaded into the
counting element on the next clock, T0 + 1; every counter value and OUT level is computed from
the ticks elapsed since then. Channel 0 drives IRQ 0: only its next rising OUT edge is scheduled
on the timer queue. A callback that runs late schedules the following edge, so a short backlog
(the host was busy) is delivered edge by edge; a backlog longer than MAX_CATCHUP_NS (the clock
jumped) is coalesced: one IRQ 0 pulse, then the first edge after now, in the original phase.

Gates: channels 0 and 1 are tied high on the PC; channel 2's gate is port 0x61 bit 0.
"""
from vmm.devices import register
from vmm.devices.base import Device

PIT_HZ = 1193182
MAX_CATCHUP_NS = 1_000_000_000    # IRQ 0 backlog delivered edge by edge up to this lag
MAX_OWED_TICKS = 1000             # ticks owed to a guest that has not taken IRQ 0 yet
NS_PER_S = 1_000_000_000

PIT_BASE = 0x40
PORT_B = 0x61

CW_SC_SHIFT = 6                   # control word: select counter (3 = read-back)
CW_RW_SHIFT = 4                   # 0 latch, 1 LSB, 2 MSB, 3 LSB then MSB
CW_MODE_SHIFT = 1
CW_BCD = 0x01

RB_NOT_COUNT = 0x20               # read-back: 0 = latch count
RB_NOT_STATUS = 0x10              # read-back: 0 = latch status

ST_OUT = 0x80                     # status byte: OUT pin
ST_NULL = 0x40                    # status byte: null count

PB_GATE2 = 0x01                   # port 0x61
PB_SPEAKER = 0x02
PB_WRITABLE = 0x0F                # bits 2-3: parity/IOCHK check enables (stored)
PB_REFRESH = 0x10
PB_OUT2 = 0x20

RW_LSB, RW_MSB, RW_WORD = 1, 2, 3


def ticks_at(ns):
    return ns * PIT_HZ // NS_PER_S


def ns_at(tick):
    """The first virtual nanosecond at which the tick counter reads `tick`."""
    return -(-tick * NS_PER_S // PIT_HZ)


def to_bcd(value):
    return int(str(value % 10000), 16)


class _Channel:
    def __init__(self, index):
        self.index = index
        self.gate = index != 2
        self.power_on()

    def power_on(self):
        self.mode = 0
        self.rw = RW_WORD
        self.bcd = False
        self.programmed = False   # no count has been written yet: OUT low, count reads 0
        self.reload = 0           # the count as written (0 means the maximum)
        self.start = None         # tick at which the counting element was loaded (d = 0)
        self.paused_d = None      # d frozen by a low gate (modes 0 and 4)
        self.pending = None       # (count, tick) of a new count for modes 2/3
        self.write_lsb = None     # first byte of a LSB-then-MSB write
        self.read_msb = False     # LSB-then-MSB access: the next read returns the MSB
        self.latch = None         # latched count (held until fully read)
        self.status = None        # latched status byte

    @property
    def modulus(self):
        return 10000 if self.bcd else 0x10000

    @property
    def n(self):
        return self.reload or self.modulus

    def d(self, t):
        """Clock edges counted since the load; negative before the load."""
        self._apply_pending(t)
        if self.start is None:
            return None
        if self.paused_d is not None:
            return self.paused_d
        return t - self.start

    def _apply_pending(self, t):
        if self.pending is not None and t >= self.pending[1]:
            self.reload, self.start = self.pending
            self.pending = None

    # -- derived state ----------------------------------------------------------------------
    def count(self, t):
        d = self.d(t)
        if d is None or d < 0 or not self.programmed:
            return self.reload % self.modulus if self.programmed else 0
        n = self.n
        mode = self.mode
        if mode in (0, 1, 4, 5):
            return (n - d) % self.modulus
        if mode == 2:
            return (n - d % n) % self.modulus
        half_pos = d % n
        half = (n + 1) // 2
        q = half_pos if half_pos < half else half_pos - half
        return max((n & ~1) - 2 * q, 2) % self.modulus

    def out(self, t):
        if not self.programmed:
            return self.mode != 0          # after the control word: low in mode 0, else high
        mode = self.mode
        d = self.d(t)
        if mode == 0:
            return d is not None and d >= self.n
        if mode == 1:
            return d is None or d < 0 or d >= self.n
        if mode in (2, 3):
            if not self.gate or d is None or d < 0:
                return True
            if mode == 2:
                return d % self.n != self.n - 1
            return d % self.n < (self.n + 1) // 2
        return d is None or d != self.n        # modes 4 and 5: low for one clock at zero

    def null_count(self, t):
        d = self.d(t)
        return self.pending is not None or d is None or d < 0

    def next_rising_edge(self, t):
        """Absolute tick of the next rising OUT edge after tick t, or None."""
        d = self.d(t)
        if not self.programmed or d is None or self.paused_d is not None:
            return None
        n = self.n
        if self.mode == 0:
            edge = n
        elif self.mode in (2, 3):
            if not self.gate:
                return None
            edge = (max(d, 0) // n + 1) * n
            if self.pending is not None:
                return min(self.start + edge, self.pending[1])
        elif self.mode in (4, 5):
            edge = n + 1
        else:
            edge = n
        return self.start + edge if d < edge else None


@register("8254_PIT")
class PIT8254(Device):
    """Three-channel 8254 timer; channel 0 on IRQ 0, channel 2 gate/output on port 0x61."""

    def __init__(self, dev_id):
        super().__init__(dev_id)
        self.channels = [_Channel(i) for i in range(3)]
        self.port_b = 0
        self.refresh = 0
        self._timer = None

    def attach(self, ctx):
        self.ctx = ctx
        self.clock = ctx.clock
        self.timers = ctx.timers
        self.irq0 = ctx.irq(0)
        self.owed = 0                   # IRQ 0 ticks due while the previous one was pending
        ctx.on_acknowledge(0, self._irq0_taken)
        ctx.io.attach(PIT_BASE, 4, self._read, self._write, self.id, widths=(1,))
        ctx.io.attach(PORT_B, 1, self._portb_read, self._portb_write, self.id, widths=(1,))

    def reset(self):
        for ch in self.channels:
            ch.power_on()
            ch.gate = ch.index != 2
        self.port_b = 0
        self.refresh = 0
        self._reschedule()

    def _now_tick(self):
        return ticks_at(self.clock.now_ns())

    # -- ports ----------------------------------------------------------------------------------
    def _read(self, offset, size):
        if offset == 3:
            return 0xFF                    # the control word register is write-only
        ch = self.channels[offset]
        if ch.status is not None:
            value, ch.status = ch.status, None
            return value
        count = ch.latch if ch.latch is not None else self._count_value(ch)
        if ch.rw == RW_WORD:
            msb = ch.read_msb
            ch.read_msb = not msb
        else:
            msb = ch.rw == RW_MSB
        if msb or ch.rw != RW_WORD:
            ch.latch = None                # the latch is released once fully read
        return count >> 8 if msb else count & 0xFF

    def _count_value(self, ch):
        count = ch.count(self._now_tick())
        return to_bcd(count) if ch.bcd else count

    def _write(self, offset, size, value):
        if offset == 3:
            self._control(value)
            return
        ch = self.channels[offset]
        if ch.rw == RW_LSB:
            self._load(ch, value)
        elif ch.rw == RW_MSB:
            self._load(ch, value << 8)
        elif ch.write_lsb is None:
            ch.write_lsb = value
            if ch.mode == 0:               # mode 0: writing the first byte stops the count
                ch.start, ch.pending, ch.paused_d = None, None, None
                ch.programmed = True
                self._reschedule_if(ch, self._now_tick())
        else:
            lsb, ch.write_lsb = ch.write_lsb, None
            self._load(ch, lsb | value << 8)

    def _control(self, value):
        sc = value >> CW_SC_SHIFT
        if sc == 3:
            self._read_back(value)
            return
        ch = self.channels[sc]
        rw = (value >> CW_RW_SHIFT) & 3
        if rw == 0:                        # counter latch command
            if ch.latch is None:
                ch.latch = self._count_value(ch)
            return
        mode = (value >> CW_MODE_SHIFT) & 7
        ch.power_on()
        ch.rw, ch.mode, ch.bcd = rw, mode & 3 if mode >= 6 else mode, bool(value & CW_BCD)
        if self.log.on:
            self.log.debug(f"channel {ch.index}: mode {ch.mode} rw {rw} bcd {ch.bcd}")
        self._reschedule_if(ch, self._now_tick())

    def _read_back(self, value):
        t = self._now_tick()
        for ch in self.channels:
            if not value & (2 << ch.index):
                continue
            if not value & RB_NOT_STATUS and ch.status is None:
                ch.status = ((ST_OUT if ch.out(t) else 0) | (ST_NULL if ch.null_count(t) else 0)
                             | ch.rw << CW_RW_SHIFT | ch.mode << CW_MODE_SHIFT | int(ch.bcd))
            if not value & RB_NOT_COUNT and ch.latch is None:
                ch.latch = self._count_value(ch)

    def _load(self, ch, raw):
        if ch.bcd:
            digits = f"{raw:04x}"
            if not digits.isdigit():
                self.unimplemented(f"channel {ch.index}: count {raw:#06x} is not valid BCD")
            raw = int(digits)
        if ch.mode in (2, 3) and raw == 1:
            self.unimplemented(f"channel {ch.index}: count 1 in mode {ch.mode} (illegal)")
        t = self._now_tick()
        d = ch.d(t) if ch.programmed else None
        ch.programmed = True
        if ch.mode in (2, 3) and ch.gate and d is not None and d >= 0:
            # a new count takes effect at the end of the current period
            boundary = ch.pending[1] if ch.pending else ch.start + (d // ch.n + 1) * ch.n
            ch.pending = (raw, boundary)
        elif ch.mode in (1, 5):
            ch.reload = raw                # waits for a gate trigger
        else:
            ch.reload, ch.pending = raw, None
            ch.start = t + 1
            ch.paused_d = None if ch.gate else -1
        if self.log.on:
            self.log.debug(f"channel {ch.index}: count {raw} (mode {ch.mode})")
        self._reschedule_if(ch, t)

    # -- gate and port B ------------------------------------------------------------------------
    def _set_gate2(self, level):
        ch = self.channels[2]
        if level == ch.gate:
            return
        t = self._now_tick()
        d = ch.d(t)
        ch.gate = level
        if not ch.programmed:
            return
        if ch.mode in (0, 4):
            if not level and d is not None:
                ch.paused_d = d
            elif level and ch.paused_d is not None:
                # a fresh count loads on the next clock; a suspended one resumes
                ch.start = t - ch.paused_d if ch.paused_d >= 0 else t + 1
                ch.paused_d = None
        elif level:                        # modes 1, 2, 3, 5: rising gate (re)loads
            ch.start, ch.pending, ch.paused_d = t + 1, None, None

    def _portb_read(self, offset, size):
        self.refresh ^= PB_REFRESH         # toggles on reads so old BIOS delay loops end
        out2 = self.channels[2].out(self._now_tick())
        return (self.port_b & PB_WRITABLE) | self.refresh | (PB_OUT2 if out2 else 0)

    def _portb_write(self, offset, size, value):
        self.port_b = value & PB_WRITABLE
        self._set_gate2(bool(value & PB_GATE2))

    # -- IRQ 0 ----------------------------------------------------------------------------------
    def _reschedule_if(self, ch, t):
        if ch.index == 0:
            self._reschedule(t)

    def _irq0_taken(self):
        if self.owed:
            self.owed -= 1
            self.irq0.pulse()           # the next owed tick, delivered after the guest's EOI

    def _reschedule(self, t=None):
        """Schedule channel 0's next rising edge after tick `t`: the tick of the write that
        changed the channel, not the time this runs. The virtual clock follows the host's
        while an exit is handled, so on a busy host "now" can already lie past a short
        one-shot count written a moment ago (Linux's one-shot ticks are often a few dozen
        PIT clocks); an edge looked for after "now" would then be lost, and with it the
        guest's only timer. An edge already due is scheduled in the past and fires at once."""
        self.timers.cancel(self._timer)
        self._timer = None
        self.owed = 0                   # reprogrammed: older ticks are no longer owed
        edge = self.channels[0].next_rising_edge(self._now_tick() if t is None else t)
        if edge is not None:
            self._timer = self.timers.schedule(ns_at(edge), self._edge, "pit0")

    def _edge(self, when_ns):
        self._timer = None
        late = self.clock.now_ns() - when_ns
        if self.log.on:
            self.log.debug(f"IRQ 0 edge at {when_ns} ns (late {late} ns)")
        intc = self.ctx.intc
        if intc is not None and hasattr(intc, "is_requested") and intc.is_requested(0):
            # The CPU has not taken the previous tick yet (interrupts were off, or the host
            # was busy): owe this one and hand it over when the previous one is taken,
            # instead of losing it in the already-set request bit.
            self.owed = min(self.owed + 1, MAX_OWED_TICKS)
        else:
            self.irq0.pulse()
        # The next edge follows this one; only a backlog longer than MAX_CATCHUP_NS (a clock
        # jump) is coalesced into this edge.
        edge = self.channels[0].next_rising_edge(ticks_at(when_ns))
        if edge is not None and self.clock.now_ns() - ns_at(edge) > MAX_CATCHUP_NS:
            edge = self.channels[0].next_rising_edge(self._now_tick())
        if edge is not None:
            self._timer = self.timers.schedule(ns_at(edge), self._edge, "pit0")
