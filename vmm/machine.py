"""The machine and its run loop: a CPU (vmm/cpu), guest memory (vmm/memory.py) and the board
context with its devices and firmware (vmm/board.py), tied together by the loop below.

The run loop executes guest code with no per-instruction hook until the next event: a timer
deadline (a POSIX timer stops the engine from C, vmm/cpu/stoptimer.py; with a debugger
attached or on an engine that cannot report HLT, a helper thread requests the stop), HLT, or
a BIOS service that must wait. Between runs it fires due timers and fast-forwards virtual
time when the guest halts with interrupts enabled. Hardware interrupts go to the engine's INTR
input (vmm/cpu/intr.py), which takes them between blocks without ending the run; a
non-urgent one (vmm/irq.py) waits for the next exit, at most LAZY_IRQ_NS. On the stock
engine, and while a debugger single-steps, the loop injects a pending interrupt between runs
when IF is set and no interrupt shadow is active (an urgent interrupt then stops the run).
"""
import threading
import time

from unicorn import UcError

from v3tools.errors import ConfigError, V3Error, VMStop, UnhandledIO
from vmm.context import BoardContext, Console
from vmm.clock import Clock, measure_tsc_hz
from vmm.cpu import CPU, intr, stoptimer
from vmm.events import EventSources, POLL_SLICE_NS
from vmm import irq
from vmm import board
from vmm.diagnostic import diagnostic, explain_ucerror
from vmm.log import VMMLog
from vmm.cpu.portio import install_io_hooks
from vmm.memory import GuestMemory, MemoryMap, read_firmware
from vmm.telemetry import Telemetry

MB = 1 << 20
GUEST_MEMORY_LIMIT = 0xE0000000          # RAM stays below the 32-bit PCI/MMIO window

# exit statuses of `v3 run`
EXIT_OK = 0
EXIT_FAILSTOP = 3
EXIT_TRIPLE_FAULT = 4
EXIT_HALTED = 5
EXIT_TIMEOUT = 6
EXIT_RESET_BEFORE_UNTIL = 7

IRQ_BLOCKED_POLL_NS = 200_000         # how soon to look again for IF=1 with an interrupt waiting


class GuestHalted(VMStop):
    exit_status = EXIT_HALTED


class RunTimeout(VMStop):
    exit_status = EXIT_TIMEOUT


class EndedBeforeUntil(VMStop):
    exit_status = EXIT_RESET_BEFORE_UNTIL


class HostSignal(V3Error):
    """The VMM process was told to stop (SIGINT, SIGTERM, SIGHUP): the run ends in order, so
    the terminal and the output files are put right, with the shell's status for the signal."""

    def __init__(self, signum):
        import signal
        super().__init__(f"stopped by {signal.Signals(signum).name}")
        self.signum = signum
        self.exit_status = 128 + signum


class RunResult:
    def __init__(self, status, reason, serial=b""):
        self.status = status
        self.reason = reason
        self.serial = serial

    def __repr__(self):
        return f"RunResult({self.status}, {self.reason!r})"


class Preempter(threading.Thread):
    """Sleeps until the earliest deadline (host time) and then stops the running guest."""

    def __init__(self, machine):
        super().__init__(name="v3-preempt", daemon=True)
        self.machine = machine
        self.cond = threading.Condition()
        self.deadline = None          # host monotonic ns, or None
        self.in_guest = False
        self.quit = False

    def arm(self, host_deadline_ns):
        with self.cond:
            self.deadline = host_deadline_ns
            self.cond.notify()

    def run(self):
        with self.cond:
            while not self.quit:
                if self.deadline is None:
                    self.cond.wait()
                    continue
                wait = (self.deadline - time.monotonic_ns()) / 1e9
                if wait > 0:
                    self.cond.wait(wait)
                    continue
                if self.in_guest:
                    self.machine.kick()
                    # A stop that reaches Unicorn just before emu_start begins is dropped:
                    # keep repeating it until the run loop disarms us.
                    self.deadline = time.monotonic_ns() + 2_000_000
                else:
                    self.deadline = None

    def stop(self):
        with self.cond:
            self.quit = True
            self.cond.notify()


