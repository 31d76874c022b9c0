"""NVRAM: the MC146818 real-time clock and its 128 bytes of CMOS RAM.

Ports (PC port list): 0x70 index (bit 7 masks NMI; write-only), 0x71 data. IRQ 8.
Behaviour follows the Motorola MC146818A datasheet: time/calendar and alarm registers 0x00-0x09
in BCD or binary (register B DM) and 12 or 24 hour form, status registers A-D, periodic,
alarm and update-ended interrupts. The CMOS layout (memory sizes, drives, boot order, century,
checksum) is the IBM AT one with the Bochs/SeaBIOS extensions.

Time is lazy. The RTC's time of day is `clock.now_ns() + offset` (ns since the Unix epoch,
UTC), where offset starts as the host's wall-clock time at attach. Flags are accumulated over
the interval since they were last brought up to date; a timer is scheduled only for the next
event that can raise IRQ 8 (and none while the IRQ output is already asserted: the chip keeps
IRQ asserted until register C is read). The update cycle happens at each whole second; UIP is
set for the 244 us before it. While SET is 1 or the divider is held in reset the time stands
still; leaving divider reset makes the first update happen 500 ms later.
"""
import time
from datetime import datetime, timedelta

from vmm.devices import register
from vmm.devices.base import Device

INDEX_PORT = 0x70
NMI_MASK = 0x80
INDEX_MASK = 0x7F

SEC, SEC_ALARM, MIN, MIN_ALARM, HOUR, HOUR_ALARM = 0x00, 0x01, 0x02, 0x03, 0x04, 0x05
DOW, DAY, MONTH, YEAR = 0x06, 0x07, 0x08, 0x09
REG_A, REG_B, REG_C, REG_D = 0x0A, 0x0B, 0x0C, 0x0D
MAX_PF_BACKLOG_NS = 50_000_000    # periodic interrupts re-raised after a late register C read
CENTURY = 0x32
TIME_REGS = (SEC, MIN, HOUR, DOW, DAY, MONTH, YEAR, CENTURY)
ALARMS = ((SEC_ALARM, SEC), (MIN_ALARM, MIN), (HOUR_ALARM, HOUR))
ALARM_DONT_CARE = 0xC0

A_UIP = 0x80                      # update in progress
A_DV_MASK = 0x70                  # divider: 010 = 32.768 kHz running, 11x = reset
A_DV_NORMAL = 0x20
A_RS_MASK = 0x0F                  # periodic rate select
B_SET = 0x80
B_PIE = 0x40
B_AIE = 0x20
B_UIE = 0x10
B_SQWE = 0x08
B_DM_BINARY = 0x04
B_24H = 0x02
B_DSE = 0x01
C_IRQF, C_PF, C_AF, C_UF = 0x80, 0x40, 0x20, 0x10
D_VRT = 0x80                      # valid RAM and time: the battery is good

NS = 1_000_000_000
UIP_NS = 244_000                  # UIP rises this long before the update
EPOCH = datetime(1970, 1, 1)

# CMOS RAM layout
CMOS_FLOPPY = 0x10                # drive A type << 4 | drive B type
CMOS_DISK = 0x12                  # disk 0 type << 4 | disk 1 type (0xF: see 0x19/0x1A)
CMOS_EQUIPMENT = 0x14
CMOS_BASE_MEM = 0x15              # 0x15/0x16: base memory in KiB
CMOS_EXT_MEM = 0x17               # 0x17/0x18: KiB above 1 MiB (also 0x30/0x31)
CMOS_DISK0_EXT = 0x19             # extended type of disk 0 (47 = user-defined)
CMOS_DISK0_PARAMS = 0x1B          # 9 bytes of user-defined geometry for disk 0
CMOS_DISK1_PARAMS = 0x24          # ... and for disk 1
CMOS_CHECKSUM = 0x2E              # 0x2E high, 0x2F low: sum of 0x10-0x2D
CMOS_EXT_MEM2 = 0x30
CMOS_MEM_ABOVE_16M = 0x34         # 0x34/0x35: 64 KiB units between 16 MiB and 4 GiB
CMOS_BOOT_FLAG1 = 0x38            # bits 7-4: third boot device
CMOS_BOOT_FLAG2 = 0x3D            # bits 3-0 first, bits 7-4 second boot device
CMOS_MEM_ABOVE_4G = 0x5B          # 0x5B-0x5D: 64 KiB units above 4 GiB
CMOS_CPU_COUNT = 0x5F             # CPUs - 1 (SeaBIOS)

