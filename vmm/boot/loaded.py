"""Host decompression at a boot loader's hand-off to a Linux bzImage.

A boot loader (isolinux, SYSLINUX, GRUB 2) loads a bzImage's protected-mode part at
`code32_start` (1 MiB, or 16 MiB for a relocatable kernel a loader puts at its preferred
address), fills a `struct boot_params` (the setup header, the command line and initrd
pointers, the E820 map) and enters the kernel's 32-bit entry in flat protected mode with ESI
pointing at that page (Documentation/arch/x86/boot.rst in the Linux sources). The kernel's own
decompressor would then run inside the emulated CPU, which is slow.

Instead, for every firmware boot (unless `--no-host-decompress`), a code hook on those two
addresses (armed for this alone and removed at the first hand-off) stops the CPU at the entry;
then, from the boot_params the loader left in guest memory:
* the compressed payload (`payload_offset`/`payload_length`, boot protocol 2.08 or later) is
  read from the loaded image and decompressed on the host (vmm/boot/pvh.py's decompress);
* the resulting ELF's segments go to their physical addresses (the kernel's
  LOAD_PHYSICAL_ADDR: where the decompressor puts them without KASLR, so nothing needs
  relocating), checked against the E820 map, the boot_params page, the command line, the
  initrd and any setup_data;
* the CPU enters the ELF's entry point as the decompressor leaves it: a 64-bit kernel at
  startup_64 in long mode (a flat 64-bit GDT, 4 GiB identity-mapped with 2 MiB pages), a
  32-bit one at startup_32 in flat protected mode, RSI/ESI = boot_params, interrupts off. The
  GDT and page tables go into the loaded compressed image, which nothing needs any more
  (else right after the kernel's init_size area). boot_params' KASLR flag is cleared, as
  the decompressor does when it does not randomise.
The log says so in one line. Anything unexpected (an old protocol, a payload the host cannot
read, an ELF that is not a kernel the loader's header describes, memory that does not fit)
leaves the hand-off alone: the guest's decompressor runs, and the log says why.

The hook fires before the entry's first instruction; the stop takes effect at the end of that
translated block (the first instructions of the decompressor's startup_32: CLD, CLI, a stack
in boot_params' scratch field and a CALL), whose effects the hand-off then replaces.
"""
import re
import struct
from dataclasses import dataclass, field

from v3tools.errors import V3Error
from vmm.boot import linux, pvh

ENTRIES = (0x100000, 0x1000000)   # code32_start: the classic one, and relocatable kernels' 16 MiB
MIN_VERSION = 0x0208              # payload_offset / payload_length
XLF_KERNEL_64 = 0x01
KASLR_FLAG = 0x02
E820_RAM = 1
E820_MAX = 128
PAGE = 0x1000


class Refused(Exception):
    """Why the host leaves the decompression to the guest (one line)."""


@dataclass
class SetupHeader:
    """The boot_params fields a hand-off needs."""
    version: int
    loadflags: int
    code32_start: int
    image_size: int               # the protected-mode image at code32_start (syssize * 16)
    ramdisk: tuple                # (address, size)
    cmdline: tuple                # (address, cmdline_size + 1)
    kernel_alignment: int
    relocatable: bool
    xloadflags: int
    payload: tuple                # (offset from code32_start, length)
    init_size: int
    setup_data: int
    e820: list = field(default_factory=list)


def _u32(b, off):
    return struct.unpack_from("<I", b, off)[0]


def parse_boot_params(bp, entry):
    """The setup header of the boot_params page `bp` (4096 bytes) a loader handed over at
    `entry`; Refused (why) if it is not one the host can take over."""
    if len(bp) < PAGE or bp[0x202:0x206] != b"HdrS":
        raise Refused("ESI points at no Linux setup header ('HdrS')")
    version, = struct.unpack_from("<H", bp, 0x206)
    if version < MIN_VERSION:
        raise Refused(f"boot protocol {version >> 8}.{version & 0xFF} is older than 2.08 "
                      f"(no payload fields)")
    code32_start = _u32(bp, 0x214)
    if code32_start != entry:
        raise Refused(f"the setup header's code32_start is {code32_start:#x}, not the entry "
                      f"{entry:#x}")
    loadflags = bp[0x211]
    if not loadflags & linux.LOADED_HIGH:
        raise Refused("a zImage (loaded low)")
    offset, length = struct.unpack_from("<II", bp, 0x248)
    if length == 0:
        raise Refused("the setup header names no compressed payload (payload_length 0)")
    count = bp[0x1E8]
    if not 0 < count <= E820_MAX:
        raise Refused(f"boot_params holds {count} E820 entries")
    e820 = [struct.unpack_from("<QQI", bp, 0x2D0 + 20 * i) for i in range(count)]
    ramdisk = (_u32(bp, 0x218) | _u32(bp, 0x0C0) << 32, _u32(bp, 0x21C) | _u32(bp, 0x0C4) << 32)
    cmd_line_ptr = _u32(bp, 0x228) | _u32(bp, 0x0C8) << 32
    return SetupHeader(
        version=version, loadflags=loadflags, code32_start=code32_start,
        image_size=_u32(bp, 0x1F4) * 16, ramdisk=ramdisk,
        cmdline=(cmd_line_ptr, _u32(bp, 0x238) + 1 if cmd_line_ptr else 0),
        kernel_alignment=_u32(bp, 0x230), relocatable=bool(bp[0x234]),
        xloadflags=struct.unpack_from("<H", bp, 0x236)[0], payload=(offset, length),
        init_size=_u32(bp, 0x260), setup_data=struct.unpack_from("<Q", bp, 0x250)[0],
        e820=e820)


