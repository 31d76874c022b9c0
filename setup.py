"""Only the compiled parts live here; pyproject.toml holds the metadata.

* Optional C helpers (`optional=True`): without a C compiler the install still succeeds.
  guest_creator.hashing then falls back to pure Python (identical results, much slower), and
  `v3 run --telemetry` reports guest blocks as not counted, and port I/O goes through Python
  only (vmm/cpu/_fastio.c, the port dispatcher, and the devices' register fast paths such as
  vmm/devices/_ne2000.c: the same behaviour, slower), and so does MMIO (vmm/cpu/_fastmmio.c,
  the MMIO window's dispatcher, with the LAPIC's and IOAPIC's fast paths, vmm/devices/_apic.c,
  and the classic RTL8139's, vmm/devices/_rtl8139.c),
  and the RTL8139 C+ mode's checksums and TSO (vmm/net/_offload.c) then run in Python, and
  libslirp's per-frame glue (vmm/net/_slirpio.c: its send_packet callback and slirp_input,
  joined to a card's C frame path through vmm/net/framepath.h) goes through ctypes and Python.
* The v3 engine: unicorn 2.1.4 from its pinned release archive plus the patches in
  vmm/engine/patches/, built for x86 with cmake (vmm/engine/build.py, docs/engine.md). When it
  cannot be built, the install still succeeds and `v3 run` warns that it uses the stock engine.
"""
import importlib.util
import os

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


def _engine_builder():
    here = os.path.dirname(os.path.abspath(__file__))
    spec = importlib.util.spec_from_file_location(
        "v3_engine_build", os.path.join(here, "vmm", "engine", "build.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


class BuildExtAndEngine(build_ext):
    def run(self):
        super().run()
        if os.environ.get("V3_ENGINE") == "stock":
            print("v3tools: V3_ENGINE=stock: the v3 engine is not built")
            return
        in_place = self.inplace or getattr(self, "editable_mode", False)
        dest = os.path.join("" if in_place else self.build_lib, "vmm", "engine", "lib")
        _engine_builder().build(dest)


setup(
    ext_modules=[
        Extension("guest_creator._v3hash", ["guest_creator/_v3hash.c"], optional=True),
        Extension("vmm._blockcount", ["vmm/_blockcount.c"], optional=True),
        Extension("vmm.cpu._fastio", ["vmm/cpu/_fastio.c"], optional=True,
                  include_dirs=["vmm/cpu"], depends=["vmm/cpu/fastport.h"]),
        Extension("vmm.devices._ne2000", ["vmm/devices/_ne2000.c"], optional=True,
                  include_dirs=["vmm/cpu", "vmm/net"],
                  depends=["vmm/cpu/fastport.h", "vmm/net/framepath.h",
                           "vmm/devices/modelattrs.h"]),
        Extension("vmm.cpu._fastmmio", ["vmm/cpu/_fastmmio.c"], optional=True,
                  include_dirs=["vmm/cpu"], depends=["vmm/cpu/fastmmio.h"]),
        Extension("vmm.devices._apic", ["vmm/devices/_apic.c"], optional=True,
                  include_dirs=["vmm/cpu"],
                  depends=["vmm/cpu/fastmmio.h", "vmm/devices/modelattrs.h"]),
        Extension("vmm.devices._rtl8139", ["vmm/devices/_rtl8139.c"], optional=True,
                  include_dirs=["vmm/cpu", "vmm/net"],
                  depends=["vmm/cpu/fastmmio.h", "vmm/net/framepath.h",
                           "vmm/devices/modelattrs.h", "vmm/net/wordsum.h"]),
        Extension("vmm.net._offload", ["vmm/net/_offload.c"], optional=True,
                  depends=["vmm/net/wordsum.h"]),
        Extension("vmm.net._slirpio", ["vmm/net/_slirpio.c"], optional=True,
                  include_dirs=["vmm/net"], depends=["vmm/net/framepath.h"]),
    ],
    cmdclass={"build_ext": BuildExtAndEngine},
)
