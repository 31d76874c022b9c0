"""Third-party artefacts (Debian kernels, busybox, isolinux, memtest86+), fetched as a user would.

A Debian package is fetched with `apt-get download` and unpacked with `dpkg-deb -x` into a cache
directory (`$V3_ARTEFACTS`, else `~/.cache/v3tools/artefacts`); nothing is ever installed. Files
that are already on the host (isolinux, ldlinux.c32, memtest86+, grub-mkrescue) are used in place
when present. Whatever cannot be had raises `ToolMissing` naming the Debian package.

Every unpacked package lives in `<cache>/pkg/<package>_<arch>/`; a lock file serialises fetches
between processes, and each package is unpacked into a temporary directory then renamed, so a
half-fetched package is never seen.
"""
import fcntl
import glob
import os
import platform
import shutil
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path

from v3tools import progress
from v3tools.errors import ToolMissing

# Debian names of the host architectures we can meet
_HOST_ARCH = {"x86_64": "amd64", "i686": "i386", "i386": "i386", "aarch64": "arm64"}

# arch -> (kernel metapackage, busybox package)
KERNEL_METAPACKAGE = {"amd64": "linux-image-amd64", "i386": "linux-image-686"}


def cache_dir():
    """The artefact cache: `$V3_ARTEFACTS` or `~/.cache/v3tools/artefacts` (created)."""
    root = os.environ.get("V3_ARTEFACTS") or os.path.join(Path.home(), ".cache", "v3tools", "artefacts")
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def host_arch():
    """The host's Debian architecture name (dpkg's if available)."""
    if shutil.which("dpkg"):
        out = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True)
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip()
    return _HOST_ARCH.get(platform.machine(), platform.machine())


