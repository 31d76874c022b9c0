"""`v3 mkguest`: a busybox initramfs and an isolinux CD that boots it with a Linux kernel.

The initramfs is a gzip'd newc cpio (guest_creator.cpio) holding the usual directories, the
device nodes a console needs (/dev/console, /dev/null, /dev/tty*, ...), a static busybox with one
symlink per applet, an /init script and any extra files. The CD is made by isoimage.build_iso.
"""
import glob
import os
import re
import shutil
import struct
import subprocess
import tempfile
from dataclasses import dataclass, field

import isoimage
from isoimage.bootfiles import check_append, check_isolinux, check_kernel
from isoimage.isolinux import find_isolinux, isolinux_version
from guest_creator.cpio import write_gzip_archive
from v3tools.errors import ToolMissing, V3Error
from v3tools.paths import inside, refuse_overwrite

DEFAULT_APPEND = "console=ttyS0"
BANNER = "v3 guest: busybox initramfs up"

DEFAULT_INIT = f"""#!/bin/sh
# /init of a `v3 mkguest` initramfs: mount the kernel file systems, say hello, run a shell.
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
echo "{BANNER}"
while true; do
    setsid cttyhack sh
done
"""

DIRECTORIES = ("bin", "sbin", "usr", "usr/bin", "usr/sbin", "etc", "proc", "sys", "dev", "tmp",
               "root", "mnt", "var", "run")

# (name, kind, major, minor, mode): Linux Documentation/admin-guide/devices.txt
DEVICE_NODES = (
    ("dev/console", "c", 5, 1, 0o600),
    ("dev/tty", "c", 5, 0, 0o666),
    ("dev/null", "c", 1, 3, 0o666),
    ("dev/zero", "c", 1, 5, 0o666),
    ("dev/random", "c", 1, 8, 0o666),
    ("dev/urandom", "c", 1, 9, 0o666),
    ("dev/tty0", "c", 4, 0, 0o620),
    ("dev/tty1", "c", 4, 1, 0o620),
    ("dev/ttyS0", "c", 4, 64, 0o660),
    ("dev/mem", "c", 1, 1, 0o640),
    ("dev/ram0", "b", 1, 0, 0o660),
)

# Used when busybox cannot be asked (e.g. a foreign-architecture binary).
FALLBACK_APPLETS = (
    "bin/sh", "bin/ash", "bin/cat", "bin/chmod", "bin/cp", "bin/date", "bin/dd", "bin/df",
    "bin/dmesg", "bin/echo", "bin/false", "bin/grep", "bin/hostname", "bin/kill", "bin/ln",
    "bin/ls", "bin/mkdir", "bin/mknod", "bin/more", "bin/mount", "bin/mv", "bin/ps", "bin/pwd",
    "bin/rm", "bin/rmdir", "bin/sed", "bin/sleep", "bin/stty", "bin/sync", "bin/touch",
    "bin/true", "bin/umount", "bin/uname", "bin/vi", "sbin/halt", "sbin/ifconfig", "sbin/init",
    "sbin/poweroff", "sbin/reboot", "sbin/mdev", "sbin/switch_root", "usr/bin/cttyhack",
    "usr/bin/setsid", "usr/bin/free", "usr/bin/head", "usr/bin/tail", "usr/bin/wc",
    "usr/bin/find", "usr/bin/xargs", "usr/bin/awk", "usr/bin/top", "usr/bin/env",
    "usr/bin/test", "usr/bin/[", "usr/bin/[[", "usr/bin/hexdump", "usr/bin/uptime",
)

PT_INTERP = 3


@dataclass
class GuestResult:
    """What mkguest wrote."""

    path: str
    size: int
    kernel: str
    busybox: str
    applets: int
    initramfs_size: int
    files: list = field(default_factory=list)


def elf_interpreter(path):
    """The PT_INTERP program interpreter of an ELF file (None for a static binary)."""
    with open(path, "rb") as f:
        ident = f.read(64)
        if ident[:4] != b"\x7fELF":
            raise V3Error(f"{path}: not an ELF executable")
        order = "<" if ident[5] == 1 else ">"
        if ident[4] == 2:       # ELFCLASS64
            phoff, = struct.unpack_from(order + "Q", ident, 0x20)
            phentsize, phnum = struct.unpack_from(order + "HH", ident, 0x36)
            fmt, type_off, off_off, size_off = order + "IIQQQQQQ", 0, 2, 5
        else:                   # ELFCLASS32
            phoff, = struct.unpack_from(order + "I", ident, 0x1C)
            phentsize, phnum = struct.unpack_from(order + "HH", ident, 0x2A)
            fmt, type_off, off_off, size_off = order + "IIIIIIII", 0, 1, 4
        for i in range(phnum):
            f.seek(phoff + i * phentsize)
            ph = struct.unpack(fmt, f.read(struct.calcsize(fmt)))
            if ph[type_off] == PT_INTERP:
                f.seek(ph[off_off])
                return f.read(ph[size_off]).rstrip(b"\0").decode(errors="replace")
    return None


def _version_key(path):
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", os.path.basename(path))]


def find_host_kernel():
    """The host's newest /boot/vmlinuz-*."""
    kernels = sorted((k for k in glob.glob("/boot/vmlinuz-*") if os.path.isfile(k)), key=_version_key)
    if not kernels:
        raise ToolMissing("no /boot/vmlinuz-* on this host: give --kernel (a bzImage, e.g. from "
                          "the Debian package linux-image-amd64)")
    return kernels[-1]


