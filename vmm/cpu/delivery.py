"""Interrupt and exception delivery, done by the VMM as the processor specifies.

Unicorn reports every exception and software interrupt to a hook and never looks at the
guest's IVT or IDT. This module delivers them:

* real mode: through the IVT (FLAGS, CS, IP pushed; IF, TF and AC cleared), whose limit LIDT
  sets: a vector past it is #GP (so a limit of 0 ends in a triple fault, as on a real CPU);
* protected mode: through 16- and 32-bit interrupt and trap gates, with the gate DPL check for
  software interrupts, error codes for vectors 8 and 10-14 (and 17), the stack switch from the
  TSS on a privilege change, IF cleared by interrupt gates, TF/NT/RF/VM cleared;
* faults met while delivering (a bad IDT entry, a not-present stack page) become #GP, #NP,
  #TS, #SS or #PF, then #DF by the double-fault rules, then a triple fault;
* QEMU's "exception in flight" marker is reset after each delivery, so the next fault is not
  misreported as a double fault;
* IA-32e mode (64-bit and compatibility code): 16-byte interrupt and trap gates whose target is
  a 64-bit code segment, the stack taken from the 64-bit TSS (RSP0-2 on a privilege change, or
  the IST entry the gate names, always), the stack aligned down to 16 bytes, the 64-bit frame
  with SS:RSP always pushed, SS loaded with a null selector on a privilege change;
* SYSENTER (Linux's 32-bit vDSO uses it) and SYSCALL are emulated; SYSEXIT, SYSRET, SWAPGS and
  IRET/IRETQ run natively.

Not handled, each a fail-stop naming it: task gates, virtual-8086 mode.
Real-mode `int3` executed inside the BIOS ROM is the built-in BIOS's trap: it is handed to the
BIOS service it belongs to instead of being delivered.
"""
import struct

from unicorn import x86_const as X

from v3tools.errors import Unimplemented, VMStop
from vmm.cpu import ucinternals as U
from vmm.cpu.mmu import NonCanonical, PageFault

EF_TF, EF_IF, EF_NT, EF_RF, EF_VM, EF_AC = 1 << 8, 1 << 9, 1 << 14, 1 << 16, 1 << 17, 1 << 18

VECTOR_NAMES = {
    0: "#DE divide error", 1: "#DB debug", 2: "NMI", 3: "#BP breakpoint", 4: "#OF overflow",
    5: "#BR bound range", 6: "#UD invalid opcode", 7: "#NM device not available",
    8: "#DF double fault", 9: "coprocessor segment overrun", 10: "#TS invalid TSS",
    11: "#NP segment not present", 12: "#SS stack fault", 13: "#GP general protection",
    14: "#PF page fault", 16: "#MF x87 error", 17: "#AC alignment check", 18: "#MC machine check",
    19: "#XM SIMD error",
}
ERROR_CODE_VECTORS = {8, 10, 11, 12, 13, 14, 17}
CONTRIBUTORY = {0, 10, 11, 12, 13}


class TripleFault(VMStop):
    exit_status = 4


class DeliveryFault(Exception):
    """A fault met while delivering an event: (vector, error code)."""

    def __init__(self, vector, error_code=None):
        super().__init__(vector, error_code)
        self.vector = vector
        self.error_code = error_code


def _canonical(addr):
    return (addr >> 47) in (0, 0x1FFFF)


def vector_name(v):
    return VECTOR_NAMES.get(v, f"vector {v:#04x}")


