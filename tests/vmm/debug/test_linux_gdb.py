"""Real gdb on Debian's own kernels with their vmlinux debug symbols (the -dbg packages):
break at start_kernel, a backtrace, a kernel variable, then on to the initramfs marker."""
import re
import subprocess

import pytest

from v3tools import artefacts

pytestmark = [pytest.mark.artefacts, pytest.mark.slow]

MARKER = "v3 guest: busybox initramfs up"


@pytest.mark.parametrize("arch, gdb_arch, caller", [
    ("i386", "auto", "i386_start_kernel"),
    ("amd64", "x86-64", "secondary_startup_64"),     # start_kernel is reached by tail calls
])
def test_start_kernel_bt_init_task(arch, gdb_arch, caller, v3, tmp_path, require_artefact,
                                   require_tool, v3proc):
    kernel = require_artefact(artefacts.debian_kernel, arch)
    busybox = require_artefact(artefacts.busybox_static, arch)
    vmlinux = require_artefact(artefacts.debian_kernel_symbols, arch)
    gdb = require_tool("gdb", "gdb")
    iso = tmp_path / "guest.iso"
    r = v3("mkguest", "-o", iso, "--kernel", kernel, "--busybox", busybox,
           "--append", "console=ttyS0 nokaslr")
    assert r.exit_code == 0, r
    sock = tmp_path / "gdb.sock"
    run = v3proc(tmp_path, "--cdrom", iso, "-S", "--gdb", f"unix:{sock},arch={gdb_arch}",
                 "--until", MARKER, "--timeout", "400")
    run.wait_for_socket(sock)
    cmds = ["set confirm off", f"target remote {sock}", "break start_kernel", "continue",
            "bt", "p init_task.comm", "p $pc == start_kernel", "info registers cs",
            "monitor info mode", "delete", "continue"]
    out = subprocess.run([gdb, "-batch", "-nx", str(vmlinux)]
                         + [a for c in cmds for a in ("-ex", c)],
                         capture_output=True, text=True, timeout=500,
                         stdin=subprocess.DEVNULL)
    text = out.stdout + out.stderr
    code = run.finish()
    assert re.search(r"Breakpoint 1, .*start_kernel \(\)", text), text
    assert re.search(rf"#1 .* in {caller} ", text), text
    assert '$1 = "swapper' in text, text
    assert "$2 = 1" in text
    assert re.search(r"^cs\s+0x(10|60)\s", text, re.M), text
    assert ("long, CPL 0" if arch == "amd64" else "protected 32-bit, paging, CPL 0") in text
    assert code == 0, run.stderr
    assert MARKER in run.serial.read_text(errors="replace")
