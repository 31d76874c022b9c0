"""The register files gdb sees: i386 and x86-64, their target descriptions and their wire
layout, read from and written to the live CPU.

Conventions (docs/debug.md):
* $pc ($eip, $rip) is the *linear* address of the next instruction, CS.base + EIP, in every
  mode but 64-bit code (where CS.base is ignored and $rip is RIP). In real mode that is
  CS*16 + IP, so `break *0x7c00`, `x/i $pc` and `stepi` mean what they mean on the hardware.
  Writing $pc sets EIP = value - CS.base (CS is not changed).
* Memory addresses are linear addresses, translated through the guest's page tables.
* The description follows the CPU mode when gdb asks for it (at `target remote`): x86-64 in
  IA-32e mode, i386 otherwise. Values of a 64-bit session are zero-extended in 32-bit modes;
  a 32-bit session in long mode shows the low halves (reconnect for the 64-bit set).
"""
from unicorn import x86_const as X

from vmm.cpu import ucinternals as U

GPR32 = ("eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi")
GPR64 = ("rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp",
         "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15")
ENV_INDEX64 = {"rax": 0, "rcx": 1, "rdx": 2, "rbx": 3, "rsp": 4, "rbp": 5, "rsi": 6, "rdi": 7}
SEGS = ("cs", "ss", "ds", "es", "fs", "gs")
SEG_INDEX = {"es": 0, "cs": 1, "ss": 2, "ds": 3, "fs": 4, "gs": 5}
FPU_CTRL = ("fctrl", "fstat", "ftag", "fiseg", "fioff", "foseg", "fooff", "fop")

EFLAGS_FIELDS = (("CF", 0), ("", 1), ("PF", 2), ("AF", 4), ("ZF", 6), ("SF", 7), ("TF", 8),
                 ("IF", 9), ("DF", 10), ("OF", 11), ("NT", 14), ("RF", 16), ("VM", 17),
                 ("AC", 18), ("VIF", 19), ("VIP", 20), ("ID", 21))
MXCSR_FIELDS = (("IE", 0), ("DE", 1), ("ZE", 2), ("OE", 3), ("UE", 4), ("PE", 5), ("DAZ", 6),
                ("IM", 7), ("DM", 8), ("ZM", 9), ("OM", 10), ("UM", 11), ("PM", 12),
                ("FZ", 15))


def _layout(arch):
    """[(name, size in bytes, kind)] in gdb's register-number order."""
    regs = []
    if arch == "x86-64":
        regs += [(n, 8, "gpr") for n in GPR64]
        regs.append(("rip", 8, "pc"))
    else:
        regs += [(n, 4, "gpr") for n in GPR32]
        regs.append(("eip", 4, "pc"))
    regs.append(("eflags", 4, "eflags"))
    regs += [(n, 4, "seg") for n in SEGS]
    regs += [(f"st{i}", 10, "st") for i in range(8)]
    regs += [(n, 4, "fpu") for n in FPU_CTRL]
    nxmm = 16 if arch == "x86-64" else 8
    regs += [(f"xmm{i}", 16, "xmm") for i in range(nxmm)]
    regs.append(("mxcsr", 4, "mxcsr"))
    if arch == "x86-64":
        regs += [("fs_base", 8, "segbase"), ("gs_base", 8, "segbase")]
    return regs


LAYOUTS = {arch: _layout(arch) for arch in ("i386", "x86-64")}


def _flags_xml(name, size, fields):
    body = "".join(f'<field name="{n}" start="{b}" end="{b}"/>' for n, b in fields)
    return f'<flags id="{name}" size="{size}">{body}</flags>'


def target_xml(arch):
    """The whole target description as one document (no includes)."""
    regs = LAYOUTS[arch]
    bits = 64 if arch == "x86-64" else 32
    arch_name = "i386:x86-64" if arch == "x86-64" else "i386"
    types = {"gpr": f"int{bits}", "seg": "int32", "st": "i387_ext", "fpu": "int",
             "xmm": "vec128", "mxcsr": "i386_mxcsr", "eflags": "i386_eflags",
             "segbase": "int64"}
    core, sse, segs = [], [], []
    for n, size, kind in regs:
        t = types.get(kind)
        if kind == "pc":
            t = "code_ptr"
        if n in ("rsp", "rbp", "esp", "ebp"):
            t = "data_ptr"
        group = ' group="float"' if kind == "fpu" else ""
        line = f'<reg name="{n}" bitsize="{size * 8}" type="{t}"{group}/>'
        (sse if kind in ("xmm", "mxcsr") else segs if kind == "segbase" else core).append(line)
    vec = ('<vector id="v8bf16" type="bfloat16" count="8"/>'
           '<vector id="v4f" type="ieee_single" count="4"/>'
           '<vector id="v2d" type="ieee_double" count="2"/>'
           '<vector id="v16i8" type="int8" count="16"/>'
           '<vector id="v8i16" type="int16" count="8"/>'
           '<vector id="v4i32" type="int32" count="4"/>'
           '<vector id="v2i64" type="int64" count="2"/>'
           '<union id="vec128"><field name="v8_bfloat16" type="v8bf16"/>'
           '<field name="v4_float" type="v4f"/><field name="v2_double" type="v2d"/>'
           '<field name="v16_int8" type="v16i8"/><field name="v8_int16" type="v8i16"/>'
           '<field name="v4_int32" type="v4i32"/><field name="v2_int64" type="v2i64"/>'
           '<field name="uint128" type="uint128"/></union>')
    out = ['<?xml version="1.0"?><!DOCTYPE target SYSTEM "gdb-target.dtd">',
           f'<target version="1.0"><architecture>{arch_name}</architecture>',
           '<feature name="org.gnu.gdb.i386.core">',
           _flags_xml("i386_eflags", 4, EFLAGS_FIELDS), *core, '</feature>',
           '<feature name="org.gnu.gdb.i386.sse">', vec,
           _flags_xml("i386_mxcsr", 4, MXCSR_FIELDS), *sse, '</feature>']
    if segs:
        out += ['<feature name="org.gnu.gdb.i386.segments">', *segs, '</feature>']
    out.append('</target>')
    return "".join(out)


