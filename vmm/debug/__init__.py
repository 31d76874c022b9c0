"""Debugging the guest: run control (control.py), the gdb remote stub (gdbstub.py, with the
register files of registers.py), the monitor (monitor.py) and VM snapshots (snapshot.py). See
docs/debug.md and docs/snapshots.md."""


def attach(machine, gdb=None, monitor=None, start_stopped=False):
    """Give `machine` a debugger and the host connections asked for. Raises V3Error (one line)
    for an address that cannot be listened on; nothing is left open then."""
    from v3tools.errors import V3Error
    from vmm.debug.control import Debugger
    from vmm.debug.monitor import Monitor, MonitorServer
    dbg = Debugger(machine)
    machine.debug = dbg
    mon = Monitor(machine)
    machine.monitor = mon
    opened = []
    try:
        if gdb:
            from vmm.debug.gdbstub import GdbStub
            stub = GdbStub(machine, dbg, gdb, monitor=mon,
                           log=machine.vmmlog.component("run"))
            opened.append(stub)
        if monitor:
            opened.append(MonitorServer(machine, mon, monitor))
    except V3Error:
        for s in opened:
            s.close()
        raise
    for s in opened:
        machine.events.add(s)
    if start_stopped:
        dbg.held = True
        dbg.reason = ("start",)
    return dbg
