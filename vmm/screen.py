"""The VGA text screen (mode 3: 80x25 cells of character + attribute at 0xB8000) as text."""

TEXT_BASE = 0xB8000
COLS, ROWS = 80, 25


def dump_text_screen(mem, cols=COLS, rows=ROWS):
    """The screen as `rows` lines, trailing blanks removed; non-printable cells become '.'."""
    raw = mem.read(TEXT_BASE, cols * rows * 2)
    lines = []
    for r in range(rows):
        chars = raw[r * cols * 2:(r + 1) * cols * 2:2]
        text = "".join(chr(c) if 32 <= c < 127 else (" " if c == 0 else ".") for c in chars)
        lines.append(text.rstrip())
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines) + "\n"


SCREEN_TAIL_LINES = 8


def screen_tail(mem, max_lines=SCREEN_TAIL_LINES):
    """The last non-blank lines of the text screen, for a diagnostic: [] when the screen is
    blank or does not hold text (a guest that left text mode fills 0xB8000 with pixels, whose
    bytes are mostly not printable characters)."""
    try:
        raw = mem.read(TEXT_BASE, COLS * ROWS * 2)
    except Exception:                   # no RAM there (a tiny machine): nothing to show
        return []
    chars = raw[0::2]
    used = [c for c in chars if c not in (0, 0x20)]
    if not used:
        return []
    printable = sum(1 for c in used if 0x20 < c < 0x7F)
    if printable < 0.9 * len(used):
        return []
    lines = [line for line in dump_text_screen(mem).splitlines() if line.strip()]
    return lines[-max_lines:]
