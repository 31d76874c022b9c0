"""Engine patch 0006: port I/O at CPL > IOPL consults the TSS I/O permission bitmap
(tests/guests/iobitmap.asm), on the v3 engine; the stock engine performs every access."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from vmm import engine
from vmm.machine import GuestHalted

ROOT = Path(__file__).resolve().parents[3]
EXPECTED = "RG W L S PDONE"
RUN = """
import sys
sys.path.insert(0, {tests!r})
from vmm import engine
from vmm.machine import GuestHalted
from conftest import Bare
b = Bare().load("iobitmap.bin")
e0 = []
b.machine.ctx.io.attach(0xE0, 1, lambda o, s: 0, lambda o, s, v: e0.append(v), "test-e0")
try:
    b.run(timeout=20)
except GuestHalted:
    pass
except Exception as exc:
    print(engine.info().describe(), "|", b.text, "|", type(exc).__name__)
    raise SystemExit(0)
print(engine.info().describe(), "|", b.text, "|", len(e0))
"""


def _run(env=None):
    out = subprocess.run([sys.executable, "-c", RUN.format(tests=str(ROOT / "tests" / "vmm"))],
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return [part.strip() for part in out.stdout.strip().split("|")]


def test_the_bitmap_decides_at_cpl3_and_iopl_lifts_it(bare, require_built):
    require_built(engine.has("uc_io_permission_bitmap"), "the v3 engine with the I/O bitmap check")
    b = bare().load("iobitmap.bin")
    e0 = []
    b.machine.ctx.io.attach(0xE0, 1, lambda o, s: 0, lambda o, s, v: e0.append(v), "test-e0")
    with pytest.raises(GuestHalted):
        b.run(timeout=20)
    assert b.text == EXPECTED
    assert e0 == [ord("P")]                  # only the write made with IOPL 3 reached the port


def test_stock_engine_lets_ring3_reach_every_port():
    """On the wheel's library the denied OUT goes through: the guest never sees a #GP."""
    import unicorn
    stock = Path(unicorn.__file__).parent / "lib"
    if not (stock / "libunicorn.so.2").exists():
        pytest.skip("the unicorn wheel carries no library of its own")
    env = dict(os.environ, LIBUNICORN_PATH=str(stock), PYTHONPATH=str(ROOT))
    what, text, _ = _run(env)
    assert "stock" in what
    assert text.startswith("R") and not text.startswith("RG ")
