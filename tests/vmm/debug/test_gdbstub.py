"""The gdb stub against the real gdb (Debian package gdb), in batch mode, on the gdbtest boot
sector: real mode -> protected mode -> long mode, several checks per boot."""
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def gdb(require_tool, target, *commands, timeout=120):
    exe = require_tool("gdb", "gdb")
    args = [exe, "-batch", "-nx", "-ex", "set confirm off", "-ex", f"target remote {target}"]
    for c in commands:
        args += ["-ex", c]
    r = subprocess.run(args, capture_output=True, text=True, timeout=timeout,
                       stdin=subprocess.DEVNULL)
    return r.stdout + r.stderr


def value(out, name):
    """The value of gdb's `$N = value` line for print number `name`."""
    m = re.search(rf"^\${name} = (.*)$", out, re.M)
    assert m, out
    return m.group(1).strip()


def test_real_protected_long_mode(require_tool, floppy, tmp_path, sym, v3proc):
    SYM, V3Run = sym, v3proc
    sock = tmp_path / "gdb.sock"
    run = V3Run(tmp_path, floppy, "-S", "--gdb", f"unix:{sock}")
    run.wait_for_socket(sock)
    var = SYM["var"]
    out = gdb(require_tool, sock,
              # -S: held at the reset vector; real-mode $pc is CS*16+IP (linear)
              "p/x $pc", "p/x $cs",
              "break *0x7c00", "c", "p/x $pc",
              # a software breakpoint never shows in memory
              "x/2xb 0x7c00",
              "stepi", "p/x $pc",
              # a timer interrupt pending while the NOP in STI's shadow is next (the CPU
              # cannot take it there): stepi still runs that one instruction
              f"break *{SYM['after_sti'] - 1:#x}", "c", "p/x $pc", "monitor info pic",
              "stepi", "p/x $pc",
              # protected mode: a hardware breakpoint, 32-bit registers
              f"hbreak *{SYM['pm_written']:#x}", "c", "p/x $pc", "p/x $cs", "p/x $eax",
              f"x/2xw {var:#x}",
              # step through the far jumps into protected mode, then into long mode
              "delete",
              f"break *{SYM['to_lm']:#x}", "c", "p/x $pc", "stepi", "p/x $pc", "p/x $cs",
              "monitor info mode",
              # a write watchpoint, met in long mode: stops after the writing instruction
              f"watch *(long long *){var:#x}", "c", "p/x $pc",
              f"p/x *(long long *){var:#x}",
              "delete",
              # unmapped memory is an error, not garbage (this session is i386: low halves)
              "x/xw 0xfff00000",
              "disconnect",
              # reconnect in long mode: the x86-64 register set
              f"target remote {sock}",
              "p/x $rip", "p/x $r8", "p/x $cs",
              f"x/gx {0xffff800000000000 + var:#x}",
              f"x/gx {0xffff900000000000 + var:#x}",
              "info registers eflags",
              "monitor info mode",
              "c")
    code = run.finish()
    assert value(out, 1) == "0xffff0"
    assert value(out, 2) == "0xf000"
    assert value(out, 3) == "0x7c00"
    assert "0x7c00:\t0xfa\t0x31" in out                      # cli; xor ax, ax: no 0xcc
    assert value(out, 4) == "0x7c01"
    assert value(out, 5) == hex(SYM["after_sti"] - 1)
    assert re.search(r"^master\s+01\s", out, re.M), out      # IRQ 0 pending in the PIC
    assert value(out, 6) == hex(SYM["after_sti"])           # the nop, not the BIOS's handler
    assert value(out, 7) == hex(SYM["pm_written"])
    assert value(out, 8) == "0x8"
    assert value(out, 9) == "0x10"
    assert f"{var:#x}:\t0x32323232\t0x00000000" in out
    assert value(out, 10) == hex(SYM["to_lm"])
    assert value(out, 11) == hex(SYM["lm64"])
    assert value(out, 12) == "0x18"
    assert "long, CPL 0, machine stopped" in out.split("$12 =")[1]
    assert "Hardware watchpoint" in out and "New value = 7234017283807667300" in out, out
    assert value(out, 13) == hex(SYM["lm_written"])
    assert value(out, 14) == "0x6464646464646464"
    assert "Cannot access memory at address 0xfff00000" in out
    assert value(out, 15) == hex(SYM["lm_written"])          # the new session numbers on
    assert value(out, 16) == "0x123456789abcdef"
    assert value(out, 17) == "0x18"
    assert "0x6464646464646464" in out.split(f"{0xffff800000000000 + var:#x}")[-1]
    assert f"Cannot access memory at address {0xffff900000000000 + var:#x}" in out
    assert "long, CPL 0, machine stopped" in out
    # the guest's final cli; hlt (status 5) is held for gdb first; gdb's exit ends the run
    assert "Program received signal SIGABRT" in out and "held for inspection" in out
    assert "GDBTEST DONE" in run.serial.read_text()
    assert code == 5, run.stderr             # cli; hlt at the end


