"""The BIOS on the real CPU core: POST from the reset vector, INT 19h into a boot sector that
calls INT 10h/13h/15h/1Ah through the ROM stubs (guests/biostest.asm)."""
from pathlib import Path

GUEST = Path(__file__).parent / "guests" / "biostest.bin"


def test_boot_sector_uses_the_bios(v3, tmp_path):
    disk = tmp_path / "hd.img"
    disk.write_bytes(GUEST.read_bytes() + b"sector one read".ljust(512, b"\0") + bytes(512 * 62))
    log = tmp_path / "serial.log"
    r = v3("run", "--hda", disk, "-m", "16", "--bios-console", "serial", "--until", "BIOS-DONE",
           "--timeout", "60", "--serial", f"file:{log}")
    text = log.read_text("latin-1").replace("\r", "")
    assert r.exit_code == 0, (r, text)
    assert "drive=80\nsector one read\ne820 ok\nBIOS-DONE" in text


def test_no_bootable_device_is_one_clear_line(v3, tmp_path):
    disk = tmp_path / "blank.img"
    disk.write_bytes(bytes(512 * 64))
    r = v3("run", "--hda", disk, "-m", "16", "--timeout", "60", "--serial", "null")
    assert r.exit_code == 3
    assert "no bootable device" in r.stderr and "55AAh" in r.stderr
