"""Engine patch 0007: the test for a requested exit at the start of every block is inline (a
load and a branch) instead of a helper call. A stop must still land at a block's start, with
the PC of that block and every earlier instruction done exactly once: from another thread,
with code hooks installed (cpu_tb_exec then used to leave the PC alone), and after a hook wrote
the PC itself."""
import threading
import time

from vmm import engine

# L (0x1000): inc dword [0x3000]; inc ecx; jmp L2      one block
# L2 (0x1010): inc ebx; jmp L                          another
LOOP = {0x1000: b"\xff\x05\x00\x30\x00\x00" + b"\x41" + b"\xeb\x07",
        0x1010: b"\x43" + b"\xeb\xed"}
L, L2, COUNTER = 0x1000, 0x1010, 0x3000


def _require(require_built):
    require_built(engine.has("uc_inline_exit_check"), "the v3 engine with the inline exit check")


def _machine():
    from unicorn import Uc, UC_ARCH_X86, UC_MODE_32
    from vmm.cpu import ucinternals as U
    uc = Uc(UC_ARCH_X86, UC_MODE_32)
    uc.mem_map(0, 0x10000)
    for addr, code in LOOP.items():
        uc.mem_write(addr, code)
    U.make_stops_block_granular(uc)
    return uc


def _state(uc):
    from unicorn import x86_const as X
    counter = int.from_bytes(uc.mem_read(COUNTER, 4), "little")
    return (uc.reg_read(X.UC_X86_REG_EIP), uc.reg_read(X.UC_X86_REG_ECX),
            uc.reg_read(X.UC_X86_REG_EBX), counter)


def _run_until_stopped(uc, begin):
    """emu_start at `begin`, stopped from another thread after about 2 ms. A stop that reaches
    the engine before emu_start has begun is dropped (on a loaded host the thread may win that
    race), so the thread repeats it every 2 ms until the run has ended."""
    ended = threading.Event()

    def stopper():
        while not ended.wait(0.002):
            uc.emu_stop()
    thread = threading.Thread(target=stopper, daemon=True)
    thread.start()
    try:
        uc.emu_start(begin, 0xFFFF)
    finally:
        ended.set()
        thread.join()


def _stop_repeatedly(uc, stops):
    """Run the loop, stopped from another thread `stops` times; check each stop."""
    seen = set()
    eip = _state(uc)[0]
    if eip not in (L, L2):
        eip = L
    for _ in range(stops):
        _run_until_stopped(uc, eip)
        eip, ecx, ebx, counter = _state(uc)
        assert eip in (L, L2), hex(eip)               # at a block's start
        assert counter == ecx                         # the block ran whole, once
        assert ebx == (ecx if eip == L else ecx - 1)
        seen.add(eip)
    return seen


def test_a_stop_from_another_thread_lands_at_a_block_start(require_built):
    """(With the VMM's block-granular stops: stock unicorn's checks after every memory access,
    which replay the access, are off.)"""
    _require(require_built)
    uc = _machine()
    assert _stop_repeatedly(uc, 60) == {L, L2}


def test_with_code_hooks_the_pc_is_still_the_blocks_start(require_built):
    """A code hook elsewhere makes HOOK_EXISTS(UC_HOOK_CODE) true: the exit at a block's start
    still puts the PC there (stock cpu_tb_exec left it alone then)."""
    from unicorn import UC_HOOK_CODE
    _require(require_built)
    uc = _machine()
    hits = []
    uc.hook_add(UC_HOOK_CODE, lambda *a: hits.append(1), None, 0x8000, 0x8001)
    assert _stop_repeatedly(uc, 60) == {L, L2}
    assert not hits


def test_a_pc_written_by_a_hook_is_kept_and_the_next_hook_sees_its_pc(require_built):
    """A SYSENTER hook moves EIP, as the VMM's does (unicorn's quit_request and
    skip_sync_pc_on_exit): the run goes on at the new EIP, stops after that report the PC of
    the block they land at, and the next SYSENTER's hook sees the PC of its SYSENTER again
    (the flag was consumed at the exit)."""
    from unicorn import UC_HOOK_INSN
    from unicorn import x86_const as X
    _require(require_built)
    uc = _machine()
    uc.mem_write(0x2000, b"\x0f\x34")                 # sysenter (the helper adds 2 to EIP)
    seen = []

    def on_sysenter(uc_, data):
        seen.append(uc_.reg_read(X.UC_X86_REG_EIP))
        uc_.reg_write(X.UC_X86_REG_EIP, L - 2)
    uc.hook_add(UC_HOOK_INSN, on_sysenter, None, 1, 0, X.UC_X86_INS_SYSENTER)
    for run in range(3):
        for reg in (X.UC_X86_REG_ECX, X.UC_X86_REG_EBX):
            uc.reg_write(reg, 0)
        uc.mem_write(COUNTER, bytes(4))
        _run_until_stopped(uc, 0x2000)
        assert seen == [0x2000] * (run + 1)
        eip, ecx, ebx, counter = _state(uc)
        assert eip in (L, L2) and counter == ecx > 0
        _stop_repeatedly(uc, 10)                      # asserts every stop itself


def test_emu_starts_own_timeout_still_ends_the_run(require_built):
    """emu_start's timeout (unicorn's timer thread calls uc_emu_stop)."""
    _require(require_built)
    uc = _machine()
    t0 = time.monotonic()
    uc.emu_start(L, 0xFFFF, timeout=20_000)           # microseconds
    assert time.monotonic() - t0 < 5
    eip, ecx, ebx, counter = _state(uc)
    assert eip in (L, L2) and counter == ecx > 0
