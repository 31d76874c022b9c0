"""Shared test fixtures: the `v3` CLI runner, real-artefact lookup and QEMU boots.

Real artefacts (Debian kernels, busybox, isolinux, QEMU ...) come through `require_artefact`:
when one cannot be had the test is skipped with the reason, except under CI (CI=true, set by
.ci/run), where it fails, so CI never passes by skipping. Lookups are cached for the session.

    def test_boot(require_artefact, qemu_boot, tmp_path):
        kernel = require_artefact(artefacts.debian_kernel, "amd64")
        log = qemu_boot(iso, "v3 guest: busybox initramfs up", timeout=120)
"""
import itertools
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import vmm  # noqa: F401  (selects the v3 engine before any test module imports unicorn)

from v3tools.errors import ToolMissing

IN_CI = os.environ.get("CI", "").strip().lower() == "true"

_ARTEFACTS = {}     # session cache: (function, args) -> ("ok", value) | ("missing", reason)


def pytest_configure(config):
    # Test modules of different packages share basenames (tests/guest_creator/test_mkguest.py and
    # tests/v3tools/test_mkguest.py) and the test folders carry no __init__.py (tests/isoimage
    # must not become a package shadowing the real `isoimage`), so import them by path.
    config.option.importmode = "importlib"


def _unavailable(reason):
    if IN_CI:
        pytest.fail(f"artefact unavailable under CI: {reason}", pytrace=False)
    pytest.skip(f"artefact unavailable: {reason}")


def _require_artefact(function, *args, **kwargs):
    """Call an artefacts.* lookup; skip (fail under CI) with its reason if it raises ToolMissing."""
    key = (function.__module__, function.__qualname__, args, tuple(sorted(kwargs.items())))
    if key not in _ARTEFACTS:
        try:
            _ARTEFACTS[key] = ("ok", function(*args, **kwargs))
        except ToolMissing as exc:
            _ARTEFACTS[key] = ("missing", str(exc))
    status, value = _ARTEFACTS[key]
    if status == "missing":
        _unavailable(value)
    return value


def _require_tool(program, package):
    """Path of `program` on PATH; skip (fail under CI) naming the Debian package otherwise."""
    path = shutil.which(program)
    if path is None:
        _unavailable(f"{program} not found (Debian package {package})")
    return path


@pytest.fixture(scope="session")
def require_artefact():
    return _require_artefact


@pytest.fixture(scope="session")
def require_tool():
    return _require_tool


def _require_built(available, what):
    """A compiled part of the install (the v3 engine's patches, the C helpers) must be there:
    skip when it is not (no cmake or C compiler at install), fail under CI, whose install
    builds everything."""
    if not available:
        if IN_CI:
            pytest.fail(f"{what} is not installed under CI (pip install -e . builds it)",
                        pytrace=False)
        pytest.skip(f"{what} is not installed (pip install -e . with cmake and a C compiler)")


@pytest.fixture(scope="session")
def require_built():
    return _require_built

def _debian_guest_iso(tmp_path_factory, arch):
    """Debian's `arch` kernel and busybox-static on an isolinux ISO (`v3 mkguest`), console on
    ttyS0: the guest most real-guest tests boot."""
    from guest_creator.mkguest import mkguest
    from v3tools import artefacts
    kernel = _require_artefact(artefacts.debian_kernel, arch)
    busybox = _require_artefact(artefacts.busybox_static, arch)
    _require_artefact(artefacts.isolinux_bin)
    out = tmp_path_factory.mktemp(f"linux-{arch}") / "guest.iso"
    mkguest(out, kernel=kernel, busybox=busybox, append="console=ttyS0")
    return out


@pytest.fixture(scope="session")
def linux_iso(tmp_path_factory):
    """Debian i386 guest CD, built once per session."""
    return _debian_guest_iso(tmp_path_factory, "i386")


@pytest.fixture(scope="session")
def linux64_iso(tmp_path_factory):
    """Debian amd64 guest CD, built once per session."""
    return _debian_guest_iso(tmp_path_factory, "amd64")