class Delivery:
    def __init__(self, cpu):
        self.cpu = cpu
        self.env = cpu.env
        self.bios = None              # set by the machine: has trap_service(linear)
        self.on_bios_wait = None      # machine callback(until_ns)
        self.stats = None             # machine telemetry (vector counts)
        self.log = None               # ComponentLog "interrupts"
        self.exlog = None             # ComponentLog "exceptions"

    # -- entry points --------------------------------------------------------------------------
    def on_unicorn_event(self, intno):
        """From Unicorn's INTR hook: a software interrupt or an exception."""
        env = self.env
        soft = env.exception_is_int != 0
        if soft and intno == 3 and self.bios is not None and not env.cr(0) & 1:
            cs_sel, cs_base = env.seg(U.SEG_CS)[:2]
            service = self.bios.trap_service((cs_base + env.eip - 1) & 0xFFFFF)
            if service is not None:
                self._bios_call(service)
                env.clear_exception_marker()
                return
        error = env.error_code if (not soft and intno in ERROR_CODE_VECTORS) else None
        if self.stats is not None:
            self.stats.count_event("software-int" if soft else "exception", intno)
        if not soft and self.exlog is not None and self.exlog.on:
            extra = f" error {error:#x}" if error is not None else ""
            if intno == 14:
                extra += f" CR2 {env.cr(2):#x}"
            self.exlog.debug(f"{vector_name(intno)}{extra} at {self._where()}")
        self.deliver(intno, soft=soft, error_code=error)

    def on_invalid_opcode(self):
        if self.stats is not None:
            self.stats.count_event("exception", 6)
        if self.exlog is not None and self.exlog.on:
            self.exlog.debug(f"#UD at {self._where()}")
        self.deliver(6)

    def external(self, vector):
        """A hardware interrupt acknowledged from the interrupt controller."""
        self.note_external(vector)
        self.deliver(vector, external=True)

    def note_external(self, vector):
        """Telemetry and the interrupt log for a hardware interrupt about to be delivered
        (here, or by the engine itself: vmm/cpu/intr.py)."""
        if self.stats is not None:
            self.stats.count_event("irq", vector)
        if self.log is not None and self.log.on:
            self.log.debug(f"IRQ vector {vector:#04x} at {self._where()}")

    # -- the delivery state machine ------------------------------------------------------------
    def deliver(self, vector, soft=False, error_code=None, external=False):
        first = vector
        try:
            self._deliver_one(vector, soft, error_code, external)
        except DeliveryFault as f:
            second = f.vector
            if soft:
                # A fault raised by INT n itself (gate DPL, bad gate) points at the instruction.
                self.env.eip = (self.env.eip - self._soft_int_length(vector)) & \
                    self.cpu.address_mask()
                soft = False
            if first == 8:
                self._triple(f"{vector_name(second)} while delivering a double fault")
            if (first in CONTRIBUTORY and second in CONTRIBUTORY) or \
                    (first == 14 and (second in CONTRIBUTORY or second == 14)):
                try:
                    self._deliver_one(8, False, 0, False)
                except DeliveryFault as f2:
                    self._triple(f"{vector_name(f2.vector)} while delivering a double fault "
                                 f"(after {vector_name(first)} then {vector_name(second)})")
            else:
                try:
                    self._deliver_one(second, False, f.error_code, external)
                except DeliveryFault as f3:
                    try:
                        self._deliver_one(8, False, 0, False)
                    except DeliveryFault:
                        self._triple(f"faults while delivering {vector_name(first)}, "
                                     f"{vector_name(second)} and {vector_name(f3.vector)}")
        self.env.clear_exception_marker()

    def _soft_int_length(self, vector):
        """Length of the INT3 (CC), INTO (CE) or INT n (CD nn) instruction just executed."""
        sel, eip, base = self.cpu.cs_ip()
        try:
            before = self.cpu.read_linear((base + eip - 2) & self.cpu.address_mask(), 2,
                                          user=False)
        except (PageFault, NonCanonical):
            return 2
        if vector == 3 and before[1] == 0xCC or vector == 4 and before[1] == 0xCE:
            return 1
        return 2

    def _triple(self, why):
        raise TripleFault(f"triple fault: {why}")

    def _deliver_one(self, vector, soft, error_code, external):
        env = self.env
        if not env.cr(0) & 1:
            self._deliver_real(vector)
            return
        if env.hflags & U.HF_LMA:
            self._deliver_long(vector, soft, error_code, 1 if external else 0)
            return
        if env.u64(U.ENV_EFLAGS) & EF_VM:
            raise Unimplemented(f"delivering {vector_name(vector)} in virtual-8086 mode")
        self._deliver_protected(vector, soft, error_code, 1 if external else 0)

    # -- real mode -----------------------------------------------------------------------------
    def _deliver_real(self, vector):
        cpu, env = self.cpu, self.env
        idt_base, idt_limit = env.table(U.ENV_IDT)[1:3]
        if 4 * vector + 3 > idt_limit:
            # the IVT is as long as LIDT said: a vector past its limit is #GP (which then
            # double-faults and shuts down just the same way if the limit is that short)
            raise DeliveryFault(13, 0)
        new_ip, new_cs = struct.unpack("<HH", cpu.phys_read((idt_base + 4 * vector) & 0xFFFFF, 4))
        flags = cpu.eflags & 0xFFFF
        cs_sel = env.seg(U.SEG_CS)[0] & 0xFFFF
        ip = env.eip & 0xFFFF
        ss_base = env.seg(U.SEG_SS)[1]
        sp = env.reg(4) & 0xFFFF
        frame = struct.pack("<HHH", ip, cs_sel, flags)
        sp = (sp - 6) & 0xFFFF
        if sp <= 0xFFFA:
            cpu.phys_write((ss_base + sp) & 0xFFFFFFFF, frame)
        else:          # the frame wraps around the 64 KiB stack segment
            for k in range(0, 6, 2):
                cpu.phys_write((ss_base + ((sp + k) & 0xFFFF)), frame[k:k + 2])
        env.set_reg(4, (env.reg(4) & ~0xFFFF) | sp)
        cpu.set_real_segment(U.SEG_CS, new_cs)
        env.eip = new_ip
        env.recompute_hflags()
        cpu.set_eflags_bits(clear_bits=EF_IF | EF_TF | EF_AC)

    # -- protected mode ------------------------------------------------------------------------
    def _sys_read(self, linear, n):
        """A supervisor read of a system structure (IDT, GDT, LDT, TSS)."""
        try:
            return self.cpu.read_linear(linear, n, user=False)
        except PageFault as pf:
            self._page_fault(pf)
        except NonCanonical:
            raise DeliveryFault(13, 0)

    def _page_fault(self, pf):
        self.env.set_u64(U.ENV_CR + 16, pf.linear)          # CR2
        raise DeliveryFault(14, pf.error_code)

    def _descriptor(self, selector, ext, fault_vec=13):
        env = self.env
        if selector & 4:
            _, base, limit, _ = env.table(U.ENV_LDT)
        else:
            _, base, limit, _ = env.table(U.ENV_GDT)
        if (selector | 7) > limit:
            raise DeliveryFault(fault_vec, (selector & 0xFFFC) | ext)
        return struct.unpack("<II", self._sys_read(base + (selector & ~7), 8))

    @staticmethod
    def _cache(e1, e2):
        base = (e1 >> 16) | ((e2 & 0xFF) << 16) | (e2 & 0xFF000000)
        limit = (e1 & 0xFFFF) | (e2 & 0xF0000)
        if e2 & (1 << 23):
            limit = (limit << 12) | 0xFFF
        return base, limit, e2 | 0x100                       # accessed

    def _deliver_protected(self, vector, soft, error_code, ext):
        cpu, env = self.cpu, self.env
        cpl = env.cpl
        _, idt_base, idt_limit, _ = env.table(U.ENV_IDT)
        idt_err = vector * 8 + 2 + ext
        if vector * 8 + 7 > idt_limit:
            raise DeliveryFault(13, idt_err)
        lo, hi = struct.unpack("<II", self._sys_read(idt_base + vector * 8, 8))
        gtype = (hi >> 8) & 0x1F                             # type and S bit
        dpl = (hi >> 13) & 3
        if gtype not in (0x05, 0x06, 0x07, 0x0E, 0x0F):
            raise DeliveryFault(13, idt_err)
        if soft and dpl < cpl:
            raise DeliveryFault(13, vector * 8 + 2)
        if not hi & 0x8000:
            raise DeliveryFault(11, idt_err)
        if gtype == 0x05:
            raise Unimplemented(f"task gate in the IDT for {vector_name(vector)}")
        gate32 = gtype in (0x0E, 0x0F)
        offset = (lo & 0xFFFF) | ((hi & 0xFFFF0000) if gate32 else 0)
        selector = lo >> 16
        if selector & 0xFFFC == 0:
            raise DeliveryFault(13, ext)
        e1, e2 = self._descriptor(selector, ext)
        cs_dpl = (e2 >> 13) & 3
        if not (e2 & (1 << 12)) or not (e2 & (1 << 11)) or cs_dpl > cpl:
            raise DeliveryFault(13, (selector & 0xFFFC) | ext)
        if not e2 & 0x8000:
            raise DeliveryFault(11, (selector & 0xFFFC) | ext)
        conforming = bool(e2 & (1 << 10))
        new_cpl = cpl if conforming else cs_dpl
        cs_base, cs_limit, cs_flags = self._cache(e1, e2)
        if offset > cs_limit:
            raise DeliveryFault(13, ext)

        eflags = cpu.eflags
        old_cs = env.seg(U.SEG_CS)[0] & 0xFFFF
        old_ss = env.seg(U.SEG_SS)
        old_esp = env.reg(4) & 0xFFFFFFFF
        eip = env.eip & 0xFFFFFFFF
        if new_cpl < cpl:
            ss_sel, esp = self._tss_stack(new_cpl, ext)
            if ss_sel & 0xFFFC == 0:
                raise DeliveryFault(10, ext)
            s1, s2 = self._descriptor(ss_sel, ext, fault_vec=10)
            if ((ss_sel & 3) != new_cpl or ((s2 >> 13) & 3) != new_cpl or not s2 & (1 << 12)
                    or s2 & (1 << 11) or not s2 & (1 << 9)):
                raise DeliveryFault(10, (ss_sel & 0xFFFC) | ext)
            if not s2 & 0x8000:
                raise DeliveryFault(12, (ss_sel & 0xFFFC) | ext)
            ss_base, ss_limit, ss_flags = self._cache(s1, s2)
            words = [old_ss[0] & 0xFFFF, old_esp, eflags, old_cs, eip]
            new_ss = (ss_sel, ss_base, ss_limit, ss_flags)
        else:
            ss_sel, ss_base, ss_limit, ss_flags = old_ss
            esp = old_esp
            words = [eflags, old_cs, eip]
            new_ss = None
        if error_code is not None:
            words.append(error_code)
        size = 4 if gate32 else 2
        stack32 = bool(ss_flags & (1 << 22))
        sp = esp if stack32 else esp & 0xFFFF
        sp = (sp - size * len(words)) & (0xFFFFFFFF if stack32 else 0xFFFF)
        data = b"".join(struct.pack("<I" if size == 4 else "<H", w & (0xFFFFFFFF if size == 4 else 0xFFFF))
                        for w in reversed(words))
        try:
            cpu.write_linear(ss_base + sp, data, user=(new_cpl == 3))
        except PageFault as pf:
            self._page_fault(pf)
        # commit
        if new_ss is not None:
            env.set_seg(U.SEG_SS, *new_ss)
        new_esp = sp if stack32 else (esp & 0xFFFF0000) | sp
        env.set_reg(4, new_esp)
        env.set_seg(U.SEG_CS, (selector & 0xFFFC) | new_cpl, cs_base, cs_limit, cs_flags)
        env.eip = offset
        env.recompute_hflags()
        clear = EF_TF | EF_NT | EF_RF | EF_VM
        if gtype in (0x06, 0x0E):
            clear |= EF_IF
        cpu.set_eflags_bits(clear_bits=clear)

    # -- IA-32e mode -----------------------------------------------------------------------------
    def _deliver_long(self, vector, soft, error_code, ext):
        """Delivery through a 16-byte IDT gate (SDM vol. 3, 6.14): the target must be a 64-bit
        code segment; the frame is SS, RSP, RFLAGS, CS, RIP (and the error code), 8 bytes each,
        on a stack aligned down to 16 bytes."""
        cpu, env = self.cpu, self.env
        cpl = env.cpl
        _, idt_base, idt_limit, _ = env.table(U.ENV_IDT)
        idt_err = vector * 8 + 2 + ext
        if vector * 16 + 15 > idt_limit:
            raise DeliveryFault(13, idt_err)
        w0, w1, w2, _ = struct.unpack("<IIII", self._sys_read(idt_base + vector * 16, 16))
        gtype = (w1 >> 8) & 0x1F
        dpl = (w1 >> 13) & 3
        if gtype not in (0x0E, 0x0F):          # only 64-bit interrupt and trap gates exist
            raise DeliveryFault(13, idt_err)
        if soft and dpl < cpl:
            raise DeliveryFault(13, vector * 8 + 2)
        if not w1 & 0x8000:
            raise DeliveryFault(11, idt_err)
        offset = (w0 & 0xFFFF) | (w1 & 0xFFFF0000) | (w2 << 32)
        selector = w0 >> 16
        ist = w1 & 7
        if selector & 0xFFFC == 0:
            raise DeliveryFault(13, ext)
        e1, e2 = self._descriptor(selector, ext)
        cs_dpl = (e2 >> 13) & 3
        if (not (e2 & (1 << 12)) or not (e2 & (1 << 11)) or cs_dpl > cpl
                or not e2 & U.DESC_L or e2 & U.DESC_B):
            raise DeliveryFault(13, (selector & 0xFFFC) | ext)
        if not e2 & 0x8000:
            raise DeliveryFault(11, (selector & 0xFFFC) | ext)
        if not _canonical(offset):
            raise DeliveryFault(13, ext)
        new_cpl = cpl if e2 & (1 << 10) else cs_dpl
        cs_base, cs_limit, cs_flags = self._cache(e1, e2)

        rflags = cpu.eflags
        old_cs = env.seg(U.SEG_CS)[0] & 0xFFFF
        old_ss = env.seg(U.SEG_SS)[0] & 0xFFFF
        old_rsp = env.reg(4)
        rip = env.eip
        if not env.hflags & U.HF_CS64:          # compatibility mode: the upper halves are zero
            rip &= 0xFFFFFFFF
        if ist:
            rsp = self._tss64(0x24 + 8 * (ist - 1), ext)
        elif new_cpl < cpl:
            rsp = self._tss64(4 + 8 * new_cpl, ext)
        else:
            rsp = old_rsp
        if not _canonical(rsp):
            raise DeliveryFault(12, ext)
        words = [old_ss, old_rsp, rflags, old_cs, rip]
        if error_code is not None:
            words.append(error_code)
        sp = ((rsp & ~0xF) - 8 * len(words)) & 0xFFFFFFFFFFFFFFFF
        data = struct.pack(f"<{len(words)}Q", *reversed(words))
        try:
            cpu.write_linear(sp, data, user=(new_cpl == 3))
        except PageFault as pf:
            self._page_fault(pf)
        except NonCanonical:
            raise DeliveryFault(12, ext)
        # commit
        if new_cpl != cpl:
            # a null SS whose RPL is the new CPL (the engine keeps the CPL in SS's DPL)
            env.set_seg(U.SEG_SS, new_cpl, 0, 0, new_cpl << U.DESC_DPL_SHIFT)
        env.set_reg(4, sp)
        env.set_seg(U.SEG_CS, (selector & 0xFFFC) | new_cpl, cs_base, cs_limit, cs_flags)
        env.eip = offset
        env.recompute_hflags()
        clear = EF_TF | EF_NT | EF_RF | EF_VM
        if gtype == 0x0E:
            clear |= EF_IF
        cpu.set_eflags_bits(clear_bits=clear)

    def _tss64(self, off, ext):
        """A stack pointer from the 64-bit TSS (RSPn at 4 + 8n, ISTn at 0x24 + 8(n-1))."""
        tr_sel, tr_base, tr_limit, tr_flags = self.env.table(U.ENV_TR)
        if (tr_flags >> 8) & 0xF not in (0x9, 0xB) or off + 7 > tr_limit:
            raise DeliveryFault(10, (tr_sel & 0xFFFC) | ext)
        return struct.unpack("<Q", self._sys_read(tr_base + off, 8))[0]

    def _tss_stack(self, new_cpl, ext):
        env = self.env
        tr_sel, tr_base, tr_limit, tr_flags = env.table(U.ENV_TR)
        ttype = (tr_flags >> 8) & 0xF
        if ttype in (0x9, 0xB):
            off = 4 + 8 * new_cpl
            if off + 5 > tr_limit:
                raise DeliveryFault(10, (tr_sel & 0xFFFC) | ext)
            esp, ss = struct.unpack("<IH", self._sys_read(tr_base + off, 6))
        elif ttype in (0x1, 0x3):
            off = 2 + 4 * new_cpl
            if off + 3 > tr_limit:
                raise DeliveryFault(10, (tr_sel & 0xFFFC) | ext)
            esp, ss = struct.unpack("<HH", self._sys_read(tr_base + off, 4))
        else:
            raise DeliveryFault(10, (tr_sel & 0xFFFC) | ext)
        return ss, esp

    # -- SYSENTER and SYSCALL -------------------------------------------------------------------
    # Both reach a Unicorn instruction hook that sees RIP at the instruction and, after the
    # hook, adds the instruction length (2) to whatever RIP was written: targets are written
    # as `target - 2`, and a fault delivered from here leaves its handler address minus 2.
    def _fault_from_insn_hook(self, vector, error_code=None):
        self.deliver(vector, error_code=error_code)
        self.env.eip = (self.env.eip - 2) & 0xFFFFFFFFFFFFFFFF

    def sysenter(self):
        cpu, env, uc = self.cpu, self.env, self.cpu.uc
        if not env.cr(0) & 1:
            self._fault_from_insn_hook(13, 0)
            return
        cs = uc.reg_read(X.UC_X86_REG_MSR, 0x174) & 0xFFFF
        if cs & 0xFFFC == 0:
            self._fault_from_insn_hook(13, 0)
            return
        esp = uc.reg_read(X.UC_X86_REG_MSR, 0x175)
        eip = uc.reg_read(X.UC_X86_REG_MSR, 0x176)
        if env.hflags & U.HF_LMA:
            # IA-32e mode: a 64-bit flat code segment and the full 64-bit ESP/EIP MSRs
            env.set_seg(U.SEG_CS, cs & 0xFFFC, 0, 0xFFFFFFFF, 0x00AF9B00)
        else:
            esp &= 0xFFFFFFFF
            eip &= 0xFFFFFFFF
            env.set_seg(U.SEG_CS, cs & 0xFFFC, 0, 0xFFFFFFFF, 0x00CF9B00)
        env.set_seg(U.SEG_SS, (cs + 8) & 0xFFFC, 0, 0xFFFFFFFF, 0x00CF9300)
        env.set_reg(4, esp)
        env.recompute_hflags()
        cpu.set_eflags_bits(clear_bits=EF_VM | EF_IF | EF_RF)
        env.eip = (eip - 2) & 0xFFFFFFFFFFFFFFFF

    def syscall(self):
        """SYSCALL (SDM vol. 2B; AMD APM vol. 3 for compatibility mode): RCX = the next RIP,
        R11 = RFLAGS, CS and SS from STAR[47:32] as flat ring-0 segments, RFLAGS masked by
        SFMASK; the entry is LSTAR from 64-bit code and CSTAR from compatibility-mode code.
        The MSRs are read through the engine's register API as the guest wrote them.
        Outside IA-32e mode, or with EFER.SCE clear, SYSCALL is #UD (as on Intel processors,
        which this CPU reports being)."""
        cpu, env, uc = self.cpu, self.env, self.cpu.uc
        efer = uc.reg_read(X.UC_X86_REG_MSR, 0xC0000080)
        if not (env.hflags & U.HF_LMA) or not efer & 1:
            self._fault_from_insn_hook(6)
            return
        star = uc.reg_read(X.UC_X86_REG_MSR, 0xC0000081)
        sfmask = uc.reg_read(X.UC_X86_REG_MSR, 0xC0000084)
        long64 = bool(env.hflags & U.HF_CS64)
        target = uc.reg_read(X.UC_X86_REG_MSR, 0xC0000082 if long64 else 0xC0000083)
        rflags = cpu.eflags
        next_rip = (env.eip + 2) & (0xFFFFFFFFFFFFFFFF if long64 else 0xFFFFFFFF)
        if not _canonical(target):
            # WRMSR already refuses non-canonical values on hardware; keep the guest honest.
            raise Unimplemented(f"SYSCALL to the non-canonical address {target:#x}")
        env.set_reg(1, next_rip)                               # RCX
        env.set_reg(11, rflags & ~EF_RF)                       # R11
        sel = (star >> 32) & 0xFFFF
        env.set_seg(U.SEG_CS, sel & 0xFFFC, 0, 0xFFFFFFFF, 0x00AF9B00)
        env.set_seg(U.SEG_SS, (sel + 8) & 0xFFFC, 0, 0xFFFFFFFF, 0x00CF9300)
        env.recompute_hflags()
        # One write through the API: the engine keeps DF and the arithmetic flags outside the
        # EFLAGS word it stores, and SFMASK may name any of them.
        uc.reg_write(X.UC_X86_REG_EFLAGS, rflags & ~(sfmask & 0xFFFFFFFF) & ~(EF_RF | EF_VM) | 2)
        env.eip = (target - 2) & 0xFFFFFFFFFFFFFFFF

    # -- the BIOS trap ---------------------------------------------------------------------------
    def _bios_call(self, service):
        from vmm.bioscall import BiosCall
        from vmm.bios import BiosWait
        call = BiosCall(self.cpu, service)
        if self.stats is not None:
            self.stats.count_bios(call.describe())
        try:
            service(call)
        except BiosWait as wait:
            env = self.env
            env.eip = (env.eip - 1) & 0xFFFF                 # re-execute the trap later
            self.cpu.set_eflags_bits(set_bits=EF_IF)
            self.on_bios_wait(wait.until_ns)

    def _where(self):
        sel, eip, base = self.cpu.cs_ip()
        return f"{sel:04x}:{eip:08x}"
