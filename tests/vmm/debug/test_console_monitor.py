"""The monitor on the terminal console (Ctrl-A c), through tmux: a real terminal in raw mode."""
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


class Tmux:
    def __init__(self, tmp_path, command):
        self.socket = f"v3mon-{id(self)}"
        self.rc = tmp_path / "rc"
        script = f"cd {tmp_path}; PYTHONPATH={ROOT} {command}; echo $? > {tmp_path}/rc.tmp; mv {tmp_path}/rc.tmp {self.rc}; sleep 600"
        self.run("new-session", "-d", "-s", "m", "-x", "160", "-y", "60", "sh", "-c", script)

    def run(self, *args):
        return subprocess.run(["tmux", "-L", self.socket, *args], check=True,
                              capture_output=True, text=True).stdout

    def keys(self, *keys):
        self.run("send-keys", "-t", "m", *keys)

    def pane(self):
        return self.run("capture-pane", "-p", "-J", "-S", "-400", "-t", "m")

    def wait_text(self, text, timeout=60, after=0):
        deadline = time.monotonic() + timeout
        while text not in self.pane()[after:]:
            if time.monotonic() > deadline:
                pytest.fail(f"no {text!r} within {timeout} s\n{self.pane()[-3000:]}",
                            pytrace=False)
            time.sleep(0.2)

    def status(self, timeout=60):
        deadline = time.monotonic() + timeout
        while not self.rc.exists():
            if time.monotonic() > deadline:
                pytest.fail(f"no exit within {timeout} s\n{self.pane()[-3000:]}", pytrace=False)
            time.sleep(0.2)
        return int(self.rc.read_text())

    def close(self):
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True)


def test_ctrl_a_c_monitor(tmp_path, require_tool, floppy, sym):
    require_tool("tmux", "tmux")
    t = Tmux(tmp_path, f"{sys.executable} -m v3tools run --fda {floppy} -S --monitor "
                       f"unix:{tmp_path}/mon.sock,server")
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "mon.sock").exists():     # the VMM is up and the terminal raw
            assert time.monotonic() < deadline
            time.sleep(0.1)
        time.sleep(0.5)
        t.keys("C-a", "h")
        t.wait_text("switch between the guest console and the monitor")
        t.keys("C-a", "c")
        t.wait_text("(v3) ")
        t.keys("info mode", "Enter")
        t.wait_text("real, CPL 0, machine stopped")
        t.keys("info registers", "Enter")
        t.wait_text("EIP=0000fff0  linear PC=000ffff0")
        t.keys("x /4xb 0xffff0", "Enter")
        t.wait_text("00000000000ffff0: 0xea 0x5b 0xe0 0x00")
        t.keys("infx", "BSpace", "o mode", "Enter")           # Backspace edits the line
        t.wait_text("(v3) info mode")
        t.keys("C-a", "s")                                     # a snapshot, named by time
        t.wait_text("saved the machine to v3-")
        assert len(list(tmp_path.glob("v3-*.v3snap"))) == 1
        t.keys("cont", "Enter")
        t.wait_text("GDBTEST DONE")                              # the guest's own output
        t.keys("quit", "Enter")
        assert t.status() in (0, 5)       # quit, or the guest's cli; hlt came first
        assert "info registers" in t.pane()
    finally:
        t.close()
