"""Multiboot (version 1, the Multiboot Specification 0.6.96) direct boot: `--kernel` with a
kernel that carries a multiboot header in its first 8 KiB, as GRUB loads such kernels.

* The image is loaded from the header's address fields when flag 16 is set (the "a.out kludge":
  load_addr, load_end_addr, bss_end_addr, entry_addr), else from its ELF PT_LOAD segments at
  their physical addresses, entered at the ELF entry point.
* The kernel may be gzip-compressed (as Debian ships Xen, /boot/xen-*.gz): the host
  decompresses it, as GRUB and QEMU do.
* The multiboot information structure (at 0x9000) carries mem_lower/mem_upper, the command line
  (the kernel's file name, then --append, as GRUB and QEMU pass it), the modules, the E820
  memory map and the boot loader's name.
* Modules: --initrd "file args,file args" as QEMU spells it (",," is a comma inside one entry),
  each loaded page-aligned after the kernel in order, its string the whole entry (the file name
  first, as GRUB and QEMU pass it).
* The built-in BIOS's power-on set-up runs first (IVT, BIOS data area, PICs, PIT, PCI, MP/ACPI
  tables), so kernels that read the BDA or the firmware tables find them.
* The CPU enters in flat 32-bit protected mode, paging off, interrupts off, EAX = 0x2BADB002,
  EBX = the information structure.
A header asking for a graphics video mode (flag 2) gets the text mode the machine has (the
structure says nothing about video); other unknown required flags (bits 3-15) are refused, as
the specification asks of a boot loader.
"""
import struct
from dataclasses import dataclass

from v3tools.errors import V3Error

MAGIC = 0x1BADB002
BOOT_MAGIC = 0x2BADB002
INFO = 0x9000
MMAP = INFO + 0x100
NAME = INFO + 0x300
MOD_LIST = INFO + 0x400
MAX_MODULES = (0x10000 - MOD_LIST) // 16
MOD_STRINGS = 0x21000                 # after the command line (vmm.boot.linux.CMDLINE_ADDR)
MOD_STRINGS_END = 0x30000
F_PAGE_ALIGN, F_MEMINFO, F_VIDEO, F_AOUT = 1 << 0, 1 << 1, 1 << 2, 1 << 16
LOADER_NAME = b"v3tools\0"


@dataclass
class MultibootKernel:
    what: str
    flags: int
    segments: list               # (paddr, bytes, memsz)
    entry: int
    compression: str = None      # "gzip" when the host decompressed the file

    @property
    def end(self):
        return max(p + m for p, _, m in self.segments)

    def describe(self):
        packed = f"{self.compression}-compressed " if self.compression else ""
        return (f"{packed}multiboot kernel (header flags {self.flags:#x}), {len(self.segments)} "
                f"segment(s) up to {self.end:#x}, entry {self.entry:#x}")


def find_header(data):
    """Offset of a valid multiboot header in the first 8 KiB, or None."""
    for off in range(0, min(len(data), 8192) - 11, 4):
        magic, flags, check = struct.unpack_from("<III", data, off)
        if magic == MAGIC and (magic + flags + check) & 0xFFFFFFFF == 0:
            return off
    return None


def parse(data, what):
    off = find_header(data)
    if off is None:
        raise V3Error(f"{what}: no multiboot header")
    _, flags, _ = struct.unpack_from("<III", data, off)
    if flags & 0xFFF8:
        raise V3Error(f"{what}: the multiboot header requires features {flags & 0xFFF8:#x} "
                      f"(flags bits 3-15) this loader does not know")
    if flags & F_AOUT:
        if len(data) < off + 32:
            raise V3Error(f"{what}: truncated multiboot header")
        header_addr, load_addr, load_end, bss_end, entry = struct.unpack_from("<5I", data, off + 12)
        start = off - (header_addr - load_addr)
        if start < 0 or load_addr > header_addr:
            raise V3Error(f"{what}: multiboot header addresses are inconsistent")
        end = len(data) if load_end == 0 else start + (load_end - load_addr)
        if end > len(data):
            raise V3Error(f"{what}: truncated: the multiboot header loads {end - start} bytes")
        image = data[start:end]
        memsz = max(len(image), (bss_end - load_addr) if bss_end else 0)
        return MultibootKernel(what, flags, [(load_addr, image, memsz)], entry)
    if data[:4] != b"\x7fELF":
        raise V3Error(f"{what}: a multiboot header without load addresses (flag 16) in a "
                      f"file that is not ELF")
    from vmm.boot.pvh import elf_segments
    segments, entry = elf_segments(data, what)
    return MultibootKernel(what, flags, segments, entry & 0xFFFFFFFF)


def parse_modules(spec):
    """--initrd for a multiboot kernel: [(path, string)], QEMU's spelling ("file args,file
    args", ",," for a comma inside an entry); the string is the whole entry."""
    entries, cur, i = [], "", 0
    while i < len(spec):
        if spec[i] == ",":
            if spec[i + 1:i + 2] == ",":
                cur += ","
                i += 2
                continue
            entries.append(cur)
            cur = ""
        else:
            cur += spec[i]
        i += 1
    entries.append(cur)
    out = []
    for entry in entries:
        path = entry.split(" ", 1)[0]
        if not path:
            raise V3Error(f"--initrd {spec!r}: an empty module entry (multiboot modules are "
                          f"\"file args,file args\")")
        out.append((path, entry))
    if len(out) > MAX_MODULES:
        raise V3Error(f"--initrd: {len(out)} modules (at most {MAX_MODULES})")
    return out


def info(cmdline_addr, memory_map, modules=()):
    """The multiboot information structure and what hangs off it, as {address: bytes}.
    `modules`: [(address, size, string address)]."""
    low = next((l for b, l, t in memory_map if b == 0 and t == 1), 0) // 1024
    upper = next((l for b, l, t in memory_map if b == 0x100000 and t == 1), 0) // 1024
    mmap = b"".join(struct.pack("<IQQI", 20, b, l, t) for b, l, t in memory_map)
    flags = 1 | (1 << 2) | (1 << 6) | (1 << 9)
    mods_count = 0
    blobs = {MMAP: mmap, NAME: LOADER_NAME}
    if modules:
        flags |= 1 << 3
        mods_count = len(modules)
        blobs[MOD_LIST] = b"".join(struct.pack("<IIII", addr, addr + size, string, 0)
                                   for addr, size, string in modules)
    head = struct.pack("<IIIIIII", flags, low, upper, 0, cmdline_addr, mods_count, MOD_LIST)
    head += bytes(16)                                    # syms
    head += struct.pack("<II", len(mmap), MMAP)
    head += struct.pack("<IIII", 0, 0, 0, NAME)          # drives, config table, loader name
    blobs[INFO] = head
    return blobs


def enter(cpu, entry):
    from vmm.boot import linux
    linux.enter(cpu)
    env = cpu.env
    env.set_reg(6, 0)                    # ESI
    env.set_reg(0, BOOT_MAGIC)           # EAX
    env.set_reg(3, INFO)                 # EBX
    env.eip = entry
