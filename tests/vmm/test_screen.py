"""vmm/screen.py: the VGA text screen (mode 3 at 0xB8000) as text."""
from vmm.context import BytesMemory
from vmm.screen import COLS, TEXT_BASE, dump_text_screen


def put(mem, row, col, text, attr=0x07):
    for i, ch in enumerate(text.encode("latin-1")):
        mem.write(TEXT_BASE + 2 * (row * COLS + col + i), bytes([ch, attr]))


def test_blank_screen_is_one_newline():
    assert dump_text_screen(BytesMemory(1 << 20)) == "\n"


def test_rows_trailing_blanks_and_trailing_empty_lines_removed():
    mem = BytesMemory(1 << 20)
    put(mem, 0, 0, "HI  ")
    put(mem, 2, 3, "there")
    assert dump_text_screen(mem) == "HI\n\n   there\n"


def test_attributes_are_not_text():
    mem = BytesMemory(1 << 20)
    put(mem, 0, 0, "AB", attr=ord("x"))
    assert dump_text_screen(mem) == "AB\n"


def test_non_printable_cells_are_dots_and_nul_is_blank():
    mem = BytesMemory(1 << 20)
    put(mem, 0, 0, "a\x01b\x00c\x7f\xb0")
    assert dump_text_screen(mem) == "a.b c..\n"


def test_last_row_and_column():
    mem = BytesMemory(1 << 20)
    put(mem, 24, 79, "Z")
    lines = dump_text_screen(mem).split("\n")
    assert len(lines) == 26 and lines[24] == " " * 79 + "Z" and lines[25] == ""


def test_smaller_geometry():
    mem = BytesMemory(1 << 20)
    mem.write(TEXT_BASE, b"A\x07B\x07C\x07D\x07")
    assert dump_text_screen(mem, cols=2, rows=2) == "AB\nCD\n"
