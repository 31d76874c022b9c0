"""PVH direct boot of an ELF kernel (the x86 PVH boot ABI of Xen's start_info.h, which Linux
implements for any hypervisor: arch/x86/platform/pvh): the ELF's PT_LOAD segments at their
physical addresses, entered at the address its XEN_ELFNOTE_PHYS32_ENTRY note gives, in flat
32-bit protected mode with paging off, EBX pointing at an `hvm_start_info` (version 1:
command line, modules, the RSDP, the E820 memory map).

An ELF comes either as the `--kernel` file itself (a vmlinux) or out of a bzImage: its
payload (the compressed vmlinux, at `payload_offset`/`payload_length` of the setup header)
is decompressed on the host (xz, gzip, bzip2, lzma), so the guest skips its own
decompressor. That is logged, and `--no-host-decompress` turns it off.
"""
import bz2
import gzip
import io
import lzma
import struct
from dataclasses import dataclass

from v3tools.errors import V3Error

XEN_ELFNOTE_PHYS32_ENTRY = 18
START_INFO_MAGIC = 0x336EC578
START_INFO = 0x6000               # hvm_start_info, then the module list and the memory map
PT_LOAD, PT_NOTE = 1, 4


@dataclass
class ElfKernel:
    what: str                     # for messages: the file, or "the payload of FILE"
    segments: list                # (paddr, file bytes, memsz)
    entry: int                    # the PVH entry (physical, 32-bit)
    compression: str = None       # how the payload was compressed, for a bzImage

    @property
    def end(self):
        return max(p + m for p, _, m in self.segments)

    def describe(self):
        how = f", decompressed on the host ({self.compression})" if self.compression else ""
        return (f"ELF kernel{how}, {len(self.segments)} segments up to {self.end:#x}, "
                f"entered through its PVH note at {self.entry:#x}")


def parse_elf(data, what):
    """The loadable segments and the PVH entry of an ELF kernel; V3Error if it has none."""
    segments, _, entry, _ = _walk(data, what)
    if entry is None:
        raise V3Error(f"{what}: an ELF kernel with no PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY)")
    return ElfKernel(what, segments, entry)


def pvh_kernel(data, what):
    """The ElfKernel of an ELF with a PVH entry note, else None: also for a malformed ELF,
    whose fault parse_elf names when nothing else (multiboot) takes the file."""
    try:
        segments, _, entry, _ = _walk(data, what)
    except V3Error:
        return None
    return None if entry is None else ElfKernel(what, segments, entry)


def elf_segments(data, what):
    """(PT_LOAD segments, ELF entry point) of an ELF file."""
    segments, e_entry, _, _ = _walk(data, what)
    return segments, e_entry


def physical_entry(data, what):
    """(ELF class: 32 or 64, the physical address of the ELF entry point). Linux's vmlinux
    gives a physical entry (phys_startup_64/32); another ELF's virtual entry is translated
    through the PT_LOAD segment that holds it."""
    _, e_entry, _, spans = _walk(data, what)
    bits = 64 if data[4] == 2 else 32
    if any(paddr <= e_entry < paddr + memsz for _, paddr, memsz in spans):
        return bits, e_entry
    for vaddr, paddr, memsz in spans:
        if vaddr <= e_entry < vaddr + memsz:
            return bits, paddr + (e_entry - vaddr)
    raise V3Error(f"{what}: the ELF entry point {e_entry:#x} is in no loadable segment")


