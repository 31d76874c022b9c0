"""The virtual CPU: one Unicorn x86 engine plus everything Unicorn does not do for a PC.

* Created in UC_MODE_64 (the only mode whose resume address is not truncated) and loaded with
  the real-mode reset state of a UC_MODE_16 engine; SSE starts disabled as on hardware.
* Unicorn delivers no interrupt or exception through the guest's IVT/IDT: every `INT n`,
  exception and #UD reaches our hooks, and `vmm.cpu.delivery` delivers it as the processor would.
* SYSENTER and SYSCALL are emulated; CPUID answers from `vmm.cpu.cpuid.CpuidPolicy`; RDMSR/WRMSR
  go through `vmm.cpu.msr` on the v3 engine; IN/OUT go to the port bus.
* Asynchronous stops (timer preemption) are honoured only at translation-block boundaries
  (`ucinternals.make_stops_block_granular`), so no read-modify-write instruction is replayed.
"""
import ctypes

from unicorn import (Uc, UC_ARCH_X86, UC_MODE_16, UC_MODE_64, UC_HOOK_INTR, UC_HOOK_INSN,
                     UC_HOOK_INSN_INVALID)
from unicorn import x86_const as X

from vmm.cpu import ucinternals as U
from vmm.clock import measure_tsc_hz
from vmm.cpu.cpuid import CpuidPolicy
from vmm.cpu.delivery import Delivery
from vmm.cpu.mmu import MMU

EFLAGS_IF = 1 << 9
EFLAGS_VM = 1 << 17

GPR_NAMES = ("eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi")
SEG_NAMES = ("es", "cs", "ss", "ds", "fs", "gs")


