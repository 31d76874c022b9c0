"""Signals that end the VMM process, turned into an orderly end of the run.

While the run loop runs, SIGINT, SIGTERM and SIGHUP do not interrupt Python wherever it happens
to be (possibly inside an emulator hook, where an exception would be lost): the handler only
asks the machine to stop (`ctx.request("signal N")`) and wakes its wait. The run loop then
raises HostSignal, and the launcher's finally blocks restore the terminal and close the files.
A second signal of the same kind while the first is being handled ends the process at once
(after restoring the terminal), for a VMM that is stuck.
"""
import contextlib
import os
import signal
import threading

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextlib.contextmanager
def orderly_signals(machine, on_force_exit=None):
    """Within the block, the SIGNALS stop `machine` in order. Outside the main thread (where
    Python cannot install handlers) nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    seen = set()

    def handler(signum, frame):
        if signum in seen:              # asked twice: the loop is not answering
            if on_force_exit is not None:
                on_force_exit()
            os._exit(128 + signum)
        seen.add(signum)
        machine.ctx.request(f"signal {signum}")
        machine.events.wake()

    previous = {}
    try:
        for sig in SIGNALS:
            previous[sig] = signal.signal(sig, handler)
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
