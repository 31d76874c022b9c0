"""Build the v3 engine: unicorn's pinned 2.1.4 source release, the patches in patches/, x86 only.

Run at install time by setup.py (so `pip install -e .` gives every user the patched engine) and
by hand to rebuild it: `python3 -m vmm.engine.build` (docs/engine.md). Needs cmake, a C
compiler and make (or ninja); the source comes from PyPI's release archive, pinned by URL and
SHA-256 and cached in ~/.cache/v3tools/engine/.

When the build is impossible or fails, `build()` says why in one line and returns None: the
install still succeeds and `v3 run` uses the stock engine from the unicorn wheel, with a
warning. A library is only ever put in place whole (temporary name, checked, then renamed), so
a failed build never leaves a half-built library that would later load.

This module must not import unicorn, click or anything outside the standard library: setup.py
runs it in pip's isolated build environment.
"""
import ctypes
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
from pathlib import Path

UNICORN_VERSION = "2.1.4"
SDIST_URL = ("https://files.pythonhosted.org/packages/b2/1b/"
             "b4248aa8422e86de690cf8e85cf8feae4c33405a097d1ebe71570bdaa6f5/unicorn-2.1.4.tar.gz")
SDIST_SHA256 = "00567a70e323f749b419cd86bee4f9115beab7ebba32194581c090cbb7c59cff"
LIBNAME = "libunicorn.so.2"
PATCH_DIR = Path(__file__).resolve().parent / "patches"
# The exported marker each patch adds (vmm/engine/__init__.py checks the same list).
MARKERS = ("uc_code_page_tracking", "uc_mem_write_invalidates_code", "uc_msr_hooks",
           "uc_halt_state", "uc_hook_walk_complete", "uc_io_permission_bitmap",
           "uc_inline_exit_check", "uc_engine_interrupts", "uc_port_fastpath")


class BuildError(Exception):
    """One line: why the engine could not be built."""


def cache_dir():
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "v3tools" / "engine"


def _sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fetch_sdist(log=print):
    """The pinned source archive, from the cache or downloaded and checked."""
    cached = cache_dir() / f"unicorn-{UNICORN_VERSION}.tar.gz"
    if cached.exists() and _sha256(cached) == SDIST_SHA256:
        return cached
    cached.parent.mkdir(parents=True, exist_ok=True)
    log(f"v3tools: downloading unicorn {UNICORN_VERSION} source ({SDIST_URL})")
    fd, tmp = tempfile.mkstemp(dir=cached.parent, prefix=".download-")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(SDIST_URL, timeout=120) as resp:
            shutil.copyfileobj(resp, out)
        got = _sha256(tmp)
        if got != SDIST_SHA256:
            raise BuildError(f"unicorn {UNICORN_VERSION} source archive has SHA-256 {got}, "
                             f"expected {SDIST_SHA256}")
        os.replace(tmp, cached)
    except OSError as e:
        raise BuildError(f"cannot download unicorn {UNICORN_VERSION} source: {e}") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return cached


# ---- a strict unified-diff applier (no fuzz: the source is pinned) --------------------------

_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


def parse_patch(text):
    """[(relative path, [(old start, old lines, new lines), ...]), ...] for a `diff -ru a b`."""
    files, lines, i = [], text.splitlines(keepends=True), 0
    while i < len(lines):
        if not (lines[i].startswith("--- ") and i + 1 < len(lines) and lines[i + 1].startswith("+++ ")):
            i += 1
            continue
        target = lines[i + 1][4:].split("\t")[0].strip()
        path = target.split("/", 1)[1]          # -p1
        hunks, i = [], i + 2
        while i < len(lines) and lines[i].startswith("@@"):
            m = _HUNK.match(lines[i])
            if not m:
                raise BuildError(f"malformed hunk header in the patch: {lines[i].strip()}")
            old_len = int(m.group(2) or 1)
            new_len = int(m.group(4) or 1)
            old, new, i = [], [], i + 1
            while (len(old) < old_len or len(new) < new_len) and i < len(lines):
                tag, body = lines[i][:1], lines[i][1:]
                if tag == " ":
                    old.append(body)
                    new.append(body)
                elif tag == "-":
                    old.append(body)
                elif tag == "+":
                    new.append(body)
                elif tag == "\\":
                    pass
                else:
                    raise BuildError(f"malformed hunk line in the patch for {path}: {lines[i]!r}")
                i += 1
            hunks.append((int(m.group(1)), old, new))
        files.append((path, hunks))
    return files


