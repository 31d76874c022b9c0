"""LAPIC: the local APIC of the one CPU, in xAPIC mode at 0xFEE00000 (Intel SDM vol. 3A, ch. 10).

Registers (32-bit accesses at 16-byte-aligned offsets of the 4 KiB page): ID, version, TPR,
APR, PPR, EOI, RRD, LDR, DFR, SVR, ISR/TMR/IRR (8 x 32 bits each), ESR, ICR (low/high), the
LVT (timer, thermal, performance counters, LINT0, LINT1, error), and the timer's initial
count, current count and divide configuration.

- The CPU asks this device for interrupts (`has_interrupt`/`acknowledge`): the highest
  vector in IRR whose priority class is above the processor priority (PPR) moves to ISR;
  EOI retires the highest ISR vector and, for a level-triggered one (TMR), broadcasts the EOI
  to the IOAPIC (which clears that pin's remote IRR).
- The 8259A reaches the CPU through LINT0 in ExtINT mode (virtual wire). The LAPIC comes out
  of reset the way a BIOS leaves it for a PIC-mode operating system (MP specification 3.6.2.2,
  virtual wire mode): software-enabled (SVR 0x1FF), LINT0 ExtINT, LINT1 NMI, the rest masked.
  An operating system that switches to the APIC masks LINT0 (and the 8259A) itself.
- The timer counts down at the core crystal clock that CPUID leaf 0x15 reports (1 MHz, see
  vmm/cpu/cpuid.py; the SDM gives the crystal clock as the APIC timer's clock when that leaf
  enumerates it, and Linux takes its timer period from there), divided by the divide
  configuration, on the machine's one virtual clock. One-shot and periodic modes; the
  TSC-deadline mode is not advertised and is a fail-stop.
- ICR: fixed self-IPIs are delivered; an NMI to self becomes pending (`nmi_pending`) and the
  run loop delivers it as vector 2 whatever IF says, as the processor does; INIT and STARTUP
  IPIs are recorded (`ipis`) for SMP later; IPIs to other (absent) processors are recorded
  and dropped. NMI blocking until the next IRET is not modelled (the engine does not report
  IRET): a second self-NMI while the first is being handled would nest.
- Guest misuse (a reserved register, a narrower access, a reserved delivery mode or timer
  mode, an illegal vector) is a fail-stop naming the register.
- IA32_APIC_BASE is modelled in vmm/cpu/msr.py on the v3 engine (base 0xFEE00000, BSP, enabled;
  clearing the enable flag hardware-disables the APIC until reset: `hardware_disable`). The
  stock engine cannot hook the MSR (it reads 0); the LAPIC then still sits at its architectural
  default base, where the MADT and the MP table say it is.
"""
from vmm.devices import register
try:
    from vmm.devices import _apic          # register fast paths in C (optional)
except ImportError:
    _apic = None
from vmm.devices.base import Device

DEFAULT_BASE = 0xFEE00000
VERSION = 0x14                       # an integrated xAPIC
MAX_LVT = 5                          # timer, thermal, perf, LINT0, LINT1, error (no CMCI)
CRYSTAL_HZ = 1_000_000               # = vmm.cpu.cpuid.CRYSTAL_HZ (checked by the tests)

REG_NAMES = {
    0x020: "ID", 0x030: "version", 0x080: "TPR", 0x090: "APR", 0x0A0: "PPR", 0x0B0: "EOI",
    0x0C0: "RRD", 0x0D0: "LDR", 0x0E0: "DFR", 0x0F0: "SVR", 0x280: "ESR", 0x300: "ICR low",
    0x310: "ICR high", 0x320: "LVT timer", 0x330: "LVT thermal", 0x340: "LVT performance",
    0x350: "LVT LINT0", 0x360: "LVT LINT1", 0x370: "LVT error", 0x380: "timer initial count",
    0x390: "timer current count", 0x3E0: "timer divide configuration",
}
for _i in range(8):
    REG_NAMES[0x100 + 16 * _i] = f"ISR{_i}"
    REG_NAMES[0x180 + 16 * _i] = f"TMR{_i}"
    REG_NAMES[0x200 + 16 * _i] = f"IRR{_i}"

