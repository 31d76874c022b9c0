#!/usr/bin/env python3
"""Benchmarks of `v3 run`, each measured side by side with its reference in one run.

1. Port-I/O exit cost: 10^6 `out dx, al` to COM1 (and to port 0x80, an ignored port) against
   the same boot sector with a NOP in place of the OUT; (t_out - t_nop) / 10^6 is one exit.
2. Guest compute: a 3x10^8-iteration arithmetic loop under `v3 run` against the same bytes
   under a bare Unicorn engine (UC_MODE_32, no hooks).
3. Boot time to the Linux marker: `v3 run --cdrom guest.iso --until MARKER` against QEMU TCG
   booting the same ISO, polled until the marker appears in its serial file.
4. Peak host RSS of a -m 1024 guest that touches 16 MiB, against the same guest with -m 32.

The tiny guests are tests/guests/bench_*.asm (boot sectors; rebuild: scripts/build-test-guests).
They time themselves with RDTSC (the host TSC in both engines) and leave the TSC values at
guest-physical 0x500, so start-up and BIOS time are not counted in 1 and 2.

Usage: python3 scripts/bench_vmm.py [--rounds N] [--skip-boot | --boot-only]
                                   [--kernel-package linux-image-686-pae]
Figures go to docs/performance.md ("v3 run").
"""
import argparse
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GUESTS = ROOT / "tests" / "guests"
FLOPPY_SIZE = 1440 * 1024
EXITS = 1_000_000
MARKER = "v3 guest: busybox initramfs up"
V3 = [sys.executable, "-m", "v3tools"]


def floppy(tmp, name):
    """A 1.44 MB floppy image whose boot sector is tests/guests/<name>.bin."""
    sector = (GUESTS / f"{name}.bin").read_bytes()
    if len(sector) != 512 or sector[510:] != b"\x55\xaa":
        sys.exit(f"tests/guests/{name}.bin is not a boot sector; run scripts/build-test-guests")
    path = Path(tmp) / f"{name}.img"
    path.write_bytes(sector + bytes(FLOPPY_SIZE - 512))
    return str(path)


def tsc_seconds(t0, t1):
    from vmm.clock import measure_tsc_hz
    return (t1 - t0) / measure_tsc_hz()


def run_in_process(image, **extra):
    """Boot a floppy image with vmm.launch.run; returns (guest-timed seconds, wall, memory@0x500)."""
    from vmm.launch import RunOptions, run
    t = time.perf_counter()
    result, machine = run(RunOptions(fda=image, serial="null", **extra))
    wall = time.perf_counter() - t
    if result.status != 0:
        sys.exit(f"{image}: v3 run ended with {result}")
    mem = bytes(machine.uc.mem_read(0x500, 24))
    t0, t1 = struct.unpack_from("<QQ", mem)
    return tsc_seconds(t0, t1), wall, mem


# -- 1 ---------------------------------------------------------------------------------------------
def bench_port_io(tmp, rounds):
    names = ("bench_io_nop", "bench_io_out", "bench_io_port80")
    images = {n: floppy(tmp, n) for n in names}
    best = {}
    for _ in range(rounds):                       # interleaved, best of N: less hurt by other load
        for n in names:
            secs, wall, _ = run_in_process(images[n])
            best[n] = min(best.get(n, secs), secs)
    per_exit = {n: (best[n] - best["bench_io_nop"]) / EXITS * 1e6 for n in names[1:]}
    rows = [("10^6 x NOP (reference)", f"{best['bench_io_nop']:.3f} s", ""),
            ("10^6 x OUT COM1 THR 0x3F8", f"{best['bench_io_out']:.3f} s",
             f"{per_exit['bench_io_out']:.2f} us per exit"),
            ("10^6 x OUT 0x80 (ignored port)", f"{best['bench_io_port80']:.3f} s",
             f"{per_exit['bench_io_port80']:.2f} us per exit")]
    return rows, per_exit