def _walk(data, what):
    if data[:4] != b"\x7fELF" or data[5] != 1:
        raise V3Error(f"{what}: not a little-endian ELF file")
    if data[4] == 2:
        e_entry, phoff = struct.unpack_from("<QQ", data, 0x18)
        phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
        fmt = "<IIQQQQQQ"                  # type, flags, offset, vaddr, paddr, filesz, memsz, align
        get = lambda ph: (ph[0], ph[2], ph[3], ph[4], ph[5], ph[6])
    elif data[4] == 1:
        e_entry, phoff = struct.unpack_from("<II", data, 0x18)
        phentsize, phnum = struct.unpack_from("<HH", data, 0x2A)
        fmt = "<IIIIIIII"                  # type, offset, vaddr, paddr, filesz, memsz, flags, align
        get = lambda ph: (ph[0], ph[1], ph[2], ph[3], ph[4], ph[5])
    else:
        raise V3Error(f"{what}: unknown ELF class {data[4]}")
    segments, entry, spans = [], None, []
    view = memoryview(data)             # segments are views: a 66 MB vmlinux is not copied
    for i in range(phnum):
        try:
            ph = struct.unpack_from(fmt, data, phoff + i * phentsize)
        except struct.error:
            raise V3Error(f"{what}: truncated ELF program headers")
        kind, offset, vaddr, paddr, filesz, memsz = get(ph)
        if offset + filesz > len(data):
            raise V3Error(f"{what}: truncated: a segment runs past the end of the file")
        if kind == PT_LOAD and memsz:
            segments.append((paddr, view[offset:offset + filesz], memsz))
            spans.append((vaddr, paddr, memsz))
        elif kind == PT_NOTE:
            entry = _pvh_note(bytes(view[offset:offset + filesz])) or entry
    if not segments:
        raise V3Error(f"{what}: an ELF file with nothing to load")
    return segments, e_entry, entry, spans


def _pvh_note(notes):
    off = 0
    while off + 12 <= len(notes):
        namesz, descsz, kind = struct.unpack_from("<III", notes, off)
        name = notes[off + 12:off + 12 + namesz]
        desc_off = off + 12 + ((namesz + 3) & ~3)
        if name.rstrip(b"\0") == b"Xen" and kind == XEN_ELFNOTE_PHYS32_ENTRY and descsz >= 4:
            return struct.unpack_from("<I", notes, desc_off)[0]
        off = desc_off + ((descsz + 3) & ~3)
    return None


def decompress_payload(bz):
    """(name, ELF bytes) of a bzImage's payload, or (None, reason) when it cannot be had."""
    data = bz.data
    if bz.version < 0x0208:
        return None, "boot protocol before 2.08 has no payload fields"
    offset, length = struct.unpack_from("<II", data, 0x248)
    if length == 0:
        return None, "its setup header names no compressed payload (payload_length 0)"
    start = (bz.setup_sects + 1) * 512 + offset
    return decompress(data[start:start + length])


def decompress(payload):
    """(name, bytes) of a compressed kernel payload (xz, gzip, bzip2, lzma, told apart by
    their magic numbers), or (None, reason)."""
    try:
        if payload[:6] == b"\xfd7zXZ\x00":
            return "xz", lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(payload)
        if payload[:2] == b"\x1f\x8b":
            return "gzip", gzip.GzipFile(fileobj=io.BytesIO(payload)).read()
        if payload[:3] == b"BZh":
            return "bzip2", bz2.BZ2Decompressor().decompress(payload)
        if payload[:3] == b"\x5d\x00\x00":
            return "lzma", lzma.LZMADecompressor(format=lzma.FORMAT_ALONE).decompress(payload)
    except (lzma.LZMAError, OSError, EOFError, ValueError) as exc:
        return None, f"its payload does not decompress ({exc})"
    return None, f"its payload's compression ({payload[:4].hex()}) is not one the host reads"


def start_info(cmdline_addr, rsdp, memory_map, initrd=None):
    """hvm_start_info (version 1) at START_INFO, then the module list, then the memory map."""
    modlist = START_INFO + 56
    memmap = modlist + (32 if initrd else 0)
    head = struct.pack("<IIIIQQQQII", START_INFO_MAGIC, 1, 0, 1 if initrd else 0,
                       modlist if initrd else 0, cmdline_addr, rsdp or 0, memmap,
                       len(memory_map), 0)
    mods = struct.pack("<QQQQ", initrd[0], initrd[1], 0, 0) if initrd else b""
    table = b"".join(struct.pack("<QQII", base, length, kind, 0)
                     for base, length, kind in memory_map)
    return head + mods + table


def enter(cpu, entry):
    """The PVH entry state: flat 32-bit protected mode, paging off, EBX = start_info."""
    from vmm.boot import linux
    linux.enter(cpu)                    # the same flat segments and CR0 as the 32-bit entry
    cpu.env.set_reg(6, 0)               # ESI
    cpu.env.set_reg(3, START_INFO)      # EBX
    cpu.env.eip = entry
