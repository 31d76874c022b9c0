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

Multiboot2 (the Multiboot2 Specification 2.0) likewise, for a kernel with a Multiboot2 header
(8-byte aligned in the first 32 KiB) and no version 1 header (QEMU's loader, too, takes
version 1 first):
* header tags: address (load_addr ...) or else the ELF segments, entry address or else the
  ELF entry, information request (a required type this loader does not provide is refused),
  console flags, framebuffer (text mode, as above), module alignment (modules are page-aligned
  anyway), relocatable (loaded at its preferred addresses); the EFI tags are for EFI loaders
  and are ignored on this BIOS machine, as GRUB does; any other required tag is refused.
* the boot information (at 0x9000): command line, boot loader name, modules, basic memory
  information, the memory map, the ACPI RSDP (old or new); EAX = 0x36D76289, EBX = its address.
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

MAGIC2 = 0xE85250D6
BOOT_MAGIC2 = 0x36D76289
INFO2_END = 0x10000
# header tags: end, information request, address, entry, console flags, framebuffer, module
# alignment, EFI boot services, EFI i386 entry, EFI amd64 entry, relocatable
H_END, H_INFO_REQ, H_ADDRESS, H_ENTRY, H_CONSOLE, H_FRAMEBUFFER, H_MODALIGN = 0, 1, 2, 3, 4, 5, 6
H_EFI = (7, 8, 9)
H_RELOCATABLE = 10
# boot information tags
I_END, I_CMDLINE, I_LOADER, I_MODULE, I_MEMINFO, I_MMAP, I_ACPI_OLD, I_ACPI_NEW = \
    0, 1, 2, 3, 4, 6, 14, 15
PROVIDED = {I_CMDLINE, I_LOADER, I_MODULE, I_MEMINFO, I_MMAP, I_ACPI_OLD, I_ACPI_NEW}


@dataclass
class MultibootKernel:
    what: str
    flags: int
    segments: list               # (paddr, bytes, memsz)
    entry: int
    compression: str = None      # "gzip" when the host decompressed the file
    version: int = 1             # 1: Multiboot, 2: Multiboot2

    @property
    def end(self):
        return max(p + m for p, _, m in self.segments)

    def describe(self):
        packed = f"{self.compression}-compressed " if self.compression else ""
        if self.version == 2:
            return (f"{packed}Multiboot2 kernel, {len(self.segments)} segment(s) up to "
                    f"{self.end:#x}, entry {self.entry:#x}")
        return (f"{packed}multiboot kernel (header flags {self.flags:#x}), {len(self.segments)} "
                f"segment(s) up to {self.end:#x}, entry {self.entry:#x}")


def find_header(data):
    """Offset of a valid multiboot header in the first 8 KiB, or None."""
    for off in range(0, min(len(data), 8192) - 11, 4):
        magic, flags, check = struct.unpack_from("<III", data, off)
        if magic == MAGIC and (magic + flags + check) & 0xFFFFFFFF == 0:
            return off
    return None


def find_header2(data):
    """Offset of a valid Multiboot2 header (i386 architecture) in the first 32 KiB, or None."""
    for off in range(0, min(len(data), 32768) - 15, 8):
        magic, arch, length, check = struct.unpack_from("<IIII", data, off)
        if magic == MAGIC2 and (magic + arch + length + check) & 0xFFFFFFFF == 0:
            return off
    return None


def find_any(data):
    return find_header(data) is not None or find_header2(data) is not None


def parse_any(data, what):
    """Version 1 when the kernel has its header, else Multiboot2."""
    return parse(data, what) if find_header(data) is not None else parse2(data, what)


