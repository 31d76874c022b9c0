"""Standard input and output as the guest's console (`--serial stdio`).

`HostConsole.attach(machine)` makes standard input an input source of the run loop
(vmm/events.py): while it is open an idle guest waits for it in real time; end-of-file closes
it and the guest runs on. On a terminal it also switches the terminal to raw mode and puts the
escape keys in front of the guest (`machine.escape_keys`, an EscapeKeys others can register
keys with, e.g. a monitor on Ctrl-A c). `close()` restores the terminal; call it on every way
out (the launcher does, in a finally).
"""
import os
import sys

from vmm.events import Reader
from vmm.terminal.escape import EscapeKeys
from vmm.terminal.raw import RawTerminal


def _fileno(stream):
    try:
        return stream.fileno()
    except (AttributeError, ValueError, OSError):
        return None


class HostConsole:
    def __init__(self, machine, fd, out):
        self.machine = machine
        self.fd = fd
        self.out = out                  # binary stream the user sees (messages, help)
        self.terminal = None            # RawTerminal while the terminal is raw
        self.keys = None                # EscapeKeys on a terminal
        self.reader = None

    @classmethod
    def attach(cls, machine, stdin=None, stdout=None):
        """Feed `stdin` (default sys.stdin) to the guest's console; None if there is no
        usable standard input (closed): the guest then sees no input."""
        fd = _fileno(stdin if stdin is not None else sys.stdin)
        if fd is None:
            return None
        try:
            os.fstat(fd)
        except OSError:                 # closed descriptor (`v3 run <&-`)
            return None
        out = stdout if stdout is not None else sys.stdout.buffer
        self = cls(machine, fd, out)
        self.terminal = RawTerminal.enter(fd)
        feed = machine.ctx.console.feed
        if self.terminal is not None:
            self.keys = EscapeKeys(write=self._say)
            self.keys.register("x", self._quit, "exit the VMM (status 0)")
            self.keys.register("h", self.keys.show_help, "print this help")
            machine.escape_keys = self.keys

            def on_data(data):
                data = self.keys.filter(data)
                if data:
                    feed(data)
        else:
            on_data = feed
        self.reader = machine.events.add(Reader("stdin", fd, on_data, chunk=256))
        return self

    @property
    def is_terminal(self):
        return self.terminal is not None

    def _say(self, data):
        try:
            self.out.write(data)
            self.out.flush()
        except (OSError, ValueError):
            pass

    def _quit(self):
        self._say(b"\r\n[v3: quit]\r\n")
        self.machine.ctx.request("quit")

    def close(self):
        """Restore the terminal (idempotent)."""
        if self.terminal is not None:
            self.terminal.restore()
