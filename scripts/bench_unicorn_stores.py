"""Why guest code runs slower under v3 run than under QEMU's TCG: the engine's store path.

Runs three 2x10^7-iteration loops on a bare Unicorn engine (no hooks, no VMM): registers only,
plus one byte load, plus one byte store per iteration, and prints the time per iteration.
With unicorn 2.1.4 every guest store takes the softmmu slow path, so a store costs an order
of magnitude more than a load. Usage: python3 scripts/bench_unicorn_stores.py (needs nasm).
"""
import subprocess
import tempfile
import time
from pathlib import Path

import unicorn
from unicorn import UC_ARCH_X86, UC_MODE_32, Uc

ITERATIONS = 20_000_000
BODIES = {
    "registers": "mov eax, ebx\n and eax, 0xffff\n add edx, eax",
    "+ one load": "mov eax, ebx\n and eax, 0xffff\n movzx edx, byte [0x200000 + eax]",
    "+ one store": "mov eax, ebx\n and eax, 0xffff\n mov [0x300000 + eax], dl",
}


def assemble(body, workdir):
    src = (f"bits 32\norg 0x10000\n mov ebx, 0\n mov ecx, {ITERATIONS}\nl:\n {body}\n"
           " inc ebx\n dec ecx\n jnz l\n hlt\n")
    asm, out = Path(workdir) / "loop.asm", Path(workdir) / "loop.bin"
    asm.write_text(src)
    subprocess.run(["nasm", "-f", "bin", str(asm), "-o", str(out)], check=True)
    return out.read_bytes()


def main():
    print(f"unicorn {unicorn.__version__}, {ITERATIONS:,} iterations each")
    with tempfile.TemporaryDirectory() as tmp:
        base = None
        for name, body in BODIES.items():
            code = assemble(body, tmp)
            uc = Uc(UC_ARCH_X86, UC_MODE_32)
            uc.mem_map(0, 64 << 20)
            uc.mem_write(0x10000, code)
            t0 = time.perf_counter()
            uc.emu_start(0x10000, 0x10000 + len(code))
            ns = (time.perf_counter() - t0) / ITERATIONS * 1e9
            base = ns if base is None else base
            print(f"{name:12s} {ns:6.1f} ns per iteration  (+{ns - base:5.1f} ns)")


if __name__ == "__main__":
    main()
