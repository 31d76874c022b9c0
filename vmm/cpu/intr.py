"""External interrupts taken inside the engine (engine patch 8, `uc_engine_interrupts`).

On the stock engine every hardware interrupt costs a stop of the guest: the run loop asks the
interrupt controller for a vector and `vmm.cpu.delivery` pushes the frame, and while the guest
runs with IF=0 the loop has to look again every IRQ_BLOCKED_POLL_NS, since STI, POPF and IRET
run inside the engine. The v3 engine has the processor's INTR input instead:

* `sync(level)` and `raise_if_pending()` drive INTR. The engine looks at it between translated blocks, when EFLAGS.IF
  is set and no interrupt shadow is active, exactly where QEMU takes its own PIC's interrupts:
  raising it while the guest runs ends the current chain of blocks, not the run.
* It then runs the acknowledge cycle, `EngineInterrupts._ack`: the board's interrupt
  controller (ctx.intc, the 8259A or the LAPIC) names the vector, and the engine delivers it
  through the IVT or IDT with QEMU's own code (real, protected and IA-32e mode, privilege
  changes, IST, task gates, virtual-8086 mode). A fault met on the way (a not-present stack
  page) reaches `vmm.cpu.delivery` like any exception.
* The engine clears INTR when it acknowledges; the callback raises it again if the controller
  still has a request, and the controllers raise it (through ctx.stop_requested) whenever a
  request appears: a line goes up, an EOI or a mask change uncovers one.

NMIs, and every interrupt while a debugger single-steps (a step must see none), still go
through the run loop and `vmm.cpu.delivery`; so does every interrupt on the stock engine.
"""
import ctypes

ACK_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p)


def available():
    """Does the loaded engine have the INTR input? (imports unicorn)"""
    from vmm import engine
    return engine.has("uc_engine_interrupts")


class EngineInterrupts:
    """The engine's INTR input for one CPU. `acknowledge()` returns the vector of the
    interrupt the controller hands over, or None when it has none (the request went away);
    `pending()` says whether the controller requests one; `on_failure(exc)` ends the run with
    an exception raised by them (a callback from C must not raise)."""

    def __init__(self, uc, pending, acknowledge, on_failure, noted=None):
        from unicorn.unicorn_py3.unicorn import uclib
        self._uch = uc._uch
        self._line_fn = uclib.uc_x86_intr_line
        self._line_fn.argtypes = [ctypes.c_void_p, ctypes.c_int]
        self._line_fn.restype = ctypes.c_int
        set_ack = uclib.uc_x86_set_intr_ack
        set_ack.argtypes = [ctypes.c_void_p, ACK_FN, ctypes.c_void_p]
        set_ack.restype = ctypes.c_int
        self._pending = pending
        self._acknowledge = acknowledge
        self._on_failure = on_failure
        self._noted = noted                # callable(vector): telemetry and the interrupt log
        self.level = 0                     # what INTR was last set to (the engine clears it
                                           # itself when it acknowledges)
        self.taken = 0                     # interrupts the engine delivered
        self._cb = ACK_FN(self._ack)       # kept alive as long as the engine may call it
        self._set_ack = set_ack
        self.fast = None                   # the acknowledge cycle in C (use_fast_ack)
        self._install_ack(self._cb, None)

    def _install_ack(self, fn, opaque):
        err = self._set_ack(self._uch, fn, opaque)
        if err:
            raise RuntimeError(f"uc_x86_set_intr_ack failed ({err})")

    def use_fast_ack(self, fast):
        """Let `fast` (vmm/devices/_apic.c's AckFast, built on this object) run the acknowledge
        cycle in C for the LAPIC's vectors; it calls _ack for everything else."""
        entry = fast.entry_points()
        self._install_ack(ACK_FN(entry["ack"]), ctypes.c_void_p(entry["opaque"]))
        self.fast = fast

    def sync(self, level):
        """Set INTR whatever it was believed to be (between runs: nothing else then can have
        changed it behind this object's back, a snapshot load or a CPU reset included)."""
        self.level = 1 if level else 0
        self._line_fn(self._uch, self.level)

    def raise_if_pending(self):
        if not self.level and self._pending():
            self.level = 1
            self._line_fn(self._uch, 1)

    def _ack(self, _opaque):
        self.level = 0                     # the engine dropped the request before calling
        try:
            if not self._pending():
                return -1                  # the request went away before INTA
            vector = self._acknowledge()
            if vector is None:
                return -1
            self.taken += 1
            if self._noted is not None:
                self._noted(vector)
            self.raise_if_pending()          # the next one, if the controller has it
            return vector
        except BaseException as exc:       # never into C: end the run with it instead
            self._on_failure(exc)
            return -1

    def close(self):
        """Detach the callback (the engine must not call into a dead machine)."""
        if self._cb is not None:
            self.sync(0)
            self._set_ack(self._uch, ACK_FN(), None)
            self._cb = None                # (self.fast stays, for its counts)
