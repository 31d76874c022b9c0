#!/usr/bin/env python3
"""Build Kitten (Sandia's lightweight kernel, x86_64) for `v3 run`, as a user would.

Kitten is not part of this project and is not a Debian package: get its source from the Kitten
repository (HobbesOSR/kitten on GitHub; commit 5aa964f is the one checked; the newest, 7748bf8,
does not build for x86_64; see docs/run.md, "Kitten"), e.g. `git clone` it and check out
5aa964f, or export that tree with `git archive 5aa964f`, and pass the directory:

    python3 scripts/build_kitten.py KITTEN_SRC [-o OUT] [-j N]

The source directory is left untouched: it is copied to OUT/src and built there. Steps:

1. `make defconfig` (arch/x86_64/defconfig), then CONFIG_KERNEL_ARGS="console=serial" (the
   defconfig's console=vga,serial) and `make oldconfig` with the defaults for new symbols;
2. user/hello_world (the init_task): its own `static pid_t gettid(void)` is removed, since
   glibc 2.30 and later declare gettid() in <unistd.h> and the two clash;
3. `make -jN CFLAGS_KERNEL=-fno-tree-loop-distribute-patterns isoimage`: without the flag, GCC
   (12) turns the loop inside Kitten's own memset into a call to memset, itself, and the kernel
   recurses until it dies, before its first message;
4. Kitten's `isoimage` target copies isolinux.bin from the host but looks for ldlinux.c32, which
   isolinux 5 and later load at start, only in /usr/lib/syslinux; Debian has it in
   /usr/lib/syslinux/modules/bios. A `mkisofs` placed first on PATH for the build copies it
   into the CD tree before running the real genisoimage/mkisofs, so image.iso boots.

OUT (default ./kitten-build) then holds what `v3 run` and QEMU take:
    image.iso     Kitten's CD (isolinux, `lwk` = bzImage, `initrd.img` = init_task)
    bzImage       the kernel (Linux boot protocol) for `v3 run --kernel`
    init_task     the initial user-level task (ELF), for `--initrd`
    vmlwk         the kernel's ELF image (symbols, for gdb)
    cmdline       the kernel arguments the CD passes, for `--append`
The tests read OUT through V3_KITTEN=OUT (tests/vmm/test_kitten.py).

Needs (Debian): build-essential genisoimage isolinux syslinux-common.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

KERNEL_ARGS = "console=serial"
CFLAGS_KERNEL = "-fno-tree-loop-distribute-patterns"
LDLINUX_DIRS = ("/usr/lib/syslinux/modules/bios", "/usr/lib/syslinux", "/usr/lib/syslinux/bios",
                "/usr/share/syslinux", "/usr/lib/ISOLINUX")
GETTID = re.compile(r"(?:// Glibc doesn't provide a wrapper[^\n]*\n)?"
                    r"static pid_t\s*\ngettid\s*\(\s*void\s*\)\s*\{[^}]*\}\n")
OUTPUTS = {"image.iso": "arch/x86_64/boot/image.iso", "bzImage": "arch/x86_64/boot/bzImage",
           "init_task": "init_task", "vmlwk": "vmlwk"}


def fail(msg):
    sys.exit(f"build_kitten: error: {msg}")


def find_ldlinux():
    for d in LDLINUX_DIRS:
        p = Path(d) / "ldlinux.c32"
        if p.is_file():
            return p
    fail("ldlinux.c32 not found (Debian: apt-get install syslinux-common isolinux)")


def check_tools():
    missing = [t for t in ("make", "gcc", "ld") if shutil.which(t) is None]
    if missing:
        fail(f"{', '.join(missing)} not found (Debian: apt-get install build-essential)")
    iso_tool = shutil.which("genisoimage") or shutil.which("mkisofs")
    if iso_tool is None:
        fail("genisoimage/mkisofs not found (Debian: apt-get install genisoimage)")
    return Path(iso_tool).resolve(), find_ldlinux()


def set_config(config, name, value):
    text = config.read_text()
    line = f'{name}="{value}"'
    text, n = re.subn(rf"^(# )?{name}[= ].*$", line, text, flags=re.M)
    config.write_text(text if n else text + line + "\n")


def drop_gettid(src):
    hello = src / "user" / "hello_world" / "hello_world.c"
    text = hello.read_text()
    new, n = GETTID.subn("", text)
    if n:
        hello.write_text(new)
    return n


def mkisofs_shim(tmp, iso_tool, ldlinux):
    """A `mkisofs` that adds ldlinux.c32 to the CD tree (its last argument), then runs the real
    tool; Kitten's Makefile finds it through PATH."""
    shim = Path(tmp) / "mkisofs"
    shim.write_text('#!/bin/sh\nfor last; do :; done\n'
                    f'cp "{ldlinux}" "$last"/ || exit 1\nexec "{iso_tool}" "$@"\n')
    shim.chmod(0o755)
    return str(tmp)


