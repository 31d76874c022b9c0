"""Install (as root) the Debian packages the real-guest tests need; idempotent and quiet.

Debian kernels and the i386 busybox are not installed: the tests fetch them with
`apt-get download` into the artefact cache (v3tools/artefacts.py). This script only makes apt
know the i386 architecture those downloads need.
"""
import os
import shutil
import subprocess
import sys

# package -> a file that shows it is installed
PACKAGES = {
    "qemu-system-x86": "/usr/bin/qemu-system-x86_64",
    "nasm": "/usr/bin/nasm",
    "xorriso": "/usr/bin/xorriso",
    "isolinux": "/usr/lib/ISOLINUX/isolinux.bin",
    "syslinux-common": "/usr/lib/syslinux/modules/bios/ldlinux.c32",
    "grub-pc-bin": "/usr/lib/grub/i386-pc/kernel.img",
    "grub-common": "/usr/bin/grub-mkrescue",
    "mtools": "/usr/bin/mformat",
    "memtest86+": "/boot/memtest86+ia32.bin",
    "busybox-static": "/bin/busybox",
    "cpio": "/usr/bin/cpio",
    "seabios": "/usr/share/seabios/bios.bin",
    "syslinux": "/usr/bin/syslinux",
    "dosfstools": "/usr/sbin/mkfs.msdos",
    "fdisk": "/usr/sbin/sfdisk",
    "gdisk": "/usr/sbin/sgdisk",
    "libslirp0": "/usr/lib/x86_64-linux-gnu/libslirp.so.0",
    "tcpdump": "/usr/bin/tcpdump",
    "iproute2": "/usr/sbin/ip",
    "acpica-tools": "/usr/bin/iasl",
    "gdb": "/usr/bin/gdb",
    "tmux": "/usr/bin/tmux",
    "cmake": "/usr/bin/cmake",
    "build-essential": "/usr/share/build-essential/essential-packages-list",
}


def main():
    missing = [p for p, f in PACKAGES.items() if not os.path.exists(f)]
    need_i386 = shutil.which("dpkg") is not None and "i386" not in subprocess.run(
        ["dpkg", "--print-foreign-architectures"], capture_output=True, text=True).stdout.split()
    if not missing and not need_i386:
        return 0
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    if need_i386:       # linux-image-686 and busybox-static:i386 for the 32-bit guests
        subprocess.run(["dpkg", "--add-architecture", "i386"], check=True)
    # not check=True: apt-get update fails when any one index does (a mirror mid-sync) even
    # though the others were fetched; the install below says which package cannot be had
    subprocess.run(["apt-get", "update", "-qq"], env=env)
    if not missing:
        return 0
    subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],
                   check=True, env=env, stdout=subprocess.DEVNULL)
    return 0


if __name__ == "__main__":
    sys.exit(main())
