"""INT 15h system services: memory map (E820h, E801h, 88h), wait (86h), block move (87h),
A20 gate (24xxh), configuration (C0h, C1h) and the hooks other BIOS code calls (4Fh, 90h, 91h).

Memory map (from ctx.memory_size):
  0 - 9FC00h usable, 9FC00h - A0000h reserved (EBDA), F0000h - 100000h reserved (this ROM),
  100000h - memory_size usable (RAM above 4 GiB is not described: the board has none).
The APIC windows (FEC00000h, FEE00000h) are not listed: the kernels we boot find them through
the MP/ACPI tables or their defaults, and an absent range is not RAM either way.
"""
from v3tools.errors import Unimplemented

from vmm.bios import bda
from vmm.bios import rom
from vmm.bios.errors import BiosWait

SMAP = 0x534D4150            # 'SMAP'
E820_RAM, E820_RESERVED = 1, 2
UNSUPPORTED = 0x86           # AH: function not supported
ONE_MIB = 0x100000
SIXTEEN_MIB = 0x1000000


class SystemServices:
    def __init__(self, bios):
        self.bios = bios
        self.ctx = bios.ctx
        self.wait_until = None   # AH=86h deadline while the guest waits

    def service(self, call):
        ah, ax = call.ah, call.ax
        if ax == 0xE820:
            self.e820(call)
        elif ax == 0xE801:
            self.e801(call)
        elif ah == 0x88:
            self.ext_memory(call)
        elif ah == 0x86:
            self.wait(call)
        elif ah == 0x87:
            self.block_move(call)
        elif ah == 0x24:
            self.a20(call)
        elif ah == 0xC0:
            call.es, call.bx = rom.ROM_SEG, rom.CONFIG_TABLE
            self.ok(call)
        elif ah == 0xC1:
            call.es = self.bios.rd16(bda.EBDA_SEG)
            call.cf = False
        elif ah == 0x4F:                 # keyboard intercept: process the key as is
            call.cf = True
        elif ah in (0x90, 0x91):         # device busy / interrupt complete
            self.ok(call)
        elif ah in (0x53, 0x83, 0xC2, 0xC4, 0x41, 0xE9, 0xEC, 0xE8, 0x5F, 0xBF):
            # APM, event wait, PS/2 mouse, POS, external event, E980h (SpeedStep),
            # EC00h (x86-64 mode hint), other E8xxh, VGA-BIOS hooks: not provided
            self.unsupported(call)
        else:
            raise Unimplemented(f"INT 15h AX={ax:04X}h (system function not implemented)")

    @staticmethod
    def ok(call):
        call.ah = 0
        call.cf = False

    @staticmethod
    def unsupported(call):
        call.ah = UNSUPPORTED
        call.cf = True

    # -- memory size ---------------------------------------------------------------------------
    def memory_map(self):
        """[(base, length, type)] in address order."""
        return memory_map(self.ctx.memory_size)

    def e820(self, call):
        entries = self.memory_map()
        index = call.ebx
        if call.edx != SMAP or call.ecx < 20 or index >= len(entries):
            self.unsupported(call)
            return
        base, length, kind = entries[index]
        record = base.to_bytes(8, "little") + length.to_bytes(8, "little") + kind.to_bytes(4, "little")
        if call.ecx >= 24:
            record += (1).to_bytes(4, "little")     # ACPI 3.0 extended attributes: enabled
        call.write(call.linear(call.es, call.di), record)
        call.eax = SMAP
        call.ecx = len(record)
        call.ebx = index + 1 if index + 1 < len(entries) else 0
        call.cf = False

    def e801(self, call):
        size = self.ctx.memory_size
        low = max(0, min(size, SIXTEEN_MIB) - ONE_MIB) // 1024            # KiB 1-16 MiB
        high = max(0, min(size, 0x100000000) - SIXTEEN_MIB) // 0x10000   # 64 KiB above 16 MiB
        call.ax = call.cx = low
        call.bx = call.dx = min(high, 0xFFFF)
        call.cf = False

    def ext_memory(self, call):
        kib = max(0, self.ctx.memory_size - ONE_MIB) // 1024
        call.ax = min(kib, 0xFC00)          # as the CMOS reports it: at most 63 MiB
        call.cf = False

    # -- 86h wait -----------------------------------------------------------------------------
    def wait(self, call):
        now = self.ctx.clock.now_ns()
        if self.wait_until is None:
            usec = call.cx << 16 | call.dx
            self.wait_until = now + usec * 1000
        if now < self.wait_until:
            raise BiosWait(self.wait_until)
        self.wait_until = None
        self.ok(call)

    # -- 87h block move -------------------------------------------------------------------------
    def block_move(self, call):
        """Copy CX words between the source and destination descriptors of the GDT at ES:SI
        (entries 2 and 3), with A20 enabled for the move and restored afterwards."""
        nbytes = call.cx * 2
        if call.cx > 0x8000:
            call.ah = 0x01                  # RAM parity error is the only other status
            call.cf = True
            return
        gdt = call.read(call.linear(call.es, call.si), 0x30)
        src = _descriptor(gdt[0x10:0x18])
        dst = _descriptor(gdt[0x18:0x20])
        for base, limit, name in (src + ("source",), dst + ("destination",)):
            if nbytes and nbytes - 1 > limit:
                raise Unimplemented(f"INT 15h AH=87h: {nbytes} bytes exceed the {name} "
                                    f"segment limit {limit:#x}")
        a20 = self.ctx.a20
        self.ctx.set_a20(True)
        try:
            call.write(dst[0], call.read(src[0], nbytes))
        finally:
            self.ctx.set_a20(a20)
        self.ok(call)

    # -- 24xxh A20 -----------------------------------------------------------------------------
    def a20(self, call):
        al = call.al
        if al in (0x00, 0x01):
            self.ctx.set_a20(al == 0x01)
        elif al == 0x02:
            call.al = 1 if self.ctx.a20 else 0
        elif al == 0x03:
            call.bx = 0x0003                 # A20 through the keyboard controller and port 92h
        else:
            self.unsupported(call)
            return
        self.ok(call)


def _descriptor(d):
    """(base, limit) of an 8-byte segment descriptor (286 layout plus the 386 base byte)."""
    limit = int.from_bytes(d[0:2], "little") | (d[6] & 0x0F) << 16
    base = int.from_bytes(d[2:5], "little") | d[7] << 24
    if d[6] & 0x80:                          # 4 KiB granularity
        limit = limit << 12 | 0xFFF
    return base, limit


def memory_map(size):
    """The E820 map of a machine with `size` bytes of RAM: [(base, length, type)] in address
    order (also handed to a directly booted kernel)."""
    ranges = [(0, bda.EBDA_BASE, E820_RAM),
              (bda.EBDA_BASE, 0xA0000 - bda.EBDA_BASE, E820_RESERVED),
              (rom.ROM_BASE, rom.ROM_SIZE, E820_RESERVED)]
    if size > ONE_MIB:
        ranges.append((ONE_MIB, size - ONE_MIB, E820_RAM))
    return ranges
