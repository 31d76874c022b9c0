"""REP INS / REP OUTS in blocks: one I/O exit moves as many elements as the device offers.

The engine runs a string I/O instruction one element per step, and every element is an exit to
the port hook (~0.5 us each). For ports that can move blocks (`Bus.attach(..., blocks=)`), the
hook of the first element of a REP INS/OUTS moves the rest of the elements itself and leaves the
registers so that the engine's own element ends the instruction.

How the engine executes one element (QEMU's translation of INS/OUTS, read for this design): it
computes the memory address from (R/E)DI or (R/E)SI *before* calling the port hook; for INS it
probes the store at that address first (so a #PF on it is raised before the port is read), then
stores the hook's value there; for OUTS it loads the element before the hook. After the hook it
reloads the index register and the count from the CPU state, adds +-size to the index and
subtracts one from the count, and loops while the count is not zero. The engine's element is
therefore always the *first* one of what is left: we move elements 2..k, then set the index to
its value for element k and the count to (count - k + 1); the engine adds the last step and
finds the count at zero (or, after a partial block, goes on with element k+1 by itself).

Exactness: the elements we move are those whose bytes lie on pages that translate (present,
writable for INS, user-accessible at CPL 3) to RAM, before the first one that does not, and
that do not wrap the index register; the engine then reaches the faulting element itself and raises the
#PF with its own, architecturally right, state. Segment limits are not checked, as the engine
does not check them either.
"""
import ctypes

from unicorn import UC_PROT_EXEC

from v3tools.errors import Unimplemented
from vmm.cpu import ucinternals as U
from vmm.cpu.mmu import NonCanonical, PageFault

ENV_DF = 172                    # int32 +1/-1, the direction flag (kept outside EFLAGS)
_SEG_PREFIX = {0x26: U.SEG_ES, 0x2E: U.SEG_CS, 0x36: U.SEG_SS, 0x3E: U.SEG_DS,
               0x64: U.SEG_FS, 0x65: U.SEG_GS}
_RCX, _RSI, _RDI = 1, 6, 7
MAX_ELEMENTS = 0x10000          # per exit: bounds the host time of one hook call


