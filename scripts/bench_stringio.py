#!/usr/bin/env python3
"""REP INSD cost: `v3 run` (with and without the block path of vmm/cpu/stringio.py) against QEMU
TCG in one run, in ns per byte.

tests/guests/bench_stringio.asm is the boot sector of a 1 MiB disk: it reads 64 x 128 KiB from
the primary IDE disk with READ MULTIPLE (16-sector DRQ blocks, one `rep insd` of 2048 dwords
each), timed with RDTSC (the host TSC under both VMMs), and prints the elapsed ticks on COM1.
The per-element figure is v3 with the block path switched off (every element an exit).

    python3 scripts/bench_stringio.py [--rounds 3]
Figures go to docs/performance.md ("String I/O").
"""
import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BYTES = 64 * 128 * 1024


def disk(tmp):
    sector = (ROOT / "tests" / "guests" / "bench_stringio.bin").read_bytes()
    if len(sector) != 512 or sector[510:] != b"\x55\xaa":
        sys.exit("tests/guests/bench_stringio.bin is not a boot sector; run "
                 "scripts/build-test-guests")
    path = Path(tmp) / "disk.img"
    path.write_bytes(sector + bytes(range(256)) * (4096 - 2))
    return path


def ticks(serial):
    text = Path(serial).read_text(errors="replace").strip().splitlines()
    return int(text[-1], 16)


def v3(img, tmp, blocks):
    serial = Path(tmp) / f"v3-{blocks}.serial"
    code = ("import sys; sys.argv[1:] = []\n"
            "from vmm.cpu import stringio\n"
            + ("" if blocks else "stringio.StringIO.ins = lambda *a: None\n"
                                 "stringio.StringIO.outs = lambda *a: False\n")
            + f"from vmm.launch import RunOptions, run\n"
              f"r, m = run(RunOptions(hda={str(img)!r}, serial='file:{serial}', timeout=600))\n"
              f"assert r.status == 0, r\n")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True,
                   env=dict(os.environ, PYTHONPATH=str(ROOT)))
    return ticks(serial)


def qemu(img, tmp):
    serial = Path(tmp) / "qemu.serial"
    subprocess.run(["qemu-system-x86_64", "-accel", "tcg", "-m", "64", "-display", "none",
                    "-no-reboot", "-monitor", "none", "-serial", f"file:{serial}",
                    "-drive", f"file={img},format=raw,if=ide"], check=True, timeout=600)
    return ticks(serial)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    from vmm.clock import measure_tsc_hz
    hz = measure_tsc_hz()
    best = {}
    with tempfile.TemporaryDirectory(prefix="v3bench-strio-") as tmp:
        img = disk(tmp)
        for _ in range(args.rounds):               # interleaved, best of N
            for name, fn in (("QEMU TCG", lambda: qemu(img, tmp)),
                             ("v3, block path", lambda: v3(img, tmp, True)),
                             ("v3, element by element", lambda: v3(img, tmp, False))):
                t = fn()
                best[name] = min(best.get(name, t), t)
    q = best["QEMU TCG"]
    print(f"| rep insd from the IDE data port, {BYTES >> 20} MiB | ns per byte | vs QEMU |")
    print("|---|---|---|")
    for name, t in best.items():
        ns = t / hz / BYTES * 1e9
        print(f"| {name} | {ns:.1f} | {q / t:.2f}x |")


if __name__ == "__main__":
    main()