LVT_OFFSETS = (0x320, 0x330, 0x340, 0x350, 0x360, 0x370)
LVT_TIMER, LVT_THERMAL, LVT_PERF, LVT_LINT0, LVT_LINT1, LVT_ERROR = LVT_OFFSETS
MASKED = 1 << 16
DM_FIXED, DM_SMI, DM_NMI, DM_INIT, DM_STARTUP, DM_EXTINT = 0, 2, 4, 5, 6, 7
# writable bits of each LVT entry
LVT_WRITABLE = {
    LVT_TIMER: 0x700FF,          # vector, mask, timer mode
    LVT_THERMAL: 0x107FF,        # vector, delivery mode, mask
    LVT_PERF: 0x107FF,
    LVT_LINT0: 0x1A7FF,          # vector, delivery mode, polarity, trigger, mask
    LVT_LINT1: 0x1A7FF,
    LVT_ERROR: 0x100FF,          # vector, mask
}
DIVIDE = {0: 2, 1: 4, 2: 8, 3: 16, 8: 32, 9: 64, 10: 128, 11: 1}
TIMER_ONESHOT, TIMER_PERIODIC, TIMER_TSC_DEADLINE = 0, 1, 2
MAX_CATCHUP_NS = 50_000_000       # a longer periodic backlog (a clock jump) is coalesced


