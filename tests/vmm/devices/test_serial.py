"""SERIAL: 16550A UARTs driven through the port bus."""
import io
import random

import pytest

from v3tools.errors import Unimplemented
from vmm.clock import ManualClock
from vmm.context import BoardContext
from vmm.devices.serial import Serial
from vmm.log import VMMLog

COM1, COM2, COM3 = 0x3F8, 0x2F8, 0x3E8
RBR, IER, IIR, FCR, LCR, MCR, LSR, MSR, SCR = 0, 1, 2, 2, 3, 4, 5, 6, 7


@pytest.fixture
def ctx():
    c = BoardContext(clock=ManualClock(), log=VMMLog(stream=io.StringIO()))
    c.add_device(Serial("serial"))
    return c


def outb(ctx, port, value):
    ctx.io.write(port, 1, value)


def inb(ctx, port):
    return ctx.io.read(port, 1)


def irq(ctx, n):
    return ctx.irq(n).level


def test_power_on_state(ctx):
    assert inb(ctx, COM1 + LSR) == 0x60          # THRE | TEMT, no data
    assert inb(ctx, COM1 + IIR) == 0x01          # no interrupt, FIFOs off
    assert inb(ctx, COM1 + MSR) == 0xB0          # DCD, DSR, CTS present: Linux sees a modem
    assert inb(ctx, COM1 + IER) == 0
    assert ctx.serial_ports["COM1"].base == COM1
    assert sorted(ctx.serial_ports) == ["COM1", "COM2", "COM3", "COM4"]


def test_scratch_and_divisor_latch(ctx):
    outb(ctx, COM1 + SCR, 0x5A)
    assert inb(ctx, COM1 + SCR) == 0x5A
    outb(ctx, COM1 + LCR, 0x83)                  # DLAB, 8N1
    outb(ctx, COM1 + 0, 0x01)
    outb(ctx, COM1 + 1, 0x00)
    assert (inb(ctx, COM1 + 0), inb(ctx, COM1 + 1)) == (1, 0)
    outb(ctx, COM1 + LCR, 0x03)
    assert inb(ctx, COM1 + IER) == 0             # IER was not touched by the DLAB writes
    assert ctx.console.captured == b""           # nor was THR


def test_com1_output_goes_to_console(ctx):
    for b in b"hi\r\n":
        outb(ctx, COM1, b)
    assert ctx.console.captured == b"hi\r\n"


def test_com2_output_goes_to_the_log_by_line(ctx):
    for b in b"boot ok\r\nrest":
        outb(ctx, COM2, b)
    assert "COM2> boot ok\n" in ctx.vmmlog.stream.getvalue()
    assert "rest" not in ctx.vmmlog.stream.getvalue()


def linux_autoconfig(ctx, base):
    """The probe of Linux's 8250_port.c autoconfig(), reduced to its register traffic."""
    save = inb(ctx, base + IER)
    outb(ctx, base + IER, 0)
    s2 = inb(ctx, base + IER) & 0x0F
    outb(ctx, base + IER, 0x0F)
    s3 = inb(ctx, base + IER) & 0x0F
    outb(ctx, base + IER, save)
    if s2 != 0 or s3 != 0x0F:
        return "none"
    save_mcr = inb(ctx, base + MCR)
    outb(ctx, base + MCR, 0x10 | 0x0A)           # loopback, RTS, OUT2
    status = inb(ctx, base + MSR) & 0xF0
    outb(ctx, base + MCR, save_mcr)
    if status != 0x90:
        return "none"
    outb(ctx, base + LCR, 0xBF)
    outb(ctx, base + 2, 0)                       # EFR on a 16650; FCR=0 on a 16550A
    outb(ctx, base + LCR, 0)
    outb(ctx, base + FCR, 0x01)
    kind = inb(ctx, base + IIR) >> 6
    if kind != 3:
        return {0: "8250/16450", 1: "unknown", 2: "16550"}[kind]
    outb(ctx, base + LCR, 0x80)                  # EFR under DLAB: only ST16C650V1
    if inb(ctx, base + 2) == 0:
        return "16650V1"
    outb(ctx, base + LCR, 0xBF)
    if inb(ctx, base + 2) == 0:
        return "16650"
    outb(ctx, base + LCR, 0)
    outb(ctx, base + FCR, 0x21)                  # 64-byte FIFO bit: a TI16750 shows IIR bit 5
    s1 = inb(ctx, base + IIR) >> 5
    outb(ctx, base + FCR, 0x01)
    outb(ctx, base + LCR, 0x80)
    outb(ctx, base + FCR, 0x21)
    s2 = inb(ctx, base + IIR) >> 5
    outb(ctx, base + FCR, 0x01)
    outb(ctx, base + LCR, 0)
    if s1 == 6 and s2 == 7:
        return "16750"
    ier = inb(ctx, base + IER)
    outb(ctx, base + IER, ier | 0x40)            # XScale's UUE bit
    if inb(ctx, base + IER) & 0x40:
        return "xscale"
    outb(ctx, base + IER, ier)
    return "16550A"


