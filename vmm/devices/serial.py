"""SERIAL: four 16550A UARTs, COM1-COM4, as Palacios' serial device provides them.

Register semantics follow the National/TI PC16550D datasheet ("PC16550D Universal Asynchronous
Receiver/Transmitter with FIFOs"); the port list is the PC's (PORT 03F8-03FF - serial port 1,
02F8-02FF - port 2, 03E8-03EF - port 3, 02E8-02EF - port 4). Palacios' class takes no XML options.

Transmission is instantaneous: THR is empty again as soon as it is written, so LSR always
reports THRE and TEMT, and the THRE interrupt is re-armed by every write. COM1's output goes to
the VMM console byte for byte; COM2-COM4 print lines to the VMM log unless a `sink` is set.
Received bytes wait in an unbounded host-side backlog and move into the 16-byte RX FIFO as the
guest makes room, so host input is never lost to an overrun (the host line has perfect flow
control); overruns happen only in loopback mode, as on the chip.

On a PC the UART's INTR pin reaches the interrupt controller only through the buffer enabled by
MCR.OUT2, and in loopback mode OUT2 is disconnected from its pin; the IRQ line models that.
"""
from vmm.devices import register
from vmm.devices.base import Device

# Register offsets from the port base.
RBR = THR = DLL = 0         # receive buffer / transmit holding / divisor latch low (DLAB=1)
IER = DLM = 1               # interrupt enable / divisor latch high (DLAB=1)
IIR = FCR = 2               # interrupt identification (read) / FIFO control (write)
LCR = 3                     # line control
MCR = 4                     # modem control
LSR = 5                     # line status
MSR = 6                     # modem status
SCR = 7                     # scratch

IER_ERBFI = 0x01            # received data available
IER_ETBEI = 0x02            # transmitter holding register empty
IER_ELSI = 0x04             # receiver line status
IER_EDSSI = 0x08            # modem status
IER_MASK = 0x0F             # bits 4-7 are always 0 (Linux's autoconfig checks this)

IIR_NO_INT = 0x01
IIR_MS = 0x00               # modem status (lowest priority)
IIR_THRE = 0x02             # transmitter holding register empty
IIR_RDA = 0x04              # received data available (trigger level reached)
IIR_RLS = 0x06              # receiver line status (highest priority)
IIR_CTO = 0x0C              # character timeout (FIFO mode)
IIR_FIFO = 0xC0             # FIFOs enabled

FCR_ENABLE = 0x01
FCR_CLEAR_RX = 0x02
FCR_CLEAR_TX = 0x04
FCR_DMA_MODE = 0x08         # RXRDY/TXRDY pin mode: stored, no DMA on a PC serial port
FCR_TRIGGER = 0xC0
TRIGGER_LEVELS = (1, 4, 8, 14)

LCR_BREAK = 0x40
LCR_DLAB = 0x80

MCR_DTR = 0x01
MCR_RTS = 0x02
MCR_OUT1 = 0x04
MCR_OUT2 = 0x08             # gates INTR onto the ISA IRQ line on a PC
MCR_LOOP = 0x10
MCR_MASK = 0x1F             # bits 5-7 are always 0

LSR_DR = 0x01               # data ready
LSR_OE = 0x02               # overrun error
LSR_PE = 0x04               # parity error
LSR_FE = 0x08               # framing error
LSR_BI = 0x10               # break interrupt
LSR_THRE = 0x20             # transmitter holding register empty
LSR_TEMT = 0x40             # transmitter empty
LSR_ERRORS = LSR_OE | LSR_PE | LSR_FE | LSR_BI

MSR_DCTS = 0x01
MSR_DDSR = 0x02
MSR_TERI = 0x04             # trailing edge of ring indicator
MSR_DDCD = 0x08
MSR_CTS = 0x10
MSR_DSR = 0x20
MSR_RI = 0x40
MSR_DCD = 0x80
MSR_LINES_PRESENT = MSR_CTS | MSR_DSR | MSR_DCD   # a modem (or null-modem cable) is attached

FIFO_SIZE = 16
UART_CLOCK_HZ = 1843200     # the PC's crystal: divisor 1 is 115200 baud
BITS_PER_CHAR = 10          # start + 8 data + stop; close enough for the timeout interval
TIMEOUT_CHARS = 4           # datasheet: character timeout after 4 character times