def test_tcp_ctrl_c_monitor_kill_and_bad_packets(require_tool, floppy, tmp_path, sym, v3proc):
    SYM, V3Run = sym, v3proc
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    run = V3Run(tmp_path, floppy, "-S", "--gdb", f"tcp:127.0.0.1:{port}")
    run.wait_for_port(port)
    # a raw client first: malformed and out-of-range packets get error replies, the stub
    # stays up
    with socket.create_connection(("127.0.0.1", port)) as c:
        def ask(payload):
            c.sendall(b"$" + payload + b"#%02x" % (sum(payload) & 0xFF))
            data = b""
            while not data.endswith(b"#") and b"#" not in data[1:]:
                data += c.recv(4096)
            while len(data.split(b"#")[-1]) < 2:
                data += c.recv(4096)
            return data.lstrip(b"+").split(b"#")[0][1:]
        assert ask(b"mzz,4") == b"E22"
        assert ask(b"m7c00") == b"E22"
        assert ask(b"p999") == b"E45"
        assert ask(b"Z9,0,1") == b""
        assert ask(b"mffff0,2") == b"ea5b"          # the reset vector: jmp far
        c.sendall(b"$m7c00,2#00")                 # a bad checksum: NAK
        assert c.recv(1) == b"-"
    # Ctrl-C: gdb forwards SIGINT to the target while it runs (the guest spins with IF=0)
    exe = require_tool("gdb", "gdb")
    out_path = tmp_path / "gdb.out"
    cmds = ["set confirm off", f"target remote 127.0.0.1:{port}",
            f"break *{SYM['real_written.spin']:#x}", "c", "delete", "set $ecx = 0xffffffff",
            "echo CONTINUING\\n", "c", "p/x $pc", "p/x $ecx",
            f"set {{short}}{SYM['var']:#x} = 0x1234", f"p/x *(short *){SYM['var']:#x}",
            f"monitor xp /1xh {SYM['var']:#x}", "set {int}0xfff00000 = 1",
            # out of the spin, and one stepi across the far jump into protected mode
            "set $ecx = 1", f"break *{SYM['to_pm']:#x}", "c", "stepi", "p/x $pc", "p/x $cs",
            "monitor info mode",
            "monitor info registers", "monitor x /2xb 0x7c00", "monitor nonsense", "kill"]
    args = [exe, "-batch", "-nx"] + [a for c in cmds for a in ("-ex", c)]
    with open(out_path, "w") as f:
        g = subprocess.Popen(args, stdout=f, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL)
    try:
        for _ in range(1200):
            if "CONTINUING" in out_path.read_text():
                break
            time.sleep(0.05)
        time.sleep(0.5)                       # the second `c` is under way
        g.send_signal(signal.SIGINT)
        g.wait(60)
    finally:
        if g.poll() is None:
            g.kill()
    out = out_path.read_text()
    code = run.finish()
    assert "SIGINT" in out, out
    assert int(value(out, 1), 16) in (SYM["real_written.spin"], SYM["real_written.spin"] + 2)
    assert int(value(out, 2), 16) < 0xffffffff           # it was running, and stopped
    assert value(out, 3) == "0x1234"                      # written through gdb, read back
    assert f"{SYM['var']:016x}: 0x1234" in out            # ... and seen by the monitor
    assert "Cannot access memory at address 0xfff00000" in out
    assert value(out, 4) == hex(SYM["pm32"]) and value(out, 5) == "0x8"
    assert "protected 32-bit, CPL 0, machine stopped" in out
    assert re.search(r"^EFL=[0-9a-f]{8} \[.*\] IOPL=0$", out, re.M), out
    assert "CR0=" in out and "seg  sel   base" in out
    assert "0x7c00: 0xfa 0x31" in out.replace("0000000000007c00", "0x7c00")
    assert "unknown command: nonsense" in out
    assert code == 0, run.stderr
    assert "ended by the debugger" in run.stderr


