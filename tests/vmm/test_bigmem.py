"""A 1 GiB guest (tests/guests/bigmem.asm): the E820 map adds up to the machine's memory, RAM
holds a pattern up to its last dword, the first byte past it is open bus, and the host commits
only the pages the guest touched (guest RAM is mapped lazily)."""
from pathlib import Path

from vmm.launch import RunOptions, run
from vmm.machine import EXIT_OK

GUESTS = Path(__file__).resolve().parents[1] / "guests"
MiB = 1 << 20
GiB = 1 << 30
FLOPPY = 1440 * 1024


def _status_kib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return None


def _reset_peak_rss():
    """Reset VmHWM to the current RSS (Linux 4.0+); False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def test_one_gib_guest(tmp_path):
    floppy = tmp_path / "bigmem.img"
    floppy.write_bytes((GUESTS / "bigmem.bin").read_bytes().ljust(FLOPPY, b"\0"))
    out = tmp_path / "serial.out"
    peak_reset = _reset_peak_rss()
    rss_before = _status_kib("VmRSS")
    result, machine = run(RunOptions(fda=str(floppy), memory_mb=1024, serial=f"file:{out}",
                                     timeout=60))
    rss_after, peak = _status_kib("VmRSS"), _status_kib("VmHWM")
    text = out.read_text("latin-1")
    assert result.status == EXIT_OK and result.reason == "guest reset", (result, text)
    lines = text.splitlines()
    assert len(lines) == 4 and lines[0].startswith("E820 "), text
    usable, top = (int(v, 16) for v in lines[0].split()[1:])
    # all of it but the EBDA, the VGA/ROM hole and the BIOS ROM
    assert GiB - 2 * MiB < usable <= GiB, hex(usable)
    assert top == GiB
    assert lines[1:] == ["OK", "TOP FFFFFFFF", "BIGMEM-DONE"]
    assert machine.ram_size == GiB
    if rss_before is None:
        return                                      # no /proc: nothing more to measure
    grew = (rss_after - rss_before) * 1024
    assert grew < 256 * MiB, f"RSS grew by {grew // MiB} MiB during a 1 GiB guest's run"
    if peak_reset:
        peak_grew = (peak - rss_before) * 1024
        assert peak_grew < 256 * MiB, f"peak RSS grew by {peak_grew // MiB} MiB"
