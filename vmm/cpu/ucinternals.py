"""The Unicorn internals the VMM reaches, in one place, verified against the installed Unicorn.

Unicorn's API does not expose the hidden x86 state a VMM needs (segment caches, CPL and the
other hflags, the interrupt shadow, the error code of a fault, QEMU's "exception in flight"
marker, the A20 mask, the TSC offset), nor a way to make asynchronous stops safe. We reach them:

* the live CPUX86State ("env") is located once per Uc by a value pattern written through the
  register API, and every field offset below is checked at start-up by writing through the API
  (or running a few instructions) and reading env back;
* `uc_struct.no_exit_request` is located by a value pattern and set, so that an asynchronous
  `emu_stop()` is honoured only at translation-block boundaries (without it Unicorn re-executes
  an interrupted read-modify-write instruction, corrupting guest memory).

If anything does not match, `UnicornInternalsError` says so and the VMM refuses to run.
Verified with unicorn 2.1.4 (x86-64 Linux host, LP64).
"""
import ctypes
import os
import struct

os.environ.setdefault("UC_IGNORE_REG_BREAK", "1")   # wrong-mode register reads fail loudly

from vmm import engine  # noqa: E402  (sets LIBUNICORN_PATH before unicorn is imported)
import unicorn  # noqa: E402
from unicorn import Uc, UcError, UC_ARCH_X86, UC_MODE_32, UC_MODE_64, UC_HOOK_INTR  # noqa: E402
from unicorn import x86_const as X  # noqa: E402

from v3tools.errors import V3Error  # noqa: E402

VERIFIED_VERSIONS = ("2.1.4",)

# Offsets inside CPUX86State (QEMU's target/i386/cpu.h in Unicorn's TARGET_X86_64 build).
ENV_REGS = 0            # 16 x u64, RAX RCX RDX RBX RSP RBP RSI RDI R8..R15
ENV_EIP = 128
ENV_EFLAGS = 136        # IF, TF, VM... (the arithmetic flags are lazy: use the API for those)
ENV_HFLAGS = 176
ENV_SEGS = 184          # ES CS SS DS FS GS: u32 selector, u64 base, u32 limit, u32 flags
SEG_SIZE = 24
ENV_LDT = 328
ENV_TR = 352
ENV_GDT = 376
ENV_IDT = 400
ENV_CR = 424            # cr[0..4], u64 each
ENV_A20 = 496
ENV_ERROR_CODE = 5384
ENV_EXC_IS_INT = 5388
ENV_EXC_NEXT_EIP = 5392
ENV_OLD_EXCEPTION = 5496
ENV_TSC_OFFSET = 5512
CONTEXT_SIZE = 5608     # uc_context: 40-byte header + CPUX86State copy
CONTEXT_HEADER = 40

SEG_ES, SEG_CS, SEG_SS, SEG_DS, SEG_FS, SEG_GS = range(6)

# hflags bits
HF_CPL_MASK = 3
HF_INHIBIT_IRQ = 1 << 3
HF_CS32 = 1 << 4
HF_SS32 = 1 << 5
HF_ADDSEG = 1 << 6
HF_PE = 1 << 7
HF_LMA = 1 << 14
HF_CS64 = 1 << 15
HF_VM = 1 << 17

DESC_B = 1 << 22
DESC_L = 1 << 21
DESC_DPL_SHIFT = 13


def hook_add_c(uc, htype, callback, user_data, *extra, begin=1, end=0):
    """uc_hook_add with a C function (an address, a ctypes function or function pointer) and
    our own user-data pointer, which the binding's hook_add cannot pass. `extra` are the
    hook type's further arguments (the instruction for UC_HOOK_INSN). Returns the handle."""
    from unicorn.unicorn_py3.unicorn import uclib
    from unicorn.unicorn_py3.arch.types import uc_hook_h
    handle = uc_hook_h()
    status = uclib.uc_hook_add(uc._uch, ctypes.byref(handle), htype,
                               ctypes.cast(callback, ctypes.c_void_p),
                               ctypes.cast(user_data, ctypes.c_void_p),
                               ctypes.c_uint64(begin), ctypes.c_uint64(end), *extra)
    if status != 0:
        raise UcError(status)
    return handle