# (name, base port, IRQ), Palacios' COMn_DATA_PORT / COMn_IRQ.
COM_PORTS = (("COM1", 0x3F8, 4), ("COM2", 0x2F8, 3), ("COM3", 0x3E8, 4), ("COM4", 0x2E8, 3))


class Uart:
    """One 16550A. `device` is the SERIAL device (log, timers, IRQ combining)."""

    def __init__(self, device, name, base, irq):
        self.device, self.name, self.base, self.irq = device, name, base, irq
        self.sink = None          # callable(bytes) for transmitted bytes; None: VMM log lines
        self.source = None        # callable() -> bytes polled on RBR/LSR reads (COM1: console)
        self.backlog = bytearray()  # host input not yet in the RX FIFO
        self._line = bytearray()  # log line being assembled when sink is None
        self._timeout_timer = None
        self.reset()

    def reset(self):
        self.ier = 0
        self.fcr = 0
        self.lcr = 0
        self.mcr = 0
        self.scr = 0
        self.dll = self.dlm = 0
        self.rx = bytearray()
        self.rbr = 0              # last byte read (an empty RBR reads it again)
        self.lsr_errors = 0       # OE/PE/FE/BI, cleared by reading LSR
        self.msr_deltas = 0       # DCTS/DDSR/TERI/DDCD, cleared by reading MSR
        self.thr_ipending = False  # THRE interrupt armed (cleared by IIR read or THR write)
        self.timeout_pending = False
        self._cancel_timeout()

    # -- guest access --------------------------------------------------------------------------
    def read(self, offset, size):
        dlab = self.lcr & LCR_DLAB
        if offset == RBR:
            return self.dll if dlab else self._read_rbr()
        if offset == IER:
            return self.dlm if dlab else self.ier
        if offset == IIR:
            return self._read_iir()
        if offset == LCR:
            return self.lcr
        if offset == MCR:
            return self.mcr
        if offset == LSR:
            return self._read_lsr()
        if offset == MSR:
            value = self._modem_inputs() | self.msr_deltas
            self.msr_deltas = 0
            self.device.update_irq()
            return value
        return self.scr

    def write(self, offset, size, value):
        dlab = self.lcr & LCR_DLAB
        if offset == THR:
            if dlab:
                self.dll = value
            else:
                self._write_thr(value)
        elif offset == IER:
            if dlab:
                self.dlm = value
            else:
                self._write_ier(value)
        elif offset == FCR:
            self._write_fcr(value)
        elif offset == LCR:
            self.lcr = value
            self._check_loopback_break()
        elif offset == MCR:
            self._write_mcr(value)
        elif offset in (LSR, MSR):
            # The datasheet reserves writes to LSR/MSR for factory test; they would inject
            # status bits we do not model.
            self.device.unimplemented(f"{self.name}: write {value:#04x} to "
                                      f"{'LSR' if offset == LSR else 'MSR'} (factory test)",
                                      port=self.base + offset)
        else:
            self.scr = value
        self.device.update_irq()

    # -- registers -----------------------------------------------------------------------------
    def _read_rbr(self):
        self._poll_source()
        if self.rx:
            self.rbr = self.rx.pop(0)
            self.timeout_pending = False
            self._fill()
            self._restart_timeout()
            self.device.update_irq()
        return self.rbr

    def _read_lsr(self):
        self._poll_source()
        value = LSR_THRE | LSR_TEMT | self.lsr_errors
        if self.rx:
            value |= LSR_DR
        self.lsr_errors = 0
        self.device.update_irq()
        return value

    def _read_iir(self):
        ident = self.interrupt_id()
        if ident == IIR_THRE:
            self.thr_ipending = False   # datasheet: reading IIR clears a THRE interrupt
            self.device.update_irq()
        value = IIR_NO_INT if ident is None else ident
        if self.fcr & FCR_ENABLE:
            value |= IIR_FIFO
        return value

    def _write_thr(self, value):
        if self.mcr & MCR_LOOP:
            self._push_rx(value)
        else:
            self._transmit(value)
        self.thr_ipending = True        # the byte left at once: THR is empty again

    def _write_ier(self, value):
        old = self.ier
        self.ier = value & IER_MASK
        if self.ier & IER_ETBEI and not old & IER_ETBEI:
            self.thr_ipending = True    # enabling ETBEI with THR empty raises THRE at once

    def _write_fcr(self, value):
        if (value ^ self.fcr) & FCR_ENABLE:
            self.rx.clear()             # changing the FIFO mode resets both FIFOs
            self.timeout_pending = False
        if not value & FCR_ENABLE:
            self.fcr = 0                # the other bits are written only with bit 0 set
        else:
            self.fcr = value & (FCR_ENABLE | FCR_DMA_MODE | FCR_TRIGGER)
            if value & FCR_CLEAR_RX:
                self.rx.clear()
                self.timeout_pending = False
            # FCR_CLEAR_TX: the transmit FIFO is always empty.
        self._fill()
        self._restart_timeout()

    def _write_mcr(self, value):
        before = self._modem_inputs()
        self.mcr = value & MCR_MASK
        after = self._modem_inputs()
        changed = before ^ after
        if changed & MSR_CTS:
            self.msr_deltas |= MSR_DCTS
        if changed & MSR_DSR:
            self.msr_deltas |= MSR_DDSR
        if before & MSR_RI and not after & MSR_RI:
            self.msr_deltas |= MSR_TERI
        if changed & MSR_DCD:
            self.msr_deltas |= MSR_DDCD
        self._check_loopback_break()
        self._fill()

    def _modem_inputs(self):
        if self.mcr & MCR_LOOP:         # outputs looped back into the inputs
            m = self.mcr
            return ((MSR_CTS if m & MCR_RTS else 0) | (MSR_DSR if m & MCR_DTR else 0)
                    | (MSR_RI if m & MCR_OUT1 else 0) | (MSR_DCD if m & MCR_OUT2 else 0))
        return MSR_LINES_PRESENT

    def _check_loopback_break(self):
        if self.mcr & MCR_LOOP and self.lcr & LCR_BREAK:
            self.device.unimplemented(f"{self.name}: break in loopback mode (would loop back "
                                      f"as a received break)", port=self.base + LCR)

    # -- interrupts ----------------------------------------------------------------------------
    def trigger_level(self):
        return TRIGGER_LEVELS[self.fcr >> 6] if self.fcr & FCR_ENABLE else 1

    def interrupt_id(self):
        """The highest-priority pending interrupt (IIR bits 0-3), or None."""
        ier = self.ier
        if ier & IER_ELSI and self.lsr_errors:
            return IIR_RLS
        if ier & IER_ERBFI and self.rx:
            if len(self.rx) >= self.trigger_level():
                return IIR_RDA
            if self.timeout_pending:
                return IIR_CTO
        if ier & IER_ETBEI and self.thr_ipending:
            return IIR_THRE
        if ier & IER_EDSSI and self.msr_deltas:
            return IIR_MS
        return None

    def irq_output(self):
        """Level seen on the ISA IRQ line: INTR gated by OUT2 (not driven in loopback)."""
        if self.mcr & MCR_LOOP or not self.mcr & MCR_OUT2:
            return False
        return self.interrupt_id() is not None

    # -- data ----------------------------------------------------------------------------------
    def receive(self, data):
        """Bytes arriving on the serial line (host input)."""
        self.backlog += data
        self._fill()
        self.device.update_irq()

    def _poll_source(self):
        if self.source is not None:
            data = self.source()
            if data:
                self.backlog += data
                self._fill()

    def _fill(self):
        if not self.backlog or self.mcr & MCR_LOOP:
            return                      # in loopback the serial input pin is disconnected
        room = (FIFO_SIZE if self.fcr & FCR_ENABLE else 1) - len(self.rx)
        if room > 0:
            self.rx += self.backlog[:room]
            del self.backlog[:room]
            self._restart_timeout()

    def _push_rx(self, byte):
        if len(self.rx) >= (FIFO_SIZE if self.fcr & FCR_ENABLE else 1):
            self.lsr_errors |= LSR_OE   # the byte in the shift register is lost
            return
        self.rx.append(byte)
        self._restart_timeout()

    def _transmit(self, byte):
        if self.sink is not None:
            self.sink(bytes((byte,)))
            return
        if byte == 0x0A:
            self._flush_line()
        elif byte != 0x0D:
            self._line.append(byte)
            if len(self._line) >= 1024:
                self._flush_line()

    def _flush_line(self):
        self.device.log.info(f"{self.name}> {self._line.decode('latin-1')}")
        self._line.clear()

    # -- character timeout ---------------------------------------------------------------------
    def char_time_ns(self):
        divisor = (self.dlm << 8 | self.dll) or 1
        return BITS_PER_CHAR * 16 * divisor * 1_000_000_000 // UART_CLOCK_HZ

    def _cancel_timeout(self):
        if self._timeout_timer is not None:
            self.device.timers.cancel(self._timeout_timer)
            self._timeout_timer = None

    def _restart_timeout(self):
        """Datasheet: a timeout interrupt occurs when the RX FIFO holds data and nothing was
        received or read for 4 character times."""
        self._cancel_timeout()
        if not (self.fcr & FCR_ENABLE and self.rx) or self.device.timers is None:
            return
        when = self.device.clock.now_ns() + TIMEOUT_CHARS * self.char_time_ns()
        self._timeout_timer = self.device.timers.schedule(when, self._timeout, f"{self.name} timeout")

    def _timeout(self, when_ns):
        self._timeout_timer = None
        if self.rx and self.fcr & FCR_ENABLE:
            self.timeout_pending = True
            self.device.update_irq()