def test_port_in_use_is_one_line(v3, floppy):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        r = v3("run", floppy, "--gdb", f"tcp:127.0.0.1:{port}", "--serial", "null")
    assert r.exit_code == 1
    assert "cannot listen" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_bad_gdb_address_and_lonely_S(v3, floppy):
    r = v3("run", floppy, "--gdb", "tcp:nowhere", "--serial", "null")
    assert r.exit_code == 1 and "expected tcp:HOST:PORT" in r.stderr
    r = v3("run", floppy, "-S", "--serial", "null")
    assert r.exit_code == 1 and "-S holds the CPU" in r.stderr


def test_stepi_into_a_software_interrupt(require_tool, tmp_path, v3proc):
    """stepi over `int 0x16` in real mode ends at the handler's first instruction, with the
    frame the VMM pushed (IP after the INT, CS, FLAGS), as on the hardware."""
    code = (ROOT / "tests" / "guests" / "keyecho.bin").read_bytes()
    img = tmp_path / "keyecho.img"
    img.write_bytes(code + bytes(1474560 - len(code)))
    int16 = code.index(b"\xcd\x16") + 0x7C00
    sock = tmp_path / "gdb.sock"
    run = v3proc(tmp_path, img, "-S", "--gdb", f"unix:{sock}")
    run.wait_for_socket(sock)
    out = gdb(require_tool, sock, f"break *{int16:#x}", "c", "stepi", "p/x $pc",
              "p/x *(unsigned int *)0x58", "p/x *(unsigned short *)$sp",
              "p/x *(unsigned short *)($sp + 2)", "kill")
    run.finish()
    vector = int(value(out, 2), 16)
    assert int(value(out, 1), 16) == ((vector >> 16) << 4) + (vector & 0xFFFF)
    assert int(value(out, 3), 16) == int16 + 2
    assert value(out, 4) == "0x0"


def test_a_fail_stop_is_held_for_gdb(require_tool, tmp_path, v3proc):
    """With gdb attached, a fail-stop (here: an unclaimed port) holds the machine: gdb sees
    SIGABRT and the diagnostic, can look at the state, and `continue` ends the run as it
    would have ended (status 3)."""
    # mov dx,0x1234; in al,dx; cli; hlt
    code = bytes.fromhex("ba3412ec" "faf4")
    img = tmp_path / "bad.img"
    img.write_bytes((code.ljust(510, b"\0") + b"\x55\xaa").ljust(1474560, b"\0"))
    sock = tmp_path / "gdb.sock"
    run = v3proc(tmp_path, img, "-S", "--gdb", f"unix:{sock}")
    run.wait_for_socket(sock)
    out = gdb(require_tool, sock, "c", "p/x $pc", "p/x $dx", "c")
    assert run.finish() == 3, run.stderr
    assert "SIGABRT" in out
    assert "v3: error: unclaimed read of 1 byte(s) port 0x1234" in out
    assert "held for inspection" in out
    assert 0x7C03 <= int(value(out, 1), 16) <= 0x7C06     # where the engine stopped after the IN
    assert value(out, 2) == "0x1234"
    assert "exited with code 03" in out
