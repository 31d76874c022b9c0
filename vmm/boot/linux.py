"""Direct kernel boot of a Linux bzImage through the Linux/x86 boot protocol
(Documentation/arch/x86/boot.rst in the Linux sources, "32-bit boot protocol").

What the VMM does in place of a boot loader, with no BIOS POST and no real-mode setup code:
* the protected-mode kernel (everything after the `(setup_sects + 1) * 512` bytes of real-mode
  setup) goes to 1 MiB (`code32_start`, where the 32-bit entry expects it);
* the initrd goes as high as RAM and the kernel's `initrd_addr_max` allow, page-aligned;
* the command line goes to 0x20000 (at most `cmdline_size` bytes);
* a zero page (`struct boot_params`) at 0x10000 receives the kernel's setup header, the loader
  fields (type_of_loader 0xFF, cmd_line_ptr, ramdisk_image/size), the E820 map the BIOS
  would report, and an 80x25 VGA text screen description;
* the CPU enters the kernel's 32-bit entry in flat protected mode as the protocol requires:
  a GDT (at 0x8000) with __BOOT_CS 0x10 and __BOOT_DS 0x18 (4 GiB, base 0), CS=0x10,
  DS=ES=SS=0x18, paging off, interrupts off, ESI = the zero page, EBX=EBP=EDI=0.
The kernel's own entry code then decompresses itself (a 64-bit kernel goes on to long mode).

The firmware tables (MP, ACPI) stay where the built-in BIOS publishes them, in the F segment,
and Linux finds them by its usual search.

Everything is checked before the machine starts: a file that is not a bzImage, a truncated
one, a protocol older than 2.06, an initrd that does not fit in RAM below the kernel's limit,
a command line longer than the kernel accepts: each is one line naming the file.
"""
import struct
from dataclasses import dataclass

from v3tools.errors import V3Error

KERNEL_ADDR = 0x100000
BOOT_PARAMS = 0x10000
CMDLINE_ADDR = 0x20000
GDT_ADDR = 0x8000
BOOT_CS, BOOT_DS = 0x10, 0x18
MIN_VERSION = 0x0206                 # cmdline_size and the 32-bit entry as documented
LOADED_HIGH = 0x01
XLF_KERNEL_64 = 0x01
E820_MAX = 128


@dataclass
class BzImage:
    path: str
    data: bytes
    version: int
    setup_sects: int
    loadflags: int
    initrd_addr_max: int
    cmdline_size: int
    init_size: int
    xloadflags: int
    header_end: int

    @property
    def payload(self):
        return self.data[(self.setup_sects + 1) * 512:]

    @property
    def is_64bit(self):
        return bool(self.xloadflags & XLF_KERNEL_64)

    def describe(self):
        return (f"Linux bzImage, boot protocol {self.version >> 8}.{self.version & 0xFF}, "
                f"{'64' if self.is_64bit else '32'}-bit, {len(self.data)} bytes")


