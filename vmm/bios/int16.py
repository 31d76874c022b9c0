"""INT 16h keyboard services and the IRQ 1 handler (INT 09h).

Keys reach the BIOS keyboard buffer (BDA 0x41E-0x43D, head/tail at 0x41A/0x41C, bounds at
0x480/0x482) two ways:
  * from the console (serial input, `ctx.console.read_available()`), polled on every INT 16h
    call: ASCII is turned into (scan code, ASCII) pairs of a US keyboard; ANSI/xterm escape
    sequences (ESC [ A ...) become cursor and function keys; CR LF counts as one Enter;
  * from the i8042 (port 60h, scan code set 1) in the IRQ 1 handler, with shift/ctrl/alt and
    lock state kept in BDA 0x417.
Buffer entries are (scan << 8 | ASCII); enhanced keys carry ASCII E0h, which AH=00h/01h turn
into 00h as the AT BIOS does.
"""
import re

from v3tools.errors import Unimplemented

from vmm.bios import bda
from vmm.bios.errors import BiosWait

KBD_DATA = 0x60
# scan code set 1 (US layout): first make code of each row, unshifted and shifted characters
_ROWS = ((0x02, "1234567890-=", "!@#$%^&*()_+"),
         (0x10, "qwertyuiop[]", "QWERTYUIOP{}"),
         (0x1E, "asdfghjkl;'`", 'ASDFGHJKL:"~'),
         (0x2B, "\\zxcvbnm,./", "|ZXCVBNM<>?"),
         (0x39, " ", " "))
SCAN_NORMAL, SCAN_SHIFT = {}, {}
ASCII_TO_SCAN = {}
for first, normal, shifted in _ROWS:
    for i, (n, s) in enumerate(zip(normal, shifted)):
        SCAN_NORMAL[first + i], SCAN_SHIFT[first + i] = ord(n), ord(s)
        ASCII_TO_SCAN[ord(n)] = ASCII_TO_SCAN[ord(s)] = first + i
SC_ESC, SC_BACKSPACE, SC_TAB, SC_ENTER = 0x01, 0x0E, 0x0F, 0x1C
SPECIAL_ASCII = {0x1B: (SC_ESC, 0x1B), 0x08: (SC_BACKSPACE, 0x08), 0x7F: (SC_BACKSPACE, 0x08),
                 0x09: (SC_TAB, 0x09), 0x0D: (SC_ENTER, 0x0D), 0x0A: (SC_ENTER, 0x0D)}
SCAN_SPECIAL = {SC_ESC: 0x1B, SC_BACKSPACE: 0x08, SC_TAB: 0x09, SC_ENTER: 0x0D}
# escape sequences (after ESC) -> scan code of the enhanced key
ESCAPES = {
    b"[A": 0x48, b"[B": 0x50, b"[C": 0x4D, b"[D": 0x4B, b"[H": 0x47, b"[F": 0x4F,
    b"[1~": 0x47, b"[4~": 0x4F, b"[2~": 0x52, b"[3~": 0x53, b"[5~": 0x49, b"[6~": 0x51,
    b"OP": 0x3B, b"OQ": 0x3C, b"OR": 0x3D, b"OS": 0x3E, b"OH": 0x47, b"OF": 0x4F,
    b"[11~": 0x3B, b"[12~": 0x3C, b"[13~": 0x3D, b"[14~": 0x3E, b"[15~": 0x3F,
    b"[17~": 0x40, b"[18~": 0x41, b"[19~": 0x42, b"[20~": 0x43, b"[21~": 0x44,
    b"[23~": 0x85, b"[24~": 0x86,
}
ESCAPE_RE = re.compile(rb"\[[0-9;]*[~A-Za-z]|O[A-Za-z]")
CURSOR_KEYS = {0x47, 0x48, 0x49, 0x4B, 0x4D, 0x4F, 0x50, 0x51, 0x52, 0x53}
FUNCTION_KEYS = set(range(0x3B, 0x45)) | {0x85, 0x86}
# shift-state bits of BDA 0x417 and the make codes that drive them
RSHIFT, LSHIFT, CTRL, ALT, SCROLL, NUM, CAPS = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40
SHIFT_KEYS = {0x36: RSHIFT, 0x2A: LSHIFT, 0x1D: CTRL, 0x38: ALT}
LOCK_KEYS = {0x46: SCROLL, 0x45: NUM, 0x3A: CAPS}
KEYPAD = {0x47: "7", 0x48: "8", 0x49: "9", 0x4A: "-", 0x4B: "4", 0x4C: "5", 0x4D: "6",
          0x4E: "+", 0x4F: "1", 0x50: "2", 0x51: "3", 0x52: "0", 0x53: "."}


def key_for_ascii(ch):
    """(scan, ascii) of the key that types ASCII `ch` on a US keyboard."""
    if ch in SPECIAL_ASCII:
        return SPECIAL_ASCII[ch]
    if 1 <= ch <= 26:                              # Ctrl-A .. Ctrl-Z
        return ASCII_TO_SCAN[ch + 0x60], ch
    return ASCII_TO_SCAN.get(ch, 0), ch


