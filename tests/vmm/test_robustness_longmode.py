"""Robustness in long mode: 1,000 seeded random 4 KiB code pages, each entered in 64-bit mode
at CPL 0 on a fresh machine with identity-mapped 4-level paging, a GDT with a 64-bit TSS, and a
valid IDT whose 256 interrupt gates all lead to `hlt` (interrupts off). Every run must end in a
RunResult or a VMStop (fail-stop, triple fault, halt, timeout): never another exception, never
later than the timeout plus a grace. Reproduce one: `python tests/vmm/test_robustness_longmode.py
SEED`. The tally is printed with pytest -s."""
import collections
import os
import random
import struct
import sys
import time

import pytest

from v3tools.errors import VMStop

PAGES = int(os.environ.get("V3_LONGMODE_FUZZ_PAGES", "1000"))
TIMEOUT = 0.2
GRACE = 5.0                     # generous: a hang never ends; a busy shared host is slow
PML4, PDPT, PD, GDT, TSS, IDT, HANDLER, STACK, CODE = \
    0x1000, 0x2000, 0x3000, 0x4000, 0x5000, 0x6000, 0x8000, 0x7F000, 0x100000


def long_mode_machine(code):
    from unicorn import x86_const as X
    from vmm.cpu import ucinternals as U
    from vmm.log import VMMLog
    from vmm.machine import Machine
    m = Machine(memory_mb=8, log=VMMLog(open(os.devnull, "w")))
    m.finish_board()
    w = m.ctx.mem.write
    w(PML4, struct.pack("<Q", PDPT | 3))
    w(PDPT, struct.pack("<Q", PD | 3))
    w(PD, b"".join(struct.pack("<Q", (i << 21) | 0x83) for i in range(512)))   # 1 GiB, 2 MiB pages
    tss_desc = struct.pack("<HHBBBBII", 0x67, TSS & 0xFFFF, (TSS >> 16) & 0xFF, 0x89, 0,
                           TSS >> 24, 0, 0)
    w(GDT, struct.pack("<QQQ", 0, 0x00AF9B000000FFFF, 0x00CF93000000FFFF) + tss_desc)
    w(TSS, struct.pack("<IQQQQ", 0, STACK, STACK, STACK, 0) +
        struct.pack("<7Q", *([STACK - 0x1000] * 7)))
    gate = struct.pack("<HHBBHII", HANDLER & 0xFFFF, 0x08, 0, 0x8E, (HANDLER >> 16) & 0xFFFF, 0, 0)
    w(IDT, gate * 256)
    w(HANDLER, b"\xf4\xeb\xfd")                        # hlt; jmp $-1
    w(CODE, code)
    uc, env = m.uc, m.cpu.env
    uc.reg_write(X.UC_X86_REG_GDTR, (0, GDT, 4 * 8 - 1, 0))
    uc.reg_write(X.UC_X86_REG_IDTR, (0, IDT, 256 * 16 - 1, 0))
    uc.reg_write(X.UC_X86_REG_CR3, PML4)
    uc.reg_write(X.UC_X86_REG_CR4, 0x620)              # PAE, OSFXSR, OSXMMEXCPT
    uc.reg_write(X.UC_X86_REG_MSR, (0xC0000080, 0x901))   # EFER: SCE, LME, NXE
    uc.reg_write(X.UC_X86_REG_CR0, 0x80000033)         # PG, NE, ET, MP, PE
    uc.reg_write(X.UC_X86_REG_TR, (0x18, TSS, 0x67, 0x8B))
    env.set_seg(U.SEG_CS, 0x08, 0, 0xFFFFFFFF, 0x00AF9B00)
    for seg in (U.SEG_DS, U.SEG_ES, U.SEG_SS):
        env.set_seg(seg, 0x10, 0, 0xFFFFFFFF, 0x00CF9300)
    env.recompute_hflags()
    env.set_reg(4, STACK)
    env.eip = CODE
    uc.reg_write(X.UC_X86_REG_EFLAGS, 0x2)
    return m


def run_page(seed):
    """(outcome, wall seconds, exception or None) for the random page of `seed`."""
    code = random.Random(seed).randbytes(4096)
    error = None
    m = long_mode_machine(code)
    t0 = time.monotonic()                       # the run only, not building the machine
    assert m.cpu.env.hflags & (1 << 15), "not in 64-bit mode"
    try:
        result = m.run(timeout=TIMEOUT)
        outcome = f"ended: {result.reason}"
    except VMStop as exc:
        outcome = type(exc).__name__
    except Exception as exc:          # noqa: BLE001 -- the point of the test
        outcome, error = f"BUG {type(exc).__name__}", exc
    finally:
        m.close()
    return outcome, time.monotonic() - t0, error


def test_the_harness_enters_64bit_mode_with_a_working_idt():
    # int3 -> the IDT's gate -> hlt with IF=0: a halt, delivered in IA-32e mode
    from vmm.machine import GuestHalted
    m = long_mode_machine(b"\x48\x31\xc0\xcc")         # xor rax, rax; int3
    with pytest.raises(GuestHalted):
        m.run(timeout=5)
    assert m.cpu.env.eip in (HANDLER + 1, HANDLER)


@pytest.mark.slow
def test_random_long_mode_pages_end_cleanly():
    tally, example, bugs, slow = collections.Counter(), {}, {}, []
    t0 = time.monotonic()
    for seed in range(PAGES):
        outcome, wall, error = run_page(seed)
        tally[outcome] += 1
        example.setdefault(outcome, seed)
        if error is not None:
            bugs.setdefault(type(error).__name__, (seed, str(error)[:200]))
        if wall > TIMEOUT + GRACE:
            slow.append((seed, round(wall, 2), outcome))
    total = time.monotonic() - t0
    print(f"\n{PAGES} random long-mode pages in {total:.1f} s:")
    for outcome, n in tally.most_common():
        print(f"  {n:5d}  {outcome}  (e.g. seed {example[outcome]})")
    problems = [f"{t}: seed {s}: {msg}" for t, (s, msg) in list(bugs.items())[:5]]
    problems += [f"seed {s} took {w} s ({o})" for s, w, o in slow[:5]]
    assert not problems, "random long-mode code broke the VMM:\n" + "\n".join(problems)


if __name__ == "__main__":
    import traceback
    outcome, wall, error = run_page(int(sys.argv[1]))
    print(outcome, f"{wall:.2f} s")
    if error is not None:
        traceback.print_exception(error)
