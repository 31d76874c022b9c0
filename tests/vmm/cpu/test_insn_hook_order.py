"""Stock Unicorn's SYSENTER helper walks the instruction hooks and leaves the walk when a stop
has been requested, also before it reaches the SYSENTER hook; it then resumes at the start of
the translated block plus two. Engine patch 0005 lets only a hook that ran end the walk; on the
stock engine a hook first in the list is always reached, so CPU.install_hooks puts SYSENTER
first (docs/run.md, "Under host load")."""
import struct
import threading
import time

import pytest

from unicorn import Uc, UC_ARCH_X86, UC_MODE_32, UC_HOOK_INSN
from unicorn import x86_const as X

from vmm.cpu import ucinternals as U

LOOP = 0x1000
TARGET = 0x2000
STACK = 0x9000
# loop: inc dword [0x5000]; push ecx; push edx; push ebp; mov ebp, esp; sysenter
LOOP_CODE = b"\xff\x05" + struct.pack("<I", 0x5000) + b"\x51\x52\x55\x89\xe5\x0f\x34"
# target: pop ebp; pop edx; pop ecx; jmp loop
TARGET_CODE = b"\x5d\x5a\x59\xe9" + struct.pack("<i", LOOP - (TARGET + 8))


def sysenter_under_stop_requests(sysenter_first, seconds=1.5):
    """Run the vDSO-like loop while another thread keeps requesting stops; returns how many
    stops found ESP outside the loop's four possible values."""
    uc = Uc(UC_ARCH_X86, UC_MODE_32)
    uc.mem_map(0, 0x10000)
    uc.ctl_exits_enabled(True)
    uc.ctl_set_exits([])
    env = U.find_env(uc)
    uc.mem_write(LOOP, LOOP_CODE)
    uc.mem_write(TARGET, TARGET_CODE)

    def on_sysenter(uc_, _):
        env.eip = TARGET - 2                 # Unicorn adds the instruction length

    def on_cpuid(uc_, _):
        return 0

    hooks = [(on_sysenter, X.UC_X86_INS_SYSENTER), (on_cpuid, X.UC_X86_INS_CPUID)]
    for fn, insn in (hooks if sysenter_first else hooks[::-1]):
        uc.hook_add(UC_HOOK_INSN, fn, None, 1, 0, insn)
    U.make_stops_block_granular(uc)
    uc.reg_write(X.UC_X86_REG_ESP, STACK)
    env.eip = LOOP
    done = threading.Event()

    def stopper():
        while not done.is_set():
            uc.emu_stop()
            time.sleep(0.00005)

    t = threading.Thread(target=stopper, daemon=True)
    t.start()
    wrong = 0
    end = time.monotonic() + seconds
    try:
        while time.monotonic() < end:
            uc.emu_start(env.eip, 0)
            if env.reg(4) & 0xFFFFFFFF not in (STACK, STACK - 4, STACK - 8, STACK - 12):
                wrong += 1
                env.set_reg(4, STACK)
                env.eip = LOOP
    finally:
        done.set()
        t.join()
    return wrong


def test_a_sysenter_hook_behind_another_is_reached_on_the_v3_engine():
    """Engine patch 0005: only a hook that ran may end the walk, so the order does not matter."""
    from vmm import engine
    if not engine.has("uc_hook_walk_complete"):
        pytest.skip("the v3 engine is not installed")
    assert sysenter_under_stop_requests(sysenter_first=False) == 0


def test_a_sysenter_hook_first_is_always_reached():
    assert sysenter_under_stop_requests(sysenter_first=True) == 0


RUN_STOCK = """
import sys
sys.path.insert(0, {tests!r})
from vmm import engine
import test_insn_hook_order as t
print(engine.info().describe(), "|", t.sysenter_under_stop_requests(sysenter_first=False))
"""


def test_the_stock_engine_skips_a_sysenter_hook_behind_another():
    """The engine behaviour patch 0005 fixes and the hook order works around on stock."""
    import os
    import subprocess
    import sys
    from pathlib import Path
    import unicorn
    stock = Path(unicorn.__file__).parent / "lib"
    if not (stock / "libunicorn.so.2").exists():
        pytest.skip("the unicorn wheel carries no library of its own")
    root = Path(__file__).resolve().parents[3]
    env = dict(os.environ, LIBUNICORN_PATH=str(stock), PYTHONPATH=str(root))
    out = subprocess.run([sys.executable, "-c", RUN_STOCK.format(tests=str(root / "tests" / "vmm" / "cpu"))],
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    what, wrong = out.stdout.strip().rsplit("|", 1)
    assert "stock" in what
    assert int(wrong) > 0


def test_the_cpu_installs_the_sysenter_hook_first(monkeypatch):
    from vmm.cpu import CPU
    cpu = CPU(None)
    order = []
    cls = type(cpu.uc)
    real_add = cls.hook_add

    def recording_add(self, htype, callback, user_data=None, begin=1, end=0, *args):
        if htype == UC_HOOK_INSN:
            order.append(args[0] if args else None)
        return real_add(self, htype, callback, user_data, begin, end, *args)

    monkeypatch.setattr(cls, "hook_add", recording_add)
    cpu.install_hooks()
    assert order and order[0] == X.UC_X86_INS_SYSENTER
