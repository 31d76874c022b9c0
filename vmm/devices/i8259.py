"""8259A: the master/slave programmable interrupt controller pair of the PC, plus the ELCR.

Ports (PC port list): 0x20-0x21 master PIC, 0xA0-0xA1 slave PIC, 0x4D0-0x4D1 edge/level
control registers (PIIX3 ELCR). The slave's INT output is wired to master input 2 (cascade).
Behaviour follows the Intel 8259A datasheet (231468): ICW1-ICW4 initialisation, OCW1 (IMR),
OCW2 (EOI and rotation), OCW3 (IRR/ISR read select, poll, special mask mode).

This device is the board's interrupt controller: `set_irq(n, level)` receives lines 0-15,
`has_interrupt()` tells the CPU core an interrupt is wanted, `acknowledge()` is the INTA cycle
and returns the vector.

Modelling choices (see docs/devices/i8259.md):
- Edge-triggered requests are latched in IRR on the rising edge and stay until acknowledged,
  even if the line falls first; sources such as the PIT deliver an edge as `IrqLine.pulse()`.
- Level-triggered inputs (ELCR bit or ICW1 LTIM) show the live line level in IRR.
- The cascade input (master IR2) follows the slave's INT output as a level.
- INTA with no deliverable request returns the spurious vector (IR7 of that chip; for the
  slave, master IR2 stays in service, as on hardware).
"""
from vmm.devices import register
from vmm.devices.base import Device

MASTER_BASE = 0x20
SLAVE_BASE = 0xA0
ELCR_BASE = 0x4D0
CASCADE_IRQ = 2                   # master input the slave's INT is wired to

ICW1_IC4 = 0x01                   # ICW4 needed
ICW1_SNGL = 0x02                  # single (no cascade)
ICW1_LTIM = 0x08                  # level-triggered mode for all inputs
ICW1_INIT = 0x10                  # distinguishes ICW1 from OCW2/OCW3 on port A0=0

ICW4_UPM = 0x01                   # 8086/8088 mode
ICW4_AEOI = 0x02                  # automatic end of interrupt
ICW4_SFNM = 0x10                  # special fully nested mode

OCW3_SEL = 0x08                   # with bit 4 clear: this is OCW3
OCW3_POLL = 0x04
OCW3_RR = 0x02                    # read register command
OCW3_RIS = 0x01                   # 1 = ISR, 0 = IRR
OCW3_ESMM = 0x40                  # enable the SMM bit
OCW3_SMM = 0x20

ELCR_MASK = (0xF8, 0xDE)          # PIIX3: IRQ 0,1,2,8,13 are edge only


class _Chip:
    """One 8259A. `name` is "master" or "slave"; `irq_base` is 0 or 8 (for log messages)."""

    def __init__(self, name, irq_base, always_level=0):
        self.name = name
        self.irq_base = irq_base
        self.always_level = always_level   # the cascade input follows the slave's INT
        self.elcr = 0
        self.lines = 0                 # current input levels
        self.power_on()

    def power_on(self):
        self.edge_irr = 0              # latched edge requests
        self.isr = 0
        self.imr = 0xFF
        self.vector_base = 0x08 if self.irq_base == 0 else 0x70
        self.priority_add = 0          # the highest-priority level (rotation)
        self.auto_eoi = False
        self.rotate_on_aeoi = False
        self.special_mask = False
        self.ltim = False
        self.read_isr = False
        self.poll = False
        self.init_step = 0             # 0: operational; 2/3/4: expecting that ICW
        self.icw4_needed = False

    # -- state ----------------------------------------------------------------------------------
    @property
    def level_mask(self):
        return 0xFF if self.ltim else self.elcr | self.always_level

    @property
    def irr(self):
        lv = self.level_mask
        return (self.edge_irr & ~lv) | (self.lines & lv)

    def set_input(self, n, level):
        bit = 1 << n
        was = self.lines & bit
        if level:
            self.lines |= bit
            if not was:
                self.edge_irr |= bit
        else:
            self.lines &= ~bit

    def pending(self):
        """The highest-priority request that may interrupt now, or None."""
        req = self.irr & ~self.imr
        if not req:
            return None
        in_service = 0 if self.special_mask else self.isr
        if self.special_mask:
            req &= ~self.isr           # SMM: every unmasked level not itself in service
        for i in range(8):
            n = (i + self.priority_add) & 7
            if in_service & (1 << n):
                return None
            if req & (1 << n):
                return n
        return None

    def ack(self, n):
        """INTA for input n: IRR -> ISR (or auto-EOI)."""
        bit = 1 << n
        self.edge_irr &= ~bit
        if self.auto_eoi:
            if self.rotate_on_aeoi:
                self.priority_add = (n + 1) & 7
        else:
            self.isr |= bit

    def highest_in_service(self):
        for i in range(8):
            n = (i + self.priority_add) & 7
            if self.isr & (1 << n):
                return n
        return None