# -- 2 ---------------------------------------------------------------------------------------------
def bare_unicorn(code):
    """The benchmark bytes of bench_compute under a plain Uc (no hooks); returns (s, checksum)."""
    from unicorn import Uc, UC_ARCH_X86, UC_MODE_32
    from unicorn import x86_const as X
    begin, end = struct.unpack_from("<II", code, 0x1F6)
    uc = Uc(UC_ARCH_X86, UC_MODE_32)
    uc.mem_map(0, 0x10000)
    uc.mem_write(0x7C00, code)
    uc.reg_write(X.UC_X86_REG_ESP, 0x7C00)
    uc.emu_start(begin, end)
    mem = bytes(uc.mem_read(0x500, 24))
    t0, t1 = struct.unpack_from("<QQ", mem)
    return tsc_seconds(t0, t1), mem[16:]


def bench_compute(tmp, rounds):
    image = floppy(tmp, "bench_compute")
    code = (GUESTS / "bench_compute.bin").read_bytes()
    v3_best = bare_best = None
    for _ in range(rounds):
        v3_s, _, mem = run_in_process(image)
        bare_s, checksum = bare_unicorn(code)
        if mem[16:] != checksum:
            sys.exit(f"bench_compute: checksums differ: v3 {mem[16:].hex()} bare {checksum.hex()}")
        v3_best = min(v3_best or v3_s, v3_s)
        bare_best = min(bare_best or bare_s, bare_s)
    ratio = bare_best / v3_best
    rows = [("bare Unicorn, UC_MODE_32, no hooks", f"{bare_best:.3f} s", ""),
            ("v3 run (same bytes, same loop)", f"{v3_best:.3f} s",
             f"{ratio * 100:.0f} % of bare Unicorn speed")]
    return rows, ratio


# -- 3 ---------------------------------------------------------------------------------------------
def build_guest_iso(tmp, package=None):
    from v3tools import artefacts
    kernel = artefacts.debian_kernel("i386", package)
    busybox = artefacts.busybox_static("i386")
    iso = str(Path(tmp) / "guest.iso")
    subprocess.run(V3 + ["mkguest", "-o", iso, "--kernel", str(kernel), "--busybox", str(busybox),
                         "--append", "console=ttyS0"], check=True, capture_output=True)
    return iso


def time_until_marker(cmd, serial_path, timeout, cwd=None, marker=MARKER):
    """Start cmd, poll serial_path for marker, kill the process once it is there."""
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, cwd=cwd)
    try:
        while time.perf_counter() - t < timeout:
            try:
                if marker.encode() in Path(serial_path).read_bytes():
                    return time.perf_counter() - t
            except FileNotFoundError:
                pass
            if proc.poll() is not None:
                break
            time.sleep(0.05)
        return None
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def bench_boot(tmp, package=None):
    iso = build_guest_iso(tmp, package)
    v3_serial, q_serial = str(Path(tmp) / "v3.serial"), str(Path(tmp) / "qemu.serial")
    v3_s = time_until_marker(V3 + ["run", "--cdrom", iso, "--serial", f"file:{v3_serial}",
                                   "--until", MARKER], v3_serial, 240)
    q_s = time_until_marker(["qemu-system-x86_64", "-accel", "tcg", "-m", "1024", "-cdrom", iso,
                             "-serial", f"file:{q_serial}", "-display", "none", "-no-reboot"],
                            q_serial, 120)
    fmt = lambda s: "did not reach the marker" if s is None else f"{s:.1f} s"
    ratio = v3_s / q_s if v3_s and q_s else None
    rows = [("qemu-system-x86_64 -accel tcg -m 1024", fmt(q_s), ""),
            ("v3 run --cdrom (-m 1024)", fmt(v3_s),
             f"{ratio:.2f}x QEMU's time" if ratio else "")]
    return rows, ratio


