"""Power-on self test: the interrupt vector table, the BIOS data areas, the interrupt
controllers, the timer, the screen and the drive table. Runs once per reset (and again on a
warm reset through F000:FFF0).

PIC programming (8259A datasheet ICW1-ICW4): master vectors 08h-0Fh, slave vectors 70h-77h,
slave cascaded on IRQ 2. Masks: IRQ 0 (timer), 1 (keyboard) and 2 (cascade) unmasked on the
master, every slave line masked, since the BIOS serves disks and the RTC without interrupts.
PCI functions get their BARs, decoding and routed interrupt (vmm/bios/pci_init.py).
PIT channel 0: mode 3 (square wave), divisor 0 (65536) = 18.2 Hz (8254 datasheet).
"""
from vmm.bios import bda
from vmm.bios import pci_init
from vmm.bios import rom
from vmm.bios.drives import cdrom_disk, floppy_disk, hard_disk

PIC1_CMD, PIC1_DATA, PIC2_CMD, PIC2_DATA = 0x20, 0x21, 0xA0, 0xA1
PIT_CH0, PIT_MODE = 0x40, 0x43
ICW1_INIT_ICW4 = 0x11       # edge triggered, cascade, ICW4 follows
ICW4_8086 = 0x01
PIC1_MASK = 0xF8            # IRQ 0, 1, 2 enabled
PIC2_MASK = 0xFF
PIT_CH0_MODE3 = 0x36        # channel 0, lobyte/hibyte, mode 3, binary
DEFAULT_COM_PORTS = {"COM1": 0x3F8, "COM2": 0x2F8, "COM3": 0x3E8, "COM4": 0x2E8}


class Post:
    def __init__(self, bios):
        self.bios = bios
        self.ctx = bios.ctx

    def service(self, call):
        self.run()

    def run(self):
        """Everything POST does, callable without a CPU (tests, and the core if it prefers)."""
        b = self.bios
        self.ctx.mem.write(0, bytes(0x500))          # IVT and BDA
        self.ctx.mem.write(bda.EBDA_BASE, bytes(bda.EBDA_KIB * 1024))
        self._ivt()
        self._bda()
        self._program_pics()
        self._program_pit()
        pci_init.assign(self.ctx, b.log)
        b.video.reset()
        b.disks.detect()
        b.keyboard.reset()
        b.time.reset()
        self._summary()

    def _ivt(self):
        image = self.bios.image
        for vector, offset in image.vectors.items():
            self._set_vector(vector, rom.ROM_SEG, offset)
        for vector, offset in image.data_vectors.items():
            self._set_vector(vector, rom.ROM_SEG, offset)
        ebda_seg = bda.EBDA_BASE >> 4
        self._set_vector(0x41, ebda_seg, bda.EBDA_FDPT0 - bda.EBDA_BASE)
        self._set_vector(0x46, ebda_seg, bda.EBDA_FDPT1 - bda.EBDA_BASE)

    def _set_vector(self, vector, seg, off):
        self.bios.wr16(vector * 4, off)
        self.bios.wr16(vector * 4 + 2, seg)

    def _bda(self):
        b = self.bios
        ports = self.com_ports()
        for i, port in enumerate(ports[:4]):
            b.wr16(bda.COM_PORTS + 2 * i, port)
        b.wr16(bda.EBDA_SEG, bda.EBDA_BASE >> 4)
        b.wr16(bda.MEMORY_KIB, bda.BASE_MEMORY_KIB)
        b.wr8(bda.EBDA_BASE, bda.EBDA_KIB)           # EBDA byte 0: its size in KiB
        b.wr16(bda.KBD_BUF_START, bda.KBD_BUFFER - bda.BDA)
        b.wr16(bda.KBD_BUF_END, bda.KBD_BUFFER + 32 - bda.BDA)
        b.wr16(bda.KBD_HEAD, bda.KBD_BUFFER - bda.BDA)
        b.wr16(bda.KBD_TAIL, bda.KBD_BUFFER - bda.BDA)
        b.wr8(bda.KBD_FLAGS3, 0x10)                   # 101/102-key keyboard
        b.wr32(bda.TICKS, 0)
        self._equipment(len(ports))

    def com_ports(self):
        """Base ports of the SERIAL ports present, COM1 first."""
        found = []
        for name, dev in sorted(self.ctx.serial_ports.items()):
            port = getattr(dev, "base", None) or DEFAULT_COM_PORTS.get(name.upper())
            if port:
                found.append(port)
        return found

    def _equipment(self, ncom):
        nfloppy = sum(1 for d in self.ctx.drives if d.kind == "floppy")
        word = 0x0002                                 # math coprocessor (the CPU's x87)
        if nfloppy:
            word |= 0x0001 | (min(nfloppy, 4) - 1) << 6
        word |= 0x0020                                # initial video: 80x25 colour
        word |= min(ncom, 4) << 9
        self.bios.wr16(bda.EQUIPMENT, word)

    def _program_pics(self):
        out = self.ctx.io.write
        for cmd, data, base, cascade, mask in ((PIC1_CMD, PIC1_DATA, 0x08, 0x04, PIC1_MASK),
                                               (PIC2_CMD, PIC2_DATA, 0x70, 0x02, PIC2_MASK)):
            out(cmd, 1, ICW1_INIT_ICW4)
            out(data, 1, base)          # ICW2: vector base
            out(data, 1, cascade)       # ICW3: master: slave on IRQ 2; slave: its id 2
            out(data, 1, ICW4_8086)     # ICW4: 8086 mode, normal EOI
            out(data, 1, mask)          # OCW1: interrupt mask

    def _program_pit(self):
        out = self.ctx.io.write
        out(PIT_MODE, 1, PIT_CH0_MODE3)
        out(PIT_CH0, 1, 0)              # divisor 0 = 65536: 1193182 Hz / 65536 = 18.2 Hz
        out(PIT_CH0, 1, 0)

    def _summary(self):
        b = self.bios
        log = b.log
        mem = self.ctx.memory_size
        log.debug(f"POST: {mem // 1024} KiB RAM, base memory {bda.BASE_MEMORY_KIB} KiB, "
                  f"COM ports {[hex(p) for p in self.com_ports()]}, boot order "
                  f"{self.ctx.boot_order}")
        for disk in b.disks.by_number.values():
            log.debug(f"POST: drive {disk.describe()}")
        if not b.disks.by_number:
            log.debug("POST: no drives")


def make_drive_table(drives):
    """{number: BiosDisk} for the board's drives: floppies 00h.., disks 80h.., CDs E0h.."""
    table = {}
    counters = {"floppy": 0x00, "disk": 0x80, "cdrom": 0xE0}
    for d in drives:
        if d.kind not in counters:
            continue
        n = counters[d.kind]
        counters[d.kind] += 1
        if d.kind == "floppy":
            table[n] = floppy_disk(n, d.medium)
        elif d.kind == "disk":
            table[n] = hard_disk(n, d.medium, channel=d.channel, position=d.position)
        else:
            table[n] = cdrom_disk(n, d.medium, channel=d.channel, position=d.position)
    return table