class UnicornInternalsError(V3Error):
    exit_status = 4


def _fail(what):
    raise UnicornInternalsError(
        f"the installed unicorn {unicorn.__version__} does not match what the VMM was verified "
        f"against ({', '.join(VERIFIED_VERSIONS)}): {what}; install a verified version "
        f"(pip install 'unicorn=={VERIFIED_VERSIONS[-1]}')")


def _readable_ranges():
    ranges = []
    with open("/proc/self/maps") as f:
        for line in f:
            rng, perms = line.split()[:2]
            if perms[0] == "r":
                a, b = (int(x, 16) for x in rng.split("-"))
                ranges.append((a, b))
    return ranges


def _readable_span(lo, n, ranges):
    """How many bytes from `lo` (at most n) lie inside one readable mapping."""
    for a, b in ranges:
        if a <= lo < b:
            return min(n, b - lo)
    return 0


def _readable(lo, n, ranges):
    return any(a <= lo and lo + n <= b for a, b in ranges)


class Env:
    """Typed access to the live CPUX86State of one Uc (valid while the Uc lives)."""

    __slots__ = ("addr",)

    def __init__(self, addr):
        self.addr = addr

    def u32(self, off):
        return ctypes.c_uint32.from_address(self.addr + off).value

    def set_u32(self, off, v):
        ctypes.c_uint32.from_address(self.addr + off).value = v & 0xFFFFFFFF

    def i32(self, off):
        return ctypes.c_int32.from_address(self.addr + off).value

    def set_i32(self, off, v):
        ctypes.c_int32.from_address(self.addr + off).value = v

    def u64(self, off):
        return ctypes.c_uint64.from_address(self.addr + off).value

    def set_u64(self, off, v):
        ctypes.c_uint64.from_address(self.addr + off).value = v & 0xFFFFFFFFFFFFFFFF

    # -- convenience ---------------------------------------------------------------------------
    def reg(self, i):
        return self.u64(ENV_REGS + 8 * i)

    def set_reg(self, i, v):
        self.set_u64(ENV_REGS + 8 * i, v)

    @property
    def eip(self):
        return self.u64(ENV_EIP)

    @eip.setter
    def eip(self, v):
        self.set_u64(ENV_EIP, v)

    @property
    def hflags(self):
        return self.u32(ENV_HFLAGS)

    @hflags.setter
    def hflags(self, v):
        self.set_u32(ENV_HFLAGS, v)

    def seg(self, i):
        o = ENV_SEGS + SEG_SIZE * i
        return self.u32(o), self.u64(o + 8), self.u32(o + 16), self.u32(o + 20)

    def set_seg(self, i, selector, base, limit, flags):
        o = ENV_SEGS + SEG_SIZE * i
        self.set_u32(o, selector)
        self.set_u64(o + 8, base)
        self.set_u32(o + 16, limit)
        self.set_u32(o + 20, flags)

    def table(self, off):
        """(selector, base, limit, flags) of LDTR/TR/GDTR/IDTR."""
        return self.u32(off), self.u64(off + 8), self.u32(off + 16), self.u32(off + 20)

    def cr(self, n):
        return self.u64(ENV_CR + 8 * n)

    @property
    def cpl(self):
        return self.hflags & HF_CPL_MASK

    @property
    def error_code(self):
        return self.i32(ENV_ERROR_CODE) & 0xFFFFFFFF

    @property
    def exception_is_int(self):
        return self.i32(ENV_EXC_IS_INT)

    @property
    def old_exception(self):
        return self.i32(ENV_OLD_EXCEPTION)

    def clear_exception_marker(self):
        self.set_i32(ENV_OLD_EXCEPTION, -1)

    @property
    def a20_mask(self):
        return self.i32(ENV_A20)

    def set_a20(self, enabled):
        self.set_i32(ENV_A20, -1 if enabled else ~(1 << 20))

    @property
    def tsc_offset(self):
        return ctypes.c_int64.from_address(self.addr + ENV_TSC_OFFSET).value

    @tsc_offset.setter
    def tsc_offset(self, v):
        ctypes.c_int64.from_address(self.addr + ENV_TSC_OFFSET).value = v

    def recompute_hflags(self):
        """Recompute the segment-derived hflags (CS32, SS32, CS64, CPL, ADDSEG) after editing
        the CS or SS cache, by the rules the CPU applies when it loads those registers."""
        hf = self.hflags & ~(HF_CS32 | HF_SS32 | HF_CS64 | HF_CPL_MASK | HF_ADDSEG)
        cs_flags = self.seg(SEG_CS)[3]
        ss_flags = self.seg(SEG_SS)[3]
        if (hf & HF_LMA) and (cs_flags & DESC_L):
            hf |= HF_CS32 | HF_SS32 | HF_CS64
        else:
            if cs_flags & DESC_B:
                hf |= HF_CS32
            if ss_flags & DESC_B:
                hf |= HF_SS32
        if hf & HF_PE and not (hf & HF_VM):
            hf |= (ss_flags >> DESC_DPL_SHIFT) & 3
        elif hf & HF_VM:
            hf |= 3
        if not (hf & HF_CS64):
            nonzero = any(self.seg(s)[1] for s in (SEG_DS, SEG_ES, SEG_SS))
            if not (hf & HF_PE) or (hf & HF_VM) or not (hf & HF_CS32) or nonzero:
                hf |= HF_ADDSEG
        self.hflags = hf


