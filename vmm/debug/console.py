"""The monitor on the terminal console: Ctrl-A c switches the keyboard between the guest and
the monitor, as QEMU's -nographic does. While the monitor has the keyboard, typed lines are
monitor commands (`(v3) ` prompt, Backspace edits, Enter runs); the guest keeps running and
its output keeps coming. Ctrl-A c again gives the keyboard back to the guest. Ctrl-A s saves
the whole machine to ./v3-YYYYmmdd-HHMMSS.v3snap (the monitor's savevm)."""
import time


class ConsoleMonitor:
    PROMPT = b"(v3) "

    def __init__(self, machine, keys, monitor):
        self.m = machine
        self.keys = keys
        self.monitor = monitor
        self.line = bytearray()
        keys.register("c", self.toggle, "switch between the guest console and the monitor")
        keys.register("s", self.snapshot, "save the machine to ./v3-DATE-TIME.v3snap")

    def snapshot(self):
        name = time.strftime("v3-%Y%m%d-%H%M%S.v3snap")
        self._say(b"\r\n[v3: " + self.monitor.execute(f"savevm {name}").encode() + b"]\r\n")

    @property
    def active(self):
        return self.keys.divert is not None

    def _say(self, data):
        self.keys.write(data)

    def toggle(self):
        if self.active:
            self.keys.divert = None
            self.line.clear()
            self._say(b"\r\n[v3: back to the guest console]\r\n")
        else:
            self.keys.divert = self.input
            self._say(b"\r\n[v3 monitor: help lists the commands; C-a c returns to the guest]"
                      b"\r\n" + self.PROMPT)

    def input(self, data):
        for b in data:
            if b in (13, 10):
                self._say(b"\r\n")
                line = self.line.decode(errors="replace")
                self.line.clear()
                out = self.monitor.execute(line)
                if out:
                    self._say(out.replace("\n", "\r\n").encode() + b"\r\n")
                self._say(self.PROMPT)
            elif b in (8, 127):
                if self.line:
                    self.line.pop()
                    self._say(b"\b \b")
            elif b == 21:                     # Ctrl-U: the whole line
                self._say(b"\b \b" * len(self.line))
                self.line.clear()
            elif 32 <= b < 127:
                self.line.append(b)
                self._say(bytes((b,)))
