"""The monitor on its socket (`--monitor unix:PATH,server`), driven like a script would."""
import socket
import time
from pathlib import Path


class Session:
    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX)
        self.s.connect(str(path))
        self.banner = self._until_prompt()

    def _until_prompt(self):
        data = b""
        while not data.endswith(b"(v3) "):
            chunk = self.s.recv(65536)
            if not chunk:
                break
            data += chunk
        return data.decode()[:-len("(v3) ")] if data.endswith(b"(v3) ") else data.decode()

    def cmd(self, line):
        self.s.sendall(line.encode() + b"\n")
        return self._until_prompt()


def test_monitor_socket(floppy, tmp_path, v3proc):
    path = tmp_path / "mon.sock"
    run = v3proc(tmp_path, floppy, "-S", "--monitor", f"unix:{path},server")
    run.wait_for_socket(path)
    mon = Session(path)
    assert "help lists the commands" in mon.banner
    assert "info registers" in mon.cmd("help")
    assert mon.cmd("info mode").strip() == "real, CPL 0, machine stopped"
    regs = mon.cmd("info registers")
    assert "EIP=0000fff0  linear PC=000ffff0" in regs
    assert "CS   f000  00000000000f0000  0000ffff" in regs
    assert "CR0=00000000 [-]" in regs
    assert mon.cmd("x /4xb 0xffff0").strip() == "00000000000ffff0: 0xea 0x5b 0xe0 0x00"
    assert mon.cmd("xp /2xw 0xffff0").strip() == "00000000000ffff0: 0x00e05bea 0x2f3130f0"
    assert "unknown format letter" in mon.cmd("x /4q 0")
    assert "not RAM" in mon.cmd("xp /1xw 0xfec00000")
    devices = mon.cmd("info devices")
    assert "8259A" in devices and "8254_PIT" in devices
    assert "master" in mon.cmd("info pic")
    assert "channel" in mon.cmd("info pit")
    lapic = mon.cmd("info lapic")
    assert "base 0xfee00000" in lapic and "LVT 0x320" in lapic      # the standard PC has one
    assert mon.cmd("info ioapic").startswith("pin  level  sent")
    # savevm while held at the reset vector (-S)
    snap = tmp_path / "held.v3snap"
    assert mon.cmd(f"savevm {snap}").startswith(f"saved the machine to {snap}")
    assert "fresh machine" in mon.cmd(f"loadvm {snap}")
    assert mon.cmd("cont").strip() == "running"
    # the guest needs a while (BIOS, then a long spin in real mode) before it ends: stop it
    assert mon.cmd("stop").strip() == "stopped"
    assert mon.cmd("info mode").strip() == "real, CPL 0, machine stopped"
    assert mon.cmd("stop").strip() == "the machine is already stopped"
    tele = mon.cmd("info telemetry")
    assert "guest runs" in tele
    assert mon.cmd("frobnicate").startswith("unknown command: frobnicate")
    # a second client is turned away while the first is connected
    other = socket.socket(socket.AF_UNIX)
    other.connect(str(path))
    assert b"already in use" in other.recv(100)
    other.close()
    assert mon.cmd("quit").strip() == "quitting"
    assert run.finish() == 0
    assert "ended from the monitor (quit)" in run.stderr
    # the saved machine goes on from where it was saved: the guest runs to its end
    again = v3proc(tmp_path, floppy, "--loadvm", snap)
    assert again.finish() == 5, again.stderr          # cli; hlt
    assert "GDBTEST DONE" in again.serial.read_text()


def test_sendkey(tmp_path, v3proc):
    code = (Path(__file__).resolve().parents[2] / "guests" / "keyecho.bin").read_bytes()
    img = tmp_path / "keyecho.img"
    img.write_bytes(code + bytes(1474560 - len(code)))
    path = tmp_path / "mon.sock"
    run = v3proc(tmp_path, img, "--monitor", f"unix:{path},server")
    run.wait_for_socket(path)
    mon = Session(path)
    for _ in range(600):                       # the guest waits in INT 16h
        if "KEYECHO READY" in run.serial.read_text():
            break
        time.sleep(0.05)
    assert mon.cmd("sendkey h") == ""
    assert mon.cmd("sendkey i") == ""
    assert mon.cmd("sendkey shift-1") == ""
    assert mon.cmd("sendkey spc") == ""
    assert mon.cmd("sendkey shift-a") == ""
    assert "unknown key 'nosuchkey'" in mon.cmd("sendkey nosuchkey")
    assert mon.cmd("sendkey q") == ""
    assert run.finish() == 5, run.stderr        # the guest's cli; hlt after 'q'
    assert run.serial.read_text() == "KEYECHO READY\nhi! Aq\nKEYECHO END\n"
