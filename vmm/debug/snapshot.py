"""VM snapshots: the whole machine in one file, restored into a freshly built machine of the
same configuration (`v3 run ... --savevm FILE`, `v3 run ... --loadvm FILE`).

The file is a zip archive (any unzip tool lists it; `v3 inspect FILE` summarises it):

    v3snapshot.json   format name and version, the machine it belongs to (memory size, device
                      classes and ids in order), virtual time, the guest's TSC, the CPU's
                      registers by name (for people; the engine context below is what loads),
                      the VMM's CPU-side state, every device's state as named fields, the
                      machine's own run state, and the pending timers
    cpu.context       the engine's CPU context (Unicorn 2.1.4's CPUX86State up to its reset
                      boundary: registers, segment caches, control registers, MSRs, FPU/SSE),
                      which holds the hidden state no register interface reaches
    ram.index         the guest-physical page numbers saved (little-endian uint32 each)
    ram.pages         those pages, 4 KiB each, in the same order

RAM is sparse: only pages that are not all zero are saved (a lazily mapped 1 GiB guest costs
what it touched). Device state is saved generically, by attribute name: plain values (numbers,
strings, bytes, lists, dicts, sets, deques) and the device's own helper objects (a PIT channel,
a UART, an IDE drive) recursively; references to other devices, the board, the clock, logs and
media are wiring, rebuilt from the configuration rather than saved. A field that exists in the
file and in the machine is restored; so a file stays loadable across versions that keep those
fields. Timers are saved as (deadline, owner, method) and re-armed; the guest's TSC and virtual
clock continue from where they were, so a restored guest sees no time pass. A bytearray field
is restored in place (a device's C fast path may hold it), and a device's `restored()`, if it
has one, runs last to derive what follows from its restored state.

Refused, in one line: a file that is not a v3 snapshot or of a newer format version, one whose
machine differs (memory size, devices), one saved by another engine build, and state that has
no name (a pending callback that is not a method of a device).
"""
import base64
import collections
import ctypes
import json
import struct
import time
import types
import zipfile

from v3tools.errors import SnapshotError
from vmm.cpu import ucinternals as U

FORMAT = "v3tools VM snapshot"
VERSION = 1
PAGE = 4096
MEMBER_STATE = "v3snapshot.json"
MEMBER_CONTEXT = "cpu.context"
MEMBER_INDEX = "ram.index"
MEMBER_PAGES = "ram.pages"

# Attribute values of these modules' classes are wiring (rebuilt from the configuration),
# never state: the board, buses, clock and timers, logs, media, the machine and CPU objects.
WIRING_MODULES = ("vmm.context", "vmm.bus", "vmm.clock", "vmm.log", "vmm.media", "vmm.machine",
                  "vmm.memory",
                  "vmm.cpu.core", "vmm.events", "vmm.telemetry", "vmm.cpu.ucinternals", "vmm.net",
                  "vmm.debug", "vmm.terminal", "unicorn")
SKIP_ATTRS = {"log", "exlog", "ctx", "clock", "timers", "stats", "uc", "env", "machine",
              "_ram", "ram", "_sink"}
CPU_FIELDS = ("sysenter_count", "syscall_count", "cpuid_count", "cpuid", "msrs", "delivery")
MACHINE_FIELDS = ("_halted", "_halt_until", "_irq_blocked", "_quick_stop")
CTX_FIELDS = ("a20", "requests", "pending_irq_events", "boot_order", "_lines")


