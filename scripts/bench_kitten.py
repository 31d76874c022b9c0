#!/usr/bin/env python3
"""Boot time of Kitten (the lightweight kernel) to its init_task on `v3 run` against QEMU TCG,
side by side in one run.

Timed from process start until `Loading initial user-level task (init_task)...` appears on the
serial port, for a Kitten build made by scripts/build_kitten.py (the directory is the argument):

1. Kitten's own CD: `v3 run --cdrom image.iso` against `qemu-system-x86_64 -accel tcg -smp 1
   -m 1024 -cdrom image.iso` (each with its firmware and isolinux);
2. direct kernel boot: `v3 run --kernel bzImage --initrd init_task --append CMDLINE` against
   `qemu-system-x86_64 -accel tcg -kernel bzImage -initrd init_task -append CMDLINE`;
3. the CD `v3 isoimage --kernel bzImage --initrd init_task --append CMDLINE` makes (Kitten's
   layout, plus a SERIAL line for isolinux), booted by both as in 1.

Both machines get -m 1024. QEMU and v3 run one after the other for each case, so they share the
host's load; each figure is the best of --rounds. The load average is printed with the table.
Usage: python3 scripts/bench_kitten.py KITTEN_BUILD [--rounds N]
Figures go to docs/performance.md ("Kitten").
"""
import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from bench_longmode import QEMU, V3  # noqa: E402

MARKER = "Loading initial user-level task (init_task)..."


def time_until_marker(cmd, serial):
    import bench_vmm
    serial = Path(serial)
    if serial.exists():
        serial.unlink()
    return bench_vmm.time_until_marker(cmd, serial, 600, cwd=ROOT, marker=MARKER)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("build", type=Path, help="directory written by scripts/build_kitten.py")
    ap.add_argument("--rounds", type=int, default=3, help="best of N for each figure")
    args = ap.parse_args()
    b = args.build.resolve()
    for f in ("image.iso", "bzImage", "init_task", "cmdline"):
        if not (b / f).is_file():
            sys.exit(f"bench_kitten: error: {b}: no {f} (run scripts/build_kitten.py first)")
    iso, kernel, initrd = str(b / "image.iso"), str(b / "bzImage"), str(b / "init_task")
    cmdline = (b / "cmdline").read_text().strip()
    with tempfile.TemporaryDirectory() as tmp:
        serial = Path(tmp) / "serial.out"
        v3iso = str(Path(tmp) / "v3.iso")
        subprocess.run(V3 + ["isoimage", "--kernel", kernel, "--initrd", initrd, "--append",
                             cmdline, "-o", v3iso], check=True, capture_output=True, cwd=ROOT)
        cases = [
            ("Kitten's CD", "qemu-system-x86_64 -accel tcg -smp 1 -m 1024 -cdrom image.iso",
             QEMU + ["-smp", "1", "-cdrom", iso, "-serial", f"file:{serial}"],
             "v3 run --cdrom image.iso (-m 1024)",
             V3 + ["run", "--cdrom", iso, "--serial", f"file:{serial}", "--until", MARKER]),
            ("direct kernel", "qemu-system-x86_64 -accel tcg -smp 1 -m 1024 -kernel bzImage "
             "-initrd init_task -append ...",
             QEMU + ["-smp", "1", "-kernel", kernel, "-initrd", initrd, "-append", cmdline,
                     "-serial", f"file:{serial}"],
             "v3 run --kernel bzImage --initrd init_task --append ... (-m 1024)",
             V3 + ["run", "--kernel", kernel, "--initrd", initrd, "--append", cmdline,
                   "--serial", f"file:{serial}", "--until", MARKER]),
            ("v3 isoimage CD", "qemu-system-x86_64 -accel tcg -smp 1 -m 1024 -cdrom v3.iso",
             QEMU + ["-smp", "1", "-cdrom", v3iso, "-serial", f"file:{serial}"],
             "v3 run --cdrom v3.iso (-m 1024)",
             V3 + ["run", "--cdrom", v3iso, "--serial", f"file:{serial}", "--until", MARKER]),
        ]
        load = Path("/proc/loadavg").read_text().split()[:3]
        print(f"Kitten boot to {MARKER!r}, best of {args.rounds}; load average before: "
              f"{' '.join(load)}\n")
        print("| case | what | measured | ratio |\n|---|---|---|---|")
        fmt = lambda s: "did not reach the marker" if s is None else f"{s:.1f} s"
        for case, qname, qcmd, vname, vcmd in cases:
            q = v = None
            for _ in range(args.rounds):                  # interleaved: both see the same load
                q = min(filter(None, [q, time_until_marker(qcmd, serial)]), default=None)
                v = min(filter(None, [v, time_until_marker(vcmd, serial)]), default=None)
            ratio = f"{v / q:.2f}x QEMU's time" if q and v else ""
            print(f"| {case} | {qname} | {fmt(q)} | |")
            print(f"| {case} | {vname} | {fmt(v)} | {ratio} |", flush=True)
        load = Path("/proc/loadavg").read_text().split()[:3]
        print(f"\nload average after: {' '.join(load)}")


if __name__ == "__main__":
    main()
