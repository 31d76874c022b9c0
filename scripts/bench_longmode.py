#!/usr/bin/env python3
"""Boot time of Debian's amd64 kernel on `v3 run` against QEMU TCG, side by side in one run.

Debian amd64 6.1 + busybox initramfs (`v3 mkguest`), kernel command line `console=ttyS0` only,
timed from process start until `v3 guest: busybox initramfs up` appears on the serial port:

1. from an isolinux CD: `v3 run --cdrom guest.iso` against `qemu-system-x86_64 -accel tcg
   -cdrom guest.iso` (each firmware, each loading the kernel through isolinux); `v3 run`
   decompresses the kernel on the host at isolinux's hand-off (vmm/boot/loaded.py), and the
   same again with `--no-host-decompress` (the kernel's own decompressor); then the same two
   for Debian's i386 (686) kernel on its own CD;
2. direct kernel boot of the bzImage: `v3 run --kernel vmlinuz --initrd initrd.img --append
   console=ttyS0` (the host decompresses the payload and enters it through PVH), and the same
   with `--no-host-decompress` (the boot protocol's 32-bit entry, the kernel's own
   decompressor), against `qemu-system-x86_64 -accel tcg -kernel vmlinuz -initrd ... -append`;
3. PVH: the vmlinux ELF (the bzImage's payload, decompressed once beforehand) as `--kernel`,
   against QEMU's `-kernel vmlinux` (QEMU enters an ELF through its PVH note as well).

5. (--xen) Debian's Xen hypervisor with the amd64 kernel as its PV dom0 and the initramfs,
   as multiboot modules: `v3 run --kernel xen-*.gz --initrd "vmlinuz console=hvc0,initrd.img"`
   against QEMU's `-kernel xen` (decompressed beforehand: QEMU's multiboot loader reads no
   gzip) with the same module list and Xen command line.

4. The LAPIC EOI exit: 10^6 stores to the EOI register (tests/guests/bench_eoi_lapic.asm, an
   MMIO exit each) against the same loop storing to RAM (bench_eoi_ram.asm), and, for
   comparison in the same run, 10^6 port exits to COM1 (bench_io_out.asm) against NOPs
   (bench_io_nop.asm); the guests time themselves with RDTSC (best of N, interleaved).

Both machines get -m 1024. The two engines run one after the other for each case, so they
share the host's load (/proc/loadavg is printed before and after). Usage:
python3 scripts/bench_longmode.py [--rounds N] [--only-exits] [--no-exits] [--xen]
Figures go to docs/performance.md ("Long mode: Debian amd64").
"""
import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
MARKER = "v3 guest: busybox initramfs up"
V3 = [sys.executable, "-m", "v3tools"]
QEMU = ["qemu-system-x86_64", "-accel", "tcg", "-m", "1024", "-display", "none", "-no-reboot"]


def guest_iso(tmp, arch):
    """Debian's `arch` kernel and busybox on an isolinux CD (`v3 mkguest`): (kernel, ISO)."""
    from v3tools import artefacts
    kernel = artefacts.debian_kernel(arch)
    busybox = artefacts.busybox_static(arch)
    iso = Path(tmp) / f"guest-{arch}.iso"
    subprocess.run(V3 + ["mkguest", "-o", str(iso), "--kernel", str(kernel), "--busybox",
                         str(busybox), "--append", "console=ttyS0"], check=True,
                   capture_output=True, cwd=ROOT)
    return kernel, iso


def build(tmp):
    import isoimage
    kernel, iso = guest_iso(tmp, "amd64")
    initrd = Path(tmp) / "initrd.img"
    initrd.write_bytes(isoimage.read_file_from_iso(iso, "/initrd.img"))
    from vmm.boot import linux, pvh
    _, elf = pvh.decompress_payload(linux.read_bzimage(kernel))
    vmlinux = Path(tmp) / "vmlinux"
    vmlinux.write_bytes(elf)
    return kernel, iso, initrd, vmlinux


def time_until_marker(cmd, serial, timeout=600):
    """bench_vmm's poll for the marker, after removing a serial file left by an earlier run."""
    sys.path.insert(0, str(ROOT / "scripts"))
    from bench_vmm import time_until_marker as poll
    serial = Path(serial)
    if serial.exists():
        serial.unlink()
    return poll(cmd, serial, timeout, cwd=ROOT)


