#!/usr/bin/env python3
"""Boot once, start many: Debian's i386 kernel (direct boot, busybox initramfs) booted cold to
its /init marker against the same guest started from a VM snapshot taken there, in one process.

Prints the cold boot, the save, and the best of N restores (snapshot.load until the guest runs
again), with the snapshot's size, and the ratio cold boot / restore.

Usage: python3 scripts/bench_snapshot.py [--rounds N] [-m MB]
Figures go to docs/snapshots.md.
"""
import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

MARKER = "v3 guest: busybox initramfs up"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("-m", "--memory", type=int, default=256, help="guest memory in MB (256)")
    args = ap.parse_args()
    from guest_creator.mkguest import mkguest
    from isoimage import read_file_from_iso
    from v3tools import artefacts
    from vmm.context import Console
    from vmm.debug import snapshot
    from vmm.launch import RunOptions, build_machine, plan
    from vmm.log import VMMLog
    kernel = artefacts.debian_kernel("i386")
    busybox = artefacts.busybox_static("i386")
    with tempfile.TemporaryDirectory(prefix="v3snapbench-") as tmp:
        iso = Path(tmp) / "guest.iso"
        mkguest(iso, kernel=kernel, busybox=busybox, append="console=ttyS0")
        initrd = Path(tmp) / "initrd.img"
        initrd.write_bytes(read_file_from_iso(str(iso), "/initrd.img"))
        opts = RunOptions(kernel=str(kernel), initrd=str(initrd), append="console=ttyS0",
                          serial="null", memory_mb=args.memory)
        p = plan(opts)
        t = time.perf_counter()
        m = build_machine(p, opts, Console(None), VMMLog())
        m.run(timeout=240, until=MARKER)
        cold = time.perf_counter() - t
        snap = Path(tmp) / "booted.v3snap"
        t = time.perf_counter()
        snapshot.save(m, snap)
        saved = time.perf_counter() - t
        m.close()
        best = None
        for _ in range(args.rounds):
            t = time.perf_counter()
            m = build_machine(p, opts, Console(None), VMMLog())
            snapshot.load(m, snap)
            dt = time.perf_counter() - t
            best = dt if best is None else min(best, dt)
            m.close()
        size = os.path.getsize(snap)
    print("| what | time |")
    print("|---|---|")
    print(f"| cold boot to the marker (-m {args.memory}) | {cold:.2f} s |")
    print(f"| save ({size / 1e6:.1f} MB file) | {saved:.2f} s |")
    print(f"| restore: build the machine + load (best of {args.rounds}) | {best:.2f} s |")
    print(f"\ncold boot / restore: {cold / best:.0f}x")


if __name__ == "__main__":
    main()