@register("LAPIC")
class LocalAPIC(Device):
    def __init__(self, dev_id, base=DEFAULT_BASE, apic_id=0):
        super().__init__(dev_id)
        self.base = base
        self.boot_id = apic_id
        self.extint_source = None        # the 8259A, wired to LINT0
        self.ioapic = None               # set by the IOAPIC: receives level-triggered EOIs
        self.ipis = []                   # INIT/STARTUP and other IPIs that left this CPU
        self.nmi_pending = False         # an NMI to self, for the run loop to deliver
        self._timer = None
        self.timer_fires = 0
        self.eoi_count = 0
        self._sources = {}               # vector -> ISA line it came from (for ack listeners)
        self.hw_disabled = False         # IA32_APIC_BASE's enable flag cleared (vmm/cpu/msr.py)
        self.ctx = None
        self.power_on()

    @classmethod
    def from_spec(cls, spec, ctx):
        return cls(spec.id)

    def attach(self, ctx):
        self.ctx = ctx
        self.clock = ctx.clock
        self.timers = ctx.timers
        fast = _apic.LapicFast(self) if _apic is not None else None
        ctx.mmio.attach(self.base, 0x1000, self._read, self._write, self.id, widths=(4,),
                        fast=fast)
        ctx.set_local_apic(self)

    # -- state -----------------------------------------------------------------------------------
    def power_on(self):
        self.apic_id = self.boot_id
        self.tpr = 0
        self.ldr = 0
        self.dfr = 0xFFFFFFFF
        self.irr = 0                     # 256-bit masks
        self.isr = 0
        self.tmr = 0
        self.esr = 0
        self.esr_pending = 0
        self.icr_high = 0
        self.icr_low = 0
        self.lvt = {off: MASKED for off in LVT_OFFSETS}
        self.initial_count = 0
        self.divide_conf = 0
        self._start_ns = 0
        self._start_count = 0
        # as a BIOS leaves it for a PIC-mode OS: enabled, virtual wire through LINT0
        self.svr = 0x1FF
        self.lvt[LVT_LINT0] = DM_EXTINT << 8
        self.lvt[LVT_LINT1] = DM_NMI << 8

    def reset(self):
        self.nmi_pending = False
        if self._timer is not None:
            self.timers.cancel(self._timer)
            self._timer = None
        self.power_on()
        if self.hw_disabled and self.ctx is not None:
            self.ctx.intc = self
        self.hw_disabled = False

    def hardware_disable(self):
        """IA32_APIC_BASE's global enable flag cleared (SDM vol. 3A 10.4.3): the APIC is off
        until reset. Pending and in-service interrupts are dropped, the timer stops, and the
        8259A's INTR reaches the CPU directly again."""
        if self._timer is not None:
            self.timers.cancel(self._timer)
            self._timer = None
        self.initial_count = 0
        self.irr = self.isr = self.tmr = 0
        self._sources.clear()
        self.svr &= ~0x100
        self.hw_disabled = True
        if self.ctx is not None:
            self.ctx.intc = self.ctx.legacy_intc

    @property
    def enabled(self):
        return bool(self.svr & 0x100) and not self.hw_disabled

    def _misuse(self, offset, what):
        name = REG_NAMES.get(offset, f"reserved register {offset:#05x}")
        self.unimplemented(f"{name} (offset {offset:#05x} at {self.base + offset:#x}): {what}")

    # -- priorities ------------------------------------------------------------------------------
    def _ppr(self):
        isrv = self.isr.bit_length() - 1 if self.isr else 0
        if (self.tpr >> 4) >= (isrv >> 4):
            return self.tpr & 0xFF
        return isrv & 0xF0

    def _deliverable(self):
        """The highest IRR vector above the processor priority, or None."""
        if not self.irr:
            return None
        v = self.irr.bit_length() - 1
        if (v >> 4) > (self._ppr() >> 4):
            return v
        return None

    def _extint_wanted(self):
        src = self.extint_source
        if src is None:
            return False
        lint0 = self.lvt[LVT_LINT0]
        if lint0 & MASKED or ((lint0 >> 8) & 7) != DM_EXTINT:
            return False
        return src.has_interrupt()

    # -- interrupt controller protocol (the CPU core) -------------------------------------------
    def has_interrupt(self):
        return self._deliverable() is not None or self._extint_wanted()

    def acknowledge(self):
        v = self._deliverable()
        if v is not None:
            bit = 1 << v
            self.irr &= ~bit
            self.isr |= bit
            source = self._sources.pop(v, None)
            if self.log.on:
                self.log.debug(f"INTA: vector {v:#04x} (PPR {self._ppr():#04x})")
            if source is not None:
                self.ctx.acknowledged(source)
            return v
        if self._extint_wanted():
            return self.extint_source.acknowledge()
        # the request went away (TPR raised) between the check and INTA: spurious vector
        return self.svr & 0xFF

    def is_requested(self, isa_line):
        """Whether ISA line `isa_line`'s last edge still waits for the CPU (the PIT owes
        ticks instead of losing them), on the path the guest uses now."""
        io = self.ioapic
        if io is not None:
            routed = io.isa_request_pending(isa_line)
            if routed is not None:
                return routed
        src = self.extint_source
        if src is not None and not self.lvt[LVT_LINT0] & MASKED:
            return src.is_requested(isa_line)
        return False

    def accept(self, vector, level=False, source=None):
        """A fixed (or lowest-priority) interrupt message for this CPU (from the IOAPIC, a
        self-IPI or the LVT). Returns False if the LAPIC is software-disabled."""
        if not self.enabled:
            if self.log.on:
                self.log.debug(f"vector {vector:#04x} refused: the LAPIC is software-disabled")
            return False
        if vector < 16:
            self.unimplemented(f"interrupt with the illegal vector {vector} "
                               f"(vectors 0-15 are reserved)")
        bit = 1 << vector
        self.irr |= bit
        if level:
            self.tmr |= bit
        else:
            self.tmr &= ~bit
        if source is not None:
            self._sources[vector] = source
        else:
            self._sources.pop(vector, None)
        if self.ctx.stop_requested is not None and self._deliverable() is not None:
            self.ctx.stop_requested()
        return True

    def vector_pending(self, vector):
        return bool(self.irr & (1 << vector))

    # -- EOI ------------------------------------------------------------------------------------
    def _eoi(self):
        self.eoi_count += 1
        if not self.isr:
            return                        # an EOI with nothing in service is ignored
        v = self.isr.bit_length() - 1
        bit = 1 << v
        self.isr &= ~bit
        if self.tmr & bit and self.ioapic is not None:
            self.ioapic.eoi(v)
        if self.ctx.stop_requested is not None and self.has_interrupt():
            self.ctx.stop_requested()

    # -- timer -----------------------------------------------------------------------------------
    def _tick_ns(self):
        return 1_000_000_000 * DIVIDE[self.divide_conf & 0xB] // CRYSTAL_HZ

    def _timer_mode(self):
        return (self.lvt[LVT_TIMER] >> 17) & 3

    def current_count(self, now=None):
        if self.initial_count == 0 or self._start_count == 0 and self._timer is None:
            return 0
        now = self.clock.now_ns() if now is None else now
        elapsed = (now - self._start_ns) // self._tick_ns()
        if self._timer_mode() == TIMER_PERIODIC:
            if elapsed < self._start_count:
                return self._start_count - elapsed
            return self.initial_count - (elapsed - self._start_count) % self.initial_count
        return max(0, self._start_count - elapsed)

    def _start_timer(self, count, now):
        self.timers.cancel(self._timer)
        self._timer = None
        self._start_ns = now
        self._start_count = count
        if count:
            self._timer = self.timers.schedule(now + count * self._tick_ns(), self._expire,
                                               "lapic-timer")

    def _expire(self, when_ns):
        self._timer = None
        self.timer_fires += 1
        lvt = self.lvt[LVT_TIMER]
        if not lvt & MASKED:
            self.accept(lvt & 0xFF)
        if self._timer_mode() == TIMER_PERIODIC and self.initial_count:
            nxt = when_ns
            if self.clock.now_ns() - nxt > MAX_CATCHUP_NS:
                nxt = self.clock.now_ns()
            self._start_ns = nxt
            self._start_count = self.initial_count
            self._timer = self.timers.schedule(nxt + self.initial_count * self._tick_ns(),
                                               self._expire, "lapic-timer")
        else:
            self._start_count = 0

    # -- registers -------------------------------------------------------------------------------
    def _read(self, offset, size):
        if offset & 0xF:
            self._misuse(offset, "read at an offset that is not 16-byte aligned")
        if offset == 0x020:
            return self.apic_id << 24
        if offset == 0x030:
            return VERSION | (MAX_LVT << 16)
        if offset == 0x080:
            return self.tpr
        if offset == 0x090:
            return 0
        if offset == 0x0A0:
            return self._ppr()
        if offset == 0x0B0:
            return 0
        if offset == 0x0C0:
            return 0
        if offset == 0x0D0:
            return self.ldr
        if offset == 0x0E0:
            return self.dfr
        if offset == 0x0F0:
            return self.svr
        if 0x100 <= offset < 0x280:
            which, i = divmod(offset - 0x100, 0x80)
            bits = (self.isr, self.tmr, self.irr)[which]
            return (bits >> (32 * (i // 16))) & 0xFFFFFFFF
        if offset == 0x280:
            return self.esr
        if offset == 0x300:
            return self.icr_low & ~(1 << 12)      # delivery status: idle
        if offset == 0x310:
            return self.icr_high
        if offset in self.lvt:
            return self.lvt[offset]
        if offset == 0x380:
            return self.initial_count
        if offset == 0x390:
            return self.current_count()
        if offset == 0x3E0:
            return self.divide_conf
        self._misuse(offset, "read of a reserved register")

    def _write(self, offset, size, value):
        if offset & 0xF:
            self._misuse(offset, f"write of {value:#x} at an offset that is not 16-byte aligned")
        if self.log.on:
            self.log.debug(f"{REG_NAMES.get(offset, hex(offset))} <- {value:#010x}")
        if offset == 0x020:
            self.apic_id = value >> 24
        elif offset == 0x080:
            self.tpr = value & 0xFF
            if self.ctx.stop_requested is not None and self.has_interrupt():
                self.ctx.stop_requested()
        elif offset == 0x0B0:
            self._eoi()
        elif offset == 0x0D0:
            self.ldr = value & 0xFF000000
        elif offset == 0x0E0:
            model = value >> 28
            if model not in (0xF, 0x0):
                self._misuse(offset, f"destination model {model:#x} (flat is 0xF, cluster 0x0)")
            self.dfr = (value & 0xF0000000) | 0x0FFFFFFF
        elif offset == 0x0F0:
            if value & 0x1000:
                self._misuse(offset, f"{value:#x}: EOI-broadcast suppression is not advertised")
            # bit 9 disables focus processor checking, which only matters for lowest-priority
            # delivery among several processors: kept as written, no effect on one CPU
            self.svr = value & 0x3FF
            if not self.enabled:
                for off in LVT_OFFSETS:
                    self.lvt[off] |= MASKED
        elif offset == 0x280:
            self.esr = self.esr_pending      # a write latches the errors seen since
            self.esr_pending = 0
        elif offset == 0x300:
            self.icr_low = value & 0x000CDFFF
            self._send_ipi(offset)
        elif offset == 0x310:
            self.icr_high = value & 0xFF000000
        elif offset in self.lvt:
            self._write_lvt(offset, value)
        elif offset == 0x380:
            self.initial_count = value & 0xFFFFFFFF
            if self._timer_mode() == TIMER_TSC_DEADLINE:
                return                       # ignored in TSC-deadline mode (refused anyway)
            self._start_timer(self.initial_count, self.clock.now_ns())
        elif offset == 0x3E0:
            if value & 0xB not in DIVIDE or value & ~0xB:
                self._misuse(offset, f"{value:#x}: reserved bits set")
            now = self.clock.now_ns()
            count = self.current_count(now)
            running = self._timer is not None
            self.divide_conf = value & 0xB
            if running:
                # the count carries on at the new rate
                self.timers.cancel(self._timer)
                self._timer = None
                self._start_ns = now
                self._start_count = count
                self._timer = self.timers.schedule(now + count * self._tick_ns(), self._expire,
                                                   "lapic-timer")
        elif offset in (0x030, 0x090, 0x0A0, 0x0C0, 0x390) or 0x100 <= offset < 0x280:
            # read-only registers (version, APR, PPR, RRD, ISR/TMR/IRR, current count): the
            # hardware ignores writes to them (Xen writes the version register), and so does
            # this model, noting each in the debug log
            if self.log.on:
                self.log.debug(f"write of {value:#x} to read-only "
                               f"{REG_NAMES.get(offset, hex(offset))}: ignored")
        else:
            self._misuse(offset, f"write of {value:#x} to a reserved register")

    def _write_lvt(self, offset, value):
        v = value & LVT_WRITABLE[offset]
        if not self.enabled:
            v |= MASKED
        if offset == LVT_TIMER:
            mode = (v >> 17) & 3
            if mode == TIMER_TSC_DEADLINE:
                self._misuse(offset, f"{value:#x}: TSC-deadline mode (not advertised by CPUID)")
            if mode == 3:
                self._misuse(offset, f"{value:#x}: reserved timer mode 3")
            old_mode = self._timer_mode()
            self.lvt[offset] = v
            if mode != old_mode and self._timer is not None:
                # a mode change while counting: restart from the current count
                now = self.clock.now_ns()
                self._start_timer(self.current_count(now), now)
        else:
            dm = (v >> 8) & 7
            if offset in (LVT_TIMER, LVT_ERROR):
                dm = DM_FIXED
            if dm in (1, 3, 6):
                self._misuse(offset, f"{value:#x}: reserved delivery mode {dm}")
            if not v & MASKED:
                if dm in (DM_SMI, DM_INIT):
                    self._misuse(offset, f"{value:#x}: delivery mode "
                                         f"{'SMI' if dm == DM_SMI else 'INIT'} is not modelled")
                if dm == DM_EXTINT and offset != LVT_LINT0:
                    self._misuse(offset, f"{value:#x}: ExtINT on an input other than LINT0")
            self.lvt[offset] = v
        vec = v & 0xFF
        if not v & MASKED and ((v >> 8) & 7) == DM_FIXED and vec < 16:
            self._misuse(offset, f"{value:#x}: illegal vector {vec} (0-15 are reserved)")
        if offset == LVT_LINT0 and self.ctx.stop_requested is not None and self.has_interrupt():
            self.ctx.stop_requested()

    # -- IPIs ------------------------------------------------------------------------------------
    def matches(self, dest, logical):
        """Whether destination `dest` (8 bits) in physical/logical mode names this APIC."""
        if not logical:
            return dest == 0xFF or dest == self.apic_id
        if dest == 0xFF:
            return True
        ldr = self.ldr >> 24
        if self.dfr >> 28 == 0xF:                 # flat model
            return bool(dest & ldr)
        # cluster model: high nibble the cluster, low nibble a bit mask
        return (dest >> 4) == (ldr >> 4) and bool(dest & ldr & 0xF)

    def _send_ipi(self, offset):
        low = self.icr_low
        vector = low & 0xFF
        mode = (low >> 8) & 7
        logical = bool(low & (1 << 11))
        level = bool(low & (1 << 15))
        shorthand = (low >> 18) & 3
        dest = self.icr_high >> 24
        if shorthand == 0:
            to_self = self.matches(dest, logical)
            others = not (not logical and dest == self.apic_id)
        else:
            to_self = shorthand in (1, 2)
            others = shorthand in (2, 3)
        if mode in (3, 7):
            self._misuse(offset, f"{low:#x}: reserved or unsupported IPI delivery mode {mode}")
        record = dict(vector=vector, mode=mode, logical=logical, dest=dest,
                      shorthand=shorthand, level=level, self=to_self, others=others)
        if mode in (DM_INIT, DM_STARTUP):
            self.ipis.append(record)           # SMP bring-up: recorded (one CPU today)
            if self.log.on:
                self.log.debug(f"IPI recorded: {record}")
            if to_self and mode == DM_INIT and level:
                self.unimplemented("INIT IPI to the boot processor itself (a CPU reset)")
            return
        if others:
            self.ipis.append(record)           # no other processor exists: lost
        if not to_self:
            return
        if mode in (DM_FIXED, 1):
            self.accept(vector)
        elif mode == DM_NMI:
            self.nmi_pending = True          # the vector field is ignored for an NMI
            if self.ctx.stop_requested is not None:
                self.ctx.stop_requested()
        elif mode == DM_SMI:
            self._misuse(offset, f"{low:#x}: SMI (no system-management mode)")