@dataclass
class Plan:
    """A hand-off the host takes over: what goes where, and where the CPU enters."""
    version: str                  # the kernel's release ("6.1.0-18-amd64"), from its banner
    compression: str
    bits: int                     # 64: startup_64 in long mode; 32: startup_32
    entry: int
    segments: list                # (paddr, bytes, memsz)
    boot_params: int
    tables: int                   # the GDT, then (64-bit) the identity page tables
    span: tuple                   # (lo, hi): the kernel's memory, init_size included

    def describe(self):
        mode = "startup_64 in long mode" if self.bits == 64 else "startup_32"
        return (f"Linux {self.version} decompressed on the host ({self.compression}), placed "
                f"at {self.span[0]:#x}-{self.span[1]:#x} and entered at {mode} "
                f"({self.entry:#x})")


def tables_size(bits):
    return PAGE + (linux.IDENTITY_TABLES_SIZE if bits == 64 else 0)


def plan(hdr, bp_addr, payload, setup_data=()):
    """Decide the hand-off for the setup header `hdr` at `bp_addr` and the compressed
    `payload` read from the loaded image; `setup_data` lists the (address, size) of the
    loader's setup_data nodes. Refused (why) when anything does not fit."""
    compression, elf = pvh.decompress(payload)
    if compression is None:
        raise Refused(elf)
    what = "the decompressed payload"
    try:
        segments, _ = pvh.elf_segments(elf, what)
        bits, entry = pvh.physical_entry(elf, what)
    except V3Error as exc:
        raise Refused(str(exc))
    if (bits == 64) != bool(hdr.xloadflags & XLF_KERNEL_64):
        raise Refused(f"a {bits}-bit ELF in a bzImage whose header says "
                      f"{'64' if hdr.xloadflags & XLF_KERNEL_64 else '32'}-bit")
    lo = min(p for p, _, _ in segments)
    hi = max(lo + hdr.init_size, max(p + m for p, _, m in segments))
    if hdr.relocatable and hdr.kernel_alignment and lo % hdr.kernel_alignment:
        raise Refused(f"the kernel's load address {lo:#x} is not aligned to its "
                      f"kernel_alignment {hdr.kernel_alignment:#x}")
    if not (lo <= entry < hi):
        raise Refused(f"the entry point {entry:#x} lies outside the kernel {lo:#x}-{hi:#x}")
    if not _in_ram(hdr.e820, lo, hi):
        raise Refused(f"the kernel's memory {lo:#x}-{hi:#x} is not RAM in the E820 map")
    busy = [("boot_params", bp_addr, PAGE), ("the command line",) + hdr.cmdline,
            ("the initrd",) + hdr.ramdisk] + [("setup_data", a, n) for a, n in setup_data]
    for name, addr, size in busy:
        if size and addr < hi and lo < addr + size:
            raise Refused(f"{name} ({addr:#x}, {size} bytes) lies where the kernel goes "
                          f"({lo:#x}-{hi:#x})")
    need = tables_size(bits)
    busy.append(("the kernel", lo, hi - lo))
    image = (hdr.code32_start, hdr.code32_start + hdr.image_size)
    tables = None
    for start, end in (image, (hi, hi + need)):
        tables = _free_window(start, end, need, busy, hdr.e820)
        if tables is not None:
            break
    if tables is None:
        raise Refused("no free memory for the entry's GDT and page tables")
    banner = re.search(rb"Linux version (\S+)", elf)
    version = banner.group(1).decode(errors="replace") if banner else "(no version banner)"
    return Plan(version, compression, bits, entry, segments, bp_addr, tables, (lo, hi))


