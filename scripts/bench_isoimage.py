#!/usr/bin/env python3
"""Benchmark: `isoimage.build_iso` against `xorriso -as mkisofs` on the same inputs.

Both make an isolinux CD of isolinux.bin, ldlinux.c32, isolinux.cfg, the lwk stub and a guest
image of --size MiB (random bytes after the v3vee header, so nothing is compressible), with a
4-sector no-emulation boot entry and a boot info table. One run each (after one warm-up of each
to fill the page cache); prints the times, the ratio, and a Markdown section for
docs/performance.md (--append-doc appends it there).

    python3 scripts/bench_isoimage.py --size 100 [--append-doc]
"""
import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import isoimage                                   # noqa: E402
from isoimage import layout                       # noqa: E402
from isoimage.isolinux import find_isolinux, find_ldlinux  # noqa: E402

DOC = Path(__file__).resolve().parent.parent / "docs" / "performance.md"


def make_guest(path, mib):
    """A valid v0 guest image (build_iso checks it as `v3 inspect` does) of one random file."""
    from guest_creator.image import encode_header
    xml = b'<vm><files><file id="data" filename="data" index="0"></file></files></vm>'
    with open(path, "wb") as f:
        f.write(encode_header(xml, [mib << 20], [0], 0))
        for _ in range(mib):
            f.write(os.urandom(1 << 20))


def run_v3(out, guest):
    isoimage.build_iso(out, guest=guest)


def run_xorriso(xorriso, out, guest, tree):
    shutil.rmtree(tree, ignore_errors=True)
    os.makedirs(tree)
    isolinux = find_isolinux()
    shutil.copy(isolinux, tree / layout.ISOLINUX_BIN)
    ldlinux = find_ldlinux(isolinux)
    if ldlinux:
        shutil.copy(ldlinux, tree / layout.LDLINUX_C32)
    (tree / layout.ISOLINUX_CFG).write_text(layout.isolinux_cfg())
    shutil.copy(isoimage.STUB_KERNEL, tree / layout.KERNEL_NAME)
    os.link(guest, tree / layout.INITRD_NAME)       # no copy: xorriso reads the same file
    subprocess.run([xorriso, "-as", "mkisofs", "-quiet", "-o", str(out), "-J", "-R",
                    "-b", layout.ISOLINUX_BIN, "-c", layout.BOOT_CAT, "-no-emul-boot",
                    "-boot-load-size", "4", "-boot-info-table", str(tree)], check=True,
                   stderr=subprocess.DEVNULL)


def timed(fn, *args):
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=100, help="guest image size in MiB")
    parser.add_argument("--append-doc", action="store_true", help=f"append the section to {DOC}")
    args = parser.parse_args()
    xorriso = shutil.which("xorriso")
    if xorriso is None:
        sys.exit("xorriso not found (Debian package xorriso)")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        guest = tmp / "image.dat"
        make_guest(guest, args.size)
        run_v3(tmp / "warm.iso", guest)
        run_xorriso(xorriso, tmp / "warm-x.iso", guest, tmp / "tree")
        t_v3 = timed(run_v3, tmp / "v3.iso", guest)
        t_x = timed(run_xorriso, xorriso, tmp / "x.iso", guest, tmp / "tree")
        size_v3, size_x = (tmp / "v3.iso").stat().st_size, (tmp / "x.iso").stat().st_size
    ratio = t_v3 / t_x
    section = f"""
## isoimage

`scripts/bench_isoimage.py --size {args.size}`: an isolinux CD holding a {args.size} MiB guest image
(plus isolinux.bin, ldlinux.c32, isolinux.cfg and the lwk stub), one timed run each after one
warm-up, on {platform.machine()} with Python {platform.python_version()}, pycdlib {_version('pycdlib')}
and {_xorriso_version(xorriso)}.

| tool | time | ISO size |
|---|---|---|
| `v3 isoimage` (isoimage.build_iso, pycdlib) | {t_v3:.2f} s | {size_v3} bytes |
| `xorriso -as mkisofs -J -R -b isolinux.bin -no-emul-boot -boot-load-size 4 -boot-info-table` | {t_x:.2f} s | {size_x} bytes |

Ratio v3 / xorriso: **{ratio:.2f}x** (below 1: v3 is faster). Both are dominated by copying the
guest image (pycdlib copies file data with large block copies). On a shared machine the ratio
varies from run to run: take it as an order of magnitude.
"""
    print(section)
    if args.append_doc:
        DOC.parent.mkdir(exist_ok=True)
        with open(DOC, "a") as f:
            if not DOC.exists() or DOC.stat().st_size == 0:
                f.write("# Performance\n")
            f.write(section)
    return 0


def _version(dist):
    from importlib.metadata import version
    return version(dist)


def _xorriso_version(xorriso):
    out = subprocess.run([xorriso, "-version"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         text=True).stdout.splitlines()
    return out[0].split(":")[0].strip() if out else "xorriso"


if __name__ == "__main__":
    sys.exit(main())