def make(src, *args, env=None, stdin=None, log=None):
    r = subprocess.run(["make", *args], cwd=src, env=env, input=stdin, text=True,
                       stdout=log, stderr=subprocess.STDOUT)
    if r.returncode != 0:
        fail(f"make {' '.join(args)} failed (exit {r.returncode}); see {log.name}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("source", type=Path, help="Kitten source tree (from the Kitten repository)")
    ap.add_argument("-o", "--output", type=Path, default=Path("kitten-build"),
                    help="build directory (default ./kitten-build)")
    ap.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 1)
    a = ap.parse_args(argv)
    src_in = a.source.resolve()
    if not (src_in / "arch" / "x86_64" / "defconfig").is_file() or \
            not (src_in / "user" / "hello_world").is_dir():
        fail(f"{a.source}: not a Kitten source tree (no arch/x86_64/defconfig, user/hello_world)")
    out = a.output.resolve()
    if out == src_in or src_in in out.parents:
        fail(f"-o {a.output}: must not be inside the source tree")
    if out.exists() and any(out.iterdir()):
        fail(f"-o {a.output}: exists and is not empty")
    iso_tool, ldlinux = check_tools()

    out.mkdir(parents=True, exist_ok=True)
    src = out / "src"
    shutil.copytree(src_in, src, symlinks=True, ignore=shutil.ignore_patterns(".git"))
    log_path = out / "build.log"
    with open(log_path, "w") as log, tempfile.TemporaryDirectory() as tmp:
        print(f"building Kitten from {src_in} in {src} (log: {log_path})")
        make(src, "defconfig", log=log)
        set_config(src / ".config", "CONFIG_KERNEL_ARGS", KERNEL_ARGS)
        make(src, "oldconfig", stdin="\n" * 2000, log=log)
        if drop_gettid(src):
            print("user/hello_world: removed its gettid(), which clashes with glibc's")
        env = dict(os.environ, PATH=mkisofs_shim(tmp, iso_tool, ldlinux) + os.pathsep
                   + os.environ.get("PATH", ""))
        make(src, f"-j{a.jobs}", f"CFLAGS_KERNEL={CFLAGS_KERNEL}", "isoimage", env=env, log=log)
    for name, rel in OUTPUTS.items():
        if not (src / rel).is_file():
            fail(f"the build left no {rel}; see {log_path}")
        shutil.copy2(src / rel, out / name)
    cfg = subprocess.run(["isoinfo", "-R", "-x", "/isolinux.cfg", "-i", str(out / "image.iso")],
                         capture_output=True, text=True)
    line = next((x for x in cfg.stdout.splitlines() if x.startswith("default lwk ")), None)
    if line is None:
        fail("image.iso has no `default lwk` line in isolinux.cfg")
    cmdline = line[len("default lwk "):].replace(" initrd=initrd.img", "").strip()
    (out / "cmdline").write_text(cmdline + "\n")
    print(f"done: {out}/image.iso, bzImage, init_task, vmlwk, cmdline ({cmdline})")
    print(f"  v3 run --serial file:serial.out --cdrom {out}/image.iso")
    print(f"  v3 run --serial file:serial.out --kernel {out}/bzImage --initrd {out}/init_task "
          f"--append '{cmdline}'")
    return 0


if __name__ == "__main__":
    sys.exit(main())
