"""The CPU's port I/O: one IN and one OUT dispatcher on the machine's port bus.

Every exit is counted and kept in the ring of recent exits (nothing is formatted on this path);
a port with block handlers gets REP INS/OUTS moved in one exit (vmm/cpu/stringio.py); a device
error inside a hook becomes the machine's fail-stop (`Machine._fail_in_hook`).

When the C dispatcher (vmm/cpu/_fastio.c) is built, it is the engine's hook: ports whose range
has a register fast path in C (a device's `fast`, vmm/cpu/fastport.h) are tried there first,
and everything else, and everything a fast path declines, comes here as before. It counts and
keeps the accesses it does itself (`m.fast_io`); the I/O log (`--debug io`) turns it off, so
that the log shows every access.
"""
import ctypes

from unicorn import UC_HOOK_INSN
from unicorn import x86_const as X

from vmm.cpu.stringio import StringIO
from vmm.cpu.ucinternals import hook_add_c
from vmm.telemetry import timed


def install_io_hooks(m):
    """One IN and one OUT dispatcher on the port bus, registered as raw ctypes callbacks
    (the binding's wrapper layers cost more than the dispatch itself). Every exit is
    counted and kept in the ring of recent exits; nothing is formatted on this path."""
    from unicorn.unicorn_py3.arch.intel import HOOK_INSN_IN_CFUNC, HOOK_INSN_OUT_CFUNC
    io = m.ctx.io
    table = io.table
    reads, writes = m.stats.port_reads, m.stats.port_writes
    recent = m.stats.recent
    iolog = m.iolog
    masks = (0, 0xFF, 0xFFFF, 0, 0xFFFFFFFF)
    m.stringio = strio = StringIO(m.cpu, m.ctx.mem)

    def on_in(handle, port, size, key):
        if m._fatal is not None:
            return masks[size]
        reads[port] += 1
        try:
            r = table[port]
            blocks = r is not None and r.blocks and r.blocks.get(port - r.base)
            if blocks and (value := strio.ins(blocks, size)) is not None:
                pass                  # a REP INSx moved in one exit (vmm/cpu/stringio.py)
            elif r is not None and size in r.widths:
                value = r.read(port - r.base, size) & masks[size]
            else:
                value = io.read(port, size)
        except BaseException as exc:
            recent.append(("in", port, size, None))
            m._fail_in_hook(exc)
            return masks[size]
        recent.append(("in", port, size, value))
        if iolog.on:
            iolog.debug(f"in  {port:#06x} /{size} -> {value:#x}")
        return value

    def on_out(handle, port, size, value, key):
        if m._fatal is not None:
            return
        writes[port] += 1
        recent.append(("out", port, size, value))
        if iolog.on:
            iolog.debug(f"out {port:#06x} /{size} <- {value:#x}")
        try:
            r = table[port]
            blocks = r is not None and r.blocks and r.blocks.get(port - r.base)
            if blocks and strio.outs(blocks, size, value & masks[size]):
                pass                  # a REP OUTSx moved in one exit
            elif r is not None and size in r.widths:
                r.write(port - r.base, size, value & masks[size])
            else:
                io.write(port, size, value)
        except BaseException as exc:
            m._fail_in_hook(exc)

    if m.telemetry_enabled:
        on_in, on_out = timed(on_in, m.stats), timed(on_out, m.stats)
    m._io_callbacks = (HOOK_INSN_IN_CFUNC(on_in), HOOK_INSN_OUT_CFUNC(on_out))
    m.fast_io, hooks, user = _fast_dispatcher(m)
    for fn, insn in zip(hooks, (X.UC_X86_INS_IN, X.UC_X86_INS_OUT)):
        hook_add_c(m.uc, UC_HOOK_INSN, fn, user, ctypes.c_int(insn))


def _fast_dispatcher(m):
    """The C dispatcher in front of on_in/on_out, and the IN/OUT hooks with their user data:
    (None, the Python callbacks, None) when it is not built. On the v3 engine (patch 9) the
    dispatcher is the engine's port fast path, asked before the hooks and before the engine
    syncs the guest PC for them, and the Python callbacks stay the hooks; on a stock engine
    the dispatcher's own hooks are, and they call Python for the rest."""
    try:
        from vmm.cpu import _fastio
    except ImportError:
        return None, m._io_callbacks, None
    from unicorn import UcError
    from unicorn.unicorn_py3.unicorn import uclib
    from vmm import engine
    d = _fastio.Dispatcher(*(ctypes.cast(cb, ctypes.c_void_p).value for cb in m._io_callbacks))
    entry = d.entry_points()
    if engine.has("uc_port_fastpath"):
        fast_in, fast_out = entry["fastpath"]
        status = uclib.uc_x86_set_port_fastpath(m.uc._uch, ctypes.c_void_p(fast_in),
                                                ctypes.c_void_p(fast_out),
                                                ctypes.c_void_p(entry["user"]))
        if status != 0:
            raise UcError(status)
        hooks, user = m._io_callbacks, None
    else:
        hooks, user = entry["hooks"], entry["user"]
    d.enabled = not m.iolog.on
    m.ctx.io.use_fast_paths(d)
    m.stats.fast_io = d
    return d, hooks, user
