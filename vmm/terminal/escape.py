"""Escape keys: Ctrl-A followed by a key is a command to the VMM, not input for the guest.

The dispatcher sits between the terminal and the guest: `filter(data)` returns the bytes meant
for the guest and runs the handler of every escape sequence it meets. Keys are registered by
whoever owns the command (the launcher registers x and h; a monitor registers c):

    keys = EscapeKeys(write=sys.stdout.buffer.write)
    keys.register("c", open_monitor, "switch to the monitor")

Ctrl-A Ctrl-A sends one Ctrl-A to the guest. Ctrl-A and an unregistered key is dropped with a
one-line hint. A sequence may be split across reads (Ctrl-A at the end of one read, the key
at the start of the next).
"""

PREFIX = 0x01                    # Ctrl-A, as QEMU's -nographic uses it


def key_name(key):
    """'x' for x, 'Ctrl-A' for 0x01."""
    if key < 0x20:
        return f"Ctrl-{chr(key + 0x40)}"
    return chr(key)


class EscapeKeys:
    """Ctrl-A <key> dispatcher. `write(bytes)` shows messages to the user (the terminal)."""

    def __init__(self, write=None):
        self.write = write
        self.keys = {}                 # key byte -> (handler, help text)
        self._armed = False            # the last byte seen was the prefix
        self.divert = None             # callable(bytes): takes the guest's input meanwhile
                                       # (the monitor on Ctrl-A c); escape keys still work

    def register(self, key, handler, help_text):
        """Bind Ctrl-A `key` (a one-character str or an int) to `handler()`."""
        code = ord(key) if isinstance(key, str) else key
        if code == PREFIX:
            raise ValueError("Ctrl-A Ctrl-A is reserved: it sends Ctrl-A to the guest")
        if code in self.keys:
            raise ValueError(f"escape key Ctrl-A {key_name(code)} is already taken")
        self.keys[code] = (handler, help_text)

    def unregister(self, key):
        self.keys.pop(ord(key) if isinstance(key, str) else key, None)

    def help_text(self):
        lines = [f"C-a {key_name(k):<6} {text}" for k, (_, text) in sorted(self.keys.items())]
        lines.append("C-a C-a    send C-a to the guest")
        return "\r\n".join(lines) + "\r\n"

    def show_help(self):
        self._say(self.help_text())

    def _say(self, text):
        if self.write is not None:
            self.write(text.encode())

    def filter(self, data):
        """The bytes of `data` meant for the guest; escape sequences run their handlers."""
        out = bytearray()
        for byte in data:
            if self._armed:
                self._armed = False
                if byte == PREFIX:
                    out.append(PREFIX)
                    continue
                entry = self.keys.get(byte)
                if entry is None:
                    self._say(f"\r\n[v3: C-a {key_name(byte)} is not bound; C-a h for help]\r\n")
                    continue
                entry[0]()
            elif byte == PREFIX:
                self._armed = True
            else:
                out.append(byte)
        if self.divert is not None:
            if out:
                self.divert(bytes(out))
            return b""
        return bytes(out)
