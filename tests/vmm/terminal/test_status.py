"""The live status line (vmm/terminal/status.py): what it shows, when, and that it goes away."""
import io
import os
import signal
import sys
import types

from rich.console import Console

from vmm.terminal import status
from vmm.telemetry import Telemetry


class FakeClock:
    def __init__(self, ns):
        self.ns = ns

    def now_ns(self):
        return self.ns


def fake_machine(serial=b"", guest_ns=0):
    ctx = types.SimpleNamespace(clock=FakeClock(guest_ns),
                                console=types.SimpleNamespace(captured=bytearray(serial)))
    m = types.SimpleNamespace(stats=Telemetry(), ctx=ctx, status=None)
    return m


def terminal(width=60):
    out = io.StringIO()
    return out, Console(file=out, force_terminal=True, width=width, color_system=None)


# -- rendering ---------------------------------------------------------------------------------
def test_render_shows_the_times_the_rate_and_the_line():
    t = status.render(12.34, 75.0, 48210.4, "login:", 200)
    assert t.plain == "v3 run | wall 12.3 s | guest 1:15 | 48,210 exits/s | login:"


def test_render_clips_to_the_width():
    t = status.render(1, 2, 3, "x" * 500, 40)
    assert t.cell_len <= 40
    assert t.plain.startswith("v3 run | wall 1.0 s")
    assert t.plain.endswith("…")


def test_seconds_format():
    assert status.seconds(0) == "0.0 s"
    assert status.seconds(59.94) == "59.9 s"
    assert status.seconds(61) == "1:01"
    assert status.seconds(3723) == "1:02:03"


def test_last_line_is_the_last_non_empty_one_made_printable():
    assert status.last_line(b"first\r\nsecond\r\n\r\n") == "second"
    assert status.last_line(b"done\r\nlogin: ") == "login:"
    assert status.last_line(b"\x1b[1;31mred\x1b[0m\tbell\x07 \x1b]0;title\x07x\r\n") == \
        "red bell x"
    assert status.last_line(b"caf\xc3\xa9 \xff\r\n") == "café \ufffd"
    assert status.last_line(b"") == ""
    assert status.last_line(b"\r\n\x00\x01\r\n") == ""


# -- shown or not ----------------------------------------------------------------------------
class Tty(io.StringIO):
    def __init__(self, fd):
        super().__init__()
        self.fd = fd

    def fileno(self):
        return self.fd


def test_wanted_only_with_the_console_elsewhere_and_stderr_a_terminal():
    master, slave = os.openpty()
    r, w = os.pipe()
    try:
        tty, pipe = Tty(slave), Tty(w)
        assert status.wanted("file:serial.out", tty)
        assert status.wanted("null", tty)
        assert not status.wanted("stdio", tty)                 # the console is on the terminal
        assert not status.wanted("file:serial.out", tty, enabled=False)      # --no-status
        assert not status.wanted("file:serial.out", pipe)      # stderr not a terminal
        assert not status.wanted("file:serial.out", io.StringIO())   # no descriptor at all
    finally:
        for fd in (master, slave, r, w):
            os.close(fd)


# -- drawing and erasing -----------------------------------------------------------------------
def test_the_line_is_drawn_refreshed_and_erased():
    m = fake_machine(b"Booting the kernel.\r\n", guest_ns=3_000_000_000)
    out, console = terminal(100)
    line = status.StatusLine(m, out, console=console)
    m.status = line
    line.start()
    assert "guest 3.0 s" in out.getvalue() and "Booting the kernel." in out.getvalue()
    m.stats.port_writes[0x3F8] += 1000
    m.ctx.console.captured += b"Run /init as init process\r\n"
    line.refresh()
    assert "Run /init as init process" in out.getvalue()
    assert line.due_ns > 0
    line.close()
    assert m.status is None
    text = out.getvalue()
    assert text.endswith("\x1b[2K")                            # the line erased at the end
    assert "\x1b[?25h" in text[text.rindex("v3 run"):]         # and the cursor shown again
    before = out.getvalue()
    line.close()                                   # idempotent
    line.refresh()                                 # nothing drawn once closed
    assert out.getvalue() == before


def test_every_drawn_line_fits_the_width():
    m = fake_machine(b"y" * 300 + b"\r\n")
    out, console = terminal(30)
    line = status.StatusLine(m, out, console=console).start()
    line.close()
    drawn = [s for s in out.getvalue().replace("\r", "\n").split("\n") if "v3 run" in s]
    assert drawn and all(console.measure(s).maximum <= 30 for s in drawn)


def test_log_lines_are_printed_above_the_line():
    m = fake_machine(b"serial\r\n")
    out, console = terminal(60)
    line = status.StatusLine(m, out, console=console).start()
    log = line.log_stream()
    log.write("[   0.1] run: first ")
    log.write("part\n[   0.2] run: second\n")
    line.close()
    text = out.getvalue()
    assert "[   0.1] run: first part\n" in text and "[   0.2] run: second\n" in text
    assert text.index("first part") < text.rindex("v3 run")   # the line is redrawn below