class RegisterFile:
    """Reads and writes gdb's registers on the live CPU."""

    def __init__(self, cpu, arch):
        self.cpu = cpu
        self.arch = arch
        self.regs = LAYOUTS[arch]
        self.index = {n: i for i, (n, _, _) in enumerate(self.regs)}

    def pc_base(self):
        env = self.cpu.env
        if env.hflags & U.HF_CS64:
            return 0
        return env.seg(U.SEG_CS)[1]

    def value(self, i):
        name, size, kind = self.regs[i]
        cpu, env, uc = self.cpu, self.cpu.env, self.cpu.uc
        if kind == "gpr":
            v = env.reg(ENV_INDEX64[name] if name in ENV_INDEX64 else
                        int(name[1:]) if name[0] == "r" else GPR32.index(name))
        elif kind == "pc":
            v = self.pc_base() + env.eip
        elif kind == "eflags":
            v = uc.reg_read(X.UC_X86_REG_EFLAGS)
        elif kind == "seg":
            v = env.seg(SEG_INDEX[name])[0] & 0xFFFF
        elif kind == "st":
            v = uc.reg_read(getattr(X, f"UC_X86_REG_ST{name[2]}"))
        elif kind == "fpu":
            v = {"fctrl": lambda: uc.reg_read(X.UC_X86_REG_FPCW),
                 "fstat": lambda: uc.reg_read(X.UC_X86_REG_FPSW),
                 "ftag": lambda: _abridged_tag(uc.reg_read(X.UC_X86_REG_FPTAG))}.get(
                     name, lambda: 0)()
        elif kind == "xmm":
            v = uc.reg_read(getattr(X, f"UC_X86_REG_XMM{name[3:]}"))
        elif kind == "mxcsr":
            v = uc.reg_read(X.UC_X86_REG_MXCSR)
        elif kind == "segbase":
            v = env.seg(SEG_INDEX[name[:2]])[1]
        else:                               # pragma: no cover
            raise KeyError(name)
        if isinstance(v, tuple):
            v = v[0] | (v[1] << 64)
        return v & ((1 << (8 * size)) - 1)

    def encode(self, i):
        size = self.regs[i][1]
        return self.value(i).to_bytes(size, "little")

    def read_all(self):
        return b"".join(self.encode(i) for i in range(len(self.regs)))

    def size(self, i):
        return self.regs[i][1]

    def write(self, i, raw):
        """Write register i from its wire bytes. Raises ValueError for what cannot be set."""
        name, size, kind = self.regs[i]
        if len(raw) != size:
            raise ValueError(f"{name} takes {size} bytes")
        v = int.from_bytes(raw, "little")
        cpu, env, uc = self.cpu, self.cpu.env, self.cpu.uc
        if kind == "gpr":
            idx = ENV_INDEX64[name] if name in ENV_INDEX64 else \
                int(name[1:]) if name[0] == "r" else GPR32.index(name)
            if size == 4:
                v |= env.reg(idx) & ~0xFFFFFFFF   # a 32-bit session keeps the upper halves
            env.set_reg(idx, v)
        elif kind == "pc":
            eip = (v - self.pc_base()) & ((1 << 64) - 1)
            if not env.hflags & U.HF_CS64:
                eip &= 0xFFFFFFFF
            env.eip = eip
        elif kind == "eflags":
            uc.reg_write(X.UC_X86_REG_EFLAGS, v | 2)
        elif kind == "xmm":
            uc.reg_write(getattr(X, f"UC_X86_REG_XMM{name[3:]}"), v)
        elif kind == "mxcsr":
            uc.reg_write(X.UC_X86_REG_MXCSR, v)
        elif kind == "seg" and not env.cr(0) & 1 and self.value(i) != v:
            cpu.set_real_segment(SEG_INDEX[name], v & 0xFFFF)   # real mode: base = sel * 16
        elif self.value(i) == v:
            pass                               # unchanged (gdb's G writes every register)
        else:
            raise ValueError(f"{name} cannot be written through the debugger")

    def write_all(self, raw):
        off = 0
        for i, (_, size, _) in enumerate(self.regs):
            if off + size > len(raw):
                break
            self.write(i, raw[off:off + size])
            off += size


def _abridged_tag(tag):
    """The full x87 tag word (2 bits per register, 11 = empty), as gdb's ftag wants it."""
    return tag & 0xFFFF
