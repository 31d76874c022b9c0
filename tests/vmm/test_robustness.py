"""Robustness: random boot sectors must end cleanly, and a fail-stop must be clean.

`test_random_boot_sectors_end_cleanly` boots 1,000 seeded random 512-byte boot sectors (with the
55AAh signature, so the BIOS jumps into them) from a floppy or a hard disk, each on a fresh
machine in this process with a short wall-clock timeout. Every run must end in a RunResult
(reset, power-off) or a VMStop (a fail-stop such as Unimplemented or UnhandledIO, a triple fault,
a halt, the timeout): never another exception, never later than the timeout plus 2 s. The tally
is printed (pytest -s); a failure lists the first distinct exceptions with their seeds, which
reproduce one boot: `python tests/vmm/test_robustness.py SEED`. Outcomes are not exactly
repeatable: timer interrupts follow the host clock, so where they land in a random guest varies.

The other tests pin down fail-stop details that the random boots brought up.
"""
import collections
import os
import random
import sys
import threading
import time
import traceback

import pytest

from v3tools.errors import VMStop
from vmm.launch import RunOptions, run

BOOTS = int(os.environ.get("V3_ROBUSTNESS_BOOTS", "1000"))
TIMEOUT = 0.3                   # wall seconds per boot
GRACE = 2.0                     # a boot that ends later than TIMEOUT + GRACE has hung
FLOPPY = 1440 * 1024
DISK = 64 * 512


def random_boot_sector(seed):
    """(medium kind, image bytes): even seeds boot a floppy, odd ones a hard disk."""
    rng = random.Random(seed)
    sector = rng.randbytes(510) + b"\x55\xaa"
    if seed % 2 == 0:
        return "fda", sector.ljust(FLOPPY, b"\0")
    return "hda", sector.ljust(DISK, b"\0")


class Watchdog(threading.Thread):
    """Stops the guest of a boot that runs past its limit, so a hang is reported, not waited on
    (a stop requested from outside ends the run loop with RunTimeout once past the timeout)."""

    def __init__(self, limit):
        super().__init__(name="robustness-watchdog", daemon=True)
        self.limit = limit
        self.machine = None
        self.since = 0.0
        self.quit = False

    def watch(self, machine):
        self.since = time.monotonic()
        self.machine = machine

    def run(self):
        while not self.quit:
            time.sleep(0.1)
            m = self.machine
            if m is not None and time.monotonic() - self.since > self.limit:
                m.kick()


def boot_once(seed, path, watchdog=None, timeout=TIMEOUT):
    """Boot the random sector of `seed`; returns (outcome, wall seconds, exception or None).
    Outcomes: "ended: <reason>" for a RunResult, the class name for a VMStop, "BUG <type>"."""
    kind, image = random_boot_sector(seed)
    with open(path, "wb") as f:
        f.write(image)
    machines = []

    def started(machine):
        machines.append(machine)
        if watchdog is not None:
            watchdog.watch(machine)

    t0 = time.monotonic()
    error = None
    try:
        result, _ = run(RunOptions(serial="null", memory_mb=16, timeout=timeout, log=os.devnull,
                                   **{kind: str(path)}), on_machine=started)
        outcome = f"ended: {result.reason}"
    except VMStop as exc:
        outcome = type(exc).__name__
    except Exception as exc:          # noqa: BLE001 -- the point of the test
        outcome, error = f"BUG {type(exc).__name__}", exc
    wall = time.monotonic() - t0
    if watchdog is not None:
        watchdog.machine = None
    for m in machines:                # closed by launch.run too; closing twice is harmless
        for drive in m.ctx.drives:
            close = getattr(drive.medium, "close", None)
            if close is not None:
                close()
    return outcome, wall, error


def _where(exc):
    frames = traceback.extract_tb(exc.__traceback__)
    last = frames[-1] if frames else None
    return f"{os.path.relpath(last.filename)}:{last.lineno}" if last else "?"