class StringIO:
    """The block fast path of one CPU. `ins(blocks, size)` and `outs(blocks, size, value)` are
    called from the IN/OUT hooks for a port with block handlers `blocks` = (read_block,
    write_block); they return None when the instruction is not a REP string one (the hook then
    does a plain access)."""

    def __init__(self, cpu, memory):
        self.cpu = cpu
        self.env = cpu.env
        self.memory = memory         # GuestMemory: its writes drop translated code
        self._buf = ctypes.create_string_buffer(16)
        self.blocks = 0              # statistics: block moves done, elements moved by them
        self.elements = 0

    # -- decoding ------------------------------------------------------------------------------
    def _fetch(self, pc, n):
        """The `n` bytes at linear `pc` (within the page of the instruction being executed) as
        the instruction fetch saw them: through the engine's own translation (its TLB, with
        the fetch's permission checks), which costs a microsecond where walking the page
        tables here costs ten. That cannot fail for the page the CPU is executing from; if it
        ever did, the engine's failed probe has already written CR2 and a pending #PF into
        the CPU state, so the run must stop rather than go on."""
        vmem = self._vmem
        if vmem is None:
            from unicorn.unicorn_py3.unicorn import uclib
            vmem = uclib.uc_vmem_read
            vmem.argtypes = [ctypes.c_void_p, ctypes.c_uint64, ctypes.c_int, ctypes.c_void_p,
                             ctypes.c_size_t]
            vmem.restype = ctypes.c_int
            StringIO._vmem = vmem
        buf = self._buf
        if vmem(self.cpu.uc._uch, pc, UC_PROT_EXEC, buf, n) != 0:
            raise Unimplemented(f"REP INS/OUTS at linear {pc:#x}: the engine cannot read back "
                                f"the instruction it is executing")
        return buf.raw[:n]

    _vmem = None

    def _decode(self):
        """(opcode, address size in bytes, segment index) of the instruction at CS:EIP if it is
        a REP INS/OUTS, else None."""
        env = self.env
        hf = env.hflags
        long64 = bool(hf & U.HF_CS64)
        pc = env.eip if long64 else (env.seg(U.SEG_CS)[1] + env.eip) & 0xFFFFFFFF
        code = self._fetch(pc, min(15, 0x1000 - (pc & 0xFFF)))
        rep = False
        a_toggle = False
        seg = U.SEG_DS
        for i, b in enumerate(code):
            if b in (0xF3, 0xF2):
                rep = True
            elif b == 0x67:
                a_toggle = True
            elif b in _SEG_PREFIX:
                seg = _SEG_PREFIX[b]
            elif b in (0x66, 0xF0):
                pass
            elif long64 and 0x40 <= b <= 0x4F and i + 1 < len(code) and code[i + 1] in \
                    (0x6C, 0x6D, 0x6E, 0x6F):
                pass                 # REX: only meaningful right before the opcode
            else:
                if not rep or b not in (0x6C, 0x6D, 0x6E, 0x6F):
                    return None
                if long64:
                    asize = 4 if a_toggle else 8
                elif hf & U.HF_CS32:
                    asize = 2 if a_toggle else 4
                else:
                    asize = 4 if a_toggle else 2
                return b, asize, seg
        return None

    # -- the block -----------------------------------------------------------------------------
    def _plan(self, size, asize, seg, index_reg, write):
        """Elements this exit may move (>= 1, counting the engine's own first one), the
        physical chunks of elements 2..k in progression order, and the register state."""
        env = self.env
        amask = (1 << (8 * asize)) - 1
        count = env.reg(_RCX) & amask
        index = env.reg(index_reg) & amask
        down = env.i32(ENV_DF) < 0
        if asize == 8:
            base = env.seg(seg)[1] if seg in (U.SEG_FS, U.SEG_GS) else 0
        else:
            base = env.seg(seg)[1]
        m = min(count, MAX_ELEMENTS)
        # no wrap of the index register within the block
        if down:
            m = min(m, index // size + 1)
        else:
            m = min(m, (amask + 1 - index) // size)
        if m <= 1:
            return 1, [], count, index, down, amask
        lmask = 0xFFFFFFFFFFFFFFFF if asize == 8 else 0xFFFFFFFF
        lin0 = (base + index) & lmask
        if down:
            lo, hi = lin0 - (m - 1) * size, lin0
        else:
            lo, hi = lin0 + size, lin0 + m * size
        if lo < 0 or hi > lmask + 1:
            return 1, [], count, index, down, amask
        user = env.cpl == 3
        ram_size = self.cpu._ram_size
        chunks = []                  # (phys, n) in progression order
        done = 0                     # bytes translated, in progression order
        total = hi - lo
        while done < total:
            if down:
                end = hi - done
                start = max(lo, (end - 1) & ~0xFFF)
            else:
                start = lo + done
                end = min(hi, (start | 0xFFF) + 1)
            try:
                phys = self.cpu.linear_to_phys(start, write, user)
            except (PageFault, NonCanonical):
                break
            if phys + (end - start) > ram_size:
                break                # MMIO or open bus: the engine's own accesses go there
            chunks.append((phys, end - start))
            done += end - start
        k = 1 + done // size
        return k, chunks, count, index, down, amask

    def _finish(self, k, count, index, down, amask, index_reg, size):
        env = self.env
        step = (k - 1) * size
        new_index = (index - step if down else index + step) & amask
        if amask == 0xFFFFFFFFFFFFFFFF or amask == 0xFFFFFFFF:
            env.set_reg(index_reg, new_index)          # 32-bit writes zero-extend
            env.set_reg(_RCX, count - (k - 1))
        else:
            env.set_reg(index_reg, (env.reg(index_reg) & ~amask) | new_index)
            env.set_reg(_RCX, (env.reg(_RCX) & ~amask) | (count - (k - 1)))
        self.blocks += 1
        self.elements += k

    def ins(self, blocks, size):
        d = self._decode()
        if d is None or d[0] not in (0x6C, 0x6D):
            return None
        k, chunks, count, index, down, amask = self._plan(size, d[1], U.SEG_ES, _RDI, True)
        if k <= 1:
            return None
        data = blocks[0](size, k)
        k = len(data) // size
        if k == 0:
            return None
        rest = data[size:k * size]
        if down:
            rest = b"".join(rest[i:i + size] for i in range(len(rest) - size, -1, -size))
        pos = 0
        write = self.memory.write
        if down:
            # chunks are in descending address order; rest is in ascending address order and
            # ends at the highest address
            off = len(rest)
            for phys, n in chunks:
                if off <= 0:
                    break
                take = min(n, off)
                write(phys + n - take, rest[off - take:off])
                off -= take
        else:
            for phys, n in chunks:
                if pos >= len(rest):
                    break
                take = min(n, len(rest) - pos)
                write(phys, rest[pos:pos + take])
                pos += take
        self._finish(k, count, index, down, amask, _RDI, size)
        return int.from_bytes(data[:size], "little")

    def outs(self, blocks, size, value):
        d = self._decode()
        if d is None or d[0] not in (0x6E, 0x6F):
            return False
        k, chunks, count, index, down, amask = self._plan(size, d[1], d[2], _RSI, False)
        if k <= 1:
            return False
        read = self.cpu.phys_read
        if down:
            parts = [read(phys, n) for phys, n in reversed(chunks)]     # ascending addresses
            mem = b"".join(parts)
            mem = mem[len(mem) - (k - 1) * size:]
            rest = b"".join(mem[i:i + size] for i in range(len(mem) - size, -1, -size))
        else:
            rest = b"".join(read(phys, n) for phys, n in chunks)[:(k - 1) * size]
        blocks[1](size, value.to_bytes(size, "little") + rest)
        self._finish(k, count, index, down, amask, _RSI, size)
        return True

