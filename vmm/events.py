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

`Reader` wraps the common case: a descriptor and a callback for its data. `Listener` is the
base of the sources that listen on a socket for one client at a time (the gdb stub, the
monitor socket).
"""
import os
import select
import socket
import time

from v3tools.errors import V3Error

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


def parse_address(spec, option):
    """'tcp::1234', 'tcp:HOST:PORT', ':1234', 'unix:PATH' -> (family, address); `option`
    names the option in the error ("--gdb")."""
    if spec.startswith("unix:"):
        path = spec[5:].split(",")[0]
        if not path:
            raise V3Error(f"{option} {spec}: unix: needs a path")
        return socket.AF_UNIX, path
    rest = spec[4:] if spec.startswith("tcp:") else spec
    host, sep, port = rest.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise V3Error(f"{option} {spec}: expected tcp:HOST:PORT, tcp::PORT or unix:PATH")
    return socket.AF_INET, (host or "127.0.0.1", int(port))


def listen(spec, option):
    """A non-blocking listening socket for `spec` -> (socket, family, address), or one line
    saying why not. A stale unix socket at the path is replaced; any other file is not."""
    family, addr = parse_address(spec, option)
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        if family == socket.AF_UNIX:
            if os.path.exists(addr):
                import stat
                if not stat.S_ISSOCK(os.stat(addr).st_mode):
                    raise V3Error(f"{option} {spec}: {addr} exists and is not a socket")
                os.unlink(addr)
        else:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
        sock.listen(1)
    except OSError as exc:
        sock.close()
        raise V3Error(f"{option} {spec}: cannot listen: {exc.strerror}")
    except V3Error:
        sock.close()
        raise
    sock.setblocking(False)
    return sock, family, addr


class Listener:
    """A listening socket with at most one client connected: an input source that is `active`
    while a client is connected. Subclasses say what happens:

        on_connect()        a client was accepted (self.conn, a blocking socket)
        on_readable()       the client's socket is ready to read
        refuse(conn)        a second client arrived: say why before it is closed
        on_close()          the run ended: last words to the client, before it is closed

    `hang_up()` closes the client's connection; `close()` the whole source (the listening
    socket, and its path for a unix socket)."""

    name = "listener"

    def __init__(self, spec, option):
        self.sock, self.family, self.addr = listen(spec, option)
        self.conn = None
        self.is_open = True

    @property
    def active(self):
        return self.conn is not None

    def timeout_ns(self):
        return None

    def fds(self):
        out = [(self.sock.fileno(), select.POLLIN)] if self.sock is not None else []
        if self.conn is not None:
            out.append((self.conn.fileno(), select.POLLIN))
        return out

    def dispatch(self, ready):
        # the old connection's end first: a reconnection often arrives in the same poll
        if self.conn is not None and ready.get(self.conn.fileno()):
            self.on_readable()
        if self.sock is not None and ready.get(self.sock.fileno()):
            try:
                conn, _ = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            if self.conn is not None:
                try:
                    self.refuse(conn)
                except OSError:
                    pass
                conn.close()
                return
            conn.setblocking(True)
            self.conn = conn
            self.on_connect()

    def on_connect(self):
        pass

    def on_readable(self):
        pass

    def refuse(self, conn):
        pass

    def on_close(self):
        pass

    def hang_up(self):
        """Close the client's connection (if any)."""
        if self.conn is not None:
            try:
                self.conn.close()
            except OSError:
                pass
        self.conn = None

    def close(self):
        """The run ended: the client gets its last words, then every socket is closed."""
        if self.conn is not None:
            self.on_close()
        self.hang_up()
        if self.sock is not None:
            self.sock.close()
            self.sock = None
            if self.family == socket.AF_UNIX:
                try:
                    os.unlink(self.addr)
                except OSError:
                    pass
        self.is_open = False


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
