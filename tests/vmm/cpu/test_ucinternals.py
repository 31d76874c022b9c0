"""vmm/cpu/ucinternals.py: the start-up self-check passes on the installed Unicorn, and the located
CPU state is the live one."""
import unicorn
from unicorn import Uc, UC_ARCH_X86, UC_MODE_32, UC_MODE_64
from unicorn import x86_const as X

from vmm.cpu import ucinternals as U


def test_verify_passes():
    U.verify()
    U.verify()                      # cached: a second call is free and still passes


def test_installed_unicorn_is_a_verified_version():
    assert unicorn.__version__ in U.VERIFIED_VERSIONS


def test_find_env_follows_rip_64():
    uc = Uc(UC_ARCH_X86, UC_MODE_64)
    env = U.find_env(uc)
    uc.reg_write(X.UC_X86_REG_RIP, 0x12345678)
    assert env.eip == 0x12345678
    uc.reg_write(X.UC_X86_REG_RIP, 0x9ABC)
    assert env.eip == 0x9ABC


def test_find_env_follows_eip_32_and_restores_registers():
    uc = Uc(UC_ARCH_X86, UC_MODE_32)
    uc.reg_write(X.UC_X86_REG_EAX, 0x11111111)
    uc.reg_write(X.UC_X86_REG_EBX, 0x22222222)
    env = U.find_env(uc)
    assert uc.reg_read(X.UC_X86_REG_EAX) == 0x11111111      # the probe pattern is undone
    assert uc.reg_read(X.UC_X86_REG_EBX) == 0x22222222
    uc.reg_write(X.UC_X86_REG_EIP, 0x7C00)
    assert env.eip == 0x7C00
    env.eip = 0x1234
    assert uc.reg_read(X.UC_X86_REG_EIP) == 0x1234


def test_two_engines_have_distinct_states():
    a, b = Uc(UC_ARCH_X86, UC_MODE_32), Uc(UC_ARCH_X86, UC_MODE_32)
    ea, eb = U.find_env(a), U.find_env(b)
    assert ea.addr != eb.addr
    a.reg_write(X.UC_X86_REG_EIP, 0x1000)
    b.reg_write(X.UC_X86_REG_EIP, 0x2000)
    assert (ea.eip, eb.eip) == (0x1000, 0x2000)


def test_env_registers_and_cr():
    uc = Uc(UC_ARCH_X86, UC_MODE_32)
    env = U.find_env(uc)
    uc.reg_write(X.UC_X86_REG_ESP, 0x7BFC)
    uc.reg_write(X.UC_X86_REG_CR0, 0x11)
    assert env.reg(4) & 0xFFFFFFFF == 0x7BFC
    assert env.cr(0) == 0x11


def test_no_exit_request_found_once():
    uc = Uc(UC_ARCH_X86, UC_MODE_32)
    addr = U.find_no_exit_request(uc)
    assert addr > uc._uch.value