def apply_patch(text, root):
    """Apply every hunk exactly (an offset is allowed, changed context is not)."""
    for path, hunks in parse_patch(text):
        target = Path(root) / path
        src = target.read_bytes().decode("latin-1").splitlines(keepends=True)
        delta = 0
        for start, old, new in hunks:
            at = start - 1 + delta
            if src[at:at + len(old)] != old:
                found = [k for k in range(len(src) - len(old) + 1) if src[k:k + len(old)] == old]
                if len(found) != 1:
                    raise BuildError(f"patch does not apply to {path} at line {start}")
                at = found[0]
            src[at:at + len(old)] = new
            delta = at - (start - 1) + len(new) - len(old)
        target.write_bytes("".join(src).encode("latin-1"))


def patches():
    return sorted(PATCH_DIR.glob("*.patch"))


# ---- the build --------------------------------------------------------------------------------

def missing_tools():
    need = []
    if not shutil.which("cmake"):
        need.append("cmake")
    if not (os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")):
        need.append("a C compiler (gcc)")
    if not (shutil.which("make") or shutil.which("ninja")):
        need.append("make")
    return need


def check_library(path):
    """Load a built library in this process and check its markers; BuildError if not usable."""
    try:
        lib = ctypes.CDLL(str(path))
    except OSError as e:
        raise BuildError(f"the built library does not load: {e}") from None
    for name in MARKERS:
        try:
            ctypes.c_uint.in_dll(lib, name)
        except ValueError:
            raise BuildError(f"the built library lacks {name}") from None
    major, minor = ctypes.c_uint(), ctypes.c_uint()
    lib.uc_version.restype = ctypes.c_uint
    lib.uc_version(ctypes.byref(major), ctypes.byref(minor))
    if (major.value, minor.value) != (2, 1):
        raise BuildError(f"the built library is unicorn {major.value}.{minor.value}, not 2.1")


def build(dest_dir, log=print, jobs=None):
    """Build into dest_dir/libunicorn.so.2. Returns the path, or None (reason logged in one line)."""
    dest_dir = Path(dest_dir)
    try:
        need = missing_tools()
        if need:
            raise BuildError(f"{' and '.join(need)} not found")
        sdist = fetch_sdist(log)
        with tempfile.TemporaryDirectory(prefix="v3-engine-") as work:
            work = Path(work)
            with tarfile.open(sdist) as tar:
                members = [m for m in tar.getmembers()
                           if m.name.startswith(f"unicorn-{UNICORN_VERSION}/src/")]
                kwargs = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
                tar.extractall(work, members=members, **kwargs)
            src = work / f"unicorn-{UNICORN_VERSION}" / "src"
            for p in patches():
                apply_patch(p.read_text(encoding="utf-8"), src)
            out = work / "build"
            logfile = cache_dir() / "build.log"
            logfile.parent.mkdir(parents=True, exist_ok=True)
            jobs = jobs or os.cpu_count() or 2
            log(f"v3tools: building the v3 engine (unicorn {UNICORN_VERSION} + "
                f"{len(patches())} patch(es), x86 only, {jobs} jobs; log in {logfile})")
            with open(logfile, "w") as lf:
                for cmd in (["cmake", "-S", str(src), "-B", str(out), "-DUNICORN_ARCH=x86",
                             "-DCMAKE_BUILD_TYPE=Release", "-DUNICORN_BUILD_TESTS=OFF",
                             "-DUNICORN_INSTALL=OFF"],
                            ["cmake", "--build", str(out), "--target", "unicorn", "-j", str(jobs)]):
                    lf.write("$ " + " ".join(cmd) + "\n")
                    lf.flush()
                    if subprocess.run(cmd, stdout=lf, stderr=subprocess.STDOUT).returncode:
                        raise BuildError(f"`{' '.join(cmd[:2])}` failed (see {logfile})")
            built = out / LIBNAME
            if not built.exists():
                raise BuildError(f"the build made no {LIBNAME} (see {logfile})")
            dest_dir.mkdir(parents=True, exist_ok=True)
            tmp = dest_dir / f".{LIBNAME}.tmp{os.getpid()}"
            shutil.copyfile(built, tmp)
            try:
                check_library(tmp)
                os.replace(tmp, dest_dir / LIBNAME)
            finally:
                if tmp.exists():
                    tmp.unlink()
        log(f"v3tools: v3 engine built: {dest_dir / LIBNAME}")
        return dest_dir / LIBNAME
    except (BuildError, OSError, tarfile.TarError) as e:
        log(f"v3tools: warning: the v3 engine was not built ({e}); v3 run will use the stock "
            f"unicorn engine, with ~10x slower guest stores (docs/engine.md)")
        return None


def main(argv=None):
    dest = Path(argv[0]) if argv else Path(__file__).resolve().parent / "lib"
    return 0 if build(dest, log=lambda m: print(m, file=sys.stderr)) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