def parse2(data, what):
    off = find_header2(data)
    if off is None:
        raise V3Error(f"{what}: no Multiboot2 header")
    _, arch, length, _ = struct.unpack_from("<IIII", data, off)
    if arch != 0:
        raise V3Error(f"{what}: Multiboot2 architecture {arch} (this loader boots i386, 0)")
    address = entry = None
    pos, end = off + 16, off + length
    while True:
        if pos + 8 > min(end, len(data)):
            raise V3Error(f"{what}: the Multiboot2 header's tags run past its length")
        kind, flags, size = struct.unpack_from("<HHI", data, pos)
        optional = flags & 1
        if kind == H_END:
            break
        if size < 8 or pos + size > end:
            raise V3Error(f"{what}: Multiboot2 header tag {kind} has a bad size {size}")
        if kind == H_INFO_REQ and not optional:
            wanted = struct.unpack_from(f"<{(size - 8) // 4}I", data, pos + 8)
            missing = sorted(set(wanted) - PROVIDED)
            if missing:
                raise V3Error(f"{what}: the Multiboot2 header requires boot information "
                              f"type(s) {', '.join(map(str, missing))}, which this loader "
                              f"does not provide")
        elif kind == H_ADDRESS:
            address = struct.unpack_from("<4I", data, pos + 8)
        elif kind == H_ENTRY:
            entry = struct.unpack_from("<I", data, pos + 8)[0]
        elif kind in (H_INFO_REQ, H_CONSOLE, H_FRAMEBUFFER, H_MODALIGN, H_RELOCATABLE) + H_EFI:
            pass
        elif not optional:
            raise V3Error(f"{what}: the Multiboot2 header requires tag type {kind}, which this "
                          f"loader does not know")
        pos += (size + 7) & ~7
    if address is not None:
        header_addr, load_addr, load_end, bss_end = address
        segments = [_kludge_segment(data, off, header_addr, load_addr, load_end, bss_end, what)]
    else:
        if data[:4] != b"\x7fELF":
            raise V3Error(f"{what}: a Multiboot2 header without an address tag in a file that "
                          f"is not ELF")
        from vmm.boot.pvh import elf_segments
        segments, elf_entry = elf_segments(data, what)
        entry = elf_entry if entry is None else entry
    if entry is None:
        raise V3Error(f"{what}: a Multiboot2 header with an address tag but no entry tag")
    return MultibootKernel(what, 0, segments, entry & 0xFFFFFFFF, version=2)


def _kludge_segment(data, off, header_addr, load_addr, load_end, bss_end, what):
    """The one segment that header address fields describe (v1 flag 16, v2 address tag)."""
    start = off - (header_addr - load_addr)
    if start < 0 or load_addr > header_addr:
        raise V3Error(f"{what}: multiboot header addresses are inconsistent")
    end = len(data) if load_end == 0 else start + (load_end - load_addr)
    if end > len(data):
        raise V3Error(f"{what}: truncated: the multiboot header loads {end - start} bytes")
    image = data[start:end]
    memsz = max(len(image), (bss_end - load_addr) if bss_end else 0)
    return (load_addr, image, memsz)


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
        segment = _kludge_segment(data, off, header_addr, load_addr, load_end, bss_end, what)
        return MultibootKernel(what, flags, [segment], entry)
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


def info2(cmdline, memory_map, modules=(), rsdp=None):
    """The Multiboot2 boot information, as {address: bytes}. `cmdline` is bytes, `modules`
    [(address, size, string bytes)], `rsdp` the ACPI RSDP's bytes or None."""
    def tag(kind, payload):
        body = struct.pack("<II", kind, 8 + len(payload)) + payload
        return body + bytes(-len(body) % 8)
    low = next((l for b, l, t in memory_map if b == 0 and t == 1), 0) // 1024
    upper = next((l for b, l, t in memory_map if b == 0x100000 and t == 1), 0) // 1024
    tags = [tag(I_CMDLINE, cmdline + b"\0"), tag(I_LOADER, LOADER_NAME)]
    tags += [tag(I_MODULE, struct.pack("<II", addr, addr + size) + string + b"\0")
             for addr, size, string in modules]
    tags.append(tag(I_MEMINFO, struct.pack("<II", low, upper)))
    tags.append(tag(I_MMAP, struct.pack("<II", 24, 0) + b"".join(
        struct.pack("<QQII", b, l, t, 0) for b, l, t in memory_map)))
    if rsdp is not None:
        tags.append(tag(I_ACPI_NEW if rsdp[15] >= 2 else I_ACPI_OLD,
                        rsdp if rsdp[15] >= 2 else rsdp[:20]))
    tags.append(struct.pack("<II", I_END, 8))
    body = b"".join(tags)
    blob = struct.pack("<II", 8 + len(body), 0) + body
    if INFO + len(blob) > INFO2_END:
        raise V3Error(f"multiboot2: the boot information takes {len(blob)} bytes (at most "
                      f"{INFO2_END - INFO}): shorten the command line or module strings")
    return {INFO: blob}


def enter(cpu, entry, version=1):
    from vmm.boot import linux
    linux.enter(cpu)
    env = cpu.env
    env.set_reg(6, 0)                    # ESI
    env.set_reg(0, BOOT_MAGIC if version == 1 else BOOT_MAGIC2)   # EAX
    env.set_reg(3, INFO)                 # EBX
    env.eip = entry
