#!/usr/bin/env python3
"""Benchmark: boot to the Linux marker with gdb attached (no breakpoints) against no gdb.

The guest is Debian's i386 kernel + busybox initramfs (`v3 mkguest`, as in bench_vmm.py).
Each round boots `v3 run --cdrom guest.iso --until MARKER` once without a debugger and once
with `--gdb unix:SOCK` and a real gdb attached (`target remote`, then `continue`), in
alternating order; the time is from starting `v3 run` to the marker in the serial file (the
gdb case includes gdb's attach handshake, during which the machine is stopped).

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
        while time.perf_counter() - t < timeout:
            if serial.exists() and MARKER.encode() in serial.read_bytes():
                return time.perf_counter() - t
            if proc.poll() is not None:
                return None
            time.sleep(0.05)
        return None
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
                      f"{'-' if s is None else f'{s:.2f} s'}", flush=True)
        ok = [x for x in plain if x] and [x for x in attached if x]
        if ok:
            bp, ba = min(x for x in plain if x), min(x for x in attached if x)
            print(f"best no gdb {bp:.2f} s, best gdb attached {ba:.2f} s: "
                  f"{(ba / bp - 1) * 100:+.1f} %")


if __name__ == "__main__":
    main()