def find_env(uc):
    """Locate the live CPUX86State of `uc`: write a random pattern into the first four GPRs
    through the API and look for it behind the pointers of uc_struct. A stale copy (the freed
    state of an earlier engine, a saved context) is told apart by a second pattern."""
    if uc._mode == UC_MODE_64:
        regs = (X.UC_X86_REG_RAX, X.UC_X86_REG_RCX, X.UC_X86_REG_RDX, X.UC_X86_REG_RBX)
        bits = 64
    else:
        regs = (X.UC_X86_REG_EAX, X.UC_X86_REG_ECX, X.UC_X86_REG_EDX, X.UC_X86_REG_EBX)
        bits = 32
    saved = [uc.reg_read(r) for r in regs]

    def pattern():
        magic = [int.from_bytes(os.urandom(bits // 8), "little") | 1 for _ in regs]
        for r, v in zip(regs, magic):
            uc.reg_write(r, v)
        return struct.pack("<4Q", *magic)

    first = pattern()
    handle = uc._uch.value
    ranges = _readable_ranges()
    found = []
    for i in range(0, 4096, 8):
        if not _readable(handle + i, 8, ranges):
            break
        ptr = ctypes.c_uint64.from_address(handle + i).value
        if ptr == 0 or ptr % 8:
            continue
        span = _readable_span(ptr, 0x20000, ranges)
        if span < 64:
            continue
        blob = ctypes.string_at(ptr, span)
        k = blob.find(first)
        while k >= 0:
            if k % 8 == 0 and ptr + k not in found:
                found.append(ptr + k)
            k = blob.find(first, k + 1)
    if len(found) > 1:
        second = pattern()
        found = [a for a in found if ctypes.string_at(a, 32) == second]
    for r, v in zip(regs, saved):
        uc.reg_write(r, v)
    if len(found) != 1:
        _fail(f"the CPU state was found {len(found)} times, expected once")
    return Env(found[0])


def find_no_exit_request(uc):
    """Address of uc_struct.no_exit_request: it follows `context_content` (= 1),
    `cpu_context_size`, `next_pc` (u64), `hook_insert` and `first_tb` (bools); `init_done` (= 1)
    comes right after it."""
    size = uc.context_size if hasattr(uc, "context_size") else uc.context_save().size
    size -= CONTEXT_HEADER
    base = uc._uch.value
    ranges = _readable_ranges()
    hits = []
    # The field sits about 2 KiB into uc_struct (0x7dc + 10 with 2.1.4); scanning further
    # would run into neighbouring heap objects (another engine's uc_struct).
    for off in range(0, 0x1000, 4):
        if not _readable(base + off, 24, ranges):
            break
        a, b = struct.unpack("<II", ctypes.string_at(base + off, 8))
        if a == 1 and b == size:
            next_pc = (off + 8 + 7) & ~7
            flags = ctypes.string_at(base + next_pc + 8, 4)
            if flags[0] in (0, 1) and flags[1] in (0, 1) and flags[2] in (0, 1) and flags[3] == 1:
                hits.append(base + next_pc + 8 + 2)
    if len(hits) != 1:
        _fail(f"uc_struct.no_exit_request was found {len(hits)} times, expected once")
    return hits[0]


def make_stops_block_granular(uc):
    ctypes.c_uint8.from_address(find_no_exit_request(uc)).value = 1
    uc.ctl_flush_tb()


# ---- start-up verification ------------------------------------------------------------------
_verified = False


def verify():
    """Check every offset above against the installed Unicorn; raise UnicornInternalsError."""
    global _verified
    if _verified:
        return
    engine.check()          # the library loaded is the one installed, with its patches
    try:
        _verify_layout()
        _verify_fault_fields()
    except UnicornInternalsError:
        raise
    except (UcError, AssertionError, struct.error) as exc:
        _fail(f"self-check failed ({exc!r})")
    _verified = True


def _verify_layout():
    uc = Uc(UC_ARCH_X86, UC_MODE_64)
    uc.mem_map(0, 0x10000)
    if uc.context_save().size != CONTEXT_SIZE:
        _fail(f"context size {uc.context_save().size}, expected {CONTEXT_SIZE}")
    env = find_env(uc)
    uc.reg_write(X.UC_X86_REG_RSP, 0x1122334455667788)
    uc.reg_write(X.UC_X86_REG_RIP, 0x5566)
    uc.reg_write(X.UC_X86_REG_CR3, 0x3000)
    uc.reg_write(X.UC_X86_REG_GDTR, (0, 0x1234, 0x57, 0))
    uc.reg_write(X.UC_X86_REG_IDTR, (0, 0x4321, 0x7FF, 0))
    uc.reg_write(X.UC_X86_REG_DS, 0x2B)
    checks = [
        ("RSP", env.reg(4), 0x1122334455667788),
        ("EIP", env.eip, 0x5566),
        ("CR3", env.cr(3), 0x3000),
        ("GDTR", env.table(ENV_GDT)[1:3], (0x1234, 0x57)),
        ("IDTR", env.table(ENV_IDT)[1:3], (0x4321, 0x7FF)),
        ("DS selector", env.seg(SEG_DS)[0], 0x2B),
        ("A20 mask", env.a20_mask, -1),
        ("exception marker", env.old_exception, -1),
    ]
    for name, got, want in checks:
        if got != want:
            _fail(f"{name} read back {got!r} from the CPU state, expected {want!r}")
    # TSC offset: a huge offset must show in RDTSC.
    env.tsc_offset = 1 << 56
    uc.mem_write(0x1000, b"\x0f\x31\xf4")            # rdtsc; hlt
    uc.emu_start(0x1000, 0x1003)
    if uc.reg_read(X.UC_X86_REG_RDX) < (1 << 24):
        _fail("the TSC offset field has no effect on RDTSC")
    find_no_exit_request(uc)


def _verify_fault_fields():
    """A #GP with a known error code (loading selector 0x3B past the GDT limit gives 0x38)."""
    uc = Uc(UC_ARCH_X86, UC_MODE_32)
    uc.mem_map(0, 0x10000)
    gdt = struct.pack("<3Q", 0, 0x00CF9A000000FFFF, 0x00CF92000000FFFF)
    uc.mem_write(0x800, gdt)
    uc.reg_write(X.UC_X86_REG_GDTR, (0, 0x800, len(gdt) - 1, 0))
    code = b"\x66\xb8\x3b\x00\x8e\xd8\xf4"           # mov ax, 0x3b; mov ds, ax; hlt
    uc.mem_write(0x1000, code)
    env = find_env(uc)
    seen = {}

    def on_intr(uc_, intno, _):
        seen.update(intno=intno, error=env.error_code, is_int=env.exception_is_int,
                    marker=env.old_exception)
        uc_.emu_stop()

    uc.hook_add(UC_HOOK_INTR, on_intr)
    uc.emu_start(0x1000, 0x1000 + len(code))
    if seen.get("intno") != 13 or seen.get("error") != 0x38 or seen.get("is_int") != 0:
        _fail(f"the fault fields do not read as expected: {seen}")
    if seen.get("marker") != 13:
        _fail(f"the exception-in-flight marker reads {seen.get('marker')}, expected 13")