@pytest.mark.parametrize("base", [0x3F8, 0x2F8, 0x3E8, 0x2E8])
def test_linux_autoconfig_finds_a_16550a(ctx, base):
    assert linux_autoconfig(ctx, base) == "16550A"


def test_thre_interrupt_and_linux_thre_test(ctx):
    outb(ctx, COM1 + MCR, 0x0B)                  # DTR, RTS, OUT2: IRQ enabled on the ISA bus
    assert not irq(ctx, 4)
    outb(ctx, COM1 + IER, 0x02)                  # ETBEI with THR empty: interrupt at once
    assert irq(ctx, 4)
    iir1 = inb(ctx, COM1 + IIR)
    assert iir1 == 0x02
    assert not irq(ctx, 4)                       # reading IIR cleared it
    assert inb(ctx, COM1 + IIR) == 0x01
    outb(ctx, COM1 + IER, 0)
    outb(ctx, COM1 + IER, 0x02)                  # re-armed by ETBEI 0 -> 1
    assert inb(ctx, COM1 + IIR) == 0x02
    outb(ctx, COM1, ord("x"))                    # each transmitted byte re-arms THRE
    assert irq(ctx, 4)
    outb(ctx, COM1 + IER, 0)                     # the driver stops TX
    assert not irq(ctx, 4)


def test_irq_needs_out2_and_is_shared_with_com3(ctx):
    outb(ctx, COM1 + IER, 0x02)
    assert not irq(ctx, 4)                       # OUT2 clear: the ISA driver is off
    assert inb(ctx, COM1 + IIR) == 0x02          # but the UART itself has it pending
    outb(ctx, COM3 + MCR, 0x08)
    outb(ctx, COM3 + IER, 0x02)
    assert irq(ctx, 4)
    outb(ctx, COM1 + MCR, 0x08)
    outb(ctx, COM1 + IER, 0)
    outb(ctx, COM1 + IER, 0x02)
    inb(ctx, COM3 + IIR)                         # COM3 done, COM1 still asserts
    assert irq(ctx, 4)
    inb(ctx, COM1 + IIR)
    assert not irq(ctx, 4)


def test_receive_fifo_trigger_and_timeout(ctx):
    uart = ctx.serial_ports["COM1"]
    outb(ctx, COM1 + FCR, 0x87)                  # FIFO on, cleared, trigger 8
    outb(ctx, COM1 + MCR, 0x08)
    outb(ctx, COM1 + IER, 0x01)
    uart.receive(b"abc")
    assert inb(ctx, COM1 + LSR) & 0x01
    assert inb(ctx, COM1 + IIR) == 0xC1          # below the trigger level, no timeout yet
    ctx.clock.advance(4 * uart.char_time_ns())
    ctx.timers.run_due()
    assert irq(ctx, 4)
    assert inb(ctx, COM1 + IIR) == 0xCC          # character timeout
    assert inb(ctx, COM1) == ord("a")
    assert inb(ctx, COM1 + IIR) == 0xC1          # reading RBR cleared the timeout
    uart.receive(b"0123456")                     # 9 bytes now: trigger level reached
    assert inb(ctx, COM1 + IIR) == 0xC4
    assert bytes(inb(ctx, COM1) for _ in range(9)) == b"bc0123456"
    assert inb(ctx, COM1 + LSR) == 0x60
    assert not irq(ctx, 4)


def test_host_input_beyond_the_fifo_waits_in_the_backlog(ctx):
    uart = ctx.serial_ports["COM2"]
    outb(ctx, COM2 + FCR, 0x01)
    uart.receive(bytes(range(40)))
    got = bytearray()
    while inb(ctx, COM2 + LSR) & 0x01:
        got.append(inb(ctx, COM2))
    assert bytes(got) == bytes(range(40))
    assert not inb(ctx, COM2 + LSR) & 0x02       # no overrun for host input