def read_bzimage(path):
    """Parse `path` as a bzImage; V3Error (one line) if it is not one."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise V3Error(f"--kernel {path}: cannot read: {exc.strerror}")
    what = f"--kernel {path}"
    if len(data) < 0x264 or data[0x202:0x206] != b"HdrS" or data[0x1FE:0x200] != b"\x55\xAA":
        raise V3Error(f"{what}: neither a Linux bzImage (no boot sector signature and 'HdrS' "
                      f"setup header at 0x1FE/0x202) nor an ELF or multiboot kernel")
    version, = struct.unpack_from("<H", data, 0x206)
    if version < MIN_VERSION:
        raise V3Error(f"{what}: Linux boot protocol {version >> 8}.{version & 0xFF} is older "
                      f"than 2.06, which direct boot needs")
    setup_sects = data[0x1F1] or 4
    loadflags = data[0x211]
    if not loadflags & LOADED_HIGH:
        raise V3Error(f"{what}: a zImage (loaded low); only bzImages are supported")
    initrd_addr_max, = struct.unpack_from("<I", data, 0x22C)
    xloadflags, cmdline_size = struct.unpack_from("<HI", data, 0x236)
    init_size, = struct.unpack_from("<I", data, 0x260)
    header_end = 0x202 + data[0x201]
    payload_offset = (setup_sects + 1) * 512
    syssize, = struct.unpack_from("<I", data, 0x1F4)      # protected-mode size in 16-byte units
    if len(data) <= payload_offset + (syssize - 1) * 16:     # syssize is rounded up to 16
        raise V3Error(f"{what}: truncated: the setup header announces "
                      f"{payload_offset + syssize * 16} bytes, the file has {len(data)}")
    return BzImage(path, data, version, setup_sects, loadflags, initrd_addr_max, cmdline_size,
                   init_size, xloadflags, header_end)


ELF_CMDLINE_SIZE = 2047              # Linux/x86 COMMAND_LINE_SIZE - 1, for an ELF kernel


@dataclass
class LinuxBoot:
    """A checked direct boot: the kernel (a bzImage, or an ELF entered through PVH), the
    initrd bytes and where everything goes."""
    kernel: BzImage
    initrd: bytes
    initrd_addr: int
    cmdline: bytes
    elf: object = None               # vmm.boot.pvh.ElfKernel when entered through PVH
    note: str = ""                   # why a bzImage was not decompressed on the host
    multiboot: object = None         # vmm.boot.multiboot.MultibootKernel
    modules: list = None             # multiboot: [(address, bytes, string)]

    def describe(self):
        what = (self.elf or self.multiboot or self.kernel).describe()
        if self.modules:
            what += "; modules " + ", ".join(f"{s.decode(errors='replace')!r} "
                                               f"({len(d)} bytes at {a:#x})"
                                               for a, d, s in self.modules)
        if self.elf is not None and self.kernel is not None:
            what = f"{self.kernel.describe()}: {what}"
        return (f"{what}; initrd {len(self.initrd)} bytes at {self.initrd_addr:#x}; "
                f"command line {self.cmdline.decode(errors='replace')!r}")


def prepare(kernel_path, initrd_path=None, append="", memory_size=0, host_decompress=True):
    """Check everything and decide the layout; nothing is touched yet. A bzImage whose
    payload the host can decompress into an ELF with a PVH note is entered through PVH
    (unless `host_decompress` is off); an ELF kernel always is."""
    from vmm.boot import multiboot, pvh
    try:
        with open(kernel_path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise V3Error(f"--kernel {kernel_path}: cannot read: {exc.strerror}")
    what = f"--kernel {kernel_path}"
    kernel, elf, note = None, None, ""
    compressed = data[:2] == b"\x1f\x8b"
    if compressed:
        # Debian ships Xen gzip-compressed; GRUB and QEMU decompress multiboot kernels
        import gzip
        import zlib
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise V3Error(f"{what}: gzip-compressed, but it does not decompress: {exc}")
        if not multiboot.find_any(data):
            raise V3Error(f"{what}: a gzip-compressed file without a multiboot header")
    is_bzimage = len(data) >= 0x206 and data[0x202:0x206] == b"HdrS"
    elf = pvh.pvh_kernel(data, what) if not is_bzimage and data[:4] == b"\x7fELF" else None
    if elf is not None:
        cmdline_size, kernel_end, addr_max = ELF_CMDLINE_SIZE, elf.end, 0x7FFFFFFF
    elif not is_bzimage and multiboot.find_any(data):
        return prepare_multiboot(data, what, str(kernel_path), append, memory_size,
                                 initrd_path, "gzip" if compressed else None)
    elif not is_bzimage and data[:4] == b"\x7fELF":
        pvh.parse_elf(data, what)          # names what is wrong: truncated, no PVH note ...
        raise V3Error(f"{what}: an ELF kernel with neither a PVH note nor a multiboot header")
    else:
        kernel = read_bzimage(kernel_path)
        cmdline_size, addr_max = kernel.cmdline_size, kernel.initrd_addr_max
        kernel_end = KERNEL_ADDR + max(kernel.init_size, len(kernel.payload))
        if host_decompress:
            compression, payload = pvh.decompress_payload(kernel)
            if compression is None:
                note = payload
            else:
                try:
                    elf = pvh.parse_elf(payload, f"the payload of {kernel_path}")
                    elf.compression = compression
                    kernel_end = elf.end
                except V3Error as exc:
                    note = str(exc)
    cmdline = append.encode()
    if b"\0" in cmdline:
        raise V3Error("--append: the command line cannot contain a NUL byte")
    if len(cmdline) > cmdline_size:
        raise V3Error(f"--append: the command line is {len(cmdline)} bytes; this kernel "
                      f"accepts at most {cmdline_size} (cmdline_size)")
    if kernel_end > memory_size:
        raise V3Error(f"--kernel {kernel_path}: the kernel needs memory up to {kernel_end:#x}; "
                      f"the machine has {memory_size >> 20} MiB (raise -m)")
    loaded = elf.segments if elf is not None else []
    if any(paddr < KERNEL_ADDR for paddr, _, _ in loaded):
        raise V3Error(f"--kernel {kernel_path}: a segment loads below 1 MiB, where the loader "
                      f"keeps the boot information")
    initrd, initrd_addr = b"", 0
    if initrd_path is not None:
        initrd = _read_initrd(initrd_path)
        top = min(memory_size, addr_max + 1)
        initrd_addr = (top - len(initrd)) & ~0xFFF
        if initrd_addr < kernel_end:
            raise V3Error(f"--initrd {initrd_path}: {len(initrd)} bytes do not fit in RAM "
                          f"between the kernel (up to {kernel_end:#x}) and {top:#x} "
                          f"(raise -m)")
    return LinuxBoot(kernel, initrd, initrd_addr, cmdline, elf, note)


def prepare_multiboot(data, what, name, append, memory_size, modules=None, compression=None):
    """A multiboot (v1 or 2) kernel's boot, checked: `data` the (decompressed) file, `name` its
    file name (the command line starts with it, as GRUB and QEMU pass it: Xen skips that first
    word), `modules` an --initrd module list or None."""
    from vmm.boot import multiboot
    mb = multiboot.parse_any(data, what)
    mb.compression = compression
    cmdline = (f"{name} {append}" if append else name).encode()
    if b"\0" in cmdline:
        raise V3Error("--append: the command line cannot contain a NUL byte")
    if len(cmdline) > ELF_CMDLINE_SIZE:
        raise V3Error(f"--append: the command line is {len(cmdline)} bytes; at most "
                      f"{ELF_CMDLINE_SIZE} fit")
    if mb.end > memory_size:
        raise V3Error(f"{what}: the kernel needs memory up to {mb.end:#x}; the machine has "
                      f"{memory_size >> 20} MiB (raise -m)")
    if any(paddr < KERNEL_ADDR for paddr, _, _ in mb.segments):
        raise V3Error(f"{what}: a segment loads below 1 MiB, where the loader keeps the boot "
                      f"information")
    listed = [] if modules is None else _multiboot_modules(modules, mb.end, memory_size)
    return LinuxBoot(None, b"", 0, cmdline, None, "", mb, listed)


def _read_initrd(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise V3Error(f"--initrd {path}: no such file")
    except OSError as exc:
        raise V3Error(f"--initrd {path}: cannot read: {exc.strerror}")


def _multiboot_modules(spec, kernel_end, memory_size):
    """Multiboot modules, page-aligned one after the other above the kernel, as QEMU places
    them: [(address, bytes, string)]."""
    from vmm.boot import multiboot
    modules, addr, strings = [], (kernel_end + 0xFFF) & ~0xFFF, 0
    for path, string in multiboot.parse_modules(str(spec)):
        data = _read_initrd(path)
        if addr + len(data) > memory_size:
            raise V3Error(f"--initrd {path}: {len(data)} bytes at {addr:#x} do not fit in "
                          f"{memory_size >> 20} MiB of RAM (raise -m)")
        string = string.encode()
        if b"\0" in string:
            raise V3Error(f"--initrd {path}: a module string cannot contain a NUL byte")
        strings += len(string) + 1
        modules.append((addr, data, string))
        addr = (addr + len(data) + 0xFFF) & ~0xFFF
    if strings > multiboot.MOD_STRINGS_END - multiboot.MOD_STRINGS:
        raise V3Error(f"--initrd: the module strings take {strings} bytes (at most "
                      f"{multiboot.MOD_STRINGS_END - multiboot.MOD_STRINGS})")
    return modules


def e820_entries(memory_map):
    return b"".join(struct.pack("<QQI", base, length, kind) for base, length, kind in memory_map)


def boot_params(boot, memory_map):
    """The zero page (struct boot_params, 4 KiB)."""
    k = boot.kernel
    zp = bytearray(4096)
    # screen_info: mode 3, 80x25 colour VGA text, cursor at the top left
    zp[0x06] = 3                                   # orig_video_mode
    zp[0x07] = 80                                  # orig_video_cols
    zp[0x0E] = 25                                  # orig_video_lines
    zp[0x0F] = 1                                   # orig_video_isVGA
    struct.pack_into("<H", zp, 0x10, 16)           # orig_video_points
    ext_kib = max(0, min(sum(l for b, l, t in memory_map if t == 1 and b >= 1 << 20),
                         0xFFFFFFFF * 1024) // 1024)
    struct.pack_into("<I", zp, 0x1E0, ext_kib)     # alt_mem_k
    if len(memory_map) > E820_MAX:
        raise V3Error(f"direct boot: {len(memory_map)} E820 entries (at most {E820_MAX})")
    zp[0x1E8] = len(memory_map)                    # e820_entries
    zp[0x2D0:0x2D0 + 20 * len(memory_map)] = e820_entries(memory_map)
    zp[0x1F1:k.header_end] = k.data[0x1F1:k.header_end]     # the kernel's setup header
    zp[0x210] = 0xFF                               # type_of_loader: undefined
    zp[0x211] = k.loadflags & ~0x80 & 0xFF         # loadflags: CAN_USE_HEAP clear (no setup)
    struct.pack_into("<II", zp, 0x218, boot.initrd_addr if boot.initrd else 0, len(boot.initrd))
    struct.pack_into("<I", zp, 0x228, CMDLINE_ADDR)
    return bytes(zp)


def gdt():
    """Null, null, __BOOT_CS (flat 32-bit code), __BOOT_DS (flat data)."""
    return struct.pack("<QQQQ", 0, 0, 0x00CF9B000000FFFF, 0x00CF93000000FFFF)


def load(boot, mem_write, memory_map, rsdp=None, mem_read=None):
    """Write kernel, initrd, command line and zero page (or PVH start_info, or the multiboot
    information) and the GDT into guest memory. `rsdp`: the ACPI RSDP's address (read back
    through `mem_read` for Multiboot2, which carries a copy)."""
    if boot.multiboot is not None:
        from vmm.boot import multiboot
        load_segments(boot.multiboot.segments, mem_write)
        mem_write(CMDLINE_ADDR, boot.cmdline + b"\0")
        listed, string_addr = [], multiboot.MOD_STRINGS
        for addr, data, string in boot.modules or ():
            mem_write(addr, data)
            mem_write(string_addr, string + b"\0")
            listed.append((addr, len(data), string_addr))
            string_addr += len(string) + 1
        if boot.multiboot.version == 2:
            table = None
            if rsdp is not None and mem_read is not None:
                table = bytes(mem_read(rsdp, 36))
            blobs = multiboot.info2(boot.cmdline, memory_map,
                                    [(a, len(d), s) for a, d, s in boot.modules or ()], table)
        else:
            blobs = multiboot.info(CMDLINE_ADDR, memory_map, listed)
        for addr, blob in blobs.items():
            mem_write(addr, blob)
        mem_write(GDT_ADDR, gdt())
        return
    if boot.elf is not None:
        from vmm.boot import pvh
        load_segments(boot.elf.segments, mem_write)
        if boot.initrd:
            mem_write(boot.initrd_addr, boot.initrd)
        mem_write(CMDLINE_ADDR, boot.cmdline + b"\0")
        initrd = (boot.initrd_addr, len(boot.initrd)) if boot.initrd else None
        mem_write(pvh.START_INFO, pvh.start_info(CMDLINE_ADDR, rsdp, memory_map, initrd))
        mem_write(GDT_ADDR, gdt())
        return
    mem_write(KERNEL_ADDR, boot.kernel.payload)
    if boot.initrd:
        mem_write(boot.initrd_addr, boot.initrd)
    mem_write(CMDLINE_ADDR, boot.cmdline + b"\0")
    mem_write(BOOT_PARAMS, boot_params(boot, memory_map))
    mem_write(GDT_ADDR, gdt())


def load_segments(segments, mem_write):
    for paddr, data, memsz in segments:
        mem_write(paddr, data)
        if memsz > len(data):
            mem_write(paddr + len(data), bytes(memsz - len(data)))


def gdt64():
    """Null, null, __BOOT_CS (flat 64-bit code), __BOOT_DS (flat data): the 64-bit boot
    protocol's segments."""
    return struct.pack("<QQQQ", 0, 0, 0x00AF9B000000FFFF, 0x00CF93000000FFFF)