@contextmanager
def _locked():
    with open(cache_dir() / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _run(cmd, what, **kwargs):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    except FileNotFoundError as exc:
        raise ToolMissing(f"{what}: `{cmd[0]}` is not available (needs a Debian system with apt)") from exc


def _tail(proc):
    text = (proc.stderr or proc.stdout or "").strip().splitlines()
    return text[-1] if text else f"exit status {proc.returncode}"


def _ensure_foreign_arch(arch, package):
    """Make apt know `arch` packages (dpkg --add-architecture + apt-get update; needs root)."""
    if arch == host_arch():
        return
    foreign = _run(["dpkg", "--print-foreign-architectures"], package).stdout.split()
    if arch in foreign:
        return
    if os.geteuid() != 0:
        raise ToolMissing(f"{package}:{arch}: apt does not know architecture {arch}; "
                          f"run as root: dpkg --add-architecture {arch} && apt-get update")
    proc = _run(["dpkg", "--add-architecture", arch], package)
    if proc.returncode != 0:
        raise ToolMissing(f"{package}:{arch}: `dpkg --add-architecture {arch}` failed: {_tail(proc)}")
    # apt-get update exits non-zero when any one index fails (a mirror mid-sync, say) even
    # though the rest were fetched; whether the package can be had is decided by the
    # apt-cache and apt-get download calls that follow, which name it if it cannot.
    _run(["apt-get", "update", "-qq"], package)


def package_size(spec):
    """The size in bytes of the .deb apt would download for `spec`, or None if apt does not say."""
    proc = _run(["apt-cache", "show", "--no-all-versions", spec], spec)
    if proc.returncode == 0:
        for line in proc.stdout.splitlines():
            if line.startswith("Size:") and line[5:].strip().isdigit():
                return int(line[5:].strip())
    return None


def _download(spec, directory):
    """`apt-get download spec` into `directory`; on a terminal a progress bar shows it."""
    size = package_size(spec) if progress.is_terminal() else None
    with progress.watch(f"downloading {spec}", total=size,
                        measure=lambda: progress.directory_bytes(directory)):
        return _run(["apt-get", "download", "-q", spec], f"Debian package {spec}", cwd=directory)


def resolve_metapackage(package, arch=None):
    """The first versioned package a metapackage depends on (linux-image-amd64 -> linux-image-6.1...)."""
    arch = arch or host_arch()
    spec = package if arch == host_arch() else f"{package}:{arch}"
    proc = _run(["apt-cache", "depends", spec], package)
    if proc.returncode != 0:
        raise ToolMissing(f"Debian package {spec} is unknown to apt: {_tail(proc)}")
    for line in proc.stdout.splitlines():
        line = line.strip()
        if line.startswith("Depends:"):
            dep = line.split(":", 1)[1].strip().strip("<>")
            return dep.split(":")[0]
    raise ToolMissing(f"Debian package {spec} has no dependency to resolve")


def debian_package_dir(package, arch=None):
    """Download `package` (for `arch`) and unpack it into the cache; returns the unpacked root."""
    arch = arch or host_arch()
    target = cache_dir() / "pkg" / f"{package}_{arch}"
    if target.is_dir():
        return target
    with _locked():
        if target.is_dir():
            return target
        _ensure_foreign_arch(arch, package)
        spec = package if arch == host_arch() else f"{package}:{arch}"
        debs = cache_dir() / "debs"
        debs.mkdir(exist_ok=True)
        with tempfile.TemporaryDirectory(dir=debs) as tmp:
            proc = _download(spec, tmp)
            if proc.returncode != 0 and os.geteuid() == 0:
                _run(["apt-get", "update", "-qq"], spec)  # stale lists: refresh once
                proc = _download(spec, tmp)
            found = glob.glob(os.path.join(tmp, "*.deb"))
            if proc.returncode != 0 or not found:
                raise ToolMissing(f"cannot download Debian package {spec}: {_tail(proc)}")
            target.parent.mkdir(parents=True, exist_ok=True)
            unpack = Path(tempfile.mkdtemp(dir=target.parent, prefix=".unpack-"))
            proc = _run(["dpkg-deb", "-x", found[0], str(unpack)], f"Debian package {spec}")
            if proc.returncode != 0:
                shutil.rmtree(unpack, ignore_errors=True)
                raise ToolMissing(f"cannot unpack Debian package {spec}: {_tail(proc)}")
            os.rename(unpack, target)
    return target


def debian_package_file(package, path_in_pkg, arch=None):
    """A file of a Debian package (`path_in_pkg` may be a glob; the newest match wins)."""
    root = debian_package_dir(package, arch)
    matches = sorted(glob.glob(str(root) + "/" + path_in_pkg.lstrip("/")), key=_version_key)
    matches = [m for m in matches if os.path.isfile(m)]
    if not matches:
        raise ToolMissing(f"Debian package {package} ({arch or host_arch()}) has no {path_in_pkg}")
    return Path(matches[-1])


def _version_key(path):
    """Sort key so that vmlinuz-6.10 comes after vmlinuz-6.9."""
    import re
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", os.path.basename(path))]


# --- the artefacts tests and commands need -------------------------------------------------------
def debian_kernel(arch="amd64", metapackage=None):
    """Debian's stock kernel for `arch` ("amd64" or "i386"): the bzImage from /boot/vmlinuz-*.
    `metapackage` picks another flavour (e.g. linux-image-686-pae)."""
    meta = metapackage or KERNEL_METAPACKAGE.get(arch)
    if meta is None:
        raise ToolMissing(f"no Debian kernel metapackage known for architecture {arch}")
    if arch != host_arch():
        _ensure_foreign_arch(arch, meta)
    return debian_package_file(resolve_metapackage(meta, arch), "/boot/vmlinuz-*", arch)


def debian_kernel_symbols(arch="amd64"):
    """The vmlinux with debug symbols that belongs to `debian_kernel(arch)` (from its -dbg
    package; only that file is kept: the package is several hundred MB of module symbols)."""
    meta = KERNEL_METAPACKAGE.get(arch)
    if meta is None:
        raise ToolMissing(f"no Debian kernel metapackage known for architecture {arch}")
    if arch != host_arch():
        _ensure_foreign_arch(arch, meta)
    package = resolve_metapackage(meta, arch) + "-dbg"
    target = cache_dir() / "pkg" / f"{package}_{arch}" / "vmlinux"
    if target.is_file():
        return target
    with _locked():
        if target.is_file():
            return target
        spec = package if arch == host_arch() else f"{package}:{arch}"
        debs = cache_dir() / "debs"
        debs.mkdir(exist_ok=True)
        with tempfile.TemporaryDirectory(dir=debs) as tmp:
            proc = _download(spec, tmp)
            found = glob.glob(os.path.join(tmp, "*.deb"))
            if proc.returncode != 0 or not found:
                raise ToolMissing(f"cannot download Debian package {spec}: {_tail(proc)}")
            out = Path(tmp) / "vmlinux"
            with open(out, "wb") as f:
                deb = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", found[0]],
                                       stdout=subprocess.PIPE)
                tar = subprocess.run(["tar", "-xO", "--wildcards", "--occurrence=1",
                                      "./usr/lib/debug/boot/vmlinux-*"], stdin=deb.stdout,
                                     stdout=f, stderr=subprocess.PIPE)
                deb.stdout.close()
                deb.kill()
                deb.wait()
            if tar.returncode != 0 or out.stat().st_size == 0:
                raise ToolMissing(f"Debian package {spec} has no /usr/lib/debug/boot/vmlinux-*")
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(out, target)
    return target


