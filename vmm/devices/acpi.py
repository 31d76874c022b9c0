"""ACPI: the fixed hardware of an ACPI PC (ACPI specification 6.x, chapter 4.8) and the tables
that describe the machine (vmm/tables/acpi.py).

Ports (`<base>` in the XML, default 0x600):
  base+0  PM1a_STS (16 bits, write 1 to clear): TMR_STS (bit 0), WAK_STS (bit 15)
  base+2  PM1a_EN  (16 bits): kept; TMR_EN is a fail-stop when the timer's carry interrupt
          would be needed (not modelled), the other enables name events that never occur
  base+4  PM1a_CNT (16 bits): SCI_EN reads 1 (no SMI command port: always in ACPI mode);
          SLP_TYP with SLP_EN: S5 (SLP_TYP 5, the DSDT's \\_S5) powers the machine off,
          any other sleep type is a fail-stop
  base+8  PM_TMR   (32 bits, read-only): 3.579545 MHz on the machine's virtual clock

The SCI is ISA IRQ 9 (level, active high in the MADT); nothing raises it: no event this
machine models needs one.
"""
from vmm.devices import register
from vmm.devices.base import Device

PM_TIMER_HZ = 3_579_545
DEFAULT_BASE = 0x600
TMR_STS, WAK_STS = 1 << 0, 1 << 15
TMR_EN = 1 << 0
PM1_EN_WRITABLE = 0x0721            # TMR_EN, GBL_EN, PWRBTN_EN, SLPBTN_EN, RTC_EN
SCI_EN, BM_RLD, GBL_RLS = 1 << 0, 1 << 1, 1 << 2
SLP_EN = 1 << 13
SLP_TYP_SHIFT, SLP_TYP_MASK = 10, 0x7


@register("ACPI")
class Acpi(Device):
    def __init__(self, dev_id, base=DEFAULT_BASE):
        super().__init__(dev_id)
        self.base = base
        self.pm1_evt, self.pm1_cnt, self.pm_tmr = base, base + 4, base + 8
        self.rsdp = None
        self.power_on()

    @classmethod
    def from_spec(cls, spec, ctx):
        base = spec.value("base")
        if base is None:
            return cls(spec.id)
        from v3tools.errors import ConfigError
        try:
            port = int(base, 0)
        except ValueError:
            raise ConfigError(f"{spec.where()}: <base> {base!r} is not a number")
        if port & 3 or not 0 < port <= 0xFFF0:
            raise ConfigError(f"{spec.where()}: <base> {base} must be a 4-aligned port below 0xFFF0")
        return cls(spec.id, base=port)

    def attach(self, ctx):
        self.ctx = ctx
        self.clock = ctx.clock
        ctx.io.attach(self.pm1_evt, 4, self._read_evt, self._write_evt, f"{self.id} (PM1a_EVT)",
                      widths=(1, 2))
        ctx.io.attach(self.pm1_cnt, 2, self._read_cnt, self._write_cnt, f"{self.id} (PM1a_CNT)",
                      widths=(1, 2))
        ctx.io.attach(self.pm_tmr, 4, self._read_tmr, self._write_tmr, f"{self.id} (PM_TMR)",
                      widths=(1, 2, 4))

    def power_on(self):
        self.pm1_sts = 0
        self.pm1_en = 0
        self.slp_typ = 0
        self._carry_seen = 0

    def reset(self):
        self.power_on()

    def build_tables(self, area, ctx):
        from vmm.tables import acpi
        self.rsdp = acpi.build(ctx, area, self)
        if self.log is not None and self.log.on:
            self.log.debug(f"RSDP at {self.rsdp:#x}")

    # -- PM timer ----------------------------------------------------------------------------
    def ticks(self, now=None):
        now = self.clock.now_ns() if now is None else now
        return now * PM_TIMER_HZ // 1_000_000_000

    def _read_tmr(self, offset, size):
        value = self.ticks() & 0xFFFFFFFF
        return (value >> (8 * offset)) & ((1 << (8 * size)) - 1)

    def _write_tmr(self, offset, size, value):
        self.unimplemented(f"write of {value:#x} to PM_TMR (port {self.pm_tmr + offset:#x}), "
                           f"a read-only register")

    # -- PM1 event block ---------------------------------------------------------------------
    def _status(self):
        carries = self.ticks() >> 31             # the timer's bit 31 changed this many times
        if carries != self._carry_seen:
            self.pm1_sts |= TMR_STS
            self._carry_seen = carries
        return self.pm1_sts

    def _read_evt(self, offset, size):
        value = self._status() | (self.pm1_en << 16)
        return (value >> (8 * offset)) & ((1 << (8 * size)) - 1)

    def _write_evt(self, offset, size, value):
        for i in range(size):
            byte = (value >> (8 * i)) & 0xFF
            reg = offset + i
            if reg < 2:                                         # PM1_STS: write 1 to clear
                self._status()
                self.pm1_sts &= ~(byte << (8 * reg))
            else:
                shift = 8 * (reg - 2)
                self.pm1_en = (self.pm1_en & ~(0xFF << shift)) | (byte << shift)
                self.pm1_en &= PM1_EN_WRITABLE
        if self.pm1_en & TMR_EN:
            self.unimplemented(f"PM1_EN {self.pm1_en:#06x}: TMR_EN (an SCI on the PM timer's "
                               f"carry) is not modelled", register="PM1_EN")

    # -- PM1 control block -------------------------------------------------------------------
    def _read_cnt(self, offset, size):
        value = SCI_EN | (self.slp_typ << SLP_TYP_SHIFT)
        return (value >> (8 * offset)) & ((1 << (8 * size)) - 1)

    def _write_cnt(self, offset, size, value):
        value = (value << (8 * offset)) | (self._read_cnt(0, 2) & ~(((1 << (8 * size)) - 1) << (8 * offset)))
        self.slp_typ = (value >> SLP_TYP_SHIFT) & SLP_TYP_MASK
        if self.log is not None and self.log.on:
            self.log.debug(f"PM1a_CNT <- {value:#06x}")
        if value & SLP_EN:
            from vmm.tables.acpi import S5_SLP_TYP
            if self.slp_typ == S5_SLP_TYP:
                if self.log is not None:
                    self.log.debug("the guest entered S5 (soft off): powering off")
                self.ctx.request("poweroff")
            else:
                self.unimplemented(f"PM1a_CNT {value:#06x}: sleep type {self.slp_typ} "
                                   f"(only S5, SLP_TYP {S5_SLP_TYP}, is implemented)",
                                   register="PM1a_CNT")