def bench_exits(tmp, rounds):
    sys.path.insert(0, str(ROOT / "scripts"))
    from bench_vmm import floppy, run_in_process
    names = ("bench_eoi_ram", "bench_eoi_lapic", "bench_io_nop", "bench_io_out")
    images = {n: floppy(tmp, n) for n in names}
    best = {}
    for _ in range(rounds):
        for n in names:
            secs, _, _ = run_in_process(images[n])
            best[n] = min(best.get(n, secs), secs)
    eoi = (best["bench_eoi_lapic"] - best["bench_eoi_ram"]) / 1e6 * 1e6
    port = (best["bench_io_out"] - best["bench_io_nop"]) / 1e6 * 1e6
    print(f"\nExit costs (best of {rounds}, timed by guest RDTSC)\n")
    print("| what | measured | per exit |\n|---|---|---|")
    print(f"| 10^6 x store to RAM (reference) | {best['bench_eoi_ram']:.3f} s | |")
    print(f"| 10^6 x store to the LAPIC EOI register | {best['bench_eoi_lapic']:.3f} s | "
          f"{eoi:.2f} us |")
    print(f"| 10^6 x NOP (reference) | {best['bench_io_nop']:.3f} s | |")
    print(f"| 10^6 x OUT to COM1 (a port exit) | {best['bench_io_out']:.3f} s | {port:.2f} us |")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=1, help="best of N for each figure")
    ap.add_argument("--only-exits", action="store_true", help="just the exit costs (4)")
    ap.add_argument("--no-exits", action="store_true", help="just the boots (1-3)")
    ap.add_argument("--xen", action="store_true", help="just Xen with a PV dom0 (5)")
    ap.add_argument("--pvh-rounds", type=int, default=0,
                    help="just the PVH vmlinux boot, N interleaved rounds of QEMU and v3 "
                         "(each time and the median ratio)")
    args = ap.parse_args()
    if args.pvh_rounds < 0:
        ap.error(f"--pvh-rounds must not be negative (got {args.pvh_rounds})")
    if args.only_exits:
        with tempfile.TemporaryDirectory(prefix="v3bench-lm-") as tmp:
            bench_exits(tmp, max(args.rounds, 3))
        return
    if shutil.which("qemu-system-x86_64") is None:
        sys.exit("bench_longmode: qemu-system-x86_64 is not installed (Debian qemu-system-x86)")
    with tempfile.TemporaryDirectory(prefix="v3bench-lm-") as tmp:
        kernel, iso, initrd, vmlinux = build(tmp)
        serial = Path(tmp) / "serial.out"
        if args.pvh_rounds:
            pvh_rounds(linux_cases(kernel, iso, None, initrd, vmlinux, serial)[-1], serial,
                       args.pvh_rounds)
            return
        _, iso32 = guest_iso(tmp, "i386")
        if args.xen:
            cases = xen_cases(tmp, kernel, initrd, serial)
        else:
            cases = linux_cases(kernel, iso, iso32, initrd, vmlinux, serial)
        print(f"Boot of Debian amd64 ({Path(kernel).name}) and i386 + busybox to {MARKER!r}, "
              f"best of {args.rounds}; load before: {load()}\n")
        print("| case | what | measured | ratio |\n|---|---|---|---|")
        q = None
        for case, qname, qcmd, vname, vcmd in cases:
            fmt = lambda s: "did not reach the marker" if s is None else f"{s:.1f} s"
            if qcmd is not None:                   # else: the previous row's QEMU figure
                q = [time_until_marker(qcmd, serial) for _ in range(args.rounds)]
                q = min((x for x in q if x), default=None)
                print(f"| {case} | {qname} | {fmt(q)} | |")
            v = [time_until_marker(vcmd, serial) for _ in range(args.rounds)]
            v = min((x for x in v if x), default=None)
            ratio = f"{v / q:.2f}x QEMU's time" if q and v else ""
            print(f"| {case} | {vname} | {fmt(v)} | {ratio} |", flush=True)
        print(f"\nload after: {load()}")
        if not (args.no_exits or args.xen):
            bench_exits(tmp, max(args.rounds, 3))


