"""Install (as root) the Debian packages the real-guest tests need; idempotent and quiet."""
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
}


def main():
    import os
    missing = [p for p, f in PACKAGES.items() if not os.path.exists(f)]
    if not missing:
        return 0
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],
                   check=True, env=env, stdout=subprocess.DEVNULL)
    return 0


if __name__ == "__main__":
    sys.exit(main())
