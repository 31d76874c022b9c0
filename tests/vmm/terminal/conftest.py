"""Fixtures of the console tests: a real terminal (a tmux session) running `v3 run`."""
import itertools
import os
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


# -- a terminal: tmux ------------------------------------------------------------------------
_SERVERS = itertools.count()


class Tmux:
    """One tmux session on a private server, running `command` in a shell that records the
    terminal settings before and after, and the exit status."""

    def __init__(self, tmp_path, command, name="v3"):
        self.dir = tmp_path
        # a server of its own per session: a previous test's server that is still shutting
        # down must not turn this new-session into a "duplicate session" error
        self.socket = f"v3test-{os.getpid()}-{name}-{next(_SERVERS)}"
        self.name = name
        script = (f"stty -a > {tmp_path}/stty.before; cd {ROOT}; {command}; "
                  f"echo $? > {tmp_path}/rc.tmp; stty -a > {tmp_path}/stty.after; "
                  f"mv {tmp_path}/rc.tmp {tmp_path}/rc; sleep 3600")
        self.run("new-session", "-d", "-s", name, "-x", "120", "-y", "50", "sh", "-c", script)

    def run(self, *args):
        return subprocess.run(["tmux", "-L", self.socket, *args], check=True,
                              capture_output=True, text=True).stdout

    def keys(self, *keys):
        self.run("send-keys", "-t", self.name, *keys)

    def pane(self):
        return self.run("capture-pane", "-p", "-J", "-S", "-400", "-t", self.name)

    def tty(self):
        return self.run("display", "-p", "-t", self.name, "#{pane_tty}").strip()

    def vmm_pid(self):
        shell = self.run("display", "-p", "-t", self.name, "#{pane_pid}").strip()
        out = subprocess.run(["ps", "-o", "pid=", "--ppid", shell], capture_output=True,
                             text=True).stdout.split()
        return int(out[0]) if out else None

    def wait(self, predicate, what, timeout):
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                pytest.fail(f"tmux: no {what} within {timeout} s\n--- screen ---\n"
                            f"{self.pane()[-3000:]}", pytrace=False)
            time.sleep(0.2)

    def wait_text(self, text, timeout=60):
        self.wait(lambda: text in self.pane(), repr(text), timeout)

    def wait_raw(self, timeout=60):
        """Until the VMM has switched the terminal to raw mode."""
        def raw():
            s = subprocess.run(["stty", "-a", "-F", self.tty()], capture_output=True,
                               text=True).stdout
            return "-icanon" in s.split()
        self.wait(raw, "raw terminal", timeout)

    def status(self, timeout=60):
        rc = self.dir / "rc"
        self.wait(rc.exists, "exit status", timeout)
        return int(rc.read_text())

    def stty_unchanged(self):
        return (self.dir / "stty.before").read_text() == (self.dir / "stty.after").read_text()

    def close(self):
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True)


@pytest.fixture
def tmux(tmp_path, require_tool):
    require_tool("tmux", "tmux")
    sessions = []

    def start(command, name="v3"):
        d = tmp_path / name
        d.mkdir()
        sessions.append(Tmux(d, command, name))
        return sessions[-1]
    yield start
    for s in sessions:
        s.close()