PCI_HOLE_START = 0xE0000000       # RAM above this is remapped above 4 GiB
BOOT_CODES = {"floppy": 1, "disk": 2, "hd": 2, "cdrom": 3, "cd": 3}
FLOPPY_TYPES = {368640: 1, 1228800: 2, 737280: 3, 1474560: 4, 2949120: 5}
DISK_USER_TYPE = 47


def bcd(v):
    return (v // 10) << 4 | v % 10


def from_bcd(v):
    return (v >> 4) * 10 + (v & 0x0F)


@register("NVRAM")
class NVRAM(Device):
    """MC146818 RTC + CMOS RAM on ports 0x70-0x71, IRQ 8."""

    def __init__(self, dev_id, storage=None, start_time_ns=None):
        super().__init__(dev_id)
        self.storage = storage            # Palacios' IDE id: accepted, drives come from ctx
        self.start_time_ns = start_time_ns
        self.ram = bytearray(128)
        self.index = 0
        self.nmi_masked = False
        self.reg_a = A_DV_NORMAL | 0x06   # 1024 Hz periodic rate, as BIOSes program it
        self.reg_b = B_24H
        self.flags = 0                    # PF | AF | UF
        self.dow_delta = 0
        self.frozen = None                # {reg: binary value} while the time stands still
        self.held = False                 # frozen because a running write made an invalid date
        self._timer = None
        self._layout_done = False

    @classmethod
    def from_spec(cls, spec, ctx):
        return cls(spec.id, storage=spec.value("storage"))

    def attach(self, ctx):
        self.ctx = ctx
        self.clock = ctx.clock
        self.timers = ctx.timers
        self.irq8 = ctx.irq(8)
        now = self.clock.now_ns()
        wall = self.start_time_ns if self.start_time_ns is not None else time.time_ns()
        self.offset = wall - now
        self.div_origin = now             # phase of the periodic interrupt
        self.pf_backlog = 0               # periodic interrupts owed to a slow guest
        self.synced = now
        ctx.io.attach(INDEX_PORT, 2, self._read, self._write, self.id, widths=(1,))

    def reset(self):
        """The RTC and CMOS are battery-backed: a reset only re-derives the BIOS layout."""
        self._layout()
        self._update_irq()

    # -- ports ----------------------------------------------------------------------------------
    def _read(self, offset, size):
        if offset == 0:
            return 0xFF                   # the index register is write-only
        if not self._layout_done:
            self._layout()
        reg = self.index
        if reg in TIME_REGS:
            value = self._encode(reg, self._fields()[reg])
        elif reg == REG_A:
            value = self.reg_a | (A_UIP if self._uip() else 0)
        elif reg == REG_B:
            value = self.reg_b
        elif reg == REG_C:
            value = self._read_c()
        elif reg == REG_D:
            value = D_VRT
        else:
            value = self.ram[reg]
        if self.log.on:
            self.log.debug(f"read  [{reg:#04x}] -> {value:#04x}")
        return value

    def _write(self, offset, size, value):
        if offset == 0:
            self.index = value & INDEX_MASK
            self.nmi_masked = bool(value & NMI_MASK)
            return
        if not self._layout_done:
            self._layout()
        reg = self.index
        if self.log.on:
            self.log.debug(f"write [{reg:#04x}] <- {value:#04x}")
        if reg in TIME_REGS:
            self._write_time(reg, value)
        elif reg == REG_A:
            self._write_a(value)
        elif reg == REG_B:
            self._write_b(value)
        elif reg in (REG_C, REG_D):
            pass                          # read-only
        else:
            self.ram[reg] = value

    # -- time of day ----------------------------------------------------------------------------
    def _rtc_ns(self):
        return self.clock.now_ns() + self.offset

    def _enabled(self):
        return not self.reg_b & B_SET and (self.reg_a & A_DV_MASK) == A_DV_NORMAL

    def _running(self):
        return self._enabled() and not self.held

    def _fields(self, second=None):
        if second is None and self.frozen is not None:
            return self.frozen
        if second is None:
            second = self._rtc_ns() // NS
        dt = EPOCH + timedelta(seconds=second)
        dow = (dt.isoweekday() % 7 + self.dow_delta) % 7 + 1     # Sunday = 1
        return {SEC: dt.second, MIN: dt.minute, HOUR: dt.hour, DOW: dow, DAY: dt.day,
                MONTH: dt.month, YEAR: dt.year % 100, CENTURY: dt.year // 100}

    def _try_seconds(self, f):
        """Seconds since the epoch of the fields `f` (and adopt their day of week), or None."""
        try:
            dt = datetime(f[CENTURY] * 100 + f[YEAR], f[MONTH], f[DAY], f[HOUR], f[MIN], f[SEC])
        except ValueError:
            return None
        second = int((dt - EPOCH).total_seconds())
        self.dow_delta = 0
        self.dow_delta = (f[DOW] - self._fields(second)[DOW]) % 7
        return second

    def _encode(self, reg, v):
        pm = 0
        if reg == HOUR and not self.reg_b & B_24H:
            pm = 0x80 if v >= 12 else 0
            v = v % 12 or 12
        return (v if self.reg_b & B_DM_BINARY else bcd(v)) | pm

    def _decode(self, reg, raw):
        if reg == HOUR and not self.reg_b & B_24H:
            pm, raw = raw & 0x80, raw & 0x7F
            v = raw if self.reg_b & B_DM_BINARY else from_bcd(raw)
            return v % 12 + (12 if pm else 0)
        return raw if self.reg_b & B_DM_BINARY else from_bcd(raw)

    def _write_time(self, reg, value):
        """Writes while the clock runs take effect at once. One that makes the date impossible
        (a BIOS writing year, month and day one by one) holds the time until the fields form a
        valid date again; the clock then restarts from it."""
        if self.frozen is not None:
            self.frozen[reg] = self._decode(reg, value)
            if self.held and self._enabled() and self._try_seconds(self.frozen) is not None:
                self.held = False
                self._thaw(NS)
                self._reschedule()
            return
        self._sync()
        fraction = self._rtc_ns() % NS
        f = dict(self._fields())
        f[reg] = self._decode(reg, value)
        second = self._try_seconds(f)
        if second is None:
            self.frozen, self.held = f, True
            if self.log.on:
                self.log.debug(f"time held at the impossible date {f}")
        else:
            self.offset = second * NS + fraction - self.clock.now_ns()
        self.synced = self.clock.now_ns()
        self._reschedule()

    def _freeze(self):
        self.frozen = dict(self._fields())

    def _thaw(self, first_update_ns):
        second = self._try_seconds(self.frozen)
        if second is None:
            self.unimplemented(f"RTC started with an impossible date/time {self.frozen}")
        self.frozen = None
        self.offset = second * NS + (NS - first_update_ns) - self.clock.now_ns()

    def _uip(self):
        return self._running() and self._rtc_ns() % NS >= NS - UIP_NS

    # -- status registers -----------------------------------------------------------------------
    def _write_a(self, value):
        dv = value & A_DV_MASK
        if dv not in (A_DV_NORMAL, 0x60, 0x70):
            self.unimplemented(f"register A divider {dv >> 4:#05b} (only 010 and reset 11x)")
        self._sync()
        was_enabled, was_reset = self._enabled(), (self.reg_a & A_DV_MASK) != A_DV_NORMAL
        self.reg_a = value & ~A_UIP
        if was_reset and dv == A_DV_NORMAL:
            self.div_origin = self.clock.now_ns()
        self._transition(was_enabled, NS // 2)
        self._update_irq()

    def _write_b(self, value):
        if value & B_DSE:
            self.unimplemented("register B DSE (automatic daylight saving)")
        self._sync()
        was_enabled = self._enabled()
        if value & B_SET:
            value &= ~B_UIE                 # SET going high clears UIE
        self.reg_b = value
        self._transition(was_enabled, NS)
        self._update_irq()

    def _transition(self, was_enabled, first_update_ns):
        enabled = self._enabled()
        if was_enabled and not enabled:
            if self.frozen is None:
                self._freeze()
        elif enabled and not was_enabled:
            self.held = False
            self._thaw(first_update_ns)
        self.synced = self.clock.now_ns()

    def _read_c(self):
        self._sync()
        value = self.flags | (C_IRQF if self._irqf() else 0)
        self.flags = 0
        if self.pf_backlog:
            self.pf_backlog -= 1            # this read acknowledges one periodic interrupt
            if self.pf_backlog and self.reg_b & B_PIE:
                self.irq8.set(False)        # IRQF drops with the read, then rises again:
                self.flags |= C_PF          # a new edge for the next owed interrupt
        self._update_irq()
        return value

    def _irqf(self):
        b = self.reg_b
        return bool(self.flags & ((C_PF if b & B_PIE else 0) | (C_AF if b & B_AIE else 0)
                                  | (C_UF if b & B_UIE else 0)))

    # -- events ---------------------------------------------------------------------------------
    def _period_shift(self):
        """Periodic interrupt period is 2**shift / 65536 s, or None when off."""
        rs = self.reg_a & A_RS_MASK
        if not rs or (self.reg_a & A_DV_MASK) != A_DV_NORMAL:
            return None
        return rs + 7 if rs < 3 else rs

    def _periodic_edges_until(self, ns, shift):
        return (ns - self.div_origin) * 65536 // (NS << shift)

    def _sync(self):
        now = self.clock.now_ns()
        if now <= self.synced:
            return
        shift = self._period_shift()
        if shift is not None:
            edges = (self._periodic_edges_until(now, shift)
                     - self._periodic_edges_until(self.synced, shift))
            if edges > 0:
                # Periodic interrupts the guest could not see yet (its handler had not read
                # register C because the host was busy) are counted and re-raised one per
                # read of register C, up to MAX_PF_BACKLOG_NS worth; beyond that (a clock
                # jump) they are dropped, as PF coalesces on the chip.
                if self.reg_b & B_PIE:
                    cap = max(1, MAX_PF_BACKLOG_NS * 65536 // (NS << shift))
                    self.pf_backlog = min(cap, self.pf_backlog + edges)
                self.flags |= C_PF
        if self._running():
            s0, s1 = (self.synced + self.offset) // NS, (now + self.offset) // NS
            if s1 > s0:
                self.flags |= C_UF
                alarm = self._next_alarm(s0)
                if alarm is not None and alarm <= s1:
                    self.flags |= C_AF
        self.synced = now

    def _alarm_matches(self, f, reg_pair):
        alarm_reg, reg = reg_pair
        a = self.ram[alarm_reg]
        return a & ALARM_DONT_CARE == ALARM_DONT_CARE or a == self._encode(reg, f[reg])

    def _next_alarm(self, second):
        """The first whole second after `second` whose time matches the alarm, or None."""
        t, end = second + 1, second + 86400 + 1
        while t <= end:
            f = self._fields(t)
            if not self._alarm_matches(f, ALARMS[2]):
                t += 3600 - t % 3600
            elif not self._alarm_matches(f, ALARMS[1]):
                t += 60 - t % 60
            elif not self._alarm_matches(f, ALARMS[0]):
                t += 1
            else:
                return t
        return None

    def _next_event_ns(self):
        now = self.clock.now_ns()
        candidates = []
        shift = self._period_shift()
        if self.reg_b & B_PIE and shift is not None:
            k = self._periodic_edges_until(now, shift) + 1
            candidates.append(self.div_origin - (-(k * NS << shift) // 65536))
        if self._running() and self.reg_b & (B_UIE | B_AIE):
            s = (now + self.offset) // NS
            if self.reg_b & B_UIE:
                candidates.append((s + 1) * NS - self.offset)
            if self.reg_b & B_AIE:
                alarm = self._next_alarm(s)
                if alarm is not None:
                    candidates.append(alarm * NS - self.offset)
        return min(candidates) if candidates else None

    def _update_irq(self):
        self.irq8.set(self._irqf())
        self._reschedule()

    def _reschedule(self):
        self.timers.cancel(self._timer)
        self._timer = None
        if self._irqf():
            return                        # IRQ 8 stays asserted until register C is read
        when = self._next_event_ns()
        if when is not None:
            self._timer = self.timers.schedule(when, self._event, "rtc")

    def _event(self, when_ns):
        self._timer = None
        self._sync()
        if self.log.on:
            self.log.debug(f"event at {when_ns} ns: flags {self.flags:#04x}")
        self._update_irq()

    # -- CMOS layout ----------------------------------------------------------------------------
    def _layout(self):
        self._layout_done = True
        ram, ctx = self.ram, self.ctx
        mem = ctx.memory_size
        below_4g = min(mem, PCI_HOLE_START)
        ext_kb = min(max(0, below_4g - (1 << 20)) // 1024, 0xFFFF)
        above_16m = min(max(0, below_4g - (16 << 20)) >> 16, 0xFFFF)
        above_4g = max(0, mem - below_4g) >> 16
        _put16(ram, CMOS_BASE_MEM, 640)
        _put16(ram, CMOS_EXT_MEM, ext_kb)
        _put16(ram, CMOS_EXT_MEM2, ext_kb)
        _put16(ram, CMOS_MEM_ABOVE_16M, above_16m)
        ram[CMOS_MEM_ABOVE_4G:CMOS_MEM_ABOVE_4G + 3] = min(above_4g, 0xFFFFFF).to_bytes(3, "little")
        ram[CMOS_CPU_COUNT] = 0
        self._layout_floppies()
        self._layout_disks()
        codes = [BOOT_CODES[b] for b in ctx.boot_order if b in BOOT_CODES][:3] + [0, 0, 0]
        ram[CMOS_BOOT_FLAG2] = codes[0] | codes[1] << 4
        ram[CMOS_BOOT_FLAG1] = (ram[CMOS_BOOT_FLAG1] & 0x0F) | codes[2] << 4
        _put16(ram, CMOS_CHECKSUM, sum(ram[0x10:0x2E]), big_endian=True)

    def _layout_floppies(self):
        floppies = sorted((d for d in self.ctx.drives if d.kind == "floppy"),
                          key=lambda d: d.channel)[:2]
        types = []
        for d in floppies:
            size = d.medium.num_sectors * d.medium.sector_size
            if size not in FLOPPY_TYPES:
                self.log.info(f"floppy {d.channel}: {size} bytes is no standard size; "
                              f"reporting a 1.44 MB drive")
            types.append(FLOPPY_TYPES.get(size, 4))
        types += [0, 0]
        self.ram[CMOS_FLOPPY] = types[0] << 4 | types[1]
        equipment = 0x02                                    # x87 present, VGA (bits 5-4 = 0)
        if floppies:
            equipment |= 0x01 | (len(floppies) - 1) << 6
        self.ram[CMOS_EQUIPMENT] = equipment

    def _layout_disks(self):
        ram = self.ram
        disks = sorted((d for d in self.ctx.drives if d.kind == "disk" and d.channel == 0),
                       key=lambda d: d.position)[:2]
        ram[CMOS_DISK] = 0
        ram[CMOS_DISK0_EXT:CMOS_DISK0_EXT + 2] = b"\0\0"
        ram[CMOS_DISK0_PARAMS:CMOS_DISK1_PARAMS + 9] = bytes(18)
        for d in disks:
            unit = d.position
            ram[CMOS_DISK] |= 0xF0 >> (4 * unit)
            ram[CMOS_DISK0_EXT + unit] = DISK_USER_TYPE
            sectors = d.medium.num_sectors * d.medium.sector_size // 512
            heads, spt = 16, 63
            cyls = max(1, min(sectors // (heads * spt), 16383))
            base = CMOS_DISK0_PARAMS if unit == 0 else CMOS_DISK1_PARAMS
            params = (cyls.to_bytes(2, "little") + bytes([heads]) + b"\xff\xff"
                      + bytes([0xC8]) + cyls.to_bytes(2, "little") + bytes([spt]))
            ram[base:base + 9] = params


def _put16(ram, at, value, big_endian=False):
    ram[at:at + 2] = (value & 0xFFFF).to_bytes(2, "big" if big_endian else "little")