def test_console_input_is_polled_for_com1(ctx):
    ctx.console.feed(b"k")
    assert inb(ctx, COM1 + LSR) & 0x01
    assert inb(ctx, COM1) == ord("k")


def test_loopback_data_modem_lines_and_overrun(ctx):
    outb(ctx, COM1 + MCR, 0x10)                  # loopback, all outputs off
    assert inb(ctx, COM1 + MSR) == 0x0B          # CTS, DSR, DCD dropped: deltas set
    assert inb(ctx, COM1 + MSR) == 0x00
    outb(ctx, COM1 + MCR, 0x1F)
    assert inb(ctx, COM1 + MSR) == 0xFB          # all four lines up; RI rising is no delta
    outb(ctx, COM1 + MCR, 0x1B)
    assert inb(ctx, COM1 + MSR) == 0xB4          # RI trailing edge
    outb(ctx, COM1, 0x41)
    assert ctx.console.captured == b""           # looped back, not sent
    outb(ctx, COM1, 0x42)                        # FIFO off: one-byte holding register
    outb(ctx, COM1 + IER, 0x04)
    assert inb(ctx, COM1 + IIR) == 0x06          # line status: overrun
    assert not irq(ctx, 4)                       # loopback: OUT2 does not reach the bus
    assert inb(ctx, COM1 + LSR) == 0x63
    assert inb(ctx, COM1 + LSR) == 0x61          # OE cleared by the read
    assert inb(ctx, COM1) == 0x41


def test_modem_status_interrupt(ctx):
    outb(ctx, COM1 + IER, 0x08)
    outb(ctx, COM1 + MCR, 0x10)
    assert inb(ctx, COM1 + IIR) == 0x00          # modem status change pending
    inb(ctx, COM1 + MSR)
    assert inb(ctx, COM1 + IIR) == 0x01


def test_interrupt_priority(ctx):
    outb(ctx, COM1 + MCR, 0x10)
    inb(ctx, COM1 + MSR)
    outb(ctx, COM1, 1)
    outb(ctx, COM1, 2)                           # overrun
    outb(ctx, COM1 + IER, 0x0F)
    assert inb(ctx, COM1 + IIR) == 0x06          # line status first
    inb(ctx, COM1 + LSR)
    assert inb(ctx, COM1 + IIR) == 0x04          # then received data
    inb(ctx, COM1)
    assert inb(ctx, COM1 + IIR) == 0x02          # then THRE


def test_fifo_enable_bits(ctx):
    outb(ctx, COM1 + FCR, 0xC1)
    assert inb(ctx, COM1 + IIR) == 0xC1
    assert ctx.serial_ports["COM1"].trigger_level() == 14
    outb(ctx, COM1 + FCR, 0xC0)                  # bit 0 clear: FIFOs off, trigger ignored
    assert inb(ctx, COM1 + IIR) == 0x01


def test_factory_test_writes_are_unimplemented(ctx):
    with pytest.raises(Unimplemented):
        outb(ctx, COM1 + LSR, 0x01)


def test_word_access_is_split_into_bytes(ctx):
    ctx.io.write(COM1 + LCR, 2, 0x0B03)          # LCR=0x03, MCR=0x0B
    assert inb(ctx, COM1 + MCR) == 0x0B


def test_reset(ctx):
    outb(ctx, COM1 + MCR, 0x08)
    outb(ctx, COM1 + IER, 0x02)
    assert irq(ctx, 4)
    ctx.devices["serial"].reset()
    assert not irq(ctx, 4)
    assert inb(ctx, COM1 + IER) == 0


def test_random_register_fuzz(ctx):
    rng = random.Random(16550)
    for _ in range(20000):
        port = rng.choice((COM1, COM2, 0x3E8, 0x2E8)) + rng.randrange(8)
        try:
            if rng.random() < 0.5:
                outb(ctx, port, rng.randrange(256))
            else:
                assert 0 <= inb(ctx, port) <= 0xFF
            if rng.random() < 0.01:
                ctx.serial_ports["COM2"].receive(bytes(rng.randrange(256) for _ in range(5)))
            if rng.random() < 0.01:
                ctx.clock.advance(rng.randrange(10**7))
                ctx.timers.run_due()
        except Unimplemented:
            pass