# -- 4 ---------------------------------------------------------------------------------------------
# A fresh helper starts `v3 run` and reports RUSAGE_CHILDREN: the v3 process is then forked
# from the small helper. Started directly from this script, the child would inherit this
# process's own high-water mark (Linux carries ru_maxrss across fork and exec).
_RSS_HELPER = """
import resource, subprocess, sys
rc = subprocess.run(sys.argv[1:], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL).returncode
print(rc, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def peak_rss_mb(args):
    """Peak RSS in MiB of one `v3 run ARGS` process."""
    out = subprocess.run([sys.executable, "-c", _RSS_HELPER] + V3 + ["run"] + args,
                         capture_output=True, text=True, check=True).stdout.split()
    if out[0] != "0":
        sys.exit(f"v3 run {' '.join(args)}: exit status {out[0]}")
    return int(out[1]) / 1024


def bench_rss(tmp):
    touch, idle = floppy(tmp, "bench_touch"), floppy(tmp, "bench_io_nop")
    big = peak_rss_mb(["-m", "1024", "--fda", touch, "--serial", "null"])
    small = peak_rss_mb(["-m", "32", "--fda", touch, "--serial", "null"])
    untouched = peak_rss_mb(["-m", "1024", "--fda", idle, "--serial", "null"])
    rows = [("-m 32, touches 16 MiB (baseline)", f"{small:.1f} MiB", ""),
            ("-m 1024, touches 16 MiB", f"{big:.1f} MiB", f"{big - small:+.1f} MiB vs -m 32"),
            ("-m 1024, touches nothing (bench_io_nop)", f"{untouched:.1f} MiB",
             f"{big - untouched:+.1f} MiB for the 16 MiB touched")]
    return rows, (small, big)


def print_table(title, rows):
    print(f"\n{title}\n")
    print("| what | measured | note |\n|---|---|---|")
    for what, value, note in rows:
        print(f"| {what} | {value} | {note} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3, help="best of N for benchmarks 1 and 2")
    ap.add_argument("--skip-boot", action="store_true", help="leave out the Linux boot (3)")
    ap.add_argument("--boot-only", action="store_true", help="only the Linux boot (3)")
    ap.add_argument("--kernel-package", default=None,
                    help="the Debian i386 kernel metapackage for 3 (default linux-image-686; "
                         "e.g. linux-image-686-pae)")
    args = ap.parse_args()
    started = time.perf_counter()
    if args.boot_only:
        with tempfile.TemporaryDirectory(prefix="v3bench-") as tmp:
            rows, _ = bench_boot(tmp, args.kernel_package)
            print_table(f"3. Boot to {MARKER!r} ({args.kernel_package or 'linux-image-686'} "
                        f"+ busybox, v3 mkguest)", rows)
        print(f"\nwhole script: {time.perf_counter() - started:.0f} s")
        return
    with tempfile.TemporaryDirectory(prefix="v3bench-") as tmp:
        rows, per_exit = bench_port_io(tmp, args.rounds)
        print_table(f"1. Port-I/O exit cost (best of {args.rounds}, timed by guest RDTSC)", rows)
        rows, ratio = bench_compute(tmp, args.rounds)
        print_table(f"2. Guest compute, 3x10^8 iterations (best of {args.rounds})", rows)
        if args.skip_boot:
            print("\n3. Boot to the Linux marker: skipped (--skip-boot)")
        elif shutil.which("qemu-system-x86_64") is None:
            print("\n3. Boot to the Linux marker: skipped (qemu-system-x86_64 not installed)")
        else:
            rows, boot_ratio = bench_boot(tmp)
            print_table(f"3. Boot to {MARKER!r} (Debian i386 kernel + busybox, v3 mkguest)", rows)
        rows, _ = bench_rss(tmp)
        print_table("4. Peak host RSS (ru_maxrss of the v3 run process)", rows)
    print(f"\nwhole script: {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
