#!/usr/bin/env python3
"""Benchmark `v3 build-vm` (v1 and v0) against `cat files > out` on >= 1 GiB of file data.

    python scripts/bench_build_vm.py [--mib 1024] [--files 4] [--repeat 2]

Writes the files into a temporary directory (removed afterwards), warms the page cache with a
first `cat`, then times each command `--repeat` times (best run kept) and prints the ratios.
Figures go to docs/performance.md.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time


def timed(cmd, **kw):
    start = time.perf_counter()
    subprocess.run(cmd, check=True, **kw)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=1024, help="total file data in MiB")
    parser.add_argument("--files", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()

    from guest_creator import hashing
    work = tempfile.mkdtemp(prefix="bench-build-vm-")
    try:
        names = []
        per_file = args.mib * (1 << 20) // args.files
        block = os.urandom(1 << 24)
        for i in range(args.files):
            name = os.path.join(work, f"f{i}.bin")
            with open(name, "wb") as fh:
                left = per_file
                while left:
                    fh.write(block[:min(left, len(block))])
                    left -= min(left, len(block))
            names.append(name)
        rows = "".join(f'<file id="f{i}" filename="f{i}.bin"/>' for i in range(args.files))
        cfg = os.path.join(work, "cfg.xml")
        with open(cfg, "w") as fh:
            fh.write(f"<vm><memory>256</memory><files>{rows}</files></vm>\n")
        out = os.path.join(work, "out.dat")
        v3 = [sys.executable, "-m", "v3tools"]

        def cat():
            with open(out, "wb") as sink:
                return timed(["cat", *names], stdout=sink)

        commands = {
            "cat": cat,
            "build-vm -v 1": lambda: timed([*v3, "build-vm", cfg, "-o", out, "-v", "1", "--quiet"]),
            "build-vm -v 0": lambda: timed([*v3, "build-vm", cfg, "-o", out, "-v", "0", "--quiet"]),
        }
        cat()  # warm the page cache
        best = {}
        for _ in range(args.repeat):
            for label, run in commands.items():
                os.path.exists(out) and os.unlink(out)
                best[label] = min(best.get(label, float("inf")), run())
        total = args.files * per_file
        print(f"{total / (1 << 30):.2f} GiB in {args.files} files; C hash: {hashing.FAST}; "
              f"best of {args.repeat}")
        for label, seconds in best.items():
            print(f"  {label:14s} {seconds:6.2f} s  {total / seconds / (1 << 20):7.0f} MiB/s  "
                  f"{seconds / best['cat']:5.2f}x cat")
    finally:
        shutil.rmtree(work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
