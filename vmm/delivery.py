"""Interrupt and exception delivery, done by the VMM as the processor specifies.

Unicorn reports every exception and software interrupt to a hook and never looks at the
guest's IVT or IDT. This module delivers them:

* real mode: through the IVT (FLAGS, CS, IP pushed; IF, TF and AC cleared);
* protected mode: through 16- and 32-bit interrupt and trap gates, with the gate DPL check for
  software interrupts, error codes for vectors 8 and 10-14 (and 17), the stack switch from the
  TSS on a privilege change, IF cleared by interrupt gates, TF/NT/RF/VM cleared;
* faults met while delivering (a bad IDT entry, a not-present stack page) become #GP, #NP,
  #TS, #SS or #PF, then #DF by the double-fault rules, then a triple fault;
* QEMU's "exception in flight" marker is reset after each delivery, so the next fault is not
  misreported as a double fault;
* SYSENTER is emulated (Linux's vDSO uses it); SYSEXIT and IRET run natively.

Not handled yet, each a fail-stop naming it: task gates, virtual-8086 mode, long mode.
Real-mode `int3` executed inside the BIOS ROM is the built-in BIOS's trap: it is handed to the
BIOS service it belongs to instead of being delivered.
"""
import struct

from unicorn import x86_const as X

from v3tools.errors import Unimplemented, VMStop
from vmm import ucinternals as U
from vmm.mmu import PageFault

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
        if self.stats is not None:
            self.stats.count_event("irq", vector)
        if self.log is not None and self.log.on:
            self.log.debug(f"IRQ vector {vector:#04x} at {self._where()}")
        self.deliver(vector, external=True)

    # -- the delivery state machine ------------------------------------------------------------
    def deliver(self, vector, soft=False, error_code=None, external=False):
        first = vector
        try:
            self._deliver_one(vector, soft, error_code, external)
        except DeliveryFault as f:
            second = f.vector
            if soft:
                # A fault raised by INT n itself (gate DPL, bad gate) points at the instruction.
                self.env.eip = (self.env.eip - self._soft_int_length(vector)) & 0xFFFFFFFF
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
            before = self.cpu.read_linear((base + eip - 2) & 0xFFFFFFFF, 2, user=False)
        except PageFault:
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
            raise Unimplemented(f"delivering {vector_name(vector)} in long mode "
                                f"(64-bit guests come with the long-mode work)")
        if env.u64(U.ENV_EFLAGS) & EF_VM:
            raise Unimplemented(f"delivering {vector_name(vector)} in virtual-8086 mode")
        self._deliver_protected(vector, soft, error_code, 1 if external else 0)

    # -- real mode -----------------------------------------------------------------------------
    def _deliver_real(self, vector):
        cpu, env = self.cpu, self.env
        idt_base = env.table(U.ENV_IDT)[1]
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

    # -- SYSENTER ------------------------------------------------------------------------------
    def sysenter(self):
        cpu, env, uc = self.cpu, self.env, self.cpu.uc
        if not env.cr(0) & 1:
            self.deliver(13, error_code=0)
            env.eip -= 2
            return
        cs = uc.reg_read(X.UC_X86_REG_MSR, 0x174) & 0xFFFF
        if cs & 0xFFFC == 0:
            self.deliver(13, error_code=0)
            env.eip -= 2                   # Unicorn adds the instruction length afterwards
            return
        esp = uc.reg_read(X.UC_X86_REG_MSR, 0x175) & 0xFFFFFFFF
        eip = uc.reg_read(X.UC_X86_REG_MSR, 0x176) & 0xFFFFFFFF
        env.set_seg(U.SEG_CS, cs & 0xFFFC, 0, 0xFFFFFFFF, 0x00CF9B00)
        env.set_seg(U.SEG_SS, (cs + 8) & 0xFFFC, 0, 0xFFFFFFFF, 0x00CF9300)
        env.set_reg(4, esp)
        env.recompute_hflags()
        cpu.set_eflags_bits(clear_bits=EF_VM | EF_IF | EF_RF)
        env.eip = (eip - 2) & 0xFFFFFFFF

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
