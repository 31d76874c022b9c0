"""Run control in-process (no gdb): what a debugger adds to the guest's execution, when."""
import io

import pytest

from v3tools.errors import VMStop


def machine_for(floppy):
    from vmm.context import Console
    from vmm.debug import attach
    from vmm.launch import RunOptions, build_machine, plan
    from vmm.log import VMMLog
    opts = RunOptions(fda=str(floppy), serial="null")
    m = build_machine(plan(opts), opts, Console(None), VMMLog(io.StringIO(), ()))
    return m, attach(m)


def test_costs_only_while_armed(floppy, sym):
    m, dbg = machine_for(floppy)
    seen = []                                   # (precise hook?, exits) of every run
    before = dbg.before_run

    def spy():
        before()
        seen.append((dbg._precise_hook is not None, dbg._exits))
    dbg.before_run = spy
    script = [
        lambda: dbg.add_breakpoint(sym["after_sti"]),
        lambda: dbg.resume(),
        # at the breakpoint: memory shows the guest's own byte (nop), then one step
        lambda: seen.append(("read", dbg.read_memory(sym["after_sti"], 1))),
        lambda: dbg.step(),
        lambda: dbg.remove_breakpoint(sym["after_sti"]),
        lambda: dbg.add_watchpoint("write", sym["var"], 8),
        lambda: dbg.resume(),
        lambda: dbg.remove_watchpoint("write", sym["var"], 8),
        lambda: dbg.resume(),
    ]
    stops = []

    def on_stop(reason):
        stops.append((reason, m.cpu.linear_pc()))
        while script and dbg.held:
            script.pop(0)()
    dbg.listeners.append(on_stop)
    dbg.stop(("start",))
    with pytest.raises(VMStop):                 # the guest ends with cli; hlt
        m.run(timeout=60)
    m.close()
    kinds = [r[0] for r, _ in stops]
    assert kinds == ["start", "breakpoint", "step", "watch"], stops
    assert stops[1][1] == sym["after_sti"] and stops[2][1] == sym["after_sti"] + 1
    assert stops[3] == (("watch", "write", sym["var"]), sym["pm_written"])
    assert ("read", b"\x90") in seen
    runs = [s for s in seen if s[0] != "read"]
    # once the last watchpoint is gone: no hook, no exit (the runs to the guest's end)
    assert runs[-1] == (False, ())
    # a breakpoint alone: an exit, no hook; a step or a watchpoint: the instruction hook
    assert (False, (sym["after_sti"],)) in runs
    assert (True, ()) in runs
