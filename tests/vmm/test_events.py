"""vmm/events.py: the Listener base of the socket input sources (gdb stub, monitor socket); one
poll over the open sources, whose poll object is kept while the descriptors stay the same."""
import os
import socket

import pytest

from v3tools.errors import V3Error
from vmm.events import EventSources, Listener, Reader, parse_address


class Echo(Listener):
    name = "echo"

    def __init__(self, spec):
        super().__init__(spec, "--echo")
        self.got = []
        self.refused = 0
        self.closed_with_client = False

    def on_connect(self):
        self.conn.sendall(b"hello\n")

    def on_readable(self):
        try:
            data = self.conn.recv(100)
        except OSError:
            data = b""
        if data:
            self.got.append(data)
        else:
            self.hang_up()

    def refuse(self, conn):
        self.refused += 1
        conn.sendall(b"busy\n")

    def on_close(self):
        self.closed_with_client = True
        self.conn.sendall(b"bye\n")


def pump(events, until, rounds=50):
    for _ in range(rounds):
        events.poll(20_000_000)
        if until():
            return
    pytest.fail("nothing happened")


def test_one_client_at_a_time_then_close_unlinks_the_socket(tmp_path):
    path = str(tmp_path / "echo.sock")
    events = EventSources()
    src = events.add(Echo(f"unix:{path}"))
    assert src.is_open and not src.active and src.timeout_ns() is None
    first = socket.socket(socket.AF_UNIX)
    first.connect(path)
    pump(events, lambda: src.active)
    assert first.recv(100) == b"hello\n"
    second = socket.socket(socket.AF_UNIX)
    second.connect(path)
    pump(events, lambda: src.refused == 1)
    assert second.recv(100) == b"busy\n"
    first.sendall(b"data")
    pump(events, lambda: src.got == [b"data"])
    src.close()
    assert src.closed_with_client and first.recv(100) == b"bye\n"
    assert not src.is_open and src.fds() == [] and not os.path.exists(path)
    first.close()
    second.close()
    events.close()


def test_a_client_that_leaves_makes_room(tmp_path):
    path = str(tmp_path / "echo.sock")
    events = EventSources()
    src = events.add(Echo(f"unix:{path}"))
    c = socket.socket(socket.AF_UNIX)
    c.connect(path)
    pump(events, lambda: src.active)
    c.close()
    pump(events, lambda: not src.active)
    src.close()
    assert not src.closed_with_client                   # nobody to say goodbye to
    events.close()


def test_addresses_and_errors(tmp_path):
    assert parse_address("tcp::1234", "--gdb") == (socket.AF_INET, ("127.0.0.1", 1234))
    assert parse_address(":99", "--gdb") == (socket.AF_INET, ("127.0.0.1", 99))
    assert parse_address("unix:/x/y,server", "--monitor") == (socket.AF_UNIX, "/x/y")
    with pytest.raises(V3Error, match="--monitor tcp:host: expected"):
        parse_address("tcp:host", "--monitor")
    plain = tmp_path / "file"
    plain.write_text("")
    with pytest.raises(V3Error, match="exists and is not a socket"):
        Echo(f"unix:{plain}")
    assert plain.exists()


def test_poll_follows_changing_descriptors():
    ev = EventSources()
    got = []
    r1, w1 = os.pipe()
    r2, w2 = os.pipe()
    try:
        ev.add(Reader("a", r1, lambda d: got.append(("a", d))))
        assert ev.poll(0) is False
        first = ev._poller
        assert ev.poll(0) is False
        assert ev._poller is first                      # same descriptors: kept
        os.write(w1, b"x")
        assert ev.poll(0) is True
        ev.add(Reader("b", r2, lambda d: got.append(("b", d))))
        os.write(w2, b"y")
        assert ev.poll(0) is True                       # the new source is polled too
        assert ev._poller is not first
        assert got == [("a", b"x"), ("b", b"y")]
    finally:
        for fd in (r1, w1, r2, w2):
            os.close(fd)
        ev.close()
