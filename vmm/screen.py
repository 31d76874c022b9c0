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
