"""Interrupt and exception delivery (vmm/cpu/delivery.py), driven by the project's tiny guests."""
import pytest

from vmm.cpu.delivery import TripleFault
from vmm.machine import GuestHalted


def test_protected_mode_delivery_ring3_page_faults_and_gp(bare):
    b = bare().load("pmtest.bin")
    with pytest.raises(GuestHalted):
        b.run(timeout=20)
    # INT 0x80 through a DPL-3 trap gate from ring 3 (CPL seen by the handler = 3); #PF error
    # codes 4 (user read, not present) and 7 (user write, protection) with CR2; INT 0x81 to a
    # DPL-0 gate from ring 3 is #GP with error code 0x81*8+2; HLT at CPL 3 is #GP(0).
    assert b.text == "S3 PF4@00200000 PF7@00201000 GP040A GP0000 DONE"
    cpu = b.machine.cpu
    assert cpu.env.cpl == 0
    assert cpu.mode() == "protected 32-bit, paging"


def test_real_mode_int_through_ivt(bare):
    b = bare()
    # handler at 0000:0600 prints 'H' and returns; main: int 0x42; out 'M'; cli; hlt
    m = b.machine
    m.uc.mem_write(0x600, bytes([0xB0, ord("H"), 0xE6, 0xE9, 0xCF]))
    m.uc.mem_write(0x42 * 4, bytes([0x00, 0x06, 0x00, 0x00]))
    m.uc.mem_write(0x7C00, bytes([0xBC, 0x00, 0x70, 0xCD, 0x42, 0xB0, ord("M"), 0xE6, 0xE9,
                                  0xFA, 0xF4]))
    m.cpu.reset(cs=0, ip=0x7C00)
    with pytest.raises(GuestHalted):
        b.run(timeout=10)
    assert b.text == "HM"
    assert m.cpu.reg("esp") & 0xFFFF == 0x7000          # the frame was popped by IRET


def test_triple_fault_when_idt_is_empty(bare):
    b = bare()
    m = b.machine
    # protected mode with an IDT limit of 0, then a #UD: #GP on delivery, #DF, triple fault
    code = bytes.fromhex(
        "fa"                    # cli
        "0f0116 207c"           # lgdt [0x7c20]
        "0f011e 267c"           # lidt [0x7c26]
        "0f20c0 0c01 0f22c0"    # mov eax, cr0; or al, 1; mov cr0, eax
        "ea 187c 0800"          # jmp 0x08:0x7c18
    )
    code = code.ljust(0x18, b"\x90") + bytes.fromhex("0f0b") + b"\x90" * 6     # ud2
    gdt = bytes.fromhex("0000000000000000 ffff0000009acf00")
    code += bytes.fromhex("0f00 287c0000") + bytes.fromhex("0000 00000000")
    code = code.ljust(0x28, b"\x00") + gdt
    m.uc.mem_write(0x7C00, code)
    m.cpu.reset(cs=0, ip=0x7C00)
    with pytest.raises(TripleFault):
        b.run(timeout=10)


def test_sysenter_is_emulated(bare, flat_protected_mode):
    from unicorn import x86_const as X
    b = bare()
    m = b.machine
    # Flat protected mode set up by the host, SYSENTER to a handler that prints 'Y' and halts.
    m.uc.mem_write(0x7C00, bytes.fromhex("0f34"))                          # sysenter
    m.uc.mem_write(0x8000, bytes([0xB0, ord("Y"), 0xE6, 0xE9, 0xFA, 0xF4]))
    m.uc.reg_write(X.UC_X86_REG_MSR, (0x174, 0x08))
    m.uc.reg_write(X.UC_X86_REG_MSR, (0x175, 0x9000))
    m.uc.reg_write(X.UC_X86_REG_MSR, (0x176, 0x8000))
    env = flat_protected_mode(m, gdt_at=0x1000)
    env.eip = 0x7C00
    with pytest.raises(GuestHalted):
        b.run(timeout=10)
    assert b.text == "Y"
    assert m.cpu.reg("esp") == 0x9000
    assert m.cpu.sysenter_count == 1


def test_faults_and_traps_reach_protected_mode_handlers(bare):
    """#DE, #UD, #NM (CR0.TS), #DB (TF single step), #BP, #OF and #BR, each handled by the
    guest's own IDT handler with the return address a fault or a trap calls for."""
    b = bare().load("exceptions.bin")
    with pytest.raises(GuestHalted):
        b.run(timeout=20)
    assert b.text == "DE UD NM DB BP OF BR OK"


def test_long_mode_delivery_ist_ring3_and_syscall(bare):
    """lmtest.asm in IA-32e mode: #PF error codes and CR2 (not present, execute-disable,
    user), IST and the 16-byte stack alignment, ring 3 -> ring 0 through RSP0 of the 64-bit
    TSS with SS:RSP pushed, #GP from ring 3, SYSCALL/SYSRET from 64-bit code (LSTAR) and from
    compatibility mode (CSTAR) with SFMASK applied, INT from compatibility mode."""
    b = bare().load("lmtest.bin")
    with pytest.raises(GuestHalted):
        b.run(timeout=20)
    assert b.text == (
        "PF02@00400000 PF11@001FF000 IST 0009EFD8 AL 0008FFC8 PF04@00400000 "
        "S3 CS=003B SS=0033 RSP=00097FD8 GP0000 GP040A "
        "SC64 CS=0018 SS=0020 FL=0000 R11=0600 RCX=ok "
        "SC32 CS=0018 SS=0020 FL=0000 RCX=ok "
        "S3 CS=002B SS=0033 RSP=00097FD8 DONE")
    cpu = b.machine.cpu
    assert cpu.mode() == "long"
    assert cpu.env.cpl == 0
    assert cpu.syscall_count == 2


def test_long_mode_triple_fault_when_idt_is_too_short(bare):
    """lmtest with an IDT limit of 15 (vector 0 only): its first #PF meets #GP on delivery,
    then #DF cannot be delivered either."""
    from pathlib import Path
    code = bytearray((Path(__file__).resolve().parents[2] / "guests" / "lmtest.bin").read_bytes())
    assert code[-10:-8] == (256 * 16 - 1).to_bytes(2, "little")     # idtr: limit, base
    code[-10:-8] = (15).to_bytes(2, "little")
    b = bare()
    b.machine.uc.mem_write(0x7C00, bytes(code))
    b.machine.cpu.reset(cs=0, ip=0x7C00)
    with pytest.raises(TripleFault):
        b.run(timeout=20)
    assert b.text == ""


def test_syscall_outside_long_mode_is_ud(bare):
    """SYSCALL in legacy protected mode is #UD on Intel processors (as this CPU reports)."""
    b = bare()
    m = b.machine
    # real mode: IVT[6] -> 0000:0600 prints 'U', then cli; hlt.
    m.uc.mem_write(0x600, bytes([0xB0, ord("U"), 0xE6, 0xE9, 0xFA, 0xF4]))
    m.uc.mem_write(6 * 4, bytes([0x00, 0x06, 0x00, 0x00]))
    m.uc.mem_write(0x7C00, bytes.fromhex("bc0070 0f05"))           # mov sp, 0x7000; syscall
    m.cpu.reset(cs=0, ip=0x7C00)
    with pytest.raises(GuestHalted):
        b.run(timeout=10)
    assert b.text == "U"
    # the #UD frame points at the SYSCALL
    assert m.uc.mem_read(0x7000 - 6, 2) == bytes.fromhex("037c")
