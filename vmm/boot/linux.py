"""Direct Linux boot (`v3 run --kernel bzImage --initrd FILE --append "..."`), by the x86 Linux
boot protocol (Documentation/arch/x86/boot.rst in the kernel sources), 16-bit entry.

The built-in BIOS runs its POST as for any boot; its INT 19h bootstrap then loads the kernel
instead of a boot sector, as a boot loader would:

    0x90000    the real-mode setup code (setup_sects + 1 sectors), its header filled in
    0x9DE00    the end of the setup heap (heap_end_ptr = 0xDE00), the stack just above it
    0x9E000    the command line (NUL-terminated, at most cmdline_size bytes)
    0x100000   the protected-mode kernel (the rest of the bzImage)
    top of RAM the initrd, page-aligned, below initrd_addr_max and below the highest usable
               E820 RAM range's end

and leaves through a five-instruction real-mode stub at 0x7C00 that loads DS = ES = FS = GS =
SS = 0x9000, SP = 0xE000, and jumps to 0x9020:0000 with interrupts off. From there the kernel's
own setup code runs on the BIOS (E820 map, video, keyboard), switches to protected mode and,
for a 64-bit kernel, to long mode: the same path isolinux and GRUB's `linux16` take.

Requirements checked up front (one-line errors): the "HdrS" signature and boot protocol 2.04 or
later (Linux 2.6.14, 2005), a kernel loaded high (bzImage), an initrd and a kernel that fit in
the machine's memory, and a command line without control characters that fits cmdline_size.
"""
import struct

from v3tools.errors import V3Error

SETUP_SEG = 0x9000
SETUP_ADDR = SETUP_SEG << 4
HEAP_END = 0xDE00                  # heap_end_ptr: offset from the setup segment's start
STACK_TOP = 0xE000
CMDLINE_OFF = 0xE000
CMDLINE_ADDR = SETUP_ADDR + CMDLINE_OFF
KERNEL_ADDR = 0x100000
STUB_ADDR = 0x7C00
PAGE = 0x1000

# setup header fields (offsets in the bzImage's first sectors)
HDR_SETUP_SECTS = 0x1F1
HDR_BOOT_FLAG = 0x1FE
HDR_MAGIC = 0x202
HDR_VERSION = 0x206
HDR_TYPE_OF_LOADER = 0x210
HDR_LOADFLAGS = 0x211
HDR_RAMDISK_IMAGE = 0x218
HDR_RAMDISK_SIZE = 0x21C
HDR_HEAP_END_PTR = 0x224
HDR_CMD_LINE_PTR = 0x228
HDR_INITRD_ADDR_MAX = 0x22C
HDR_CMDLINE_SIZE = 0x238
HDR_INIT_SIZE = 0x260

LOADED_HIGH = 0x01
CAN_USE_HEAP = 0x80
LOADER_UNDEFINED = 0xFF
MIN_PROTOCOL = 0x0204


def _stub():
    """cli; mov ax,0x9000; mov ds,ax; mov es,ax; mov fs,ax; mov gs,ax; mov ss,ax;
    mov sp,0xE000; jmp 0x9020:0000"""
    return (b"\xFA" + b"\xB8" + struct.pack("<H", SETUP_SEG)
            + b"\x8E\xD8\x8E\xC0\x8E\xE0\x8E\xE8\x8E\xD0"
            + b"\xBC" + struct.pack("<H", STACK_TOP)
            + b"\xEA" + struct.pack("<HH", 0, SETUP_SEG + 0x20))