class Keyboard:
    def __init__(self, bios):
        self.bios = bios
        self.ctx = bios.ctx
        self.e0 = False
        self.skip = 0            # bytes left of a Pause (E1h) sequence
        self.after_cr = False

    def reset(self):
        self.e0 = False
        self.skip = 0
        self.after_cr = False

    # -- buffer --------------------------------------------------------------------------------
    def push(self, word):
        b = self.bios
        head, tail = b.rd16(bda.KBD_HEAD), b.rd16(bda.KBD_TAIL)
        start, end = b.rd16(bda.KBD_BUF_START), b.rd16(bda.KBD_BUF_END)
        nxt = tail + 2
        if nxt >= end:
            nxt = start
        if nxt == head:
            return False                               # full: the key is lost (AT BIOS beeps)
        b.wr16(bda.BDA + tail, word)
        b.wr16(bda.KBD_TAIL, nxt)
        return True

    def peek(self):
        b = self.bios
        head, tail = b.rd16(bda.KBD_HEAD), b.rd16(bda.KBD_TAIL)
        return None if head == tail else b.rd16(bda.BDA + head)

    def pop(self):
        b = self.bios
        word = self.peek()
        if word is not None:
            nxt = b.rd16(bda.KBD_HEAD) + 2
            if nxt >= b.rd16(bda.KBD_BUF_END):
                nxt = b.rd16(bda.KBD_BUF_START)
            b.wr16(bda.KBD_HEAD, nxt)
        return word

    # -- console input -------------------------------------------------------------------------
    def poll_console(self):
        data = self.ctx.console.read_available()
        if data:
            self.feed(data)

    def feed(self, data):
        """Type console bytes into the buffer."""
        i = 0
        while i < len(data):
            ch = data[i]
            i += 1
            if ch == 0x0A and self.after_cr:
                self.after_cr = False
                continue
            self.after_cr = ch == 0x0D
            if ch == 0x1B:
                m = ESCAPE_RE.match(data, i)
                if m:
                    i = m.end()
                    scan = ESCAPES.get(m.group())
                    if scan is not None:
                        self.push(scan << 8 | (0xE0 if scan in CURSOR_KEYS else 0))
                    continue
            scan, ascii_ = key_for_ascii(ch)
            self.push(scan << 8 | ascii_)

    # -- INT 16h ---------------------------------------------------------------------------------
    def service(self, call):
        self.poll_console()
        ah = call.ah
        if ah in (0x00, 0x10):
            word = self.pop()
            if word is None:
                raise BiosWait()
            call.ax = word if ah == 0x10 else _classic(word)
        elif ah in (0x01, 0x11):
            word = self.peek()
            call.zf = word is None
            if word is not None:
                call.ax = word if ah == 0x11 else _classic(word)
        elif ah in (0x02, 0x12):
            flags = self.bios.rd8(bda.KBD_FLAGS1)
            call.al = flags
            if ah == 0x12:
                call.ah = (0x01 if flags & CTRL else 0) | (0x02 if flags & ALT else 0)
        elif ah == 0x03:                               # typematic rate: nothing to program
            pass
        elif ah == 0x05:
            call.al = 0 if self.push(call.cx) else 1
        elif ah == 0x09:
            call.al = 0x20                             # functions 10h-12h supported
        elif ah == 0x0A:
            call.bx = 0x41AB                           # MF2 keyboard, translated
        else:
            raise Unimplemented(f"INT 16h AH={ah:02X}h (keyboard function not implemented)")

    # -- INT 09h (IRQ 1) ---------------------------------------------------------------------------
    def irq1(self, call):
        code = self.ctx.io.read(KBD_DATA, 1)
        self.scancode(code)

    def scancode(self, code):
        b = self.bios
        if self.skip:
            self.skip -= 1
            return
        if code == 0xE0:
            self.e0 = True
            return
        if code == 0xE1:                               # Pause: E1 1D 45 E1 9D C5
            self.skip = 5
            return
        e0, self.e0 = self.e0, False
        make, released = code & 0x7F, bool(code & 0x80)
        flags = b.rd8(bda.KBD_FLAGS1)
        if make in SHIFT_KEYS and not (e0 and make in (0x2A, 0x36)):   # E0 2A: fake shift
            bit = SHIFT_KEYS[make]
            b.wr8(bda.KBD_FLAGS1, flags & ~bit if released else flags | bit)
            return
        if released:
            return
        if make in LOCK_KEYS and not e0:
            b.wr8(bda.KBD_FLAGS1, flags ^ LOCK_KEYS[make])
            return
        word = self.translate(make, e0, flags)
        if word is not None:
            self.push(word)

    @staticmethod
    def translate(make, e0, flags):
        if e0:
            if make == SC_ENTER:
                return 0xE00D                          # keypad Enter
            if make == 0x35:
                return 0xE02F                          # keypad /
            return make << 8 | 0xE0 if make in CURSOR_KEYS else None
        if make in FUNCTION_KEYS or make in (0x57, 0x58):
            return (0x85 if make == 0x57 else 0x86 if make == 0x58 else make) << 8
        if make in KEYPAD:
            if flags & NUM and not flags & (LSHIFT | RSHIFT):
                return make << 8 | ord(KEYPAD[make])
            return make << 8 | (ord(KEYPAD[make]) if make in (0x4A, 0x4E) else 0)
        if make in SCAN_SPECIAL:
            return make << 8 | SCAN_SPECIAL[make]
        if make not in SCAN_NORMAL:
            return None
        ch = SCAN_NORMAL[make]
        if flags & ALT:
            return make << 8
        shifted = bool(flags & (LSHIFT | RSHIFT))
        if chr(ch).isalpha() and flags & CAPS:
            shifted = not shifted
        ch = SCAN_SHIFT[make] if shifted else ch
        if flags & CTRL and chr(ch).isalpha():
            ch &= 0x1F
        return make << 8 | ch


def _classic(word):
    """AH=00h/01h view of a buffer entry: enhanced keys' E0h becomes 00h."""
    if word & 0xFF == 0xE0 and word >> 8:
        return word & 0xFF00
    return word