def busybox_static(arch="amd64"):
    """A statically linked busybox for `arch` (from busybox-static; the host's when it matches)."""
    if arch == host_arch():
        for path in ("/bin/busybox", "/usr/bin/busybox"):
            if os.path.isfile(path) and _is_static(path):
                return Path(path)
    return debian_package_file("busybox-static", "/bin/busybox", arch)


def _is_static(path):
    from guest_creator.mkguest import elf_interpreter
    try:
        return elf_interpreter(path) is None
    except Exception:  # not an ELF at all
        return False


def isolinux_bin():
    """isolinux.bin: the host's (package isolinux) or one fetched into the cache."""
    from isoimage.isolinux import find_isolinux
    try:
        return Path(find_isolinux())
    except ToolMissing:
        return debian_package_file("isolinux", "/usr/lib/ISOLINUX/isolinux.bin")


def ldlinux_c32():
    """ldlinux.c32 (BIOS), needed next to isolinux.bin >= 5: the host's or syslinux-common's."""
    host = Path("/usr/lib/syslinux/modules/bios/ldlinux.c32")
    if host.is_file():
        return host
    return debian_package_file("syslinux-common", "/usr/lib/syslinux/modules/bios/ldlinux.c32")


def xen_hypervisor():
    """Debian's Xen hypervisor (`/boot/xen-*.gz`, a gzip-compressed multiboot ELF) from the
    newest xen-hypervisor-*-amd64 package apt knows."""
    proc = _run(["apt-cache", "search", "--names-only", "^xen-hypervisor-[0-9.]*-amd64$"],
                "xen-hypervisor")
    names = sorted((line.split()[0] for line in proc.stdout.splitlines() if line.strip()),
                   key=_version_key)
    if not names:
        raise ToolMissing("apt knows no xen-hypervisor-*-amd64 package (apt-get update?)")
    return debian_package_file(names[-1], "/boot/xen-*.gz", "amd64")


def memtest86(name="memtest86+ia32.bin"):
    """memtest86+'s BIOS image (`/boot/memtest86+ia32.bin` by default)."""
    host = Path("/boot") / name
    if host.is_file():
        return host
    return debian_package_file("memtest86+", f"/boot/{name}")


def seabios(name="bios.bin"):
    """SeaBIOS's firmware image (Debian package seabios, `/usr/share/seabios/bios.bin`)."""
    host = Path("/usr/share/seabios") / name
    if host.is_file():
        return host
    return debian_package_file("seabios", f"/usr/share/seabios/{name}")


def grub_mkrescue():
    """Path to grub-mkrescue, able to make BIOS images (grub-common + grub-pc-bin + xorriso + mtools)."""
    exe = shutil.which("grub-mkrescue")
    if exe is None:
        raise ToolMissing("grub-mkrescue not found (install the Debian package grub-common)")
    if not os.path.isdir("/usr/lib/grub/i386-pc"):
        raise ToolMissing("grub-mkrescue cannot make BIOS images (install the Debian package grub-pc-bin)")
    for tool, package in (("xorriso", "xorriso"), ("mformat", "mtools")):
        if shutil.which(tool) is None:
            raise ToolMissing(f"grub-mkrescue needs {tool} (install the Debian package {package})")
    return Path(exe)
