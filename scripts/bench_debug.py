#!/usr/bin/env python3
"""Benchmark: boot to the Linux marker with gdb attached (no breakpoints) against no gdb.

The guest is Debian's i386 kernel + busybox initramfs (`v3 mkguest`, as in bench_vmm.py).
Each round boots `v3 run --cdrom guest.iso --until MARKER` once without a debugger and once
with `--gdb unix:SOCK` and a real gdb attached (`target remote`, then `continue`), in
alternating order; `--until` ends the run at the marker. Reported: wall time from starting
`v3 run` to its exit (the gdb case includes gdb's attach handshake, during which the machine
is stopped) and the CPU time of the `v3 run` process (less sensitive to other jobs).

Usage: python3 scripts/bench_debug.py [--rounds N]      (figures go to docs/performance.md)
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_vmm import MARKER, V3, build_guest_iso  # noqa: E402


def boot(iso, tmp, with_gdb, timeout=300):
    serial = Path(tmp) / "serial.out"
    if serial.exists():
        serial.unlink()
    sock = Path(tmp) / "gdb.sock"
    cmd = V3 + ["run", "--cdrom", iso, "--serial", f"file:{serial}", "--until", MARKER]
    if with_gdb:
        cmd += ["--gdb", f"unix:{sock}"]
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    gdb = None
    try:
        if with_gdb:
            while not sock.exists():
                time.sleep(0.01)
            gdb = subprocess.Popen(["gdb", "-batch", "-nx", "-ex", f"target remote {sock}",
                                    "-ex", "continue"], stdin=subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # --until ends the run at the marker: its exit is the end of the boot
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - t
        if proc.returncode != 0 or MARKER.encode() not in serial.read_bytes():
            return None
        return wall, usage.ru_utime + usage.ru_stime
    finally:
        for p in (proc, gdb):
            if p is not None and p.poll() is None:
                p.kill()
            if p is not None:
                p.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        iso = build_guest_iso(tmp)
        plain, attached = [], []
        for r in range(args.rounds):
            order = (False, True) if r % 2 == 0 else (True, False)
            for with_gdb in order:
                s = boot(iso, tmp, with_gdb)
                (attached if with_gdb else plain).append(s)
                print(f"round {r + 1}: {'gdb attached' if with_gdb else 'no gdb'}: "
                      f"{'did not reach the marker' if s is None else f'{s[0]:.2f} s wall, {s[1]:.2f} s CPU'}",
                      flush=True)
        plain = [x for x in plain if x]
        attached = [x for x in attached if x]
        if plain and attached:
            for i, what in ((0, "wall"), (1, "CPU")):
                bp, ba = min(x[i] for x in plain), min(x[i] for x in attached)
                print(f"best {what}: no gdb {bp:.2f} s, gdb attached {ba:.2f} s: "
                      f"{(ba / bp - 1) * 100:+.1f} %")


if __name__ == "__main__":
    main()
