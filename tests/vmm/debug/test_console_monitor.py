"""The monitor on the terminal console (Ctrl-A c), through tmux: a real terminal in raw mode."""
import sys
import time


def test_ctrl_a_c_monitor(tmp_path, tmux, floppy, sym):
    t = tmux(f"{sys.executable} -m v3tools run --fda {floppy} -S --monitor "
             f"unix:{tmp_path}/mon.sock,server", cwd=tmp_path)
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
