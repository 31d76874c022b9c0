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


# -- the screen in the diagnostic of a run that ends badly -------------------------------------
from vmm.screen import screen_tail  # noqa: E402


def test_screen_tail_is_the_last_non_blank_lines():
    mem = BytesMemory(1 << 20)
    for row in range(12):
        put(mem, row * 2, 0, f"line {row}")
    assert screen_tail(mem, max_lines=3) == ["line 9", "line 10", "line 11"]


def test_screen_tail_of_a_blank_or_graphics_screen_is_empty():
    mem = BytesMemory(1 << 20)
    assert screen_tail(mem) == []
    import random
    rng = random.Random(1)
    mem.write(TEXT_BASE, bytes(rng.randrange(256) for _ in range(COLS * 25 * 2)))
    assert screen_tail(mem) == []


def test_a_kernel_for_another_cpu_shows_its_vga_message_in_the_timeout_diagnostic(
        tmp_path, require_artefact):
    """Debian's amd64 kernel on a CPU without long mode: its real-mode setup code refuses on
    the VGA screen only (console=ttyS0 does not reach the setup code), halts, and the run
    times out. The diagnostic ends with the kernel's own words."""
    import pytest
    from isoimage import build_iso
    from v3tools import artefacts
    from vmm.launch import RunOptions, run
    from vmm.machine import RunTimeout
    kernel = require_artefact(artefacts.debian_kernel, "amd64")
    require_artefact(artefacts.isolinux_bin)
    iso = tmp_path / "amd64.iso"
    build_iso(iso, kernel=kernel, append="console=ttyS0")

    def a_32_bit_cpu(machine):
        machine.cpu.cpuid.table[(0x80000001, 0)][3] &= ~(1 << 29)      # no long mode

    with pytest.raises(RunTimeout) as stop:
        run(RunOptions(cdrom=str(iso), serial=f"file:{tmp_path / 'serial.out'}", timeout=30),
            on_machine=a_32_bit_cpu)
    diagnostic = stop.value.diagnostic
    assert "VGA text screen" in diagnostic
    assert "This kernel requires an x86-64 CPU, but only detected an i686 CPU." in diagnostic
    serial = (tmp_path / "serial.out").read_bytes()
    assert b"x86-64 CPU" not in serial
