"""The console with real guests: a pipe that stays open and silent, a terminal in tmux (raw
mode, the guest's own echo and Tab completion, Ctrl-A x, signals, a fail-stop), and standard
inputs that give no input at all.

Each run is the `v3` command in a child process (`python3 -m v3tools` from this tree), since
a terminal and signals belong to a process. The guests: Debian's i386 kernel with busybox on
an isolinux CD (`v3 mkguest`), and one-sector floppies for the paths that need no Linux.
"""
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest


ROOT = Path(__file__).resolve().parents[3]
V3 = [sys.executable, "-m", "v3tools"]
PROMPT_READY = "Enter 'help' for a list of built-in commands."
FLOPPY = 1474560


def floppy(path, code):
    """A floppy image whose boot sector is `code`."""
    path.write_bytes((code.ljust(510, b"\0") + b"\x55\xaa").ljust(FLOPPY, b"\0"))
    return path


IDLE = b"\xfb\xf4\xeb\xfd"                        # sti; hlt; jmp hlt: waits for ever
UNCLAIMED_PORT = b"\xba\x34\x12\xec\xf4"          # mov dx, 0x1234; in al, dx: a fail-stop


class Collector:
    """Everything a child writes on one pipe, read by a thread."""

    def __init__(self, proc, stream):
        self.proc = proc
        self.data = bytearray()
        self.thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self.thread.start()

    def _read(self, stream):
        while True:
            chunk = stream.read1(4096)
            if not chunk:
                return
            self.data += chunk

    def text(self):
        return self.data.decode("latin-1")

    def wait_for(self, marker, timeout, stderr=None):
        deadline = time.monotonic() + timeout
        while marker not in self.text():
            if self.proc.poll() is not None:
                time.sleep(0.5)             # the reader's last chunk
                if marker in self.text():
                    return
                pytest.fail(f"v3 ended ({self.proc.returncode}) before {marker!r}\n"
                            f"--- stderr ---\n{stderr.text()[-1500:] if stderr else ''}\n"
                            f"--- output tail ---\n{self.text()[-1500:]}", pytrace=False)
            if time.monotonic() > deadline:
                pytest.fail(f"no {marker!r} within {timeout} s\n--- output tail ---\n"
                            f"{self.text()[-1500:]}", pytrace=False)
            time.sleep(0.2)


