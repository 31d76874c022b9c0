"""Self-modifying code runs the new code (tests/guests/smc.asm), on the v3 engine, and the NX
alias case that stock unicorn 2.1.4 gets wrong does fail there."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from vmm import engine
from vmm.machine import GuestHalted

ROOT = Path(__file__).resolve().parents[3]


def _require_v3_engine(require_built):
    require_built(engine.info().patched, "the v3 engine")


def test_every_kind_of_code_change_runs_the_new_code(bare, require_built):
    _require_v3_engine(require_built)
    b = bare().load("smc.bin")
    with pytest.raises(GuestHalted):
        b.run(timeout=20)
    assert b.text == "ABCDE"


def _stock_library_dir():
    import unicorn
    d = Path(unicorn.__file__).parent / "lib"
    return d if (d / "libunicorn.so.2").exists() else None


RUN_SMC = """
import sys
sys.path.insert(0, {tests!r})
from vmm import engine
from vmm.machine import GuestHalted
from conftest import Bare
b = Bare().load("smc.bin")
try:
    b.run(timeout=20)
except GuestHalted:
    pass
print(engine.info().describe(), "|", b.text)
"""


def test_stock_engine_runs_stale_code_through_the_nx_alias():
    """The same guest on the wheel's library: the NX alias case fails (stale translation)."""
    stock = _stock_library_dir()
    if stock is None:
        pytest.skip("the unicorn wheel carries no library of its own")
    env = dict(os.environ, LIBUNICORN_PATH=str(stock), PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", RUN_SMC.format(tests=str(ROOT / "tests" / "vmm"))],
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    what, text = out.stdout.strip().rsplit("|", 1)
    assert "stock" in what
    assert text.strip() == "ABCdE"


def test_disk_reads_over_code_that_ran(tmp_path):
    """INT 13h (the VMM writes guest RAM) and ATA PIO with rep insw (the guest does) over a
    routine that already ran: the new routine runs (tests/guests/smc_disk.asm)."""
    from vmm.launch import RunOptions, run
    from vmm.machine import EXIT_OK
    disk = tmp_path / "hd.img"
    sector = (ROOT / "tests" / "guests" / "smc_disk.bin").read_bytes()
    disk.write_bytes(sector + b"\xb0I\xc3".ljust(512, b"\0") + b"\xb0P\xc3".ljust(512, b"\0")
                     + bytes(512 * 61))
    out = tmp_path / "serial.out"
    result, _ = run(RunOptions(serial=f"file:{out}", memory_mb=16, timeout=60, hda=str(disk)))
    assert result.status == EXIT_OK, result
    assert out.read_text("latin-1") == "SMC-DISK IP\n"


def _dma_guest(bare):
    b = bare().load("smc_dma.bin")
    m = b.machine
    m.ctx.io.attach(0xEA, 1, lambda o, s: 0,
                    lambda o, s, v: m.ctx.mem.write(0x300000, b"\xb8\x02\x00\x00\x00\xc3"),
                    "test-dma")
    with pytest.raises(GuestHalted):
        b.run(timeout=20)
    return b.text


def test_vmm_writes_over_code_under_paging_run_the_new_code(bare):
    """A device-style write by physical address, the code page mapped elsewhere virtually."""
    assert _dma_guest(bare) == "12"


def test_vmm_writes_over_code_on_the_stock_fallback(bare, monkeypatch):
    """Without the engine's physical invalidation the VMM drops the whole cache instead."""
    from vmm import machine
    orig = machine.GuestMemory.__init__

    def stock_init(self, m):
        orig(self, m)
        self.physical_invalidation = False
    monkeypatch.setattr(machine.GuestMemory, "__init__", stock_init)
    assert _dma_guest(bare) == "12"


RUN_DMA = """
import sys
sys.path.insert(0, {tests!r})
from vmm import machine
from vmm.machine import GuestHalted
from conftest import Bare
b = Bare().load("smc_dma.bin")
m = b.machine
m.ctx.mem.physical_invalidation = True       # trust uc_mem_write, as on the v3 engine
m.ctx.io.attach(0xEA, 1, lambda o, s: 0,
                lambda o, s, v: m.ctx.mem.write(0x300000, bytes.fromhex("b802000000c3")), "dma")
try:
    b.run(timeout=20)
except GuestHalted:
    pass
print(b.text)
"""


def test_stock_uc_mem_write_leaves_stale_code():
    """Stock unicorn's uc_mem_write drops no translated code: the old routine runs again."""
    stock = _stock_library_dir()
    if stock is None:
        pytest.skip("the unicorn wheel carries no library of its own")
    env = dict(os.environ, LIBUNICORN_PATH=str(stock), PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", RUN_DMA.format(tests=str(ROOT / "tests" / "vmm"))],
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "11"