class Machine:
    def __init__(self, memory_mb=256, log=None, console=None, io_policy="stop",
                 telemetry=False, bios_console_serial=False, clock=None, firmware=None,
                 engine_interrupts=None):
        if memory_mb * MB > GUEST_MEMORY_LIMIT:
            raise ConfigError(f"guest memory {memory_mb} MB is more than this VMM supports "
                              f"({GUEST_MEMORY_LIMIT // MB} MB below the 32-bit PCI window)")
        self.memory_size = memory_mb * MB
        self.vmmlog = log or VMMLog()
        self.log = self.vmmlog.component("run")
        self.iolog = self.vmmlog.component("io")
        self.telemetry_enabled = telemetry
        self.stats = Telemetry()
        self.cpu = CPU(self)
        self.uc = self.cpu.uc
        self.ctx = BoardContext(memory=GuestMemory(self), clock=clock or Clock(), log=self.vmmlog,
                                console=console or Console())
        self.ctx.memory_size = self.memory_size
        self.events = EventSources()          # host inputs: stdin, network, debugger ...
        self.escape_keys = None               # Ctrl-A keys of a terminal console (vmm/terminal)
        self.status = None                    # vmm.terminal.status.StatusLine while one is shown
        self.ctx.events = self.events
        self.ctx.stop_requested = self._device_stop
        self.ctx.timers.on_change = self._deadline_moved
        self.ctx.io.fallback = self._unclaimed_io
        self.io_policy = io_policy
        self._ignored_once = set()
        self.bios = None
        self.bios_console_serial = bios_console_serial
        self.firmware = read_firmware(firmware) if firmware else None
        self.memmap = MemoryMap(self, self.memory_size, self.firmware)
        self.ram, self.ram_size = self.memmap.ram, self.memmap.ram_size
        self.cpu.attach_ram(self.ram, self.ram_size)
        self.ctx.a20_listeners.append(self.memmap.set_a20)
        if telemetry:
            from vmm.telemetry import install_block_counter
            self.stats.blocks = install_block_counter(self.uc)
        self.cpu.install_hooks()
        self.fast_io = None                   # the C port dispatcher, when built (portio.py)
        install_io_hooks(self)
        self.cpu.delivery.stats = self.stats
        self.cpu.delivery.log = self.vmmlog.component("interrupts")
        self.cpu.delivery.exlog = self.vmmlog.component("exceptions")
        self.cpu.delivery.on_bios_wait = self._bios_wait
        # hardware interrupts taken inside the engine (vmm/cpu/intr.py), when it can
        if engine_interrupts is None:
            engine_interrupts = intr.available()
        self._intr = intr.EngineInterrupts(
            self.uc, self._intc_pending, self._intc_acknowledge, self._fail_in_hook,
            noted=self.cpu.delivery.note_external) if engine_interrupts else None
        self._kicked = False
        self._quick_stop = False
        self._irq_blocked = False
        self._halted = False
        self._halt_until = None
        self._until = None
        self._until_seen = False
        self._wall_deadline_ns = None
        self.realtime_idle = False            # True for interactive runs: see _idle_in_real_time
        self._fatal = None                    # an error raised in a hook, re-raised after the run
        self._tsc_hz = None
        self.preempter = Preempter(self)
        self._stop_timer = None               # vmm.cpu.stoptimer.StopTimer, made at the first run
        self._run_deadline = None             # host ns at which the current run is stopped
        self._timer_run = False               # the current run's deadline is the C timer's
        self._polled = False                  # the inputs were serviced since the last run
        self._run_lock = threading.Lock()     # orders kick() against the start and end of runs
        self.debug = None                     # vmm.debug.control.Debugger while one is attached
        self.precise_stops = False            # set by the debugger: stops only at instruction starts
        self._quit = None                     # a host-side request to end the run (monitor, gdb)
        self.direct_boot = None               # vmm.boot.linux.LinuxBoot: --kernel
        self.host_decompress = False          # a firmware boot: vmm/boot/loaded.py's hand-off
        self.boot_handoff = None              # vmm.boot.loaded.Handoff while armed or after
        self.stop_actions = []                # called after a run a hook stopped for them:
                                              # True if they moved the CPU

    # -- port I/O --------------------------------------------------------------------------------
    def _fail_in_hook(self, exc, note=None):
        """A device failed inside an I/O hook. Unicorn honours the stop only at the end of the
        block, so the state is captured now (the hook sees the I/O instruction's EIP) and every
        later I/O of that block is a no-op (the C fast paths are switched off for that); the
        run loop raises the error when the CPU stops."""
        if isinstance(exc, VMStop) and exc.diagnostic is None:
            exc.diagnostic = self.diagnostic(exc) + (f"\n  {note}" if note else "")
        self._fatal = exc
        if self.fast_io is not None:
            self.fast_io.enabled = False
        if self.memmap.fast is not None:
            self.memmap.fast.enabled = False
        self.uc.emu_stop()

    def _unclaimed_io(self, kind, addr, size, value, write):
        if self.io_policy == "ignore":
            if addr not in self._ignored_once:
                self._ignored_once.add(addr)
                self.log.info(f"ignoring unclaimed port {addr:#06x} ({'write' if write else 'read'}"
                              f", --io-policy ignore): reads return all ones; noted once per port")
            return None if write else (1 << (8 * size)) - 1
        raise UnhandledIO(kind, addr, size, value, write)

    # -- assembly (vmm/board.py) and diagnostics (vmm/diagnostic.py) ----------------------------
    def add_devices(self, specs, omit=()):
        board.add_devices(self, specs, omit)

    def finish_board(self):
        board.finish_board(self)

    def diagnostic(self, exc=None):
        return diagnostic(self, exc)

    # -- control from hooks and threads -----------------------------------------------------------
    def kick(self):
        """Stop the running guest soon (at the next block boundary) so the loop can act.
        Outside a run there is nothing to stop: the loop looks at every source of work
        before it starts the guest again."""
        # Under the run lock: a stop request can then only reach the run it was meant for (a
        # preempter thread descheduled between its check and its emu_stop() would otherwise
        # stop a later run with no flag set, which the loop would take for a HLT).
        with self._run_lock:
            if self.preempter.in_guest:
                self._kicked = True
                if not self.precise_stops:    # else the debugger's instruction hook stops
                    self.uc.emu_stop()

    def _device_stop(self):
        """A device (through the interrupt controllers) wants the CPU's attention. With the
        engine's INTR input an interrupt request only raises it: the engine takes the
        interrupt at the next block boundary with IF=1, the run goes on. Otherwise, for a
        non-urgent interrupt (vmm/irq.py) the run is only cut to LAZY_IRQ_NS, and anything
        else stops it now."""
        lazy = irq.delivering_lazily()
        eng = self._engine_intr()
        if eng is not None and not lazy and not self.ctx.requests and \
                not (self.ctx.lapic is not None and self.ctx.lapic.nmi_pending):
            eng.raise_if_pending()
            return
        if lazy:
            if self.preempter.in_guest:
                self._pull_deadline(time.monotonic_ns() + irq.LAZY_IRQ_NS)
        else:
            self.kick()

    def _pull_deadline(self, host_ns):
        """Stop the current run no later than host time `host_ns`."""
        if self._run_deadline is None or host_ns < self._run_deadline:
            self._run_deadline = host_ns
            if self._timer_run:
                self._stop_timer.arm(host_ns)
            else:
                self.preempter.arm(host_ns)

    def request_quit(self, reason):
        """End the run from the host side (monitor `quit`, gdb `kill`): the run loop returns
        at its next turn with status 0 and `reason`."""
        self._quit = reason
        self.kick()
        self.events.wake()

    def _deadline_moved(self, when_ns):
        if self.preempter.in_guest:
            self._pull_deadline(time.monotonic_ns() + self.ctx.clock.host_ns_until(when_ns))

    def _bios_wait(self, until_ns):
        self._halted = True
        self._halt_until = until_ns
        self._kicked = True
        self.uc.emu_stop()

    def _on_serial(self, data):
        if self._until is not None and not self._until_seen:
            # a new occurrence must end inside `data`: look only at the tail that can hold it
            tail = bytes(self.ctx.console.captured[-(len(self._until) + len(data)):])
            if self._until in tail:
                self._until_seen = True
                self.kick()

    # -- the interrupt controller as the engine sees it (vmm/cpu/intr.py) ------------------------
    def _engine_intr(self):
        """The engine's INTR input when it takes interrupts itself: not while a debugger
        single-steps (the step must see no interrupt; the loop delivers them then)."""
        dbg = self.debug
        return self._intr if dbg is None or not dbg.single_stepping else None

    def _intc_pending(self):
        intc = self.ctx.intc
        return intc is not None and intc.has_interrupt()

    def _intc_acknowledge(self):
        return self.ctx.intc.acknowledge()

    # -- time ------------------------------------------------------------------------------------
    def _skip_time(self, when_ns):
        delta = self.ctx.clock.skip_to(when_ns)
        if delta:
            self.stats.skipped_ns += delta
            env = self.cpu.env
            env.tsc_offset = env.tsc_offset + int(delta * self.tsc_hz() / 1e9)

    def tsc_hz(self):
        if self._tsc_hz is None:
            self._tsc_hz = measure_tsc_hz()
        return self._tsc_hz

    # -- the run loop ------------------------------------------------------------------------------
    def run(self, timeout=None, until=None):
        """Run until the guest ends. Returns a RunResult; raises VMStop subclasses with a
        diagnostic attached for fail-stops, triple faults, halts with IF=0 and timeouts."""
        ctx, cpu, stats = self.ctx, self.cpu, self.stats
        self._until = until.encode() if isinstance(until, str) else until
        if self._until is not None:
            ctx.console.listeners.append(self._on_serial)
        self._wall_deadline_ns = time.monotonic_ns() + int(timeout * 1e9) if timeout else None
        self.preempter.start()
        try:
            while True:
                if self._quit is not None:
                    return RunResult(EXIT_OK, self._quit)
                if self._until_seen:
                    return RunResult(EXIT_OK, f"found {self._until!r} on the serial port")
                if ctx.requests:
                    what = ctx.requests.pop(0)
                    if what == "quit":
                        return RunResult(EXIT_OK, "quit from the console (Ctrl-A x)")
                    if what.startswith("signal "):
                        raise HostSignal(int(what.split()[1]))
                    if self._until is not None:
                        raise EndedBeforeUntil(f"the guest requested {what} before "
                                               f"{self._until.decode(errors='replace')!r} appeared "
                                               f"on the serial port")
                    return RunResult(EXIT_OK, f"guest {what}")
                if self._wall_deadline_ns is not None and \
                        time.monotonic_ns() > self._wall_deadline_ns:
                    raise RunTimeout(f"--timeout of {timeout} s reached")
                dbg = self.debug
                if dbg is not None and dbg.held:
                    dbg.wait_while_held(self._wall_deadline_ns)   # gdb or the monitor has it
                    continue
                ctx.timers.run_due()
                status = self.status
                if status is not None and time.monotonic_ns() >= status.due_ns:
                    status.refresh()
                if self._polled:
                    self._polled = False         # the idle wait just looked at every input
                elif self.events.sources:
                    self.events.poll(0)
                    if dbg is not None and dbg.held:
                        continue
                if ctx.console.input:
                    self._deliver_console_input()
                if ctx.lapic is not None and ctx.lapic.nmi_pending:
                    # an NMI is taken whatever IF says, and wakes a halted CPU
                    ctx.lapic.nmi_pending = False
                    self._halted = False
                    self._halt_until = None
                    cpu.delivery.deliver(2, external=True)
                intc = ctx.intc
                want_irq = self._intc_pending()
                eng = self._engine_intr()
                if eng is not None:
                    # the engine takes it at the first block boundary with IF=1
                    eng.sync(want_irq)
                    if want_irq and cpu.interrupts_enabled:
                        self._halted = False
                        self._halt_until = None
                    want_irq = False
                elif self._intr is not None:
                    self._intr.sync(0)               # a single step: the loop delivers
                # An interrupt waiting behind IF=0: nothing tells the VMM when the guest sets
                # IF again (STI, IRET, POPF run inside the engine), so look again soon.
                self._irq_blocked = want_irq and not cpu.interrupts_enabled
                if want_irq and dbg is not None and dbg.stepping and not self._halted:
                    want_irq = False                 # a single step sees no interrupt
                if want_irq and cpu.interrupts_enabled:
                    if cpu.in_interrupt_shadow and not self._halted:
                        self._quick_stop = True      # run past the shadow, then inject
                    else:
                        vector = intc.acknowledge()
                        self._halted = False
                        self._halt_until = None
                        if vector is not None:
                            cpu.delivery.external(vector)
                if self._halted:
                    if self._halt_until is not None and ctx.clock.now_ns() >= self._halt_until:
                        self._halted = False
                        self._halt_until = None
                        continue
                    if not cpu.interrupts_enabled:
                        raise GuestHalted("the guest halted with interrupts disabled (HLT with "
                                          "IF=0): nothing can wake it")
                    nxt = ctx.timers.next_deadline()
                    if self._halt_until is not None:
                        nxt = self._halt_until if nxt is None else min(nxt, self._halt_until)
                    stats.halts += 1
                    if self.realtime_idle or self.events.any_active():
                        self._idle_in_real_time(nxt)
                        continue
                    if nxt is None:
                        raise GuestHalted("the guest halted with interrupts enabled but no "
                                          "timer is armed and no input can arrive")
                    self._skip_time(nxt)
                    continue
                self._run_guest()
        except VMStop as exc:
            if self.debug is not None:
                self.debug.inspect_stop(exc)     # a connected debugger looks first
            raise
        finally:
            self.preempter.stop()
            if self._stop_timer is not None:
                self._stop_timer.disarm()   # no run: nothing to stop (the engine may go away)
            stats.wall_s = time.monotonic() - stats.wall_start

    def _idle_in_real_time(self, deadline_ns):
        """While an input is open (stdin, a network backend, a debugger) or a person sits at the
        terminal, an idle guest waits in real time, so its clock keeps wall time and the host
        rests: one poll over every input with the next guest deadline (or --timeout) as its
        timeout. Whatever arrives wakes the guest through its device."""
        if self._stop_timer is not None:
            self._stop_timer.disarm()       # a kept expiry would repeat through the wait
        now = time.monotonic_ns()
        host_deadline = None if deadline_ns is None else \
            now + max(0, self.ctx.clock.host_ns_until(deadline_ns))
        if self._wall_deadline_ns is not None:
            host_deadline = self._wall_deadline_ns if host_deadline is None else \
                min(host_deadline, self._wall_deadline_ns)
        host_deadline = self._status_deadline(host_deadline)
        if self.ctx.console.input or self.ctx.requests:
            host_deadline = now
        if self.events.any_open():
            self.events.wait_until(host_deadline)
            self._polled = True
        else:
            # a terminal run whose stdin ended: still real time, in short sleeps
            wait = 10_000_000 if host_deadline is None else min(10_000_000, host_deadline - now)
            if wait > 0:
                time.sleep(wait / 1e9)
        if self.ctx.console.input:
            self._halted = False            # let the UART or the BIOS keyboard take it

    def _status_deadline(self, host_deadline):
        """The status line (vmm/terminal/status.py) is redrawn between runs: stop by then."""
        if self.status is None:
            return host_deadline
        return self.status.due_ns if host_deadline is None else \
            min(host_deadline, self.status.due_ns)

    def _deliver_console_input(self):
        """Host input (--serial stdio) waits in the console until a guest reads it: the BIOS
        keyboard or a polling UART driver takes it when it looks; a guest that enabled COM1's
        receive interrupt gets it pushed now, so it is woken from HLT."""
        com1 = self.ctx.serial_ports.get("COM1")
        if com1 is not None and getattr(com1, "ier", 0) & 1:
            for dev in self.ctx.devices.values():
                if hasattr(dev, "poll") and getattr(dev, "uarts", None):
                    dev.poll()

    def _run_guest(self):
        ctx, cpu, env, stats = self.ctx, self.cpu, self.cpu.env, self.stats
        nxt = ctx.timers.next_deadline()
        pre = self.preempter
        if self._quick_stop:
            # an interrupt is waiting behind an interrupt shadow: stop right after starting
            host_deadline = time.monotonic_ns()
            self._quick_stop = False
        elif nxt is not None:
            host_deadline = time.monotonic_ns() + ctx.clock.host_ns_until(nxt)
        else:
            host_deadline = None
        if self._irq_blocked:
            soon = time.monotonic_ns() + IRQ_BLOCKED_POLL_NS
            host_deadline = soon if host_deadline is None else min(host_deadline, soon)
        if self.events.any_open():
            # inputs are serviced between runs: look at them at least every POLL_SLICE_NS
            soon = time.monotonic_ns() + POLL_SLICE_NS
            host_deadline = soon if host_deadline is None else min(host_deadline, soon)
        host_deadline = self._status_deadline(host_deadline)
        if self._wall_deadline_ns is not None:
            # a guest spinning with no timer armed must still stop at --timeout
            host_deadline = min(host_deadline or self._wall_deadline_ns, self._wall_deadline_ns)
        dbg = self.debug
        if dbg is not None:
            dbg.before_run()
        timer = self._stop_timer
        if timer is None and dbg is None and stoptimer.available():
            timer = self._stop_timer = stoptimer.StopTimer(self.uc)
        use_timer = timer is not None and dbg is None
        with self._run_lock:
            self._kicked = False
            pre.in_guest = True
        self._run_deadline = host_deadline
        self._timer_run = use_timer
        if not use_timer:
            if timer is not None:
                timer.disarm()              # a kept expiry must not cut a debugger's run
            pre.arm(host_deadline)
        elif host_deadline is not None:
            timer.arm(host_deadline)
        stats.runs += 1
        t0 = time.perf_counter()
        try:
            cpu.run()
        except UcError as exc:
            if self._fatal is not None:
                raise self._fatal
            raise VMStop(f"the CPU emulator stopped: {exc} ({explain_ucerror(exc)})")
        finally:
            with self._run_lock:
                pre.in_guest = False
            if use_timer:
                timer.release()
            else:
                pre.arm(None)
            self._run_deadline = None
            self._timer_run = False
            stats.guest_s += time.perf_counter() - t0
        if dbg is not None:
            dbg.undo_exit_faults()
        if self._fatal is not None:
            raise self._fatal
        if self.stop_actions:
            # a hook stopped the CPU to change its state outside the run (a boot hand-off);
            # an action returns True if it moved the CPU, else the run ended as any other
            actions, self.stop_actions = self.stop_actions, []
            if any([action() for action in actions]):
                return
        if env.old_exception == 8:
            from vmm.cpu.delivery import TripleFault
            raise TripleFault("triple fault: a fault while delivering a double fault")
        if dbg is not None and dbg.after_run():
            return                       # a breakpoint, watchpoint or single step ended the run
        hlt = cpu.ended_on_hlt()
        if hlt is None:
            # The stock engine cannot say whether the run ended on HLT; guess from the byte
            # before the resume address. A stop of ours may land after an instruction that
            # merely ends in an F4 byte (a displacement, an immediate), which must not be
            # taken for HLT (that halted Linux's decompressor with IF=0); so after our own
            # stops the rare HLT that raced with them is resumed past instead.
            if self._kicked:
                stats.preemptions += 1
                return
            try:
                prev = cpu.read_linear((cpu.linear_pc() - 1) & cpu.address_mask(), 1,
                                       user=False)
            except Exception:
                prev = b""
            hlt = prev == b"\xf4"
        if hlt:
            # also when a stop of ours raced with it: resuming would run past the HLT
            self._halted = True
            self._halt_until = None
        else:
            stats.preemptions += 1

    def close(self):
        """Release host resources (files behind the drives, network backends)."""
        self.preempter.stop()
        if self._stop_timer is not None:
            self._stop_timer.close()
            self._stop_timer = None
        if self._intr is not None:
            self._intr.close()
        for dev in self.ctx.devices.values():
            close = getattr(dev, "close", None)
            if close is not None:
                close()
        if self.debug is not None:
            self.debug.close()
        self.events.close()
        for drive in self.ctx.drives:
            close = getattr(drive.medium, "close", None)
            if close is not None:
                close()