IDENTITY_TABLES_SIZE = 6 * 4096


def identity_tables(base):
    """Page tables mapping the first 4 GiB 1:1 with 2 MiB pages, for long mode: a PML4 at
    `base`, one PDPT after it, then four page directories (IDENTITY_TABLES_SIZE bytes,
    `base` 4 KiB-aligned)."""
    pml4 = struct.pack("<Q", (base + 0x1000) | 0x3).ljust(4096, b"\0")
    pdpt = b"".join(struct.pack("<Q", (base + 0x2000 + i * 0x1000) | 0x3)
                    for i in range(4)).ljust(4096, b"\0")
    pds = b"".join(struct.pack("<Q", (i << 21) | 0x83) for i in range(4 * 512))
    return pml4 + pdpt + pds


def enter(cpu):
    """Put the CPU at the kernel's 32-bit entry, in flat protected mode (boot protocol)."""
    cpu.reset()
    enter_protected(cpu, GDT_ADDR, KERNEL_ADDR, BOOT_PARAMS)


def enter_protected(cpu, gdt_addr, entry, esi):
    """The 32-bit boot protocol's entry state, from whatever state the CPU is in: the GDT of
    gdt() at `gdt_addr`, CS __BOOT_CS and the data segments __BOOT_DS (flat), paging off,
    interrupts off, ESI = `esi`, the other general registers 0."""
    from unicorn import x86_const as X
    uc = cpu.uc
    uc.reg_write(X.UC_X86_REG_GDTR, (0, gdt_addr, 4 * 8 - 1, 0))
    uc.reg_write(X.UC_X86_REG_CR0, (uc.reg_read(X.UC_X86_REG_CR0) | 0x1) & ~0x80000000)
    _flat(cpu, 0x00CF9B00, entry, esi)