class CPU:
    def __init__(self, machine):
        U.verify()
        self.machine = machine
        self.uc = uc = Uc(UC_ARCH_X86, UC_MODE_64)
        self._load_reset_state()
        self.env = U.find_env(uc)
        uc.ctl_exits_enabled(True)
        uc.ctl_set_exits([])
        self.cpuid = CpuidPolicy(tsc_hz=measure_tsc_hz())
        from vmm.cpu.msr import MSRs
        self.msrs = MSRs(self, log=machine.vmmlog.component("msr") if machine else None,
                         on_failure=machine._fail_in_hook if machine else None)
        self.mmu = MMU(self.phys_read, self.phys_write)
        self.delivery = Delivery(self)
        self.sysenter_count = 0
        self.syscall_count = 0
        self.cpuid_count = 0

    # -- set-up ------------------------------------------------------------------------------
    def _load_reset_state(self):
        """Transplant a real-mode reset state from a UC_MODE_16 engine into our UC_MODE_64 one."""
        rm = Uc(UC_ARCH_X86, UC_MODE_16)
        src = rm.context_save()
        dst = self.uc.context_save()
        n = src.size - U.CONTEXT_HEADER
        raw = ctypes.string_at(src._context.value + U.CONTEXT_HEADER, n)
        ctypes.memmove(dst._context.value + U.CONTEXT_HEADER, raw, n)
        self.uc.context_restore(dst)
        self.uc.reg_write(X.UC_X86_REG_MXCSR, 0x1F80)
        self.uc.reg_write(X.UC_X86_REG_FPCW, 0x037F)

    def install_hooks(self):
        uc = self.uc
        on_interrupt = self._on_interrupt
        if self.machine is not None and self.machine.telemetry_enabled:
            from vmm.telemetry import timed
            on_interrupt = timed(on_interrupt, self.machine.stats)
        uc.hook_add(UC_HOOK_INTR, on_interrupt)
        uc.hook_add(UC_HOOK_INSN_INVALID, self._on_invalid)
        # The order of the instruction hooks matters. Unicorn's SYSENTER, SYSCALL, CPUID (and
        # RDMSR/WRMSR) helpers walk the list of instruction hooks and leave the walk as soon as
        # a stop has been requested, also before they reach the hook for their instruction;
        # SYSENTER and SYSCALL then add the instruction length to an EIP that was never
        # brought up to date (the start of the translated block) and resume there: a 32-bit
        # process re-ran the pushes of the vDSO's __kernel_vsyscall and later returned to the
        # value of ECX (docs/run.md, "Under host load"). A hook first in the list is always
        # reached, so SYSENTER, which every system call of a 32-bit Linux process executes,
        # goes first. The others stay exposed until the engine is fixed.
        uc.hook_add(UC_HOOK_INSN, self._on_sysenter, None, 1, 0, X.UC_X86_INS_SYSENTER)
        uc.hook_add(UC_HOOK_INSN, self._on_syscall, None, 1, 0, X.UC_X86_INS_SYSCALL)
        uc.hook_add(UC_HOOK_INSN, self._on_cpuid, None, 1, 0, X.UC_X86_INS_CPUID)
        self.msrs.install(uc)
        U.make_stops_block_granular(uc)

    def reset(self, cs=0xF000, ip=0xFFF0):
        """Power-on state: real mode at F000:FFF0 (CS base 0xF0000 so the BIOS ROM runs)."""
        self._load_reset_state()
        self.msrs.reset()
        env = self.env
        for i in range(6):
            sel, base, limit, flags = env.seg(i)
            env.set_seg(i, 0, 0, 0xFFFF, flags or 0x9300)
        self.set_real_segment(U.SEG_CS, cs)
        # GDTR and IDTR at reset: base 0, limit 0xFFFF (Intel SDM vol. 3, table 9-1); the
        # real-mode IVT is then the 256 vectors at 0 (delivery checks vectors against it)
        self.uc.reg_write(X.UC_X86_REG_GDTR, (0, 0, 0xFFFF, 0))
        self.uc.reg_write(X.UC_X86_REG_IDTR, (0, 0, 0xFFFF, 0))
        env.eip = ip
        env.clear_exception_marker()
        env.recompute_hflags()
        self.uc.reg_write(X.UC_X86_REG_EFLAGS, 0x2)

    # -- memory --------------------------------------------------------------------------------
    def attach_ram(self, ram, size):
        """Direct access to guest RAM [0, size) (a memoryview of the host mapping)."""
        self._ram, self._ram_size = ram, size

    _ram, _ram_size = None, 0

    def phys_read(self, addr, n):
        if addr + n <= self._ram_size:
            return bytes(self._ram[addr:addr + n])
        return bytes(self.uc.mem_read(addr, n))       # open bus or a device window

    def phys_write(self, addr, data):
        """Write guest-physical memory. Translated code in the range is NOT dropped: callers
        that may write code use GuestMemory.write or BiosCall.write."""
        n = len(data)
        if addr + n <= self._ram_size:
            self._ram[addr:addr + n] = data
        else:
            self.uc.mem_write(addr, bytes(data))

    def linear_to_phys(self, linear, write=False, user=None):
        env = self.env
        if user is None:
            user = env.cpl == 3
        return self.mmu.translate(linear, env.cr(0), env.cr(3), env.cr(4), write, user,
                                  bool(env.hflags & U.HF_LMA))

    def read_linear(self, linear, n, user=None):
        """Read guest-linear memory page by page (raises PageFault)."""
        out = bytearray()
        while n > 0:
            chunk = min(n, 0x1000 - (linear & 0xFFF))
            out += self.phys_read(self.linear_to_phys(linear, False, user), chunk)
            linear += chunk
            n -= chunk
        return bytes(out)

    def write_linear(self, linear, data, user=None):
        data = bytes(data)
        while data:
            chunk = min(len(data), 0x1000 - (linear & 0xFFF))
            self.phys_write(self.linear_to_phys(linear, True, user), data[:chunk])
            linear += chunk
            data = data[chunk:]

    # -- registers -----------------------------------------------------------------------------
    def reg(self, name):
        env = self.env
        if name in GPR_NAMES:
            return env.reg(GPR_NAMES.index(name)) & 0xFFFFFFFF
        if name in SEG_NAMES:
            return env.seg(SEG_NAMES.index(name))[0] & 0xFFFF
        if name == "eip":
            return env.eip & 0xFFFFFFFF
        if name == "eflags":
            return self.uc.reg_read(X.UC_X86_REG_EFLAGS)
        raise KeyError(name)

    def set_gpr(self, name, value, width=4):
        i = GPR_NAMES.index(name)
        old = self.env.reg(i)
        mask = (1 << (8 * width)) - 1
        self.env.set_reg(i, (old & ~mask) | (value & mask))

    def set_real_segment(self, index, selector):
        """Load a segment register with real-mode semantics (base = selector * 16)."""
        sel, base, limit, flags = self.env.seg(index)
        self.env.set_seg(index, selector & 0xFFFF, (selector & 0xFFFF) << 4, limit or 0xFFFF,
                         flags or 0x9300)

    @property
    def eflags(self):
        return self.uc.reg_read(X.UC_X86_REG_EFLAGS)

    def set_eflags_bits(self, set_bits=0, clear_bits=0):
        """Change IF/TF/NT/RF/VM/AC (kept directly in the CPU state, unlike the lazy
        arithmetic flags) without disturbing the rest."""
        v = self.env.u64(U.ENV_EFLAGS)
        self.env.set_u64(U.ENV_EFLAGS, (v & ~clear_bits) | set_bits)

    @property
    def interrupts_enabled(self):
        return bool(self.env.u64(U.ENV_EFLAGS) & EFLAGS_IF)

    @property
    def in_interrupt_shadow(self):
        return bool(self.env.hflags & U.HF_INHIBIT_IRQ)

    def mode(self):
        env = self.env
        cr0 = env.cr(0)
        if not cr0 & 1:
            return "real"
        if env.hflags & U.HF_LMA:
            return "long" if env.hflags & U.HF_CS64 else "compatibility"
        if env.u64(U.ENV_EFLAGS) & EFLAGS_VM:
            return "virtual-8086"
        bits = 32 if env.hflags & U.HF_CS32 else 16
        return f"protected {bits}-bit" + (", paging" if cr0 & (1 << 31) else "")

    def cs_ip(self):
        cs = self.env.seg(U.SEG_CS)
        return cs[0] & 0xFFFF, self.env.eip, cs[1]

    def linear_pc(self):
        sel, eip, base = self.cs_ip()
        return (base + eip) & self.address_mask()

    def address_mask(self):
        """Linear addresses wrap at 4 GiB outside 64-bit mode."""
        return 0xFFFFFFFFFFFFFFFF if self.env.hflags & U.HF_CS64 else 0xFFFFFFFF

    # -- run -----------------------------------------------------------------------------------
    def run(self):
        """Run the guest until something stops it (HLT, a stop request, an error)."""
        self.uc.emu_start(self.env.eip, 0)

    def ended_on_hlt(self):
        """After run(): whether it ended on a HLT (engine patch 0004's uc_cpu_halted), or None
        on an engine that cannot say (the caller then guesses from the resume address)."""
        fn = self._halted_fn
        if fn is None:
            from vmm import engine
            if not engine.has("uc_halt_state"):
                return None
            from unicorn.unicorn_py3.unicorn import uclib
            fn = uclib.uc_cpu_halted
            fn.restype, fn.argtypes = ctypes.c_int, [ctypes.c_void_p]
            CPU._halted_fn = fn
        return bool(fn(self.uc._uch))

    _halted_fn = None

    # -- hooks ---------------------------------------------------------------------------------
    def _on_interrupt(self, uc, intno, user_data):
        self.delivery.on_unicorn_event(intno)

    def _on_invalid(self, uc, user_data):
        try:
            self.delivery.on_invalid_opcode()
        except BaseException as exc:        # a bool is owed to Unicorn: never let it escape
            self.machine._fail_in_hook(exc)
            return False
        return True

    def _on_cpuid(self, uc, user_data):
        self.cpuid_count += 1       # (cannot fail: a table lookup)
        leaf = self.env.reg(0) & 0xFFFFFFFF
        sub = self.env.reg(1) & 0xFFFFFFFF
        a, b, c, d = self.cpuid.lookup(leaf, sub)
        env = self.env
        env.set_reg(0, a)
        env.set_reg(3, b)
        env.set_reg(1, c)
        env.set_reg(2, d)
        return 1

    def _on_sysenter(self, uc, user_data):
        self.sysenter_count += 1
        self.delivery.sysenter()

    def _on_syscall(self, uc, user_data):
        self.syscall_count += 1
        self.delivery.syscall()

