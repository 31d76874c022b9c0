"""A run deadline enforced from C: a POSIX timer whose expiry calls `uc_emu_stop` directly.

The run loop stops the guest at its next deadline (a guest timer, the next look at the host
inputs, a deferred interrupt). A Python thread doing that must wake, take the GIL from the
thread that is about to re-enter the engine and give it back: two thread switches per run,
which cost more than the engine's own stop and restart when the guest is stopped thousands
of times a second (a network transfer). Here the kernel's timer runs `uc_emu_stop(uc)` in a
notification thread (timer_create with SIGEV_THREAD, the handle passed as the sigval), with
no Python and no GIL involved.

Constraints, which the caller (vmm/machine.py) honours:
- the engine must say by itself whether a run ended on HLT (patch `uc_halt_state`), since a
  stop from here sets no flag in Python;
- a stop that reaches the engine just before `emu_start` begins is dropped, so the timer
  repeats every REPEAT_NS until it is disarmed after the run;
- a notification thread may run late, after the run it was armed for: the next run may then
  stop early, which costs one extra turn of the run loop and nothing else;
- not with a debugger attached (its stops must land at instruction starts: it uses the
  Python preempter, whose stop request it sees).

Each timer_settime costs the run loop 8-9 us inside a network transfer (1.7 us alone: it
reprograms the host's timer hardware, which a virtual machine's host traps), and a transfer
stops the guest thousands of times a second, mostly before the deadline (a device's
interrupt). So a run that ends early leaves its timer armed (`release`), and `arm` keeps an
armed expiry that is still ahead and at most SLACK_NS before the new deadline: the guest then
stops a little early, never late, at the cost of one more turn of the run loop. The caller
disarms for real before it waits idle, so an expired timer does not repeat through the wait.
"""
import ctypes
import ctypes.util
import time

CLOCK_MONOTONIC = 1
SIGEV_THREAD = 2
TIMER_ABSTIME = 1
REPEAT_NS = 1_000_000
SLACK_NS = 1_000_000       # how much earlier than wanted a kept expiry may stop the guest


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class _Itimerspec(ctypes.Structure):
    _fields_ = [("it_interval", _Timespec), ("it_value", _Timespec)]


class _Sigevent(ctypes.Structure):
    # glibc x86-64: sigval (8), signo (4), notify (4), then a 48-byte union whose
    # SIGEV_THREAD member is (function pointer, pthread_attr_t *)
    _fields_ = [("sigev_value", ctypes.c_void_p), ("sigev_signo", ctypes.c_int),
                ("sigev_notify", ctypes.c_int), ("function", ctypes.c_void_p),
                ("attribute", ctypes.c_void_p), ("_pad", ctypes.c_char * 32)]


_libc = None


def _lib():
    global _libc
    if _libc is None:
        lib = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        if not hasattr(lib, "timer_create"):          # glibc < 2.34 keeps it in librt
            lib = ctypes.CDLL(ctypes.util.find_library("rt"), use_errno=True)
        lib.timer_create.argtypes = [ctypes.c_int, ctypes.POINTER(_Sigevent),
                                     ctypes.POINTER(ctypes.c_void_p)]
        lib.timer_settime.argtypes = [ctypes.c_void_p, ctypes.c_int,
                                      ctypes.POINTER(_Itimerspec), ctypes.c_void_p]
        lib.timer_delete.argtypes = [ctypes.c_void_p]
        _libc = lib
    return _libc


_available = None


def available():
    """Can this engine be stopped from a C timer? (x86-64 glibc, engine with uc_halt_state)"""
    global _available
    if _available is None:
        _available = _check()
    return _available


def _check():
    if ctypes.sizeof(ctypes.c_void_p) != 8 or ctypes.sizeof(_Sigevent) != 64:
        return False
    try:
        from vmm import engine
        if not engine.has("uc_halt_state"):
            return False
        _lib()
    except (OSError, AttributeError, KeyError):
        return False
    return True


class StopTimer:
    """arm(host_monotonic_ns) / disarm() a deadline that stops engine `uc` when reached."""

    def __init__(self, uc):
        from unicorn.unicorn_py3.unicorn import uclib
        lib = _lib()
        self._settime = lib.timer_settime
        ev = _Sigevent()
        ev.sigev_notify = SIGEV_THREAD
        ev.sigev_value = uc._uch.value
        ev.function = ctypes.cast(uclib.uc_emu_stop, ctypes.c_void_p).value
        self._id = ctypes.c_void_p()
        if lib.timer_create(CLOCK_MONOTONIC, ctypes.byref(ev), ctypes.byref(self._id)) != 0:
            raise OSError(ctypes.get_errno(), "timer_create failed")
        self._spec = _Itimerspec()
        self._spec.it_interval.tv_nsec = REPEAT_NS
        self._off = _Itimerspec()
        self._spec_ref = ctypes.byref(self._spec)
        self._off_ref = ctypes.byref(self._off)
        self.armed = None          # the programmed expiry (host monotonic ns), or None
        self.settimes = 0          # timer_settime calls made

    def arm(self, host_deadline_ns):
        """Stop the engine no later than `host_deadline_ns` (possibly up to SLACK_NS earlier)."""
        armed = self.armed
        if armed is not None and armed <= host_deadline_ns <= armed + SLACK_NS and \
                armed > time.monotonic_ns():
            return
        spec = self._spec
        spec.it_value.tv_sec, spec.it_value.tv_nsec = divmod(max(1, host_deadline_ns),
                                                             1_000_000_000)
        self._settime(self._id, TIMER_ABSTIME, self._spec_ref, None)
        self.settimes += 1
        self.armed = host_deadline_ns

    def release(self):
        """A run has ended: an expiry still ahead stays armed for the next run's `arm`; one
        already reached (it repeats) is disarmed."""
        if self.armed is not None and self.armed <= time.monotonic_ns():
            self.disarm()

    def disarm(self):
        if self.armed is not None:
            self._settime(self._id, 0, self._off_ref, None)
            self.settimes += 1
            self.armed = None

    def close(self):
        if self._id is not None:
            self.disarm()
            _lib().timer_delete(self._id)
            self._id = None