def test_an_open_silent_pipe_for_a_minute_then_a_command(linux_iso):
    """`(sleep 60; echo cmd; ...) | v3 run`: the guest waits for the pipe in real time (never
    status 5, never fast-forwarded), runs the command, and `reboot -f` ends the run."""
    proc = subprocess.Popen(V3 + ["run", "--cdrom", str(linux_iso)], cwd=ROOT,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = Collector(proc, proc.stdout), Collector(proc, proc.stderr)
    try:
        out.wait_for(PROMPT_READY, 400, err)
        time.sleep(60)
        assert proc.poll() is None, err.text()
        proc.stdin.write(b"echo typed-$((6*7))\n")
        proc.stdin.flush()
        out.wait_for("typed-42", 120, err)
        proc.stdin.write(b"reboot -f\n")
        proc.stdin.flush()
        assert proc.wait(120) == 0, err.text()
        assert "v3 run: guest reset" in err.text()
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


@pytest.mark.parametrize("stdin", ["devnull", "file", "closed"])
def test_stdin_that_gives_no_input(tmp_path, stdin):
    """/dev/null, a file and a closed standard input: the guest just sees no input (this one
    reads the keyboard through the BIOS and prints what it got, then resets)."""
    # int 16h AH=01 (key waiting?) -> ZF; print 'N' (none) or 'Y' on COM1, then reset
    code = (b"\xb4\x01\xcd\x16"                   # mov ah,1; int 16h
            b"\xb0N\x74\x02\xb0Y"                 # mov al,'N'; jz +2; mov al,'Y'
            b"\xba\xf8\x03\xee"                   # mov dx,0x3f8; out dx,al
            b"\xb0\xfe\xe6\x64\xf4")              # mov al,0xfe; out 0x64,al; hlt
    image = floppy(tmp_path / "f.img", code)
    kwargs = {}
    if stdin == "devnull":
        kwargs["stdin"] = subprocess.DEVNULL
    elif stdin == "file":
        (tmp_path / "in.txt").write_bytes(b"")
        kwargs["stdin"] = open(tmp_path / "in.txt", "rb")
    else:
        kwargs["preexec_fn"] = lambda: os.close(0)
    proc = subprocess.run(V3 + ["run", "--fda", str(image), "--timeout", "60"], cwd=ROOT,
                          capture_output=True, **kwargs)
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout == b"N"
    assert b"Traceback" not in proc.stderr


def test_an_interactive_linux_shell_in_tmux(tmux, linux_iso):
    t = tmux(f"{sys.executable} -m v3tools run --cdrom {linux_iso}")
    t.wait_text(PROMPT_READY, 400)
    t.wait(lambda: t.pane().rstrip().endswith("/ #"), "prompt", 60)
    t.keys("ech")
    t.wait(lambda: t.pane().rstrip().endswith("/ # ech"), "the guest's echo of 'ech'", 30)
    t.keys("Tab")                                   # completed at once, before any Enter
    t.wait(lambda: t.pane().rstrip().endswith("/ # echo"), "Tab completion", 30)
    t.keys("typed-$((6*7))", "Enter")
    t.wait_text("typed-42")
    # The foreground job says it runs (the shell has made it the terminal's foreground group
    # by then): a Ctrl-C that came earlier, while the shell was still forking, would reach the
    # shell instead, and the sleep would then run its 1000 s.
    t.keys("sh -c 'echo started-$((2+3)); exec sleep 1000'", "Enter")
    t.wait_text("started-5", 30)
    t.keys("C-c")                                   # the guest's: interrupts its sleep
    t.keys("echo after-$((1+1))", "Enter")
    t.wait_text("after-2")
    screen = t.pane()
    assert screen.count("echo typed-$((6*7))") == 1          # each character once
    assert not re.search(r"\d+;\d+R|\^\[", screen)           # no cursor report on screen
    t.keys("C-a", "x")
    assert t.status() == 0
    assert t.stty_unchanged()
    assert "quit from the console (Ctrl-A x)" in t.pane()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_a_signal_ends_the_run_and_restores_the_terminal(tmux, tmp_path, sig):
    image = floppy(tmp_path / "idle.img", IDLE)
    t = tmux(f"{sys.executable} -m v3tools run --fda {image}")
    t.wait_raw()
    os.kill(t.vmm_pid(), sig)
    assert t.status() == 128 + sig
    assert t.stty_unchanged()
    assert f"stopped by {signal.Signals(sig).name}" in t.pane()


# A signal the moment the terminal has turned raw: before the run loop exists. The child
# sends it to itself from inside RawTerminal.enter, so the window cannot be missed.
SIGNAL_WHEN_RAW = """
import os, signal, sys
from vmm.terminal import raw
enter = raw.RawTerminal.enter
def enter_then_signal(fd):
    term = enter(fd)
    os.kill(os.getpid(), signal.{name})
    return term
raw.RawTerminal.enter = staticmethod(enter_then_signal)
from v3tools.cli import main
sys.argv = ["v3", "run", "--fda", sys.argv[1]]
main()
"""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_a_signal_as_the_terminal_turns_raw_still_restores_it(tmp_path, sig):
    import termios
    image = floppy(tmp_path / "idle.img", IDLE)
    master, slave = os.openpty()
    try:
        before = termios.tcgetattr(slave)
        proc = subprocess.run([sys.executable, "-c", SIGNAL_WHEN_RAW.format(name=sig.name),
                               str(image)], cwd=ROOT, stdin=slave, stdout=slave,
                              stderr=subprocess.PIPE, timeout=120)
        assert proc.returncode == 128 + sig, proc.stderr.decode()
        assert f"stopped by {sig.name}" in proc.stderr.decode()
        assert termios.tcgetattr(slave) == before
    finally:
        os.close(slave)
        os.close(master)


def test_a_fail_stop_restores_the_terminal_before_the_diagnostic(tmux, tmp_path):
    image = floppy(tmp_path / "bad.img", UNCLAIMED_PORT)
    t = tmux(f"{sys.executable} -m v3tools run --fda {image}")
    assert t.status() == 3
    assert t.stty_unchanged()
    lines = t.pane().splitlines()
    # with the terminal restored, every line of the diagnostic starts in column 0
    assert any(line.startswith("v3: error: unclaimed read of 1 byte(s) port 0x1234")
               for line in lines)
    assert any(line.startswith("at CS:EIP") for line in lines)


def test_ctrl_a_help_and_a_literal_ctrl_a(tmux, tmp_path):
    image = floppy(tmp_path / "idle.img", IDLE)
    t = tmux(f"{sys.executable} -m v3tools run --fda {image}")
    t.wait_raw()
    t.keys("C-a", "h")
    t.wait_text("exit the VMM (status 0)")
    t.keys("C-a", "x")
    assert t.status() == 0
    assert t.stty_unchanged()