# -- encoding state ------------------------------------------------------------------------------
class _Saver:
    def __init__(self, roots):
        self.paths = {}                     # id(obj) -> path, for every object walked
        self.timers = []                    # [Timer]
        self.timer_index = {}
        self.roots = {id(obj): name for name, obj in roots.items()}

    def tree(self, name, obj, fields=None):
        self.paths[id(obj)] = [name]
        return self._object(obj, [name], fields)

    def _object(self, obj, path, fields=None):
        out = {}
        for attr, value in _fields(obj, fields):
            if attr in SKIP_ATTRS:
                continue
            enc = self._value(value, path + [attr])
            if enc is not _SKIP:
                out[attr] = enc
        return out

    def _value(self, v, path):
        from vmm.clock import Timer
        from vmm.irq import IrqLine
        if v is None or isinstance(v, (bool, int, float, str)):
            return v
        if isinstance(v, IrqLine):
            return {"__irq__": v.level}           # the wiring is rebuilt; the level is state
        if isinstance(v, (bytes, bytearray)):
            return {"__bytes__": base64.b64encode(bytes(v)).decode(), "mutable":
                    isinstance(v, bytearray)}
        if isinstance(v, Timer):
            if id(v) not in self.timer_index:
                self.timer_index[id(v)] = len(self.timers)
                self.timers.append(v)
            return {"__timer__": self.timer_index[id(v)]}
        if isinstance(v, collections.deque):
            return {"__deque__": [self._item(x, path + [i]) for i, x in enumerate(v)],
                    "maxlen": v.maxlen}
        if isinstance(v, (list, tuple)):
            items = [self._item(x, path + [i]) for i, x in enumerate(v)]
            return items if isinstance(v, list) else {"__tuple__": items}
        if isinstance(v, (set, frozenset)):
            return {"__set__": sorted((self._item(x, path) for x in v), key=repr)}
        if isinstance(v, dict):
            return {"__dict__": [[self._item(k, path), self._item(x, path + [_key(k)])]
                                 for k, x in v.items()]}
        if hasattr(v, "__self__") and hasattr(v, "__func__"):       # a bound method
            owner = self.paths.get(id(v.__self__))
            if owner is None and id(v.__self__) in self.roots:
                owner = [self.roots[id(v.__self__)]]
            if owner is None:
                return _SKIP if _is_wiring(v.__self__) else self._unnamed(path, v)
            return {"__method__": [owner, v.__func__.__name__]}
        if id(v) in self.roots or _is_wiring(v) or isinstance(v, ctypes._CFuncPtr) or \
                isinstance(v, (types.FunctionType, types.BuiltinFunctionType)):
            return _SKIP              # a reference, or a function given at construction: wiring
        if id(v) in self.paths:
            return {"__ref__": self.paths[id(v)]}                    # seen before (an alias)
        if callable(v) or not type(v).__module__.startswith("vmm."):
            return self._unnamed(path, v)
        self.paths[id(v)] = path
        return {"__object__": type(v).__name__, "module": type(v).__module__,
                "fields": self._object(v, path)}

    def _item(self, v, path):
        """A container's element: wiring there is kept as a placeholder, so that positions
        stay as they were."""
        enc = self._value(v, path)
        return WIRING if enc is _SKIP else enc

    @staticmethod
    def _unnamed(path, v):
        raise SnapshotError(f"cannot save the machine now: {_show(path)} holds "
                            f"{type(v).__name__} {v!r:.60}, which has no saved form")


_SKIP = object()
WIRING = {"__wiring__": 1}        # a container's element that is wiring (kept as it is on load)


def _key(k):
    return k if isinstance(k, (str, int)) else repr(k)


def _show(path):
    return ".".join(str(p) for p in path)


def _fields(obj, names=None):
    if names is not None:
        return [(n, getattr(obj, n)) for n in names if hasattr(obj, n)]
    if hasattr(obj, "__dict__"):
        return list(vars(obj).items())
    slots = []
    for cls in type(obj).__mro__:
        slots.extend(getattr(cls, "__slots__", ()))
    return [(n, getattr(obj, n)) for n in slots if hasattr(obj, n)]


def _is_wiring(v):
    from vmm.devices.base import Device
    mod = type(v).__module__
    return isinstance(v, Device) or any(mod == m or mod.startswith(m + ".")
                                        for m in WIRING_MODULES) or type(v).__name__ == "Bios" \
        or getattr(type(v), "SNAPSHOT_WIRING", False)