def enter_long(cpu, gdt_addr, pml4, entry, rsi):
    """The 64-bit boot protocol's entry state: long mode with the page tables at `pml4`, the
    GDT of gdt64() at `gdt_addr`, CS __BOOT_CS (64-bit), the data segments __BOOT_DS,
    interrupts off, RSI = `rsi`, the other general registers 0."""
    from unicorn import x86_const as X
    uc = cpu.uc
    uc.reg_write(X.UC_X86_REG_GDTR, (0, gdt_addr, 4 * 8 - 1, 0))
    uc.reg_write(X.UC_X86_REG_CR0, uc.reg_read(X.UC_X86_REG_CR0) & ~0x80000000)
    uc.reg_write(X.UC_X86_REG_CR4, uc.reg_read(X.UC_X86_REG_CR4) | 0x20)          # PAE
    uc.reg_write(X.UC_X86_REG_CR3, pml4)
    efer = uc.reg_read(X.UC_X86_REG_MSR, 0xC0000080)
    uc.reg_write(X.UC_X86_REG_MSR, (0xC0000080, efer | 0x100))                     # LME
    uc.reg_write(X.UC_X86_REG_CR0, uc.reg_read(X.UC_X86_REG_CR0) | 0x80000001)    # PG, PE
    _flat(cpu, 0x00AF9B00, entry, rsi)


def _flat(cpu, cs_flags, entry, rsi):
    from unicorn import x86_const as X
    from vmm.cpu import ucinternals as U
    env = cpu.env
    env.set_seg(U.SEG_CS, BOOT_CS, 0, 0xFFFFFFFF, cs_flags)
    for seg in (U.SEG_DS, U.SEG_ES, U.SEG_SS, U.SEG_FS, U.SEG_GS):
        env.set_seg(seg, BOOT_DS, 0, 0xFFFFFFFF, 0x00CF9300)
    for i in range(16):
        env.set_reg(i, 0)
    env.set_reg(6, rsi)                           # ESI/RSI
    env.eip = entry
    env.recompute_hflags()
    cpu.uc.reg_write(X.UC_X86_REG_EFLAGS, 0x2)