def _qemu_boot(image, marker, timeout=120, memory=256, drive="cdrom", extra=(), log_path=None):
    """Boot `image` in QEMU until `marker` appears on COM1; return the serial log (str).

    QEMU runs under TCG (env V3_QEMU_ACCEL=kvm to change). The guest is stopped as soon as the
    marker is seen; the test fails (with the log's tail) if
    QEMU exits or `timeout` seconds pass first. -no-reboot makes a guest reset end QEMU.
    """
    qemu = _require_tool("qemu-system-x86_64", "qemu-system-x86")
    log_path = os.fspath(log_path or f"{image}.serial.log")
    if os.path.exists(log_path):
        os.unlink(log_path)
    # TCG unless asked: a /dev/kvm that exists is not always usable (nested setups fail with
    # "KVM internal error" in isolinux), and TCG behaves the same everywhere.
    accel = ["-accel", os.environ.get("V3_QEMU_ACCEL", "tcg")]
    cmd = [qemu, *accel, f"-{drive}", os.fspath(image), "-serial", f"file:{log_path}",
           "-display", "none", "-monitor", "none", "-m", str(memory), "-no-reboot", *extra]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + timeout
    text = ""
    try:
        while True:
            exited = proc.poll() is not None    # checked before reading: no lost last words
            if os.path.exists(log_path):
                with open(log_path, "rb") as f:
                    text = f.read().decode("latin-1")
                if marker in text:
                    return text
            if exited:
                err = proc.stderr.read().decode(errors="replace")
                pytest.fail(f"QEMU exited ({proc.returncode}) before {marker!r}; stderr: {err[-500:]}"
                            f"\n--- serial tail ---\n{text[-2000:]}", pytrace=False)
            if time.monotonic() > deadline:
                pytest.fail(f"no {marker!r} on serial within {timeout}s\n--- serial tail ---\n"
                            f"{text[-2000:]}", pytrace=False)
            time.sleep(0.25)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        proc.stderr.close()


@pytest.fixture(scope="session")
def qemu_boot():
    return _qemu_boot


class CliResult:
    """Exit status and captured output of one `v3` run."""

    def __init__(self, exit_code, stdout, stderr):
        self.exit_code, self.stdout, self.stderr = exit_code, stdout, stderr

    def __repr__(self):
        return f"CliResult(exit_code={self.exit_code}, stdout={self.stdout!r}, stderr={self.stderr!r})"


@pytest.fixture
def v3():
    """Run `v3` in-process through main() (so V3Error -> one line + status as for users).

    v3("isoimage", "-o", "x.iso") -> CliResult(exit_code, stdout, stderr)
    """
    from v3tools.cli import main

    runner = CliRunner()

    def invoke(*args, input=None, env=None):
        with runner.isolation(input=input, env=env) as streams:
            try:
                main([str(a) for a in args])
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            stdout, stderr = streams[0].getvalue(), streams[1].getvalue()
        return CliResult(code, stdout.decode(), stderr.decode())
    return invoke


@pytest.fixture
def pty_stream():
    """A terminal to write on: (stream, read), a text stream on a pseudo-terminal and a
    read() that returns everything written to it so far (for what is drawn only on a tty)."""
    import select
    master, slave = os.openpty()
    stream = os.fdopen(slave, "w")

    def read():
        stream.flush()
        out = b""
        while select.select([master], [], [], 0.2)[0]:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        return out.decode(errors="replace")
    yield stream, read
    stream.close()
    os.close(master)


# -- a terminal: tmux (the console tests) ---------------------------------------------------
ROOT = Path(__file__).resolve().parents[1]
_SERVERS = itertools.count()


class Tmux:
    """One tmux session on a private server, running `command` in a shell that records the
    terminal settings before and after, and the exit status."""

    def __init__(self, tmp_path, command, name="v3", cwd=None):
        self.dir = tmp_path
        # a server of its own per session: a previous test's server that is still shutting
        # down must not turn this new-session into a "duplicate session" error
        self.socket = f"v3test-{os.getpid()}-{name}-{next(_SERVERS)}"
        self.name = name
        script = (f"stty -a > {tmp_path}/stty.before; cd {cwd or ROOT}; "
                  f"PYTHONPATH={ROOT} {command}; "
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
    """start(command, name="v3", cwd=None) -> Tmux: `command` in a terminal of its own,
    run in `cwd` (default: the repository); every session is ended after the test."""
    require_tool("tmux", "tmux")
    sessions = []

    def start(command, name="v3", cwd=None):
        d = tmp_path / name
        d.mkdir()
        sessions.append(Tmux(d, command, name, cwd))
        return sessions[-1]
    yield start
    for s in sessions:
        s.close()