@pytest.mark.slow
def test_random_boot_sectors_end_cleanly(tmp_path):
    path = tmp_path / "medium.img"
    tally = collections.Counter()
    example = {}
    bugs = {}                         # (type, where) -> (seed, message)
    slow = []
    unraisable = []
    old_hook = sys.unraisablehook
    sys.unraisablehook = lambda u: unraisable.append(u.exc_type.__name__)
    watchdog = Watchdog(TIMEOUT + GRACE)
    watchdog.start()
    t0 = time.monotonic()
    try:
        for seed in range(BOOTS):
            outcome, wall, error = boot_once(seed, path, watchdog)
            tally[outcome] += 1
            example.setdefault(outcome, seed)
            if error is not None:
                key = (type(error).__name__, _where(error))
                bugs.setdefault(key, (seed, str(error)[:200]))
            if wall > TIMEOUT + GRACE:
                slow.append((seed, round(wall, 2), outcome))
    finally:
        watchdog.quit = True
        sys.unraisablehook = old_hook
    total = time.monotonic() - t0
    print(f"\n{BOOTS} random boot sectors in {total:.1f} s ({total / BOOTS * 1000:.0f} ms each, "
          f"timeout {TIMEOUT} s):")
    for outcome, n in tally.most_common():
        print(f"  {n:5d}  {outcome}  (e.g. seed {example[outcome]})")
    if unraisable:
        print(f"  unraisable exceptions printed by Unicorn's callback wrapper: {len(unraisable)} "
              f"({', '.join(sorted(set(unraisable)))})")
    problems = [f"{t} at {w}: seed {s}: {msg}" for (t, w), (s, msg) in list(bugs.items())[:5]]
    problems += [f"seed {s} took {w} s ({o})" for s, w, o in slow[:5]]
    assert not problems, "random boot sectors broke the VMM:\n" + "\n".join(problems)


# -- fail-stops raised in port I/O hooks ----------------------------------------------------------
# A device (or the unclaimed-port policy) raises inside Unicorn's IN/OUT hook. The binding then
# records the exception, asks the CPU to stop and re-raises it from emu_start.

def _boot_code(tmp_path, code):
    fda = tmp_path / "fd.img"
    sector = code.ljust(510, b"\0") + b"\x55\xaa"
    fda.write_bytes(sector.ljust(FLOPPY, b"\0"))
    out = tmp_path / "serial.out"
    return RunOptions(fda=str(fda), serial=f"file:{out}", memory_mb=16, timeout=10,
                      log=os.devnull), out


def test_failstop_in_port_read_prints_no_traceback(tmp_path):
    from v3tools.errors import UnhandledIO
    opts, _ = _boot_code(tmp_path, bytes.fromhex("ba3412 ec fa f4"))   # in al, 0x1234; cli; hlt
    seen = []
    old_hook = sys.unraisablehook
    sys.unraisablehook = lambda u: seen.append(f"{u.exc_type.__name__}: {u.exc_value}")
    try:
        with pytest.raises(UnhandledIO):
            run(opts)
    finally:
        sys.unraisablehook = old_hook
    assert seen == []


def test_failstop_in_port_write_stops_at_the_instruction(tmp_path):
    from v3tools.errors import UnhandledIO
    # out 0x1234, al; then 'X' to COM1; cli; hlt
    opts, out = _boot_code(tmp_path, bytes.fromhex("ba3412 ee b058 baf803 ee fa f4"))
    with pytest.raises(UnhandledIO) as info:
        run(opts)
    assert out.read_bytes() == b""
    assert "CS:EIP 0000:00007c03" in info.value.diagnostic   # the OUT itself (mov dx is 3 bytes)


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc/self/fd")
def test_run_closes_its_media(tmp_path):
    opts, _ = _boot_code(tmp_path, bytes.fromhex("b0fe e664 fa f4"))   # reset through the i8042
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(3):
        result, _ = run(opts)
        assert result.reason == "guest reset"
    assert len(os.listdir("/proc/self/fd")) == before


if __name__ == "__main__":
    # Reproduce one boot: python tests/vmm/test_robustness.py SEED [TIMEOUT]
    import tempfile
    seed = int(sys.argv[1])
    with tempfile.TemporaryDirectory() as d:
        outcome, wall, error = boot_once(seed, os.path.join(d, "medium.img"),
                                         timeout=float(sys.argv[2]) if len(sys.argv) > 2 else TIMEOUT)
    print(f"seed {seed} ({random_boot_sector(seed)[0]}): {outcome} after {wall:.2f} s")
    if error is not None:
        traceback.print_exception(error)