def test_exit_count_adds_every_kind():
    t = Telemetry()
    t.port_reads[0x60] = 2
    t.port_writes[0x3F8] = 3
    t.mmio[0xFEE00000] = 4
    t.count_event("irq", 0x20)
    t.count_bios("int13")
    t.halts, t.preemptions = 5, 6
    assert t.exit_count() == 2 + 3 + 4 + 1 + 1 + 5 + 6


# -- end to end, in a terminal -------------------------------------------------------------------
FLOPPY = 1474560
MESSAGE = b"hello-from-the-guest"


def serial_then(code):
    """A boot sector writing MESSAGE and a newline to COM1, then running `code`."""
    out = b"\xba\xf8\x03"                                   # mov dx, 0x3f8
    for byte in MESSAGE + b"\r\n":
        out += bytes([0xB0, byte, 0xEE])                    # mov al, byte; out dx, al
    return out + code


def floppy(path, code):
    path.write_bytes((code.ljust(510, b"\0") + b"\x55\xaa").ljust(FLOPPY, b"\0"))
    return path


SPIN = b"\xfb\xeb\xfe"                                       # sti; jmp $
UNCLAIMED_PORT = b"\xba\x34\x12\xec\xf4"                     # in al, 0x1234: a fail-stop


def test_the_line_shows_while_running_and_is_gone_after_a_signal(tmux, tmp_path):
    image = floppy(tmp_path / "spin.img", serial_then(SPIN))
    t = tmux(f"{sys.executable} -m v3tools run --fda {image} "
             f"--serial file:{tmp_path}/serial.out")
    t.wait(lambda: "exits/s" in t.pane() and MESSAGE.decode() in t.pane(), "status line", 60)
    line = next(s for s in t.pane().splitlines() if "exits/s" in s)
    assert line.startswith("v3 run | wall ") and "guest " in line
    assert len(line) <= 120
    os.kill(t.vmm_pid(), signal.SIGTERM)
    assert t.status() == 128 + signal.SIGTERM
    assert t.stty_unchanged()
    screen = t.pane()
    assert "exits/s" not in screen                          # erased
    assert any(s.startswith("v3: error: stopped by SIGTERM") or "stopped by SIGTERM" in s
               for s in screen.splitlines())


def test_the_line_is_erased_before_a_fail_stop_diagnostic(tmux, tmp_path):
    image = floppy(tmp_path / "bad.img", serial_then(b"\xb9\x00\x00\xe2\xfe" * 4
                                                      + UNCLAIMED_PORT))
    t = tmux(f"{sys.executable} -m v3tools run --fda {image} --serial null")
    assert t.status() == 3
    lines = t.pane().splitlines()
    assert not any("exits/s" in s for s in lines)
    assert any(s.startswith("v3: error: unclaimed read of 1 byte(s) port 0x1234") for s in lines)
    assert any(s.startswith("at CS:EIP") for s in lines)


def test_no_status_turns_it_off(tmux, tmp_path):
    image = floppy(tmp_path / "spin.img", serial_then(SPIN))
    t = tmux(f"{sys.executable} -m v3tools run --fda {image} --serial null --no-status "
             f"--timeout 3")
    assert t.status() == 6
    assert "exits/s" not in t.pane()


def test_not_shown_when_stderr_is_not_a_terminal(tmp_path):
    import subprocess
    image = floppy(tmp_path / "spin.img", serial_then(SPIN))
    r = subprocess.run([sys.executable, "-m", "v3tools", "run", "--fda", str(image),
                        "--serial", "null", "--timeout", "1"], capture_output=True, text=True,
                       cwd=status_root())
    assert r.returncode == 6
    assert "exits/s" not in r.stderr and "\x1b" not in r.stderr


def status_root():
    from pathlib import Path
    return Path(__file__).resolve().parents[3]


def test_erased_when_the_run_raises(tmp_path, monkeypatch, pty_stream):
    """An internal error inside the run loop: the launcher's finally erases the line."""
    import pytest
    from vmm.launch import RunOptions, run
    from vmm.machine import Machine
    image = floppy(tmp_path / "spin.img", serial_then(SPIN))
    stream, read = pty_stream
    monkeypatch.setattr(sys, "stderr", stream)
    seen = []

    def broken_run(self, timeout=None, until=None):
        seen.append(self.status)
        self.status.refresh()
        raise RuntimeError("a bug")
    monkeypatch.setattr(Machine, "run", broken_run)
    with pytest.raises(RuntimeError, match="a bug"):
        run(RunOptions(fda=str(image), serial="null", status=True), on_machine=seen.append)
    drawn = read()
    machine, line = seen
    assert line is not None and machine.status is None and not line.shown
    assert "exits/s" in drawn and drawn.endswith("\x1b[2K")

