"""vmm/terminal/raw.py and host.py on a pseudo-terminal: raw while the guest owns it, exactly
as before afterwards; plain I/O (no raw mode, no escape keys) on anything else."""
import os
import termios

import pytest

from vmm.events import EventSources
from vmm.terminal.host import HostConsole
from vmm.terminal.raw import RawTerminal


@pytest.fixture
def pty_pair():
    master, slave = os.openpty()
    yield master, slave
    for fd in (master, slave):
        try:
            os.close(fd)
        except OSError:
            pass


def test_raw_mode_then_the_same_settings_again(pty_pair):
    _, slave = pty_pair
    before = termios.tcgetattr(slave)
    term = RawTerminal.enter(slave)
    assert term is not None
    now = termios.tcgetattr(slave)
    assert not now[3] & (termios.ECHO | termios.ICANON | termios.ISIG | termios.IEXTEN)
    assert not now[0] & (termios.ICRNL | termios.IXON)
    assert now[1] & termios.OPOST
    term.restore()
    term.restore()                      # idempotent
    assert termios.tcgetattr(slave) == before


def test_ctrl_c_is_a_byte_for_the_guest_in_raw_mode(pty_pair):
    master, slave = pty_pair
    with RawTerminal.enter(slave):
        os.write(master, b"\x03\x1a\x1c\r")
        assert os.read(slave, 16) == b"\x03\x1a\x1c\r"


def test_not_a_terminal_is_left_alone(tmp_path):
    r, w = os.pipe()
    try:
        assert RawTerminal.enter(r) is None
    finally:
        os.close(r)
        os.close(w)
    with open(tmp_path / "f", "wb+") as f:
        assert RawTerminal.enter(f.fileno()) is None


class FakeConsole:
    def __init__(self):
        self.fed = bytearray()

    def feed(self, data):
        self.fed += data


class FakeMachine:
    """What HostConsole touches: ctx.console, ctx.request, events, escape_keys."""

    def __init__(self):
        self.events = EventSources()
        self.escape_keys = None
        self.requests = []
        machine = self

        class Ctx:
            console = FakeConsole()

            @staticmethod
            def request(what):
                machine.requests.append(what)
        self.ctx = Ctx()


class Stream:
    def __init__(self, fd):
        self.fd = fd

    def fileno(self):
        return self.fd


def test_host_console_on_a_terminal(pty_pair):
    master, slave = pty_pair
    before = termios.tcgetattr(slave)
    m = FakeMachine()
    out = open(os.dup(slave), "wb", buffering=0)
    host = HostConsole.attach(m, Stream(slave), out)
    try:
        assert host.is_terminal and m.escape_keys is host.keys
        os.write(master, b"ls\t\x01\x01\x01h")
        m.events.poll(1000_000_000)
        assert bytes(m.ctx.console.fed) == b"ls\t\x01"
        assert b"C-a x" in os.read(master, 4096)          # the help, on the terminal
        os.write(master, b"\x01x")
        m.events.poll(1000_000_000)
        assert m.requests == ["quit"]
    finally:
        host.close()
        out.close()
        m.events.close()
    assert termios.tcgetattr(slave) == before


def test_host_console_on_a_pipe_is_plain(tmp_path):
    r, w = os.pipe()
    m = FakeMachine()
    host = HostConsole.attach(m, Stream(r), open(os.devnull, "wb"))
    try:
        assert not host.is_terminal and m.escape_keys is None
        os.write(w, b"\x01x\x03")
        os.close(w)
        m.events.poll(1000_000_000)
        assert bytes(m.ctx.console.fed) == b"\x01x\x03" and m.requests == []
        m.events.poll(1000_000_000)                         # end-of-file closes the input
        assert not m.events.any_open()
    finally:
        host.close()
        os.close(r)
        m.events.close()


def test_a_closed_stdin_gives_no_input():
    closed = 987                        # `v3 run <&-`: a descriptor number nothing holds
    with pytest.raises(OSError):
        os.fstat(closed)
    m = FakeMachine()
    with open(os.devnull, "wb") as out:
        assert HostConsole.attach(m, Stream(closed), out) is None
    assert not m.events.sources
    m.events.close()
