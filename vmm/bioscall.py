"""What a built-in BIOS service sees of the CPU: `BiosCall`.

Registers are read and written lazily by name (eax/ax/al/ah ..., ds/es writable with real-mode
semantics, ss/cs read-only); `cf` and `zf` read and modify the FLAGS word of the interrupt frame
that the ROM stub's IRET restores; `set_return(cs, ip)` rewrites that frame's return address.
Memory is physical (real mode: linear = seg * 16 + off); writes invalidate translated code.
"""
import struct

from vmm.cpu import ucinternals as U

_GPR32 = {"eax": 0, "ecx": 1, "edx": 2, "ebx": 3, "esp": 4, "ebp": 5, "esi": 6, "edi": 7}
_GPR16 = {"ax": 0, "cx": 1, "dx": 2, "bx": 3, "sp": 4, "bp": 5, "si": 6, "di": 7}
_GPR8L = {"al": 0, "cl": 1, "dl": 2, "bl": 3}
_GPR8H = {"ah": 0, "ch": 1, "dh": 2, "bh": 3}
_SEGS = {"es": U.SEG_ES, "cs": U.SEG_CS, "ss": U.SEG_SS, "ds": U.SEG_DS, "fs": U.SEG_FS,
         "gs": U.SEG_GS}
_WRITABLE_SEGS = ("es", "ds", "fs", "gs")
CF, ZF, IF = 1, 1 << 6, 1 << 9


class BiosCall:
    def __init__(self, cpu, service, vector=None):
        object.__setattr__(self, "_cpu", cpu)
        object.__setattr__(self, "_env", cpu.env)
        object.__setattr__(self, "service", service)
        object.__setattr__(self, "vector", vector if vector is not None
                           else getattr(service, "vector", None))
        object.__setattr__(self, "ctx", cpu.machine.ctx if cpu.machine is not None else None)

    # -- registers -------------------------------------------------------------------------------
    def __getattr__(self, name):
        env = self._env
        if name in _GPR32:
            return env.reg(_GPR32[name]) & 0xFFFFFFFF
        if name in _GPR16:
            return env.reg(_GPR16[name]) & 0xFFFF
        if name in _GPR8L:
            return env.reg(_GPR8L[name]) & 0xFF
        if name in _GPR8H:
            return (env.reg(_GPR8H[name]) >> 8) & 0xFF
        if name in _SEGS:
            return env.seg(_SEGS[name])[0] & 0xFFFF
        raise AttributeError(name)

    def __setattr__(self, name, value):
        env = self._env
        if name in _GPR32:
            i = _GPR32[name]
            env.set_reg(i, (env.reg(i) & ~0xFFFFFFFF) | (value & 0xFFFFFFFF))
        elif name in _GPR16:
            i = _GPR16[name]
            env.set_reg(i, (env.reg(i) & ~0xFFFF) | (value & 0xFFFF))
        elif name in _GPR8L:
            i = _GPR8L[name]
            env.set_reg(i, (env.reg(i) & ~0xFF) | (value & 0xFF))
        elif name in _GPR8H:
            i = _GPR8H[name]
            env.set_reg(i, (env.reg(i) & ~0xFF00) | ((value & 0xFF) << 8))
        elif name in _WRITABLE_SEGS:
            self._cpu.set_real_segment(_SEGS[name], value)
            env.recompute_hflags()
        elif name in ("cf", "zf"):
            self._set_flag(CF if name == "cf" else ZF, value)
        else:
            raise AttributeError(f"BiosCall: cannot set {name}")

    # -- the interrupt frame -------------------------------------------------------------------
    def _frame_addr(self):
        env = self._env
        return (env.seg(U.SEG_SS)[1] + (env.reg(4) & 0xFFFF)) & 0xFFFFF

    def _frame(self):
        return list(struct.unpack("<HHH", self._cpu.phys_read(self._frame_addr(), 6)))

    @property
    def flags(self):
        return self._frame()[2]

    @property
    def cf(self):
        return bool(self._frame()[2] & CF)

    @property
    def zf(self):
        return bool(self._frame()[2] & ZF)

    @property
    def interrupts_were_enabled(self):
        return bool(self._frame()[2] & IF)

    def _set_flag(self, bit, value):
        addr = self._frame_addr() + 4
        flags = struct.unpack("<H", self._cpu.phys_read(addr, 2))[0]
        flags = (flags | bit) if value else (flags & ~bit)
        self._cpu.phys_write(addr, struct.pack("<H", flags))

    def set_return(self, cs, ip):
        self._cpu.phys_write(self._frame_addr(), struct.pack("<HH", ip & 0xFFFF, cs & 0xFFFF))

    def return_address(self):
        ip, cs, _ = self._frame()
        return cs, ip

    # -- memory ----------------------------------------------------------------------------------
    @staticmethod
    def linear(seg, off):
        return ((seg & 0xFFFF) << 4) + (off & 0xFFFF)

    def read(self, linear, n):
        return self._cpu.phys_read(linear, n)

    def write(self, linear, data):
        self._cpu.phys_write(linear, data)
        if data:
            self._cpu.uc.ctl_remove_cache(linear, linear + len(data))

    def describe(self):
        vec = self.vector
        if vec is None:
            return getattr(self.service, "__name__", "bios")
        ah = self.ah
        return f"INT {vec:02X}h AH={ah:02X}h"