@register("SERIAL")
class Serial(Device):
    """COM1-COM4. `ctx.serial_ports["COMn"]` is the `Uart` of each port (base, irq, receive)."""

    def __init__(self, dev_id, claim_ports=True):
        super().__init__(dev_id)
        self.claim_ports = claim_ports    # False: the host's UARTs, reached only by passthrough
        self.timers = None
        self.clock = None
        self._lines = {}
        self.uarts = [Uart(self, name, base, irq) for name, base, irq in COM_PORTS]

    def attach(self, ctx):
        self.timers, self.clock = ctx.timers, ctx.clock
        for u in self.uarts:
            if self.claim_ports:
                ctx.io.attach(u.base, 8, u.read, u.write, owner=f"{self.id} ({u.name})",
                              widths=(1,))
            self._lines[u.irq] = ctx.irq(u.irq)
            ctx.serial_ports[u.name] = u
        com1 = self.uarts[0]
        com1.sink = ctx.console.write
        com1.source = ctx.console.read_available

    def reset(self):
        for u in self.uarts:
            u.reset()
        self.update_irq()

    def port(self, name):
        for u in self.uarts:
            if u.name == name.upper():
                return u
        raise KeyError(name)

    def receive(self, data, port="COM1"):
        """Host input for a port (`--serial stdio` feeds COM1 through this)."""
        self.port(port).receive(data)

    def poll(self):
        """Pull pending console input into COM1 (for the run loop, so RX interrupts fire while
        the guest waits in HLT instead of polling LSR)."""
        com1 = self.uarts[0]
        com1._poll_source()
        self.update_irq()

    def update_irq(self):
        """COM1/COM3 share IRQ 4 and COM2/COM4 IRQ 3: each line is the OR of its ports."""
        if not self._lines:
            return
        levels = dict.fromkeys(self._lines, False)
        for u in self.uarts:
            if u.irq_output():
                levels[u.irq] = True
        for irq, level in levels.items():
            self._lines[irq].set(level)


HOST_SERIAL_ID = "host serial"


def com_port_of(port):
    """The name of the COM port (COM1-COM4) whose registers include I/O port `port`, or None."""
    return next((name for name, base, _irq in COM_PORTS if base <= port < base + 8), None)


def host_serial(ctx):
    """The host's 16550s, for GENERIC passthrough ranges: this VMM's "host hardware" is its own
    COM1-COM4 (COM1 is the console, --serial), created once, on the first passthrough that
    covers a COM port, and claiming no port itself."""
    host = ctx.devices.get(HOST_SERIAL_ID)
    if host is None:
        host = ctx.add_device(Serial(HOST_SERIAL_ID, claim_ports=False))
    return host