def pvh_rounds(case, serial, rounds):
    """QEMU and v3 one after the other, `rounds` times: the figures and the median ratio."""
    _, _, qcmd, _, vcmd = case
    q, v = [], []
    print(f"PVH vmlinux boot to {MARKER!r}, {rounds} interleaved rounds; load before: {load()}")
    for r in range(rounds):
        q.append(time_until_marker(qcmd, serial))
        v.append(time_until_marker(vcmd, serial))
        if None in (q[-1], v[-1]):
            sys.exit(f"bench_longmode: round {r + 1}: "
                     f"{'QEMU' if q[-1] is None else 'v3'} did not reach the marker")
        print(f"round {r + 1}: QEMU {q[-1]:.2f} s, v3 {v[-1]:.2f} s", flush=True)
    med = lambda xs: sorted(xs)[len(xs) // 2]
    print(f"median: QEMU {med(q):.2f} s, v3 {med(v):.2f} s = {med(v) / med(q):.2f}x QEMU's "
          f"time (best against best {min(v) / min(q):.2f}x); load after: {load()}")


def load():
    return Path("/proc/loadavg").read_text().strip()


def xen_cases(tmp, kernel, initrd, serial):
    import gzip
    from v3tools import artefacts
    xen_gz = artefacts.xen_hypervisor()
    xen = Path(tmp) / "xen"
    xen.write_bytes(gzip.decompress(xen_gz.read_bytes()))
    modules = f"{kernel} console=hvc0,{initrd}"
    append = "console=com1 com1=115200,8n1 dom0_mem=256M noreboot"
    return [("Xen + PV dom0", "qemu-system-x86_64 -accel tcg -m 1024 -kernel xen -initrd "
             "\"vmlinuz console=hvc0,initrd.img\" -append",
             QEMU + ["-kernel", str(xen), "-initrd", modules, "-append", append,
                     "-serial", f"file:{serial}"],
             f"v3 run --kernel {xen_gz.name} --initrd ... --append (-m 1024)",
             V3 + ["run", "--kernel", str(xen_gz), "--initrd", modules, "--append", append,
                   "--serial", f"file:{serial}", "--until", MARKER])]


def linux_cases(kernel, iso, iso32, initrd, vmlinux, serial):
    cases = []
    for arch, cd in (("amd64", iso), ("i386", iso32)):
        run_cd = V3 + ["run", "--cdrom", str(cd), "--serial", f"file:{serial}", "--until",
                       MARKER]
        cases += [
            (f"isolinux CD, {arch}", "qemu-system-x86_64 -accel tcg -m 1024 -cdrom",
             QEMU + ["-cdrom", str(cd), "-serial", f"file:{serial}"],
             "v3 run --cdrom (-m 1024; host decompression at the hand-off)", run_cd),
            (f"isolinux CD, {arch}", "", None,
             "v3 run --cdrom --no-host-decompress (-m 1024)",
             run_cd + ["--no-host-decompress"]),
        ]
    cases += [
        ("direct kernel boot", "qemu-system-x86_64 -accel tcg -m 1024 -kernel -initrd -append",
         QEMU + ["-kernel", str(kernel), "-initrd", str(initrd), "-append", "console=ttyS0",
                 "-serial", f"file:{serial}"],
         "v3 run --kernel --initrd --append (-m 1024; host decompression, PVH)",
         V3 + ["run", "--kernel", str(kernel), "--initrd", str(initrd), "--append",
               "console=ttyS0", "--serial", f"file:{serial}", "--until", MARKER]),
        ("direct kernel boot", "qemu-system-x86_64 -accel tcg -m 1024 -kernel -initrd -append",
         None,
         "v3 run --kernel --initrd --append --no-host-decompress (-m 1024)",
         V3 + ["run", "--kernel", str(kernel), "--initrd", str(initrd), "--append",
               "console=ttyS0", "--no-host-decompress", "--serial", f"file:{serial}",
               "--until", MARKER]),
        ("PVH vmlinux", "qemu-system-x86_64 -accel tcg -m 1024 -kernel vmlinux -initrd -append",
         QEMU + ["-kernel", str(vmlinux), "-initrd", str(initrd), "-append",
                 "console=ttyS0", "-serial", f"file:{serial}"],
         "v3 run --kernel vmlinux --initrd --append (-m 1024)",
         V3 + ["run", "--kernel", str(vmlinux), "--initrd", str(initrd), "--append",
               "console=ttyS0", "--serial", f"file:{serial}", "--until", MARKER]),
    ]
    return cases


if __name__ == "__main__":
    main()
