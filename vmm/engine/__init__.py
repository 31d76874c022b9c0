"""Which Unicorn library the VMM runs on: the v3 engine built at install, or the stock wheel's.

The v3 engine is unicorn 2.1.4 built from its release archive with the patches in patches/
(vmm/engine/build.py; docs/engine.md). It lives in vmm/engine/lib/libunicorn.so.2 and is loaded
through the unchanged PyPI binding, which honours LIBUNICORN_PATH. `prepare()` sets that
variable; it runs from vmm/__init__.py, so before anything in the VMM imports unicorn.

`info()` says which library was really loaded (the binding silently falls back to the wheel's
library when one does not load, so the loaded file is checked, not the intention). `check()`
turns an unusable engine into one line naming what to reinstall.
"""
import ctypes
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from v3tools.errors import V3Error

LIB_DIR = Path(__file__).resolve().parent / "lib"
LIBNAME = "libunicorn.so.2"
# exported marker -> what the patch that adds it does (build.MARKERS lists the same names)
PATCHES = {"uc_code_page_tracking": "code-page tracking",
           "uc_mem_write_invalidates_code": "physical code invalidation",
           "uc_msr_hooks": "MSR hooks",
           "uc_halt_state": "halt state",
           "uc_hook_walk_complete": "complete hook walks",
           "uc_io_permission_bitmap": "I/O permission bitmap",
           "uc_inline_exit_check": "inline exit check",
           "uc_engine_interrupts": "engine interrupts",
           "uc_port_fastpath": "port fast path"}
SLOW_WARNING = ("running on the stock unicorn engine: guest stores are about 10x slower "
                "(reinstall v3tools with cmake and gcc present; see docs/engine.md)")
REINSTALL = "reinstall v3tools (pip install -e .) to rebuild it, or delete it to use the stock engine"


class EngineError(V3Error):
    """The engine library is not the one expected, or not usable."""


@dataclass
class EngineInfo:
    version: str            # unicorn's own version string
    path: str               # the library file loaded
    patches: tuple          # names of the v3 patches the library carries
    expected_patched: bool  # a v3 engine was installed and asked for

    @property
    def patched(self):
        return bool(self.patches)

    def describe(self):
        if self.patches:
            return f"unicorn {self.version} + v3 {', '.join(self.patches)}"
        return f"unicorn {self.version} (stock: slow guest stores)"


def installed_library():
    lib = LIB_DIR / LIBNAME
    return lib if lib.is_file() else None


def prepare():
    """Point the unicorn binding at the v3 engine, if one is installed. Before `import unicorn`."""
    if "unicorn" in sys.modules or os.environ.get("V3_ENGINE") == "stock":
        return
    if installed_library() and "LIBUNICORN_PATH" not in os.environ:
        os.environ["LIBUNICORN_PATH"] = str(LIB_DIR)


def _markers(lib):
    found = []
    for name, what in PATCHES.items():
        try:
            ctypes.c_uint.in_dll(lib, name)
            found.append(what)
        except ValueError:
            pass
    return tuple(found)


def has(marker):
    """Does the loaded engine carry the patch that exports `marker`? (imports unicorn)"""
    return PATCHES[marker] in info().patches


def info():
    """What is loaded (imports unicorn)."""
    import unicorn
    from unicorn.unicorn_py3.unicorn import uclib
    expected = os.environ.get("LIBUNICORN_PATH") == str(LIB_DIR)
    return EngineInfo(version=unicorn.__version__, path=getattr(uclib, "_name", "?"),
                      patches=_markers(uclib), expected_patched=expected)


def check():
    """The loaded engine, or EngineError in one line when the installed v3 engine is unusable."""
    got = info()
    if got.expected_patched and not got.patched:
        wanted = LIB_DIR / LIBNAME
        try:
            lib = ctypes.CDLL(str(wanted))
            why = (f"it lacks {', '.join(n for n in PATCHES if n not in _markers(lib))}"
                   if not all(_markers(lib)) or len(_markers(lib)) < len(PATCHES)
                   else "the binding loaded another library")
        except OSError as e:
            why = f"it does not load ({str(e).splitlines()[0]})"
        raise EngineError(f"the v3 engine {wanted} is not usable: {why}; {REINSTALL}")
    if got.expected_patched and len(got.patches) < len(PATCHES):
        missing = [n for n, w in PATCHES.items() if w not in got.patches]
        raise EngineError(f"the v3 engine {got.path} lacks {', '.join(missing)}; {REINSTALL}")
    return got
