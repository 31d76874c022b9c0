"""Run control for debuggers: stop and resume the machine, single steps, breakpoints and
watchpoints, shared by the gdb stub and the monitor.

Costs, by design:
* With no breakpoint and no watchpoint set, nothing is added to the guest's execution: no
  per-instruction or per-block hook.
* Breakpoints (gdb's software and hardware kinds alike) are Unicorn *exits*: the translator
  ends a block before an instruction whose linear address is an exit, so they cost only at
  their own addresses, and guest memory never holds a breakpoint instruction (reads show
  the original bytes, self-checking code sees nothing).
* A single step and armed watchpoints switch the CPU to *precise stops*: an instruction hook
  over all code, and stops honoured at instruction starts (the block-granular stop patch is
  lifted while the hook decides every stop, so asynchronous stop requests only set a flag the
  hook reads, and no instruction is cut in two). Watchpoints are memory hooks on their
  address ranges; the run stops before the instruction that follows the access.

Stop reasons are tuples: ("step",), ("breakpoint", kind, addr), ("watch", kind, addr),
("interrupt",) (Ctrl-C, monitor `stop`), ("start",) (-S), ("hold",).
While held, the run loop waits in `wait_while_held`: one poll over the host inputs (the gdb
and monitor connections among them), and the guest's virtual clock does not advance.
"""
import ctypes
import time

from unicorn import UC_HOOK_CODE, UC_HOOK_MEM_READ, UC_HOOK_MEM_WRITE

from vmm.cpu import ucinternals as U
from vmm.cpu.mmu import MMU, NonCanonical, PageFault

WATCH_KINDS = ("write", "read", "access")


class DebugError(Exception):
    """A debugger request that cannot be done (bad address, unmapped memory ...)."""


