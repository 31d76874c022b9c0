"""The host terminal in raw mode while a guest owns it, restored on every way out.

Raw as QEMU's -nographic sets it: no line buffering, no local echo, no signal keys (Ctrl-C,
Ctrl-Z and Ctrl-\\ are bytes for the guest), no CR/NL translation or flow control on input,
8-bit characters; output processing stays on. The guest then does its own echo and line
editing, and the terminal's answers to the guest's queries (a cursor-position report to
`ESC [6n`) arrive as input for the guest instead of being printed.

`RawTerminal.enter(fd)` returns None when `fd` is not a terminal or cannot be switched (the
caller then uses plain I/O). `restore()` puts back the exact settings read on entry; it is
idempotent and also registered with atexit, so an exception or sys.exit restores too. Signals
that end the process (SIGTERM, SIGHUP, SIGINT from outside) are turned into an orderly stop by
the launcher, which then restores the terminal on its way out.
"""
import atexit
import os
import termios

# termios attribute list indexes
IFLAG, OFLAG, CFLAG, LFLAG, ISPEED, OSPEED, CC = range(7)


def raw_attributes(attrs):
    """The raw version of a tcgetattr() list (a new list; `attrs` is left alone)."""
    new = [list(a) if isinstance(a, list) else a for a in attrs]
    new[IFLAG] &= ~(termios.IGNBRK | termios.BRKINT | termios.PARMRK | termios.ISTRIP
                    | termios.INLCR | termios.IGNCR | termios.ICRNL | termios.IXON)
    new[OFLAG] |= termios.OPOST
    new[LFLAG] &= ~(termios.ECHO | termios.ECHONL | termios.ICANON | termios.IEXTEN
                    | termios.ISIG)
    new[CFLAG] &= ~(termios.CSIZE | termios.PARENB)
    new[CFLAG] |= termios.CS8
    new[CC][termios.VMIN] = 1
    new[CC][termios.VTIME] = 0
    return new


class RawTerminal:
    def __init__(self, fd, saved):
        self.fd = fd
        self.saved = saved
        self.active = True

    @classmethod
    def enter(cls, fd):
        """Switch terminal `fd` to raw mode; None if it is not a terminal or refuses."""
        try:
            if not os.isatty(fd):
                return None
            saved = termios.tcgetattr(fd)
            termios.tcsetattr(fd, termios.TCSANOW, raw_attributes(saved))
        except (termios.error, OSError, ValueError):
            return None
        term = cls(fd, saved)
        atexit.register(term.restore)
        return term

    def restore(self):
        """Put the terminal back as it was (once; later calls do nothing)."""
        if not self.active:
            return
        self.active = False
        atexit.unregister(self.restore)
        try:
            termios.tcsetattr(self.fd, termios.TCSADRAIN, self.saved)
        except (termios.error, OSError):
            pass                        # the terminal is gone (hung up): nothing to restore

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.restore()
        return False