class LinuxKernel:
    """A bzImage, an optional initrd and a command line, checked and ready to load."""

    def __init__(self, kernel, initrd=None, cmdline="", kernel_name="--kernel",
                 initrd_name="--initrd"):
        self.name = kernel_name
        self.kernel = kernel
        self.initrd = initrd
        self.initrd_name = initrd_name
        if len(kernel) < 0x400 or kernel[HDR_MAGIC:HDR_MAGIC + 4] != b"HdrS":
            raise V3Error(f"{kernel_name}: not a Linux x86 kernel image (no 'HdrS' boot "
                          f"header at offset 0x202)")
        self.version = struct.unpack_from("<H", kernel, HDR_VERSION)[0]
        if self.version < MIN_PROTOCOL:
            raise V3Error(f"{kernel_name}: Linux boot protocol {self.version >> 8}."
                          f"{self.version & 0xFF:02d} is older than 2.04, which v3 loads")
        if not kernel[HDR_LOADFLAGS] & LOADED_HIGH:
            raise V3Error(f"{kernel_name}: a zImage (loaded low); only bzImage kernels are "
                          f"supported")
        sects = kernel[HDR_SETUP_SECTS] or 4
        self.setup_size = (sects + 1) * 512
        if self.setup_size > CMDLINE_OFF - 0x200 or self.setup_size >= len(kernel):
            raise V3Error(f"{kernel_name}: its setup code ({sects} sectors) does not fit the "
                          f"boot protocol's layout")
        self.cmdline_max = struct.unpack_from("<I", kernel, HDR_CMDLINE_SIZE)[0] \
            if self.version >= 0x0206 else 255
        self.initrd_max = struct.unpack_from("<I", kernel, HDR_INITRD_ADDR_MAX)[0]
        self.init_size = struct.unpack_from("<I", kernel, HDR_INIT_SIZE)[0] \
            if self.version >= 0x020A else 0
        bad = [c for c in cmdline if ord(c) < 0x20 or ord(c) == 0x7F]
        if bad:
            raise V3Error(f"--append: control character {ord(bad[0]):#04x} in the kernel command "
                          f"line; give printable text")
        raw = cmdline.encode()
        if len(raw) > min(self.cmdline_max, 0x800 - 1):
            raise V3Error(f"--append: {len(raw)} bytes; this kernel takes at most "
                          f"{min(self.cmdline_max, 0x7FF)}")
        self.cmdline = raw

    @classmethod
    def from_files(cls, kernel_path, initrd_path=None, cmdline=""):
        def read(what, path):
            try:
                with open(path, "rb") as f:
                    return f.read()
            except IsADirectoryError:
                raise V3Error(f"{what} {path}: is a directory")
            except OSError as exc:
                raise V3Error(f"{what} {path}: cannot read: {exc.strerror}")
        kernel = read("--kernel", kernel_path)
        initrd = read("--initrd", initrd_path) if initrd_path else None
        return cls(kernel, initrd, cmdline or "", f"--kernel {kernel_path}",
                   f"--initrd {initrd_path}")

    def check_fits(self, ram_top):
        """Raise V3Error when the kernel and the initrd cannot both be placed below ram_top."""
        self.placement(ram_top)

    def placement(self, ram_top):
        """(initrd address or None, kernel end) for usable RAM ending at ram_top."""
        pm_size = len(self.kernel) - self.setup_size
        kernel_end = KERNEL_ADDR + max(pm_size, self.init_size)
        if kernel_end > ram_top:
            raise V3Error(f"{self.name}: the kernel needs {(kernel_end - KERNEL_ADDR) >> 20} MB "
                          f"above 1 MB but the machine has {ram_top >> 20} MB; raise -m")
        if self.initrd is None:
            return None, kernel_end
        top = min(ram_top, self.initrd_max + 1)
        addr = (top - len(self.initrd)) & ~(PAGE - 1)
        if addr < kernel_end:
            raise V3Error(f"{self.initrd_name}: {len(self.initrd) >> 20} MB does not fit between "
                          f"the kernel and the top of memory ({ram_top >> 20} MB); raise -m")
        return addr, kernel_end

    def load(self, write, ram_top):
        """Write everything into guest memory through `write(addr, bytes)` (a writer that drops
        translated code). Returns (real-mode segment, offset) to jump to."""
        initrd_addr, _ = self.placement(ram_top)
        setup = bytearray(self.kernel[:self.setup_size])
        setup[HDR_TYPE_OF_LOADER] = LOADER_UNDEFINED
        setup[HDR_LOADFLAGS] |= CAN_USE_HEAP
        struct.pack_into("<H", setup, HDR_HEAP_END_PTR, HEAP_END)
        struct.pack_into("<I", setup, HDR_CMD_LINE_PTR, CMDLINE_ADDR)
        if initrd_addr is not None:
            struct.pack_into("<II", setup, HDR_RAMDISK_IMAGE, initrd_addr, len(self.initrd))
        write(SETUP_ADDR, bytes(setup))
        write(CMDLINE_ADDR, self.cmdline + b"\0")
        write(KERNEL_ADDR, self.kernel[self.setup_size:])
        if initrd_addr is not None:
            write(initrd_addr, self.initrd)
        write(STUB_ADDR, _stub())
        self.initrd_addr = initrd_addr
        return 0, STUB_ADDR

    def describe(self):
        v = f"{self.version >> 8}.{self.version & 0xFF:02d}"
        what = f"Linux kernel {self.name.split(' ', 1)[-1]} (boot protocol {v})"
        if self.initrd is not None:
            what += f", initrd {self.initrd_name.split(' ', 1)[-1]} at {self.initrd_addr:#x}"
        return what