# -- decoding state ------------------------------------------------------------------------------
class _Loader:
    def __init__(self, roots, timers):
        self.roots = roots
        self.timers = timers                # index -> new Timer (or a dead one)

    def resolve(self, path):
        obj = self.roots[path[0]]
        for step in path[1:]:
            if isinstance(obj, (list, tuple, collections.deque)):
                obj = obj[step]
            elif isinstance(obj, dict):
                obj = {_key(k): v for k, v in obj.items()}[step]
            else:
                obj = getattr(obj, step)
        return obj

    def apply(self, obj, fields, path, create=False):
        for attr, enc in fields.items():
            if not create and not hasattr(obj, attr):
                continue                    # a field this version no longer has
            if create:
                new = self.value(enc, None, path + [attr])
                if new is not _KEEP:
                    setattr(obj, attr, new)
                continue
            current = getattr(obj, attr)
            new = self.value(enc, current, path + [attr])
            if new is not _KEEP:
                setattr(obj, attr, new)

    def value(self, enc, current, path):
        if enc is None or isinstance(enc, (bool, int, float, str)):
            return enc
        if isinstance(enc, list):
            if isinstance(current, list) and len(current) == len(enc) and \
                    any(isinstance(e, dict) and _IN_PLACE & e.keys() for e in enc):
                for i, e in enumerate(enc):
                    r = self.value(e, current[i], path + [i])
                    if r is not _KEEP:
                        current[i] = r
                return _KEEP
            return [self.value(e, None, path + [i]) for i, e in enumerate(enc)]
        if "__wiring__" in enc:
            return _KEEP if current is not None else None
        if "__irq__" in enc:
            if current is not None and hasattr(current, "level"):
                current.level = enc["__irq__"]     # no edge: the devices' state is restored too
            return _KEEP
        if "__bytes__" in enc:
            raw = base64.b64decode(enc["__bytes__"])
            if enc.get("mutable") and isinstance(current, bytearray) and \
                    len(current) == len(raw):
                current[:] = raw            # in place: a device's C fast path holds the buffer
                return _KEEP
            return bytearray(raw) if enc.get("mutable") else raw
        if "__timer__" in enc:
            return self.timers[enc["__timer__"]]
        if "__deque__" in enc:
            return collections.deque((self.value(e, None, path) for e in enc["__deque__"]),
                                     enc["maxlen"])
        if "__tuple__" in enc:
            items = enc["__tuple__"]
            if isinstance(current, tuple) and len(current) == len(items):
                got = [self.value(e, c, path + [i]) for i, (e, c) in enumerate(zip(items, current))]
                if all(g is _KEEP for g in got):
                    return _KEEP
                return tuple(c if g is _KEEP else g for g, c in zip(got, current))
            return tuple(self.value(e, None, path) for e in items)
        if "__set__" in enc:
            return {self._hashable(self.value(e, None, path)) for e in enc["__set__"]}
        if "__dict__" in enc:
            if isinstance(current, dict) and any(isinstance(v, dict) and _IN_PLACE & v.keys()
                                                 for _, v in enc["__dict__"]):
                keyed = {_key(k): k for k in current}
                for k, v in enc["__dict__"]:
                    key = self._hashable(self.value(k, None, path))
                    real = keyed.get(_key(key), key)
                    r = self.value(v, current.get(real), path + [_key(key)])
                    if r is not _KEEP:
                        current[real] = r
                return _KEEP
            return {self._hashable(self.value(k, None, path)): self.value(v, None, path)
                    for k, v in enc["__dict__"]}
        if "__method__" in enc:
            owner, name = enc["__method__"]
            return getattr(self.resolve(owner), name)
        if "__ref__" in enc:
            return self.resolve(enc["__ref__"])
        if "__object__" in enc:
            if current is None and enc.get("module"):
                # made after power-on (by the BIOS, by the guest's doing): make it again, empty,
                # and fill in its saved fields; its wiring stays unset
                import importlib
                cls = getattr(importlib.import_module(enc["module"]), enc["__object__"], None)
                if cls is not None:
                    obj = cls.__new__(cls)
                    self.apply(obj, enc["fields"], path, create=True)
                    return obj
            if current is None or type(current).__name__ != enc["__object__"]:
                raise SnapshotError(f"the snapshot's {_show(path)} is a {enc['__object__']}, "
                                    f"this machine's is {type(current).__name__}")
            self.apply(current, enc["fields"], path)
            return _KEEP
        raise SnapshotError(f"unknown saved value at {_show(path)}")

    @staticmethod
    def _hashable(v):
        return tuple(v) if isinstance(v, list) else v


