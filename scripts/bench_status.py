#!/usr/bin/env python3
"""What the live status line costs: the Debian boot of bench_vmm.py (benchmark 3) with stderr on
a terminal, with the status line and with --no-status, and QEMU TCG on the same ISO.

Each round boots the ISO three times, interleaved (QEMU TCG, `v3 run` with the line, `v3 run
--no-status`), each to the marker (`--until`), serial to a file, stderr on a pseudo-terminal
whose output this script reads and throws away (the line is drawn only on a terminal). The
figure is the ratio of the medians, line / no line; the noise is the spread of each variant
across rounds. The guest is Debian's i386 kernel + busybox initramfs (`v3 mkguest`).

Usage: python3 scripts/bench_status.py [--rounds N] [--kernel-package linux-image-686-pae]
Figures go to docs/performance.md ("The status line").
"""
import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_vmm import MARKER, V3, build_guest_iso, time_until_marker  # noqa: E402


def boot_on_a_terminal(iso, serial, extra):
    """(wall seconds, CPU seconds) from start to the end of `v3 run --until MARKER` with
    stderr on a pty; also whether the status line was drawn."""
    master, slave = os.openpty()
    seen = bytearray()

    def drain():
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                return
            if not chunk:
                return
            if len(seen) < 1 << 16:
                seen.extend(chunk)
    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    t = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        rc = subprocess.run(V3 + ["run", "--cdrom", iso, "--serial", f"file:{serial}",
                                  "--until", MARKER, "--timeout", "300"] + extra,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=slave).returncode
        secs = time.perf_counter() - t
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    finally:
        os.close(slave)
        reader.join(2)
        os.close(master)
    if rc != 0:
        sys.exit(f"v3 run {' '.join(extra)}: exit status {rc}")
    return (secs, cpu), b"exits/s" in seen


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--kernel-package", help="another Debian i386 kernel flavour")
    args = ap.parse_args()
    print(f"load before: {open('/proc/loadavg').read().strip()}")
    with tempfile.TemporaryDirectory() as tmp:
        iso = build_guest_iso(tmp, args.kernel_package)
        serial = str(Path(tmp) / "serial")
        times = {"qemu": [], "status": [], "no-status": [], "status-cpu": [],
                 "no-status-cpu": []}
        for _ in range(args.rounds):
            if os.path.exists(f"{serial}.qemu"):
                os.unlink(f"{serial}.qemu")          # the marker of the previous round
            q = time_until_marker(["qemu-system-x86_64", "-accel", "tcg", "-m", "1024",
                                   "-cdrom", iso, "-serial", f"file:{serial}.qemu",
                                   "-display", "none", "-no-reboot"], f"{serial}.qemu", 120)
            if q is not None:
                times["qemu"].append(q)
            secs, drawn = boot_on_a_terminal(iso, serial, [])
            if not drawn:
                sys.exit("the status line was not drawn: is this v3 run too old?")
            times["status"].append(secs[0])
            times["status-cpu"].append(secs[1])
            secs, drawn = boot_on_a_terminal(iso, serial, ["--no-status"])
            if drawn:
                sys.exit("--no-status drew a status line")
            times["no-status"].append(secs[0])
            times["no-status-cpu"].append(secs[1])
    print(f"load after: {open('/proc/loadavg').read().strip()}")
    med = {k: statistics.median(v) for k, v in times.items() if v}

    def row(label, k, note=""):
        v = times[k]
        spread = (max(v) - min(v)) / med[k] * 100
        print(f"| {label} | {med[k]:.1f} s | {min(v):.1f}-{max(v):.1f} s ({spread:.0f} %) | {note} |")
    print(f"\nBoot to the marker, {args.rounds} interleaved rounds, median (range, spread)\n")
    print("| what | median | range (spread) | note |\n|---|---|---|---|")
    if "qemu" in med:
        row("qemu-system-x86_64 -accel tcg -m 1024", "qemu")
    row("v3 run, status line on a terminal", "status",
        f"{med['status'] / med['qemu']:.2f}x QEMU" if "qemu" in med else "")
    row("v3 run --no-status", "no-status",
        f"{med['no-status'] / med['qemu']:.2f}x QEMU" if "qemu" in med else "")
    row("v3 run, status line: CPU time", "status-cpu")
    row("v3 run --no-status: CPU time", "no-status-cpu")
    print(f"\nstatus line / no status line: wall {med['status'] / med['no-status']:.3f}, "
          f"CPU {med['status-cpu'] / med['no-status-cpu']:.3f} (medians)")


if __name__ == "__main__":
    main()
