"""Guest-physical memory: the RAM block the VMM and the engine share, the open-bus/MMIO window
above it up to 4 GiB, an optional firmware image at the top, the A20 gate, and the
`GuestMemory` view devices and the BIOS use (its writes drop translated code)."""
import ctypes
import mmap

from unicorn import UC_PROT_ALL

from v3tools.errors import V3Error

MB = 1 << 20

MMIO_NOTE = ("(an MMIO access: Unicorn reports the start of the translated block that holds "
             "it as EIP, not the faulting instruction itself)")


class MemoryMap:
    """The physical address space of one machine. RAM is one lazily-backed host mapping
    (anonymous, so pages cost host memory only once the guest touches them) that the VMM reads
    and writes directly; everything else below 4 GiB is one Unicorn MMIO window that goes to
    the device that claimed the address on the MMIO bus (ctx.mmio), else answers as open bus
    (reads all ones, writes dropped)."""

    def __init__(self, machine, memory_size, firmware=None):
        self.m = machine
        uc = machine.uc
        ram = max((memory_size + 0xFFFFF) & ~0xFFFFF, MB)
        # conventional memory, the VGA window (text mode 3 lives at 0xB8000), the option-ROM
        # area and the BIOS ROM (shadowed in RAM), extended memory. Writes that may hit code
        # go through GuestMemory, which drops the translated code of the range.
        self.host_map = mmap.mmap(-1, ram, mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        self._anchor = ctypes.c_char.from_buffer(self.host_map)
        uc.mem_map_ptr(0, ram, UC_PROT_ALL, ctypes.addressof(self._anchor))
        self.ram = memoryview(self.host_map)
        self.ram_size = ram
        end = 1 << 32
        if firmware is not None:
            # A firmware image also answers at the top of the 4 GiB space, where the reset
            # vector of a real PC is (0xFFFFFFF0).
            end -= len(firmware)
            uc.mem_map(end, len(firmware), UC_PROT_ALL)
            uc.mem_write(end, firmware)
        # Unicorn splits accesses to the window into aligned pieces of at most 4 bytes.
        self._base = ram
        self._noted = set()
        self._map_window(uc, ram, end - ram)

    def _map_window(self, uc, base, size):
        """The MMIO window's callbacks: the C dispatcher (vmm/cpu/_fastmmio.c) when it is
        built, which tries the devices' register fast paths in C (the MMIO bus tells it of
        them, `fast=`) and calls _read/_write for the rest; else raw ctypes functions, like the
        port hooks (the binding's wrappers add two Python calls to every access, which a
        driver that polls its card's registers pays thousands of times a second)."""
        from unicorn.unicorn_py3.unicorn import uclib, MMIO_READ_CFUNC, MMIO_WRITE_CFUNC
        from unicorn import UcError
        self.fast = None
        try:
            from vmm.cpu import _fastmmio
        except ImportError:
            _fastmmio = None
        if _fastmmio is not None:
            self.fast = _fastmmio.Dispatcher(self._read, self._write, base, self._fail)
            entry = self.fast.entry_points()
            self._callbacks = (entry["read"], entry["write"])
            user = entry["user"]
            self.m.ctx.mmio.use_fast_paths(self.fast)
            self.m.stats.fast_mmio = self.fast
        else:
            self._callbacks = (MMIO_READ_CFUNC(self._read), MMIO_WRITE_CFUNC(self._write))
            user = None
        status = uclib.uc_mmio_map(uc._uch, base, size, self._callbacks[0], user,
                                   self._callbacks[1], user)
        if status != 0:
            raise UcError(status)

    def _read(self, handle, offset, size, key):
        m = self.m
        addr = self._base + offset
        m.stats.mmio[addr & ~0xFFF] += 1
        bus = m.ctx.mmio
        r = bus.find(addr) if m._fatal is None else None
        if r is not None:
            try:
                if size in r.widths:
                    return r.read(addr - r.base, size) & ((1 << (8 * size)) - 1)
                return bus.read(addr, size)
            except BaseException as exc:     # an int is owed to Unicorn: never let it escape
                m._fail_in_hook(exc, MMIO_NOTE)
        else:
            self._note_open_bus(addr, "read")
        return (1 << (8 * size)) - 1

    def _write(self, handle, offset, size, value, key):
        m = self.m
        addr = self._base + offset
        m.stats.mmio[addr & ~0xFFF] += 1
        bus = m.ctx.mmio
        r = bus.find(addr) if m._fatal is None else None
        if r is not None:
            try:
                if size in r.widths:
                    r.write(addr - r.base, size, value & ((1 << (8 * size)) - 1))
                else:
                    bus.write(addr, size, value)
            except BaseException as exc:
                m._fail_in_hook(exc, MMIO_NOTE)
        else:
            self._note_open_bus(addr, "write")

    def _fail(self, exc):
        """A device's fast path in C raised inside its access (vmm/cpu/fastmmio.h)."""
        self.m._fail_in_hook(exc, MMIO_NOTE)

    def _note_open_bus(self, addr, what):
        page = addr & ~0xFFF
        if page not in self._noted:
            self._noted.add(page)
            self.m.vmmlog.component("memory").debug(
                f"open-bus {what} at {addr:#x} (no RAM or device there)")

    def set_a20(self, enabled):
        """The A20 gate (keyboard controller output port, port 0x92, INT 15h 24xxh): the CPU
        masks address bit 20 of every access; cached translations must go."""
        from unicorn.unicorn_const import UC_CTL_IO_WRITE, UC_CTL_TLB_FLUSH
        m = self.m
        m.cpu.env.set_a20(enabled)
        m.uc.ctl(UC_CTL_TLB_FLUSH, UC_CTL_IO_WRITE)
        m.uc.ctl_flush_tb()


def read_firmware(path):
    """A --bios image: 64, 128, 192 or 256 KiB."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise V3Error(f"--bios {path}: cannot read: {exc.strerror}")
    if not data or len(data) % 0x10000 or len(data) > 0x40000:
        raise V3Error(f"--bios {path}: a firmware image is 64, 128, 192 or 256 KiB "
                      f"(this one is {len(data)} bytes)")
    return data


class GuestMemory:
    """Guest-physical memory for devices and the BIOS; writes invalidate translated code.

    On the v3 engine uc_mem_write drops translated code by physical address. The stock
    engine's only tool, uc_ctl_remove_cache, translates its address through the guest's page
    tables, so with paging on it would miss the page (or hit another): there the whole
    translation cache goes (correct, slow: one more reason for the v3 engine)."""

    def __init__(self, machine):
        from vmm import engine
        self.m = machine
        self.physical_invalidation = engine.has("uc_mem_write_invalidates_code")

    def read(self, addr, size):
        return self.m.cpu.phys_read(addr, size)

    def raw_access(self):
        """For devices' frame paths in C: (RAM as a writable buffer from address 0, the guest's
        memory size, the engine's uc_mem_write address, the engine handle), or None on the
        stock engine (whose code invalidation needs the Python path)."""
        if not self.physical_invalidation:
            return None
        import ctypes
        from unicorn.unicorn_py3.unicorn import uclib
        m = self.m
        return (m.memmap.host_map, m.memory_size,
                ctypes.cast(uclib.uc_mem_write, ctypes.c_void_p).value, m.uc._uch.value)

    def write(self, addr, data):
        if not data:
            return
        if self.physical_invalidation:
            self.m.uc.mem_write(addr, bytes(data))
            return
        self.m.cpu.phys_write(addr, data)
        if self.m.cpu.env.cr(0) & 0x80000000:
            self.m.uc.ctl_flush_tb()
        else:
            self.m.uc.ctl_remove_cache(addr, addr + len(data))