_KEEP = object()
_IN_PLACE = {"__object__", "__wiring__", "__irq__"}   # restored into the machine's own objects


# -- the machine ---------------------------------------------------------------------------------
def _roots(machine):
    roots = {"machine": machine, "ctx": machine.ctx, "cpu": machine.cpu}
    for dev_id, dev in machine.ctx.devices.items():
        roots[f"device:{dev_id}"] = dev
    if machine.bios is not None:
        roots["bios"] = machine.bios
    return roots


def _identity(machine):
    return {"memory_size": machine.memory_size,
            "devices": [[d.CLASS_NAME, i] for i, d in machine.ctx.devices.items()],
            "firmware": "built-in BIOS" if machine.firmware is None else "other firmware"}


def _host_tsc():
    from unicorn import Uc, UC_ARCH_X86, UC_MODE_32
    from unicorn import x86_const as X
    uc = _host_tsc.uc
    if uc is None:
        uc = _host_tsc.uc = Uc(UC_ARCH_X86, UC_MODE_32)
        uc.mem_map(0, 0x1000)
        uc.mem_write(0, b"\x0f\x31\xf4")
    uc.emu_start(0, 2)
    return uc.reg_read(X.UC_X86_REG_EAX) | (uc.reg_read(X.UC_X86_REG_EDX) << 32)


_host_tsc.uc = None


def save(machine, path):
    """Write the machine's whole state to `path` (atomically: a temporary file, then rename).
    Call it between runs of the guest (the run loop's boundary), never from a hook."""
    from vmm import engine
    import os
    roots = _roots(machine)
    saver = _Saver(roots)
    state = {"machine": saver.tree("machine", machine, MACHINE_FIELDS),
             "ctx": saver.tree("ctx", machine.ctx, CTX_FIELDS),
             "cpu": saver.tree("cpu", machine.cpu, CPU_FIELDS)}
    for name, obj in roots.items():
        if name.startswith("device:") or name == "bios":
            state[name] = saver.tree(name, obj)
    timers = []
    for t in saver.timers:
        owner = saver.paths.get(id(getattr(t.callback, "__self__", None)))
        if owner is None and id(getattr(t.callback, "__self__", None)) in saver.roots:
            owner = [saver.roots[id(t.callback.__self__)]]
        if owner is None:
            raise SnapshotError(f"cannot save the machine now: timer {t.name!r} calls "
                                f"{t.callback!r:.60}, which has no saved form")
        timers.append({"when": t.when, "name": t.name, "cancelled": t.cancelled,
                       "owner": owner, "method": t.callback.__func__.__name__})
    uc, env = machine.uc, machine.cpu.env
    ctx_obj = uc.context_save()
    blob = ctypes.string_at(ctx_obj._context.value + U.CONTEXT_HEADER,
                            ctx_obj.size - U.CONTEXT_HEADER)
    clock = machine.ctx.clock
    meta = {"format": FORMAT, "version": VERSION,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "engine": engine.info().describe(), "machine": _identity(machine),
            "clock": {"now_ns": clock.now_ns(), "skipped_ns": clock.skipped_ns},
            "tsc": {"guest": _host_tsc() + env.tsc_offset},
            "registers": _registers(machine.cpu),
            "timers": timers, "state": state}
    index, pages = _ram_pages(machine)
    meta["ram"] = {"page_size": PAGE, "pages": len(index),
                   "bytes": machine.memory_size}
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
            z.writestr(MEMBER_STATE, json.dumps(meta, indent=1))
            z.writestr(MEMBER_CONTEXT, blob)
            z.writestr(MEMBER_INDEX, struct.pack(f"<{len(index)}I", *index))
            # stored, not deflated: restoring is then a plain read (boot once, start many)
            z.writestr(MEMBER_PAGES, pages, compress_type=zipfile.ZIP_STORED)
        os.replace(tmp, path)
    except OSError as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise SnapshotError(f"--savevm {path}: cannot write: {exc.strerror}")
    return meta


