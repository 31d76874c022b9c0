"""A live status line on stderr while `v3 run` runs with its console elsewhere.

When the guest's serial console goes to a file (or nowhere) and stderr is a terminal, the
person who started the run sees nothing move; one line at the bottom of the terminal then
shows how the run is going:

    v3 run | wall 12.4 s | guest 10.9 s | 48,210 exits/s | [    1.234] Freeing unused ...

wall (host) time since the start, guest (virtual) time, VM exits per second over the last
refresh, and the last non-empty line the guest wrote on its serial port (control characters
and escape sequences removed, clipped to the terminal's width). `--no-status` turns it off.

The run loop (vmm/machine.py) only compares the host clock with `due_ns` and calls `refresh()`
about four times a second; everything else happens here. The VMM's log lines go through
`log_stream()`, printed above the line, so the two never mix. `close()` erases the line: the
launcher calls it on every way out, before a diagnostic or anything else is printed.
"""
import os
import re
import time

REFRESH_NS = 250_000_000                 # about 4 Hz
TAIL = 4096                              # how much recent serial output is searched for a line

# CSI and OSC sequences, other escapes, then any remaining control character
_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b.?")
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def wanted(serial, stderr, enabled=True):
    """Whether to show the line: asked for, the serial console is not on the terminal
    (`serial` is the --serial value: file:PATH or null), and `stderr` is a terminal."""
    if not enabled or serial == "stdio":
        return False
    try:
        return os.isatty(stderr.fileno())
    except (AttributeError, ValueError, OSError):
        return False


def last_line(output):
    """The last non-empty line of serial output (bytes), made printable."""
    text = bytes(output[-TAIL:]).decode("utf-8", errors="replace")
    text = _ESCAPES.sub("", text)
    for line in reversed(re.split(r"[\r\n]", text)):
        line = _CONTROLS.sub("", line).replace("\t", " ").strip()
        if line:
            return line
    return ""


def seconds(s):
    """12.4 s under a minute, then M:SS or H:MM:SS."""
    if s < 60:
        return f"{s:.1f} s"
    s = int(s)
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def render(wall_s, guest_s, exits_per_s, line, width):
    """The status line as rich Text, at most `width` cells."""
    from rich.text import Text
    text = Text(no_wrap=True, overflow="ellipsis", end="")
    sep = (" | ", "dim")
    text.append("v3 run", "bold")
    text.append(*sep)
    text.append(f"wall {seconds(wall_s)}")
    text.append(*sep)
    text.append(f"guest {seconds(guest_s)}")
    text.append(*sep)
    text.append(f"{exits_per_s:,.0f} exits/s")
    if line:
        text.append(*sep)
        text.append(line, "cyan")
    text.truncate(max(1, width), overflow="ellipsis")
    return text


class _LogStream:
    """A text stream whose complete lines are printed above the status line."""

    def __init__(self, console, file):
        self._console = console
        self._file = file
        self._partial = ""

    def write(self, text):
        lines = (self._partial + text).split("\n")
        self._partial = lines.pop()
        for line in lines:
            self._console.print(line, markup=False, highlight=False, emoji=False,
                                soft_wrap=True)
        return len(text)

    def flush(self):
        pass

    def fileno(self):
        return self._file.fileno()

    def isatty(self):
        return self._file.isatty()

    def close(self):
        pass


class StatusLine:
    """The line for `machine`, drawn on `stream` (a terminal) with rich."""

    def __init__(self, machine, stream, console=None):
        from rich.console import Console
        from rich.live import Live
        self.machine = machine
        self.stream = stream
        self.console = console or Console(file=stream, highlight=False)
        self.live = Live(console=self.console, auto_refresh=False, transient=True,
                         redirect_stdout=False, redirect_stderr=False)
        self.due_ns = 0
        self.shown = False
        self._t0 = time.monotonic_ns()
        self._last = (self._t0, 0)               # (host ns, exits) at the previous refresh

    def start(self):
        self.live.start()
        self.shown = True
        self.refresh()
        return self

    def log_stream(self):
        """A stream for the VMM's log while the line is shown."""
        return _LogStream(self.console, self.stream)

    def text(self, now_ns=None):
        now = time.monotonic_ns() if now_ns is None else now_ns
        exits = self.machine.stats.exit_count()
        then, before = self._last
        rate = (exits - before) * 1e9 / (now - then) if now > then else 0.0
        self._last = (now, exits)
        return render((now - self._t0) / 1e9, self.machine.ctx.clock.now_ns() / 1e9, rate,
                      last_line(self.machine.ctx.console.captured), self.console.width)

    def refresh(self):
        """Redraw (the run loop calls this when `due_ns` has passed)."""
        now = time.monotonic_ns()
        self.due_ns = now + REFRESH_NS
        if self.shown:
            try:
                self.live.update(self.text(now), refresh=True)
            except (OSError, ValueError):       # the terminal went away: stop drawing
                self.shown = False

    def close(self):
        """Erase the line (idempotent; safe on every way out)."""
        if self.machine.status is self:
            self.machine.status = None
        if self.shown:
            self.shown = False
            try:
                self.live.stop()
            except (OSError, ValueError):
                pass
