"""Virtual time: one clock behind every guest-visible time source.

`Clock.now_ns()` is virtual nanoseconds since power-on. It follows the host's monotonic clock
while the guest runs, and jumps forward (`skip_to`) when the guest halts with interrupts enabled,
so an idle guest does not wait in real time. `ManualClock` only moves when told (tests).
`Timers` is the deadline queue devices schedule their events on; callbacks run on the VMM's
main loop, never on another thread.
"""
import heapq
import itertools
import time


class Clock:
    def __init__(self):
        self._origin = time.monotonic_ns()
        self.skipped_ns = 0            # total fast-forward, for telemetry and the TSC offset

    def now_ns(self):
        return time.monotonic_ns() - self._origin + self.skipped_ns

    def skip_to(self, when_ns):
        """Fast-forward virtual time to `when_ns` (never backwards). Returns the jump."""
        delta = when_ns - self.now_ns()
        if delta > 0:
            self.skipped_ns += delta
            return delta
        return 0

    def host_ns_until(self, when_ns):
        """How many host nanoseconds until virtual time reaches `when_ns`."""
        return max(0, when_ns - self.now_ns())

    def exclude(self, host_ns):
        """Take `host_ns` of host time out of virtual time (the machine was stopped by a
        debugger or the monitor: its clock did not run meanwhile)."""
        self._origin += host_ns


class ManualClock(Clock):
    def __init__(self, start_ns=0):
        self._now = start_ns
        self.skipped_ns = 0

    def now_ns(self):
        return self._now

    def exclude(self, host_ns):
        pass

    def advance(self, delta_ns):
        self._now += delta_ns

    def skip_to(self, when_ns):
        delta = when_ns - self._now
        if delta > 0:
            self._now = when_ns
            self.skipped_ns += delta
            return delta
        return 0


class Timer:
    __slots__ = ("when", "seq", "callback", "cancelled", "name")

    def __lt__(self, other):
        return (self.when, self.seq) < (other.when, other.seq)


class Timers:
    """A deadline queue. schedule() returns a handle that cancel() accepts."""

    def __init__(self, clock):
        self.clock = clock
        self._heap = []
        self._seq = itertools.count()
        self.on_change = None          # called when the earliest deadline may have moved earlier

    def schedule(self, when_ns, callback, name=""):
        t = Timer()
        t.when, t.seq, t.callback, t.cancelled, t.name = when_ns, next(self._seq), callback, False, name
        heapq.heappush(self._heap, t)
        if self.on_change is not None and self._heap[0] is t:
            self.on_change(when_ns)
        return t

    def cancel(self, timer):
        if timer is not None:
            timer.cancelled = True

    def next_deadline(self):
        heap = self._heap
        while heap and heap[0].cancelled:
            heapq.heappop(heap)
        return heap[0].when if heap else None

    def run_due(self, now_ns=None):
        """Run every callback whose deadline has passed; returns how many ran. Timers that
        callbacks schedule meanwhile wait for the next call, even when already due, so that
        the guest runs between two events of one source (e.g. a late timer catching up)."""
        now = self.clock.now_ns() if now_ns is None else now_ns
        heap = self._heap
        due = []
        while heap and (heap[0].cancelled or heap[0].when <= now):
            t = heapq.heappop(heap)
            if not t.cancelled:
                due.append(t)
        for t in due:
            if not t.cancelled:
                t.cancelled = True
                t.callback(t.when)
        return len(due)


_tsc_hz_cache = None


def measure_tsc_hz():
    """The host TSC frequency (RDTSC in the guest is the host TSC plus an offset)."""
    global _tsc_hz_cache
    if _tsc_hz_cache is None:
        from unicorn import Uc, UC_ARCH_X86, UC_MODE_32
        from unicorn import x86_const as X
        uc = Uc(UC_ARCH_X86, UC_MODE_32)
        uc.mem_map(0, 0x1000)
        uc.mem_write(0, b"\x0f\x31\xf4")

        def tsc():
            uc.emu_start(0, 3)
            return uc.reg_read(X.UC_X86_REG_EAX) | (uc.reg_read(X.UC_X86_REG_EDX) << 32)

        t0, c0 = time.perf_counter_ns(), tsc()
        time.sleep(0.02)
        t1, c1 = time.perf_counter_ns(), tsc()
        _tsc_hz_cache = (c1 - c0) * 1e9 / (t1 - t0)
    return _tsc_hz_cache
