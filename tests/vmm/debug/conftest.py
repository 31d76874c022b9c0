"""Fixtures for the debugger tests: the gdbtest boot sector on a floppy image, its label
addresses, and `v3 run` in a child process."""
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
GUESTS = ROOT / "tests" / "guests"


def symbols():
    out = {}
    for line in (GUESTS / "gdbtest.map").read_text().splitlines():
        m = re.match(r"\s+([0-9A-F]+)\s+([0-9A-F]+)\s+(\S+)$", line)
        if m:
            out[m.group(3)] = int(m.group(2), 16)
    return out


SYM = symbols()


@pytest.fixture
def sym():
    return SYM


@pytest.fixture
def floppy(tmp_path):
    code = (GUESTS / "gdbtest.bin").read_bytes()
    img = tmp_path / "gdbtest.img"
    img.write_bytes(code + bytes(1474560 - len(code)))
    return img


class V3Run:
    """`v3 run` in a child process (the way a user runs it), with its stderr in a file."""

    def __init__(self, tmp_path, *args):
        self.serial = tmp_path / "serial.out"
        self.errfile = tmp_path / "v3.err"
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "v3tools", "run", "--serial", f"file:{self.serial}",
             "--timeout", "120", *map(str, args)],
            cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=open(self.errfile, "w"), env=env)

    def wait_for_socket(self, path):
        for _ in range(600):
            if os.path.exists(path):
                return
            if self.proc.poll() is not None:
                raise AssertionError(f"v3 run ended: {self.stderr}")
            time.sleep(0.05)
        raise AssertionError("no socket")

    def wait_for_port(self, port):
        for _ in range(600):
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    raise AssertionError(f"v3 run ended: {self.stderr}")
                time.sleep(0.05)
        raise AssertionError("no port")

    def finish(self):
        try:
            self.proc.wait(60)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    @property
    def stderr(self):
        return self.errfile.read_text()



@pytest.fixture
def v3proc():
    return V3Run
