"""Engine patch 0004: uc_cpu_halted() tells a run that ended on HLT from a stop that landed
after an instruction whose last byte is F4 (here `mov eax, [ebp-0x0c]`, 8B 45 F4), which the
resume address alone cannot."""
import ctypes

from vmm import engine


def _halted_fn(require_built):
    require_built(engine.has("uc_halt_state"), "the v3 engine with uc_cpu_halted")
    from unicorn.unicorn_py3.unicorn import uclib
    fn = uclib.uc_cpu_halted
    fn.restype, fn.argtypes = ctypes.c_int, [ctypes.c_void_p]
    return fn


def test_hlt_and_an_f4_byte_are_told_apart(require_built):
    from unicorn import Uc, UC_ARCH_X86, UC_MODE_32
    from unicorn import x86_const as X
    halted = _halted_fn(require_built)
    uc = Uc(UC_ARCH_X86, UC_MODE_32)
    uc.mem_map(0, 0x10000)
    uc.mem_write(0x1000, b"\x8b\x45\xf4" + b"\x90" * 8)       # mov eax, [ebp-0xc]; nops
    uc.mem_write(0x2000, b"\x90\xf4" + b"\x90" * 8)           # nop; hlt; nops
    uc.reg_write(X.UC_X86_REG_EBP, 0x8000)
    uc.emu_start(0x1000, 0x2000, count=1)                      # stopped after the mov
    assert uc.reg_read(X.UC_X86_REG_EIP) == 0x1003
    assert uc.mem_read(0x1002, 1) == b"\xf4"                   # the guess would say HLT
    assert not halted(uc._uch)
    uc.emu_start(0x2000, 0x3000)                               # ends on the HLT
    assert uc.reg_read(X.UC_X86_REG_EIP) == 0x2002
    assert halted(uc._uch)
    uc.emu_start(0x1000, 0x2000, count=1)                      # the next run clears it
    assert not halted(uc._uch)


def test_the_cpu_uses_it():
    from vmm.machine import Machine
    m = Machine(memory_mb=4)
    m.uc.mem_write(0x7C00, b"\xfa\xf4")                        # cli; hlt
    m.cpu.reset(cs=0, ip=0x7C00)
    m.cpu.run()
    assert m.cpu.ended_on_hlt() is True
