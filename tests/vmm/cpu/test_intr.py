"""External interrupts taken inside the engine (vmm/cpu/intr.py, engine patch 8): a device
raising its line while the guest runs is delivered at the next block boundary without ending
the run; with IF=0 it waits, and after STI it comes one instruction later (the STI shadow);
HLT wakes; an acknowledge that fails is a fail-stop. (The run loop's own delivery, the stock
engine's path, cannot pass the first test: it sees IF=0 when the line rises, looks again only
every 200 us, and the guest's STI ... CLI; HLT window is shorter than that.)"""

import pytest

from v3tools.errors import Unimplemented
from vmm.config import parse_vm_config
from vmm.machine import GuestHalted, Machine

# Real mode, origin 0x7C00 (nasm source in the comments; t = offset):
#  00 PIC ICW1-4 (vectors 0x08/0x70), IMR: only IRQ 5 open; cx = bx = dx = 0; sp = 0x7000
#  2d sti ; 2e mov al,1 ; 30 out 0xEA,al (raise IRQ 5 with IF=1)
#  32 spin: inc cx ; 33 cmp cx,1000 ; 37 jne spin
#  39 cli ; 3a out 0xEA,al (raise it again with IF=0) ; 3c nop ; 3d nop
#  3e sti ; 3f inc bx (the STI shadow) ; 40 inc dx ; 41 mov al,'M' ; 43 out 0xE9,al ; cli ; hlt
#  47 handler (IVT 0x0D): log the return IP at [[0x500]], 'I' to 0xE9, lower IRQ 5 (out
#     0xEA,0), EOI, iret
CODE = bytes.fromhex(
    "b011e620e6a0b008e621b070e6a1b004e621b002e6a1b001e621e6a1b0dfe621b0ffe6a131c931db31d2"
    "bc0070fbb001e6ea4181f9e80375f9fae6ea9090fb4342b04de6e9faf45589e58b46028b360005890483"
    "06000502b049e6e930c0e6eab020e6205dcf")
ORG = 0x7C00
HANDLER = ORG + 0x47
LOG = 0x510


def _require_engine(require_built):
    from vmm.cpu import intr
    require_built(intr.available(), "the v3 engine with engine interrupts")


def _machine(engine_interrupts):
    m = Machine(memory_mb=1, engine_interrupts=engine_interrupts)
    m.add_devices(parse_vm_config(
        b'<vm><devices><device class="8259A" id="pic"/></devices></vm>').devices)
    for dev in m.ctx.devices.values():
        dev.reset()
    out = bytearray()
    m.ctx.io.attach(0xE9, 1, lambda o, s: 0, lambda o, s, v: out.append(v), "test-e9")
    m.ctx.io.attach(0xEA, 1, lambda o, s: 0, lambda o, s, v: m.ctx.irq(5).set(v), "test-irq")
    m.uc.mem_write(ORG, CODE)
    m.uc.mem_write(0x0D * 4, HANDLER.to_bytes(2, "little") + b"\x00\x00")
    m.uc.mem_write(0x500, LOG.to_bytes(2, "little"))
    m.cpu.reset(cs=0, ip=ORG)
    return m, out


def _returns(m):
    n = (int.from_bytes(m.uc.mem_read(0x500, 2), "little") - LOG) // 2
    raw = bytes(m.uc.mem_read(LOG, 2 * n))
    return [int.from_bytes(raw[i:i + 2], "little") for i in range(0, len(raw), 2)]


def test_interrupts_at_block_boundaries_and_after_the_sti_shadow(require_built):
    _require_engine(require_built)
    m, out = _machine(True)
    with pytest.raises(GuestHalted):
        m.run(timeout=10)
    assert out == b"IIM"
    first, second = _returns(m)
    # raised by the OUT at 0x30 with IF=1: taken at an instruction boundary of the loop
    assert first in (ORG + 0x32, ORG + 0x33, ORG + 0x37, ORG + 0x39)
    # raised with IF=0: not before STI, and not before the instruction in its shadow
    assert second == ORG + 0x40
    regs = m.cpu.env
    assert regs.reg(3) & 0xFFFF == 1 and regs.reg(2) & 0xFFFF == 1      # bx, dx: once each
    assert m.stats.events[("irq", 0x0D)] == 2
    # neither interrupt stopped the guest, nor did the one waiting behind CLI
    assert m.stats.runs == 1
    assert m._intr.taken == 2


def test_hlt_is_woken_by_an_interrupt_raised_while_halted(require_built):
    """HLT ends the run; a timer raising the line between runs wakes the guest, and the
    engine delivers the interrupt as the next run starts."""
    _require_engine(require_built)
    m, out = _machine(True)
    # sti; (no OUT); hlt at 0x32; then fall through to 'M'
    code = bytearray(CODE)
    code[0x30:0x32] = b"\x90\x90"
    code[0x32:0x41] = b"\xf4" + b"\x90" * (0x41 - 0x33)
    m.uc.mem_write(ORG, bytes(code))
    clock = m.ctx.clock
    # far enough that the guest is halted by then (idle time is skipped: nothing waits 50 ms)
    m.ctx.timers.schedule(clock.now_ns() + 50_000_000, lambda *_: m.ctx.irq(5).set(1))
    with pytest.raises(GuestHalted):
        m.run(timeout=10)
    assert out == b"IM"
    assert _returns(m) == [ORG + 0x33]       # returned to the instruction after HLT
    assert m.stats.runs >= 2                 # HLT ended the first run


def test_a_failing_acknowledge_is_a_fail_stop(require_built):
    _require_engine(require_built)
    m, out = _machine(True)
    pic = m.ctx.intc

    def broken():
        raise Unimplemented("the acknowledge went wrong", device="pic")
    pic.acknowledge = broken
    with pytest.raises(Unimplemented) as exc:
        m.run(timeout=10)
    assert "the acknowledge went wrong" in str(exc.value)
    assert exc.value.diagnostic and "CS:" in exc.value.diagnostic
    assert out == b""