def find_busybox(path=None):
    """A static busybox: `path`, else `busybox` on PATH; a dynamic one is refused."""
    if path is None:
        path = shutil.which("busybox")
        if path is None:
            raise ToolMissing("busybox not found on PATH (install the Debian package busybox-static, "
                              "or give --busybox)")
    elif not os.path.isfile(path):
        raise V3Error(f"busybox {path} not found")
    interp = elf_interpreter(path)
    if interp is not None:
        raise V3Error(f"{path} is dynamically linked (interpreter {interp}); the initramfs needs a "
                      f"static busybox (Debian package busybox-static)")
    return os.fspath(path)


def applet_paths(busybox):
    """Install paths of busybox's applets ("bin/sh", ...): busybox --list-full, else a fixed list."""
    try:
        out = subprocess.run([busybox, "--list-full"], capture_output=True, text=True, timeout=10)
        paths = [line.strip().lstrip("/") for line in out.stdout.splitlines() if line.strip()]
        if out.returncode == 0 and "bin/sh" in paths:
            return paths
    except (OSError, subprocess.SubprocessError):
        pass
    return list(FALLBACK_APPLETS)


def _parse_add(spec):
    if isinstance(spec, tuple):
        return spec
    src, sep, dest = spec.rpartition(":")
    if not sep or not src or not dest.startswith("/"):
        raise V3Error(f"--add {spec}: expected SRC:DEST with an absolute DEST (e.g. app:/bin/app)")
    return src, dest


def fill_initramfs(writer, busybox, init_script, add=()):
    """Add the guest's entries to a CpioWriter; returns the number of applet links."""
    for name in DIRECTORIES:
        writer.directory(name)
    writer.directory("dev/pts")
    for name, kind, major, minor, mode in DEVICE_NODES:
        (writer.char_device if kind == "c" else writer.block_device)(name, major, minor, mode)
    writer.file("bin/busybox", busybox, 0o755)
    links = 0
    for path in applet_paths(busybox):
        if path in writer.names or path == "bin/busybox" or "/" not in path:
            continue
        writer.ensure_dirs(path)
        writer.symlink(path, "/bin/busybox")
        links += 1
    writer.file("init", init_script.encode() if isinstance(init_script, str) else init_script, 0o755)
    for src, dest in add:
        if os.path.isdir(src):
            writer.tree(src, dest)
        else:
            writer.ensure_dirs(dest)
            writer.file(dest, src, os.stat(src).st_mode & 0o7777)
    return links


def mkguest(output, kernel=None, busybox=None, init=None, add=(), append=DEFAULT_APPEND,
            serial=True, isolinux=None, net=False):
    """Write a bootable busybox guest CD to `output`; return a GuestResult.

    kernel: bzImage (default: the host's newest /boot/vmlinuz-*); busybox: static busybox
    (default: `busybox` on PATH); init: path of an /init script (default DEFAULT_INIT);
    add: SRC:DEST strings or (src, dest) pairs; append: kernel command line;
    net: load the kernel's NIC modules, DHCP on eth0, httpd (guest_creator/netguest.py).
    """
    kernel = find_host_kernel() if kernel is None else kernel
    if not os.path.isfile(kernel):
        raise V3Error(f"kernel {kernel} not found")
    check_kernel(kernel)
    check_append(append)
    if isolinux is not None:
        check_isolinux(find_isolinux(isolinux), isolinux_version(isolinux))
    busybox = find_busybox(busybox)
    netdir = None
    if net:
        from guest_creator.netguest import net_additions
        netdir = tempfile.TemporaryDirectory(prefix="v3net-")
        net_init, net_add = net_additions(kernel, netdir.name)
        add = list(add) + net_add
    if init is None:
        init_script = net_init if net else DEFAULT_INIT
    elif not os.path.isfile(init):
        raise V3Error(f"init script {init} not found")
    else:
        with open(init, "rb") as f:
            init_script = f.read()
    pairs = [_parse_add(spec) for spec in add]
    for src, _ in pairs:
        if not os.path.exists(src):
            raise V3Error(f"--add: {src} not found")
    refuse_overwrite([("-o", output)],
                     [("--kernel", kernel), ("--busybox", busybox), ("--init", init),
                      ("--isolinux", isolinux)] + [("--add", src) for src, _ in pairs])
    for src, _ in pairs:
        if os.path.isdir(src) and inside(output, src):
            raise V3Error(f"-o {output}: lies inside --add {src}; the ISO would be packed into "
                          f"its own initramfs (write it elsewhere)")
    directory = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(directory):
        raise V3Error(f"{output}: directory {directory} does not exist")
    try:
        fd, initramfs = tempfile.mkstemp(prefix=".v3initramfs-", suffix=".cpio.gz", dir=directory)
    except OSError as exc:
        raise V3Error(f"{output}: cannot write: {exc.strerror}") from None
    os.close(fd)
    try:
        counted = {}
        write_gzip_archive(initramfs, lambda w: counted.setdefault(
            "links", fill_initramfs(w, busybox, init_script, pairs)))
        result = isoimage.build_iso(output, kernel=kernel, initrd=initramfs, append=append,
                                    serial=serial, isolinux=isolinux)
        return GuestResult(path=result.path, size=result.size, kernel=kernel, busybox=busybox,
                           applets=counted["links"], initramfs_size=os.path.getsize(initramfs),
                           files=result.files)
    finally:
        os.unlink(initramfs)
        if netdir is not None:
            netdir.cleanup()
