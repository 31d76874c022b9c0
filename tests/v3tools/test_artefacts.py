"""v3tools/artefacts.py with apt replaced by a fake: the download shows progress on a terminal
and nothing otherwise (the real fetches are exercised by the fixtures of tests/conftest.py)."""
import io
import os
import subprocess
import sys
import time

import pytest

from v3tools import artefacts, progress


@pytest.fixture
def fake_apt(tmp_path, monkeypatch):
    """apt-cache show says 3000 bytes; apt-get download writes a .deb in steps; dpkg-deb -x
    unpacks to a directory with one file. Returns the list of commands run."""
    monkeypatch.setenv("V3_ARTEFACTS", str(tmp_path / "cache"))
    monkeypatch.setattr(artefacts, "host_arch", lambda: "amd64")
    commands = []

    def run(cmd, what, **kwargs):
        commands.append(cmd)
        out = ""
        if cmd[:2] == ["apt-cache", "show"]:
            out = f"Package: {cmd[-1]}\nVersion: 1\nSize: 3000\n"
        elif cmd[:2] == ["apt-get", "download"]:
            with open(os.path.join(kwargs["cwd"], "pkg_1_amd64.deb"), "wb") as f:
                for _ in range(3):
                    f.write(b"d" * 1000)
                    f.flush()
                    time.sleep(0.05)
        elif cmd[:2] == ["dpkg-deb", "-x"]:
            os.makedirs(os.path.join(cmd[3], "bin"))
            with open(os.path.join(cmd[3], "bin", "tool"), "w") as f:
                f.write("tool")
        return subprocess.CompletedProcess(cmd, 0, out, "")
    monkeypatch.setattr(artefacts, "_run", run)
    return commands


def test_no_progress_when_stderr_is_not_a_terminal(fake_apt, monkeypatch):
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    path = artefacts.debian_package_file("pkg", "/bin/tool")
    assert path.read_text() == "tool"
    assert err.getvalue() == ""
    assert not any(c[:2] == ["apt-cache", "show"] for c in fake_apt)   # not even asked


def test_progress_on_a_terminal(fake_apt, monkeypatch, pty_stream):
    stream, read = pty_stream
    monkeypatch.setattr(sys, "stderr", stream)
    monkeypatch.setattr(progress, "INTERVAL_S", 0.01)
    path = artefacts.debian_package_file("pkg", "/bin/tool")
    drawn = read()
    assert path.read_text() == "tool"
    assert "downloading pkg" in drawn and "/3.0 kB" in drawn
    assert drawn.rstrip("\r\n").endswith("\x1b[2K")            # erased at the end


def test_package_size(monkeypatch):
    def run(cmd, what, **kwargs):
        return subprocess.CompletedProcess(cmd, 0, "Package: x\nSize: 1234\n", "")
    monkeypatch.setattr(artefacts, "_run", run)
    assert artefacts.package_size("x") == 1234
    monkeypatch.setattr(artefacts, "_run",
                        lambda cmd, what, **kw: subprocess.CompletedProcess(cmd, 100, "", "E:"))
    assert artefacts.package_size("x") is None