def _in_ram(e820, lo, hi):
    return any(kind == E820_RAM and base <= lo and hi <= base + length
               for base, length, kind in e820)


def _free_window(start, end, need, busy, e820):
    """The first page-aligned `need` bytes in [start, end) that are RAM and overlap nothing
    in `busy`, or None."""
    addr = (start + PAGE - 1) & ~(PAGE - 1)
    while addr + need <= end:
        clash = next(((a, n) for _, a, n in busy if n and a < addr + need and addr < a + n), None)
        if clash is None:
            return addr if _in_ram(e820, addr, addr + need) else None
        addr = (clash[0] + clash[1] + PAGE - 1) & ~(PAGE - 1)
    return None


def setup_data_nodes(first, read, limit=64):
    """(address, size) of each node of the setup_data list starting at `first` (`read(addr,
    n)` reads guest memory); Refused if the list does not end."""
    nodes, addr = [], first
    while addr:
        if len(nodes) == limit:
            raise Refused(f"boot_params' setup_data list has more than {limit} nodes")
        nxt, _, length = struct.unpack("<QII", read(addr, 16))
        nodes.append((addr, 16 + length))
        addr = nxt
    return nodes


def load(p, write):
    """Write the kernel, its entry tables and boot_params' cleared KASLR flag into guest
    memory (`write(addr, bytes)`)."""
    linux.load_segments(p.segments, write)
    if p.bits == 64:
        write(p.tables, linux.gdt64())
        write(p.tables + PAGE, linux.identity_tables(p.tables + PAGE))
    else:
        write(p.tables, linux.gdt())


def enter(p, cpu):
    if p.bits == 64:
        linux.enter_long(cpu, p.tables, p.tables + PAGE, p.entry, p.boot_params)
    else:
        linux.enter_protected(cpu, p.tables, p.entry, p.boot_params)


class Handoff:
    """The armed hook on a machine: see the module's description."""

    def __init__(self, machine):
        self.m = machine
        self.log = machine.vmmlog.component("boot")
        self.hooks = []
        self.caught = None            # (entry, boot_params address) once the hook fired
        self.result = None            # the Plan taken, or the reason it was not

    def arm(self):
        from unicorn import UC_HOOK_CODE
        for addr in ENTRIES:
            self.hooks.append(self.m.uc.hook_add(UC_HOOK_CODE, self._on_entry, None, addr, addr))

    def disarm(self):
        for h in self.hooks:
            self.m.uc.hook_del(h)
        self.hooks = []
        for addr in ENTRIES:          # drop the hooked translations
            self.m.uc.ctl_remove_cache(addr, addr + 1)

    def _on_entry(self, uc, address, size, _):
        if self.caught is not None:
            return
        cpu = self.m.cpu
        if cpu.mode() != "protected 32-bit" or cpu.cs_ip()[2] != 0:
            return                    # not a boot protocol entry: code that runs there
        esi = cpu.env.reg(6) & 0xFFFFFFFF
        if esi + PAGE > self.m.ram_size or cpu.phys_read(esi + 0x202, 4) != b"HdrS":
            return
        self.caught = (address, esi)
        self.m.stop_actions.append(self._take_over)
        uc.emu_stop()

    def _take_over(self):
        """Run by the run loop once the CPU has stopped at the entry: True if the CPU now
        stands at the decompressed kernel's entry."""
        self.disarm()
        entry, esi = self.caught
        mem = self.m.ctx.mem
        try:
            hdr = parse_boot_params(mem.read(esi, PAGE), entry)
            offset, length = hdr.payload
            if hdr.code32_start + offset + length > self.m.ram_size:
                raise Refused("the payload lies beyond RAM")
            nodes = setup_data_nodes(hdr.setup_data, mem.read)
            p = plan(hdr, esi, mem.read(hdr.code32_start + offset, length), nodes)
        except Refused as exc:
            self.result = str(exc)
            self.log.info(f"boot loader handoff at {entry:#x}: not decompressed on the host: "
                          f"{exc}; the kernel decompresses itself")
            return False
        load(p, mem.write)
        mem.write(esi + 0x211, bytes([hdr.loadflags & ~KASLR_FLAG & 0xFF]))
        enter(p, self.m.cpu)
        self.result = p
        self.log.info(f"boot loader handoff: {p.describe()} (--no-host-decompress lets the "
                      f"kernel decompress itself)")
        return True


def arm(machine):
    """Arm the hand-off hook for a firmware boot; the Handoff (its `result` says what
    happened)."""
    h = Handoff(machine)
    h.arm()
    return h