class Debugger:
    def __init__(self, machine):
        self.m = machine
        self.uc = machine.uc
        self.held = False
        self.reason = ("hold",)
        self.listeners = []                 # callables(reason), told of every stop
        self.clients = []                   # debugger front ends (gdb): `active` if connected
        self.breakpoints = {}               # linear address -> set of kinds ("sw", "hw")
        self.watchpoints = {}               # (kind, addr, length) -> [hook handles]
        self.stepping = False               # a gdb/monitor single step is pending
        self._step_over = None              # the breakpoint address a resume must step over
        self._budget = -1                   # instructions the precise hook lets run (-1: any)
        self._hook_stopped = False
        self._watch_hit = None
        self._precise_hook = None
        self._exits = ()
        self._no_exit_request = U.find_no_exit_request(self.uc)
        # page walks for the debugger: the guest's tables, but no Accessed/Dirty bit set
        self.mmu = MMU(machine.cpu.phys_read, lambda addr, data: None)
        self._cr2 = 0                       # CR2 as the guest last set it (see undo_exit_faults)
        delivery = machine.cpu.delivery
        deliver = delivery.on_unicorn_event

        def on_unicorn_event(intno):
            if intno == 14:
                self._cr2 = machine.cpu.env.cr(2)
            return deliver(intno)
        delivery.on_unicorn_event = on_unicorn_event
        self.hold_ns = 0                    # host time spent held (excluded from guest time)
        self.on_close = []                  # callables run when the machine closes
        self.exit_status = 0                # v3 run's exit status, for the debugger's W packet

    # -- stopping and resuming -----------------------------------------------------------------
    def stop(self, reason=("interrupt",)):
        """Hold the machine (from the run loop's thread). The run loop stops the guest at its
        next turn; listeners hear of the stop at once."""
        was = self.held
        self.held = True
        self.reason = reason
        self.stepping = False
        self.m.kick()
        if not was:
            for cb in list(self.listeners):
                cb(reason)

    def resume(self):
        self.held = False
        self._prepare_resume()

    def step(self):
        """Run exactly one instruction, then hold with reason ("step",)."""
        self.held = False
        self.stepping = True
        self._prepare_resume()

    def _prepare_resume(self):
        pc = self.m.cpu.linear_pc()
        self._step_over = pc if pc in self.breakpoints else None

    def inspect_stop(self, exc):
        """A fail-stop, triple fault or halt with IF=0 ends the run: while a debugger is
        connected, the machine is held at that point first (gdb sees SIGABRT and the
        diagnostic) until it continues, detaches or kills; then the run ends as it would
        have."""
        if getattr(exc, "exit_status", 0) not in (3, 4, 5) or not self.has_client():
            return
        self.failure = exc
        self.stop(("failstop", exc))
        while self.held and self.has_client():
            self.wait_while_held(None)

    def has_client(self):
        """True while a debugger is connected (clients: objects with `active`)."""
        return any(c.active for c in self.clients)

    def wait_while_held(self, wall_deadline_ns=None):
        """Called by the run loop while held: wait for host input (a debugger command resumes
        the machine); the guest's clock stands still meanwhile."""
        t0 = time.monotonic_ns()
        events = self.m.events
        if events.any_open():
            events.wait_until(wall_deadline_ns)
        else:
            time.sleep(0.01)               # nothing can resume it but --timeout
        elapsed = time.monotonic_ns() - t0
        self.hold_ns += elapsed
        self.m.ctx.clock.exclude(elapsed)
        env = self.m.cpu.env
        env.tsc_offset = env.tsc_offset - int(elapsed * self.m.tsc_hz() / 1e9)

    # -- breakpoints and watchpoints -----------------------------------------------------------
    def add_breakpoint(self, addr, kind="sw"):
        self.breakpoints.setdefault(addr, set()).add(kind)

    def remove_breakpoint(self, addr, kind="sw"):
        kinds = self.breakpoints.get(addr)
        if not kinds or kind not in kinds:
            return False
        kinds.discard(kind)
        if not kinds:
            del self.breakpoints[addr]
        return True

    def add_watchpoint(self, kind, addr, length):
        if kind not in WATCH_KINDS:
            raise DebugError(f"unknown watchpoint kind {kind}")
        if not 1 <= length <= 4096:
            raise DebugError(f"watchpoint length {length} out of range (1..4096)")
        key = (kind, addr, length)
        if key in self.watchpoints:
            return
        hooks = []
        end = addr + length - 1
        if kind in ("write", "access"):
            hooks.append(self.uc.hook_add(UC_HOOK_MEM_WRITE, self._on_watch, key, addr, end))
        if kind in ("read", "access"):
            hooks.append(self.uc.hook_add(UC_HOOK_MEM_READ, self._on_watch, key, addr, end))
        self.watchpoints[key] = hooks
        self.uc.ctl_flush_tb()

    def remove_watchpoint(self, kind, addr, length):
        hooks = self.watchpoints.pop((kind, addr, length), None)
        if hooks is None:
            return False
        for h in hooks:
            self.uc.hook_del(h)
        self.uc.ctl_flush_tb()
        return True

    def clear(self):
        """Forget every breakpoint and watchpoint (a debugger detached)."""
        self.breakpoints.clear()
        for key in list(self.watchpoints):
            self.remove_watchpoint(*key)
        self._set_exits(())
        self._set_precise(False)

    def _on_watch(self, uc, access, address, size, value, key):
        if self._watch_hit is None:
            self._watch_hit = (key[0], key[1])

    @property
    def single_stepping(self):
        """A single step, or the step over a breakpoint on the way to a `continue`, is
        pending: the next run executes one instruction and must see no interrupt."""
        return self.stepping or self._step_over is not None

    # -- around each run of the guest (called by the run loop) ---------------------------------
    def before_run(self):
        exits = set(self.breakpoints)
        counting = self.stepping or self._step_over is not None
        if self._step_over is not None:
            exits.discard(self._step_over)
        self._set_exits(tuple(sorted(exits)))
        self._budget = 1 if counting else -1
        self._hook_stopped = False
        self._watch_hit = None
        self._set_precise(counting or bool(self.watchpoints))
        self._cr2 = self.m.cpu.env.cr(2)

    def undo_exit_faults(self):
        """Called right after each run, before anything looks at the CPU state. After every
        run Unicorn drops the translated code before each exit, finding it through the
        guest's page tables; for an exit address those tables do not map, that walk raises a
        #PF inside Unicorn (which it then ignores), leaving CR2 and the exception-in-flight
        marker set (a second one even reads as a double fault). Undo both."""
        if not self._exits:
            return
        env = self.m.cpu.env
        if env.old_exception == -1:
            return
        unmapped = False
        for addr in self._exits:
            try:
                self.translate((addr - 1) & ((1 << 64) - 1))
            except DebugError:
                unmapped = True
                break
        if unmapped:
            env.clear_exception_marker()
            env.set_u64(U.ENV_CR + 16, self._cr2)

    def after_run(self):
        """After a run: True if the run ended for the debugger (the run loop then does not
        look for HLT)."""
        m = self.m
        if self._watch_hit is not None:
            kind, addr = self._watch_hit
            self._watch_hit = None
            self._step_over = None
            self.stop(("watch", kind, addr))
            return True
        if self.stepping or self._step_over is not None:
            executed = self._budget == 0
            if not executed:
                return False               # stopped before the instruction ran: try again
            self._step_over = None
            if self.stepping:
                self.stop(("step",))
            # a step over a breakpoint on the way to a `continue` just goes on
            return self._hook_stopped
        if self.breakpoints and not self._hook_stopped:
            pc = m.cpu.linear_pc()
            if pc in self.breakpoints:
                kinds = self.breakpoints[pc]
                self.stop(("breakpoint", "sw" if "sw" in kinds else "hw", pc))
                return True
        return False

    def _set_exits(self, exits):
        if exits != self._exits:
            self._exits = exits
            self.uc.ctl_set_exits(list(exits))
            self.uc.ctl_flush_tb()

    def _set_precise(self, on):
        if on == (self._precise_hook is not None):
            return
        flag = ctypes.c_uint8.from_address(self._no_exit_request)
        if on:
            self._precise_hook = self.uc.hook_add(UC_HOOK_CODE, self._on_instruction)
            flag.value = 0
            self.m.precise_stops = True
        else:
            self.uc.hook_del(self._precise_hook)
            self._precise_hook = None
            flag.value = 1
            self.m.precise_stops = False
        self.uc.ctl_flush_tb()

    def _on_instruction(self, uc, address, size, user_data):
        if self._budget == 0 or self._watch_hit is not None or self.m._kicked:
            self._hook_stopped = True
            uc.emu_stop()
            return
        if self._budget > 0:
            self._budget -= 1

    # -- guest memory at linear addresses ------------------------------------------------------
    def translate(self, linear):
        env = self.m.cpu.env
        try:
            return self.mmu.translate(linear, env.cr(0), env.cr(3), env.cr(4), False, False,
                                      bool(env.hflags & U.HF_LMA))
        except (PageFault, NonCanonical) as exc:
            raise DebugError(str(exc))

    def _phys_ok(self, phys, n):
        if phys + n > self.m.ram_size:
            raise DebugError(f"physical address {phys:#x} is not RAM (device windows are not "
                             f"read by the debugger)")

    def read_memory(self, linear, n):
        out = bytearray()
        while n > 0:
            chunk = min(n, 0x1000 - (linear & 0xFFF))
            phys = self.translate(linear)
            self._phys_ok(phys, chunk)
            out += self.m.cpu.phys_read(phys, chunk)
            linear += chunk
            n -= chunk
        return bytes(out)

    def write_memory(self, linear, data):
        pieces = []
        data = bytes(data)
        while data:                        # translate everything first: all or nothing
            chunk = min(len(data), 0x1000 - (linear & 0xFFF))
            phys = self.translate(linear)
            self._phys_ok(phys, chunk)
            pieces.append((phys, data[:chunk]))
            linear += chunk
            data = data[chunk:]
        for phys, piece in pieces:
            self.m.ctx.mem.write(phys, piece)

    def read_physical(self, phys, n):
        self._phys_ok(phys, n)
        return self.m.cpu.phys_read(phys, n)

    def close(self):
        for cb in list(self.on_close):
            cb()