@register("8259A")
class PIC8259(Device):
    """The master/slave 8259A pair and the ELCR; the board's interrupt controller."""

    def __init__(self, dev_id):
        super().__init__(dev_id)
        self.master = _Chip("master", 0, always_level=1 << CASCADE_IRQ)
        self.slave = _Chip("slave", 8)

    def attach(self, ctx):
        self.ctx = ctx
        ctx.io.attach(MASTER_BASE, 2, self._master_read, self._master_write, self.id, widths=(1,))
        ctx.io.attach(SLAVE_BASE, 2, self._slave_read, self._slave_write, self.id, widths=(1,))
        ctx.io.attach(ELCR_BASE, 2, self._elcr_read, self._elcr_write, self.id, widths=(1,))
        ctx.set_interrupt_controller(self)

    def reset(self):
        for chip in (self.master, self.slave):
            chip.power_on()
            chip.elcr = 0
        self._cascade()

    # -- intc protocol (used by the CPU core) --------------------------------------------------
    def set_irq(self, n, level):
        if not 0 <= n < 16:
            raise ValueError(f"8259A: no input {n}")
        chip = self.master if n < 8 else self.slave
        if n == CASCADE_IRQ:
            self.unimplemented("a device drives IRQ 2, which is the cascade input")
        if self.log.on:
            self.log.debug(f"IRQ {n} {'raised' if level else 'lowered'}")
        chip.set_input(n & 7, level)
        self._cascade()

    def has_interrupt(self):
        return self.master.pending() is not None

    def acknowledge(self):
        m = self.master
        n = m.pending()
        if n is None:
            if self.log.on:
                self.log.debug(f"INTA: spurious IRQ 7, vector {m.vector_base | 7:#x}")
            return m.vector_base | 7
        m.ack(n)
        if n != CASCADE_IRQ:
            vector = m.vector_base | n
        else:
            s = self.slave
            sn = s.pending()
            if sn is None:
                vector = s.vector_base | 7
                if self.log.on:
                    self.log.debug(f"INTA: spurious IRQ 15, vector {vector:#x}")
                self._cascade()
                return vector
            s.ack(sn)
            vector = s.vector_base | sn
            n = 8 + sn
        self._cascade()
        if self.log.on:
            self.log.debug(f"INTA: IRQ {n} vector {vector:#x} "
                           f"(ISR {m.isr:#04x}/{self.slave.isr:#04x})")
        self.ctx.acknowledged(n)
        return vector

    def is_requested(self, n):
        """True while line n's request waits in IRR (an edge not yet taken by the CPU)."""
        chip = self.master if n < 8 else self.slave
        return bool(chip.irr & (1 << (n & 7)))

    def _cascade(self):
        self.master.set_input(CASCADE_IRQ, self.slave.pending() is not None)

    # -- ports ---------------------------------------------------------------------------------
    def _master_read(self, offset, size):
        return self._read(self.master, offset)

    def _master_write(self, offset, size, value):
        self._write(self.master, offset, value)

    def _slave_read(self, offset, size):
        return self._read(self.slave, offset)

    def _slave_write(self, offset, size, value):
        self._write(self.slave, offset, value)

    def _read(self, chip, offset):
        if offset == 1:
            return chip.imr
        if chip.poll:
            return self._poll(chip)
        return chip.isr if chip.read_isr else chip.irr

    def _poll(self, chip):
        """Poll command: the read acts as INTA on this chip; bit 7 = a request was pending."""
        chip.poll = False
        n = chip.pending()
        if n is None:
            value = 0
        else:
            chip.ack(n)
            value = 0x80 | n
        self._cascade()
        if self.log.on:
            self.log.debug(f"{chip.name} poll -> {value:#04x}")
        return value

    def _write(self, chip, offset, value):
        if offset == 0:
            if value & ICW1_INIT:
                self._icw1(chip, value)
            elif value & OCW3_SEL:
                self._ocw3(chip, value)
            else:
                self._ocw2(chip, value)
        elif chip.init_step:
            self._icw(chip, value)
        else:
            chip.imr = value
            if self.log.on:
                self.log.debug(f"{chip.name} IMR = {value:#04x}")
        self._cascade()
        self._request_uncovered()

    def _request_uncovered(self):
        """An EOI, an unmask or a trigger-mode change can uncover a request that was waiting:
        the CPU's INTR input goes up then, not only when a line rises."""
        if self.ctx.stop_requested is not None and self.has_interrupt():
            self.ctx.stop_requested()

    def _icw1(self, chip, value):
        if value & ICW1_SNGL:
            self.unimplemented(f"{chip.name} PIC ICW1 {value:#04x}: single mode (no cascade)")
        lines, elcr = chip.lines, chip.elcr
        chip.power_on()
        chip.imr = 0
        chip.lines, chip.elcr = lines, elcr
        chip.ltim = bool(value & ICW1_LTIM)
        chip.icw4_needed = bool(value & ICW1_IC4)
        chip.init_step = 2
        if self.log.on:
            self.log.debug(f"{chip.name} ICW1 {value:#04x}")

    def _icw(self, chip, value):
        step = chip.init_step
        if step == 2:
            chip.vector_base = value & 0xF8
            chip.init_step = 3
        elif step == 3:
            want = 1 << CASCADE_IRQ if chip is self.master else CASCADE_IRQ
            if value != want:
                self.unimplemented(f"{chip.name} PIC ICW3 {value:#04x} "
                                   f"(the PC wiring is {want:#04x})")
            chip.init_step = 4 if chip.icw4_needed else 0
        else:
            if not value & ICW4_UPM:
                self.unimplemented(f"{chip.name} PIC ICW4 {value:#04x}: 8080/8085 mode")
            if value & ICW4_SFNM:
                self.unimplemented(f"{chip.name} PIC ICW4 {value:#04x}: special fully nested mode")
            chip.auto_eoi = bool(value & ICW4_AEOI)
            chip.init_step = 0
        if self.log.on:
            self.log.debug(f"{chip.name} ICW{step} {value:#04x}")

    def _ocw2(self, chip, value):
        op, level = value >> 5, value & 7
        if op == 0b001 or op == 0b101:        # non-specific EOI (and rotate)
            n = chip.highest_in_service()
            if n is not None:
                chip.isr &= ~(1 << n)
                if op == 0b101:
                    chip.priority_add = (n + 1) & 7
        elif op == 0b011 or op == 0b111:      # specific EOI (and rotate)
            chip.isr &= ~(1 << level)
            if op == 0b111:
                chip.priority_add = (level + 1) & 7
        elif op == 0b100 or op == 0b000:      # set / clear rotate in automatic EOI mode
            chip.rotate_on_aeoi = op == 0b100
        elif op == 0b110:                     # set priority: `level` becomes the lowest
            chip.priority_add = (level + 1) & 7
        # op 0b010 is a no-op
        if self.log.on:
            self.log.debug(f"{chip.name} OCW2 {value:#04x} (ISR now {chip.isr:#04x})")

    def _ocw3(self, chip, value):
        if value & OCW3_ESMM:
            chip.special_mask = bool(value & OCW3_SMM)
        if value & OCW3_RR:
            chip.read_isr = bool(value & OCW3_RIS)
        chip.poll = bool(value & OCW3_POLL)
        if self.log.on:
            self.log.debug(f"{chip.name} OCW3 {value:#04x}")

    def _elcr_read(self, offset, size):
        return (self.master, self.slave)[offset].elcr

    def _elcr_write(self, offset, size, value):
        chip = (self.master, self.slave)[offset]
        chip.elcr = value & ELCR_MASK[offset]
        if self.log.on:
            self.log.debug(f"ELCR{offset} = {chip.elcr:#04x}")
        self._cascade()
        self._request_uncovered()
