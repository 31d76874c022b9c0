#!/usr/bin/env python3
"""String instructions on a bare engine: `rep movsb`, `rep movsd`, `rep stosd` over 4 MiB, and
the same copy as a lodsd/stosd loop, in ns per element and MB/s.

Run it once per engine, in separate processes (the library is chosen at import):
    python3 scripts/bench_unicorn_strings.py                         # the installed v3 engine
    LIBUNICORN_PATH=$(python3 -c 'import unicorn,os;print(os.path.dirname(unicorn.__file__)+"/lib")') \\
        V3_ENGINE=stock python3 scripts/bench_unicorn_strings.py     # the wheel's stock library
Source and destination are chosen so that they do not share softmmu TLB sets (two regions a
multiple of 1 MiB apart thrash a 256-entry direct-mapped TLB and measure that instead).
Figures go to docs/engine.md.
"""
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import vmm  # noqa: F401,E402  (selects the v3 engine before unicorn loads)
from unicorn import Uc, UC_ARCH_X86, UC_MODE_32  # noqa: E402
from unicorn.x86_const import UC_X86_REG_ECX, UC_X86_REG_EDI, UC_X86_REG_ESI  # noqa: E402

from vmm import engine  # noqa: E402

SIZE = 4 << 20
CASES = (("rep movsb", b"\xf3\xa4", 1), ("rep movsd", b"\xf3\xa5", 4),
         ("rep stosd", b"\xf3\xab", 4), ("lodsd/stosd loop", b"\xad\xab\xe2\xfc", 4))


def main():
    print(engine.info().describe())
    for name, code, width in CASES:
        best = None
        for _ in range(3):
            uc = Uc(UC_ARCH_X86, UC_MODE_32)
            uc.mem_map(0, 32 << 20)
            uc.mem_write(0x1000, code)
            uc.reg_write(UC_X86_REG_ESI, 0x100000)
            uc.reg_write(UC_X86_REG_EDI, 0x883000)
            uc.reg_write(UC_X86_REG_ECX, SIZE // width)
            t = time.perf_counter()
            uc.emu_start(0x1000, 0x1000 + len(code))
            dt = time.perf_counter() - t
            best = dt if best is None else min(best, dt)
        print(f"{name:18s} {best * 1e9 / (SIZE // width):6.1f} ns/element {SIZE / best / 1e6:6.0f} MB/s")


if __name__ == "__main__":
    main()
