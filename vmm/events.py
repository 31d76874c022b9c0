"""Host inputs that can wake the guest: one poll() over every open descriptor.

Anything outside the VMM that can make an idle guest do work is an *input source*: standard
input (a pipe or a terminal), a network backend's sockets, a gdb or monitor connection. While
any source is open, an idle guest may not be fast-forwarded past host time, since the input
may arrive at any moment: the run loop instead waits here, in one poll() over all their
descriptors with the next guest timer deadline as the timeout, so the host rests and the guest
wakes as soon as something arrives. With no source open, nothing outside can wake the guest
and the run loop may skip virtual time to the next deadline.

Sources are serviced only from the run loop's thread (libslirp, for one, is not thread-safe).
While the guest runs, the loop stops it at least every POLL_SLICE_NS to look at the sources.

A source is any object with:

    name                 a short label for diagnostics ("stdin", "slirp", "gdb")
    is_open              False once it has ended (end-of-file, connection closed)
    fds()                the (fd, events) pairs to wait on now (events: select.POLLIN | POLLOUT)
    dispatch(ready)      called with {fd: revents} for the descriptors that are ready
                         (an empty dict after a timeout, so timer-driven sources can run)
    timeout_ns()         optional: host nanoseconds until the source needs servicing anyway
                         (libslirp's timers), or None
    active               optional (default: is_open): False while the source is polled but
                         nothing is expected from it soon (a debugger port nobody is connected
                         to): an idle guest may then still be fast-forwarded

`Reader` wraps the common case: a descriptor and a callback for its data.
"""
import os
import select
import time

POLL_SLICE_NS = 2_000_000        # while sources are open, the guest runs at most this long


class Reader:
    """A descriptor whose bytes go to `on_data(bytes)`; end-of-file calls `on_eof()` and closes
    the source (the descriptor itself belongs to the caller)."""

    def __init__(self, name, fd, on_data, on_eof=None, chunk=4096):
        self.name = name
        self.fd = fd
        self.on_data = on_data
        self.on_eof = on_eof
        self.chunk = chunk
        self.is_open = True

    def fds(self):
        return [(self.fd, select.POLLIN)] if self.is_open else []

    def dispatch(self, ready):
        revents = ready.get(self.fd, 0)
        if not revents:
            return
        try:
            data = os.read(self.fd, self.chunk)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            self.on_data(data)
        else:
            self.close()

    def close(self):
        if self.is_open:
            self.is_open = False
            if self.on_eof is not None:
                self.on_eof()

    def timeout_ns(self):
        return None


class EventSources:
    """The machine's input sources and the one wait over all of them."""

    def __init__(self):
        self.sources = []
        self.polls = 0                 # statistics: waits and non-blocking polls done
        self.wakeups = 0               # polls that found a ready descriptor
        self._wake_r, self._wake_w = os.pipe()
        self._poller = None
        self._regs = None
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)

    def add(self, source):
        self.sources.append(source)
        return source

    def remove(self, source):
        if source in self.sources:
            self.sources.remove(source)

    def any_open(self):
        """True while some input can still arrive (the guest must then not be fast-forwarded)."""
        return any(s.is_open for s in self.sources)

    def any_active(self):
        """True while an open source may wake the guest soon (an idle guest then waits for
        it in real time instead of being fast-forwarded)."""
        return any(s.is_open and getattr(s, "active", True) for s in self.sources)

    def open_names(self):
        return [s.name for s in self.sources if s.is_open]

    def wake(self):
        """Interrupt a wait from another thread (safe to call from anywhere, any time)."""
        try:
            os.write(self._wake_w, b"\0")
        except (BlockingIOError, OSError):
            pass

    def poll(self, timeout_ns=0):
        """Wait up to `timeout_ns` (0: just look; None: until something is ready) for any open
        source, then service the ready ones. Returns True if a descriptor was ready."""
        live = [s for s in self.sources if s.is_open]
        for s in live:
            t = s.timeout_ns()
            if t is not None:
                t = max(0, t)
                timeout_ns = t if timeout_ns is None else min(timeout_ns, t)
        regs = [pair for s in live for pair in s.fds()]
        if regs != self._regs:
            # the same descriptors from one call to the next (the run loop looks between
            # every two runs of the guest): the poll object is kept, not built again
            poller = self._poller = select.poll()
            poller.register(self._wake_r, select.POLLIN)
            for fd, events in regs:
                poller.register(fd, events)
            self._regs = regs
        poller = self._poller
        timeout_ms = None if timeout_ns is None else \
            min(max(0, (timeout_ns + 999_999) // 1_000_000), 2**31 - 1)   # poll() takes a C int
        if timeout_ns == 0:
            timeout_ms = 0
        try:
            hits = poller.poll(timeout_ms)
        except InterruptedError:
            hits = []
        self.polls += 1
        ready = {}
        for fd, revents in hits:
            if fd == self._wake_r:
                try:
                    while os.read(self._wake_r, 512):
                        pass
                except (BlockingIOError, OSError):
                    pass
                continue
            ready[fd] = ready.get(fd, 0) | revents
        if ready:
            self.wakeups += 1
        for s in live:
            s.dispatch(ready)
        return bool(ready)

    def wait_until(self, host_deadline_ns):
        """Rest until host time `host_deadline_ns` (None: no deadline) or until an input is
        ready; returns True if one was."""
        if host_deadline_ns is None:
            return self.poll(None)
        return self.poll(max(0, host_deadline_ns - time.monotonic_ns()))

    def close(self):
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass
