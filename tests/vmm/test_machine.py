"""The machine's memory map: MMIO devices above RAM, open bus, the A20 gate."""
import struct

import pytest

from v3tools.errors import Unimplemented
from vmm.machine import GuestHalted, Machine
from vmm.config import parse_vm_config


def run_code(m, code):
    m.uc.mem_write(0x7C00, code)
    m.cpu.reset(cs=0, ip=0x7C00)
    with pytest.raises(GuestHalted):
        m.run(timeout=10)


def test_mmio_device_above_ram_and_open_bus(flat_protected_mode):
    m = Machine(memory_mb=16)
    regs = {}
    seen = []
    m.ctx.mmio.attach(0xFEC00000, 0x1000, lambda off, size: regs.get(off, 0x1234),
                      lambda off, size, value: (seen.append((off, size, value)),
                                                regs.__setitem__(off, value)),
                      "test-mmio", widths=(4,))
    # flat 32-bit protected mode set up by the host, then:
    #   mov dword [0xFEC00010], 0xCAFEBABE ; mov eax, [0xFEC00010] ; mov [0x1000], eax
    #   mov eax, [0xFEC00020] ; mov [0x1004], eax   (a register nobody wrote: 0x1234)
    #   mov eax, [0xE0000000] ; mov [0x1008], eax   (open bus: all ones)
    #   mov ax, [0xFEC00010]   (a 2-byte read of a 4-byte-wide device: a fail-stop)
    code = bytes.fromhex(
        "c70510 00c0fe bebafeca" "a1 1000c0fe" "a3 00100000"
        "a1 2000c0fe" "a3 04100000"
        "a1 000000e0" "a3 08100000"
        "66a1 1000c0fe" "faf4")
    m.uc.mem_write(0x7C00, code)
    env = flat_protected_mode(m)
    env.eip = 0x7C00
    with pytest.raises(Unimplemented) as stop:
        m.run(timeout=10)
    assert "2-byte access to test-mmio" in str(stop.value)
    # Unicorn shows MMIO callbacks the start of the block as EIP; the diagnostic says so
    assert "CS:EIP 0008:00007c00" in stop.value.diagnostic
    assert "start of the translated block" in stop.value.diagnostic
    got = struct.unpack("<III", bytes(m.uc.mem_read(0x1000, 12)))
    assert got == (0xCAFEBABE, 0x1234, 0xFFFFFFFF)
    assert seen[0] == (0x10, 4, 0xCAFEBABE)


def test_a20_gate_through_port_0x92():
    m = Machine(memory_mb=16)
    m.add_devices(parse_vm_config(b'<vm><devices><device class="KEYBOARD" id="kbd"/></devices></vm>').devices)
    for dev in m.ctx.devices.values():
        dev.reset()
    # xor ax,ax; out 0x92,al (A20 off) ; mov ax,0xffff ; mov es,ax ; mov byte [es:0x10],0x5a
    # (address 0x100000 wraps to 0) ; mov al,2 ; out 0x92,al (A20 on) ;
    # mov byte [es:0x20],0x77 (0x100010 now, no wrap) ; cli ; hlt
    run_code(m, bytes.fromhex("31c0 e692 b8ffff 8ec0 26c606 1000 5a b002 e692 26c606 2000 77 faf4"))
    assert m.uc.mem_read(0x0, 1) == b"\x5a"              # written while A20 was off
    assert m.uc.mem_read(0x100000, 1) != b"\x5a"
    assert m.uc.mem_read(0x100010, 1) == b"\x77"         # written with A20 on
    assert m.uc.mem_read(0x10, 1) != b"\x77"


def test_non_urgent_interrupt_pulls_the_run_deadline_instead_of_stopping():
    """vmm/irq.py: a device's non-urgent interrupt does not stop the running guest; the run
    loop's deadline moves to at most LAZY_IRQ_NS away. An urgent one stops it (kick). (The
    run loop's own delivery: with the engine's INTR input nothing stops, vmm/cpu/intr.py.)"""
    import time
    from vmm import irq
    from vmm.irq import IrqLine
    m = Machine(memory_mb=1, engine_interrupts=False)
    m.preempter.in_guest = True
    m._run_deadline = time.monotonic_ns() + 50_000_000
    line = IrqLine(5, lambda n, level: m.ctx.stop_requested())
    line.set(1, urgent=False)
    assert not m._kicked
    assert m._run_deadline <= time.monotonic_ns() + irq.LAZY_IRQ_NS
    line.set(0)
    line.set(1)
    assert m._kicked
    m.preempter.in_guest = False