def _ram_pages(machine):
    """(page numbers, their bytes) of every guest RAM page that is not all zero."""
    ram = machine.ram
    size = machine.memory_size
    zero = bytes(PAGE)
    step = 64 * PAGE
    zero_run = bytes(step)
    index, chunks = [], []
    for base in range(0, size, step):
        block = bytes(ram[base:min(base + step, size)])     # a copy compares at memcmp speed
        if block == zero_run[:len(block)]:
            continue
        for off in range(0, len(block), PAGE):
            page = block[off:off + PAGE]
            if page != zero[:len(page)]:
                index.append((base + off) // PAGE)
                chunks.append(page)
    return index, b"".join(chunks)


def _registers(cpu):
    from unicorn import x86_const as X
    names = ("rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp", "rip", "rflags",
             "cr0", "cr2", "cr3", "cr4")
    out = {}
    for n in names:
        try:
            out[n] = f"{cpu.uc.reg_read(getattr(X, f'UC_X86_REG_{n.upper()}')):#x}"
        except Exception:
            pass
    for i, n in enumerate(("es", "cs", "ss", "ds", "fs", "gs")):
        sel, base, limit, flags = cpu.env.seg(i)
        out[n] = {"selector": f"{sel:#06x}", "base": f"{base:#x}", "limit": f"{limit:#x}",
                  "flags": f"{flags:#x}"}
    return out


def read_meta(path):
    """The snapshot's JSON part, checked for format and version; SnapshotError otherwise."""
    try:
        with zipfile.ZipFile(path) as z:
            meta = json.loads(z.read(MEMBER_STATE))
    except FileNotFoundError:
        raise SnapshotError(f"{path}: no such file")
    except IsADirectoryError:
        raise SnapshotError(f"{path}: is a directory")
    except (zipfile.BadZipFile, KeyError, ValueError, OSError):
        raise SnapshotError(f"{path}: not a v3 VM snapshot")
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise SnapshotError(f"{path}: not a v3 VM snapshot")
    if not isinstance(meta.get("version"), int) or meta["version"] > VERSION:
        raise SnapshotError(f"{path}: snapshot format version {meta.get('version')} is newer "
                            f"than this v3's ({VERSION})")
    return meta


def load(machine, path):
    """Restore `path` into `machine`, freshly built from the same configuration and not yet
    run. Afterwards machine.run() continues the guest where the snapshot left it."""
    from vmm import engine
    from vmm.clock import Timer
    meta = read_meta(path)
    if meta["machine"] != _identity(machine):
        want, have = meta["machine"], _identity(machine)
        what = [k for k in want if want.get(k) != have.get(k)]
        raise SnapshotError(f"{path}: saved from another machine ({', '.join(what)} differ: "
                            f"the snapshot has {_brief(want, what)}, this run "
                            f"{_brief(have, what)}); run it with the same image and options")
    if meta["engine"] != engine.info().describe():
        raise SnapshotError(f"{path}: saved by engine '{meta['engine']}', this is "
                            f"'{engine.info().describe()}'")
    with zipfile.ZipFile(path) as z:
        blob = z.read(MEMBER_CONTEXT)
        raw_index = z.read(MEMBER_INDEX)
        pages = z.read(MEMBER_PAGES)
    index = struct.unpack(f"<{len(raw_index) // 4}I", raw_index)
    uc, cpu = machine.uc, machine.cpu
    if machine.bios is not None:
        machine.bios.disks.detect()         # the drive table POST builds (RAM is restored below)
    ctx_obj = uc.context_save()
    if len(blob) != ctx_obj.size - U.CONTEXT_HEADER:
        raise SnapshotError(f"{path}: CPU context of {len(blob)} bytes, the engine's is "
                            f"{ctx_obj.size - U.CONTEXT_HEADER}")
    # RAM: everything the snapshot does not list is zero
    ram = machine.ram
    _zero_ram(machine)
    for i, page in enumerate(index):
        ram[page * PAGE:(page + 1) * PAGE] = pages[i * PAGE:(i + 1) * PAGE]
    # the CPU, including its hidden state
    ctypes.memmove(ctx_obj._context.value + U.CONTEXT_HEADER, blob, len(blob))
    uc.context_restore(ctx_obj)
    # timers: drop what the fresh machine armed, re-arm the saved ones
    timers = machine.ctx.timers
    timers._heap.clear()
    roots = _roots(machine)
    loader = _Loader(roots, {})
    new_timers = {}
    for i, t in enumerate(meta["timers"]):
        callback = getattr(loader.resolve(t["owner"]), t["method"])
        if t["cancelled"]:
            dead = Timer()
            dead.when, dead.seq, dead.callback, dead.cancelled, dead.name = \
                t["when"], -1, callback, True, t["name"]
            new_timers[i] = dead
        else:
            new_timers[i] = timers.schedule(t["when"], callback, t["name"])
    loader.timers = new_timers
    state = meta["state"]
    for name, fields in state.items():
        if name not in roots:
            raise SnapshotError(f"{path}: no {name} in this machine")
        loader.apply(roots[name], fields, [name])
    # wiring that follows from restored state: PCI functions' BARs are mapped again as their
    # restored configuration spaces say
    from vmm.devices.pci import BarDecoder
    for dev in machine.ctx.devices.values():
        for value in vars(dev).values():
            if isinstance(value, BarDecoder):
                value.update()
        # state a device derives from what was restored (a file of an older layout may lack it)
        restored = getattr(dev, "restored", None)
        if restored is not None:
            restored()
    # time: the virtual clock and the guest's TSC continue from the snapshot
    clock = machine.ctx.clock
    saved = meta["clock"]
    if hasattr(clock, "_origin"):
        clock.skipped_ns = saved["skipped_ns"]
        clock._origin = time.monotonic_ns() - saved["now_ns"] + saved["skipped_ns"]
    cpu.env.tsc_offset = meta["tsc"]["guest"] - _host_tsc()
    machine.memmap.set_a20(machine.ctx.a20)      # also drops every translation and TLB entry
    if machine.ctx.lapic is not None:
        cpu.cpuid.set_apic(not machine.ctx.lapic.hw_disabled)
    return meta


def _zero_ram(machine):
    """All guest RAM back to zeros: the host pages are dropped (the mapping is private and
    anonymous, so they read as zero again and cost no memory until touched)."""
    import mmap
    machine.memmap.host_map.madvise(mmap.MADV_DONTNEED)


def _brief(d, keys):
    return ", ".join(f"{k} {d.get(k)}" for k in keys)


def summary(path):
    """Lines describing a snapshot, for `v3 inspect`."""
    meta = read_meta(path)
    m = meta["machine"]
    regs = meta.get("registers", {})
    lines = [f"{path}: v3 VM snapshot, format version {meta['version']}, saved {meta['created']}",
             f"  engine:  {meta['engine']}",
             f"  machine: {m['memory_size'] >> 20} MB, {m['firmware']}, devices "
             + ", ".join(f"{c} {i}" for c, i in m["devices"]),
             f"  time:    {meta['clock']['now_ns'] / 1e9:.3f} s of virtual time",
             f"  RAM:     {meta['ram']['pages']} non-zero pages of {meta['ram']['page_size']} "
             f"bytes ({meta['ram']['pages'] * meta['ram']['page_size'] >> 20} MB saved of "
             f"{meta['ram']['bytes'] >> 20} MB)",
             f"  CPU:     rip {regs.get('rip', '?')} cs {regs.get('cs', {}).get('selector', '?')} "
             f"cr0 {regs.get('cr0', '?')} cr3 {regs.get('cr3', '?')} cr4 {regs.get('cr4', '?')}",
             "  timers:  " + (", ".join(f"{t['name'] or t['method']} at "
                                         f"{t['when'] / 1e9:.3f} s" for t in meta["timers"]
                                         if not t["cancelled"]) or "none"),
             "  state:   " + ", ".join(sorted(meta["state"]))]
    return lines
