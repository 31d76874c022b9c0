"""The port dispatcher in C (vmm/cpu/_fastio.c, installed by vmm/cpu/portio.py): a device's
register fast path does the accesses it can inside the engine's run, everything it declines
reaches the Python model, both are counted, the fail-stop diagnostic shows the fast ones, and
the I/O log turns the fast path off. On the v3 engine the fast path is the engine's (patch 9:
asked before the hooks, with no PC sync); on a stock engine the dispatcher is the hook. Both
ways are run here."""
import pytest

from vmm.devices.ne2000 import NE2000
from vmm.log import VMMLog
from vmm.machine import GuestHalted, Machine

BASE = 0x300
ORG = 0x7C00
#  mov dx,0x300 ; mov al,0x21 ; out dx,al   CR: stop (a start/stop: the model's)
#  mov dx,0x30D ; mov al,0x1F ; out dx,al   TCR (a plain register: C)
#  mov dx,0x307 ; in al,dx                  ISR (C): RST, set by the stop
#  mov [0x600],al
#  mov dx,0x301 ; mov al,0x55 ; out dx,al   PSTART (a ring bound, checked: the model's)
#  hlt
CODE = bytes.fromhex("ba0003b021ee" "ba0d03b01fee" "ba0703ec" "a20006" "ba0103b055ee" "f4")


def _fast_built():
    try:
        from vmm.cpu import _fastio  # noqa: F401
        from vmm.devices import _ne2000  # noqa: F401
    except ImportError:
        return False
    return True


def _machine(log=None):
    m = Machine(memory_mb=1, log=log)
    nic = NE2000("nic0", "pci0", mac=bytes.fromhex("525400123456"))
    nic.power_on()
    calls = []

    def read(offset, size):
        calls.append(("in", offset))
        return nic._read(offset, size)

    def write(offset, size, value):
        calls.append(("out", offset))
        nic._write(offset, size, value)

    m.ctx.io.attach(BASE, 32, read, write, "nic0", widths=(1, 2, 4), fast=nic.fast)
    m.uc.mem_write(ORG, CODE)
    m.cpu.reset(cs=0, ip=ORG)
    return m, nic, calls


@pytest.fixture(params=["engine", "hook"])
def way(request, monkeypatch, require_built):
    """'engine': the engine's port fast path (patch 9), when this engine has it; 'hook': the
    dispatcher as the IN/OUT hook, as on a stock engine."""
    require_built(_fast_built(), "the C port dispatcher and the NE2000 fast path")
    from vmm import engine
    if request.param == "engine":
        require_built(engine.has("uc_port_fastpath"), "the v3 engine with the port fast path")
    if request.param == "hook":
        real = engine.has
        monkeypatch.setattr(engine, "has", lambda marker: marker != "uc_port_fastpath"
                            and real(marker))
    return request.param


def test_fast_path_does_what_it_can_and_the_model_the_rest(way):
    m, nic, calls = _machine()
    with pytest.raises(GuestHalted):
        m.run(timeout=10)
    assert calls == [("out", 0x00), ("out", 0x01)]          # only the declined ones
    assert nic.tcr == 0x1F and nic.pstart == 0x55
    assert m.uc.mem_read(0x600, 1)[0] == 0x80                # ISR.RST, read in C
    counts = m.stats.port_counts()
    assert counts[BASE + 0x0D] == [0, 1] and counts[BASE + 0x07] == [1, 0]
    assert counts[BASE] == [0, 1] and counts[BASE + 1] == [0, 1]
    assert m.stats.exit_count() >= 4
    assert m.stats.recent_fast_text() == ["out 0x030d/1 <- 0x1f", "in 0x0307/1 -> 0x80"]
    assert "last port accesses done by device fast paths in C: out 0x030d/1 <- 0x1f; " \
           "in 0x0307/1 -> 0x80" in m.diagnostic(RuntimeError("test"))
    telemetry = m.stats.as_dict()["exits"]["port_io"]
    assert telemetry["0x030d"] == {"reads": 0, "writes": 1}


def test_the_io_log_sees_every_access(way, tmp_path):
    import io
    stream = io.StringIO()
    m, nic, calls = _machine(VMMLog(stream=stream, enabled=["io"]))
    assert not m.fast_io.enabled
    with pytest.raises(GuestHalted):
        m.run(timeout=10)
    assert calls == [("out", 0x00), ("out", 0x0D), ("in", 0x07), ("out", 0x01)]
    assert "out 0x030d /1 <- 0x1f" in stream.getvalue()
    assert m.stats.recent_fast_text() == []


def test_a_moved_range_leaves_the_fast_path(way):
    m, nic, calls = _machine()
    rng = m.ctx.io.find(BASE)
    m.ctx.io.detach(rng)
    m.ctx.io.attach(BASE + 0x100, 32, rng.read, rng.write, "nic0", widths=(1, 2, 4),
                    fast=nic.fast)
    m.ctx.io.attach(BASE, 32, lambda o, s: calls.append(("old", o)) or 0,
                    lambda o, s, v: calls.append(("old", o)), "other")
    with pytest.raises(GuestHalted):
        m.run(timeout=10)
    assert [c for c in calls if c[0] == "old"] == [("old", 0x00), ("old", 0x0D), ("old", 0x07),
                                                   ("old", 0x01)]
    assert nic.tcr == 0


def test_after_a_fail_stop_the_rest_of_the_block_does_nothing(way):
    """A device error inside a hook stops the guest at that instruction; the engine ends the
    block later, so the I/O after it in the same block must not reach a fast path either."""
    from v3tools.errors import UnhandledIO
    m, nic, calls = _machine()
    #  mov dx,0x2F0 ; out dx,al (nobody's port: a fail-stop) ; mov dx,0x30D ; mov al,0x1F ;
    #  out dx,al (TCR, in C unless switched off) ; hlt
    m.uc.mem_write(ORG, bytes.fromhex("baf002ee" "ba0d03b01fee" "f4"))
    with pytest.raises(UnhandledIO):
        m.run(timeout=10)
    assert nic.tcr == 0
    assert not m.fast_io.enabled
