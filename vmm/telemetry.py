"""Exit accounting: every exit counted by kind, rendered as a rich table or JSON at exit."""
import collections
import time


def install_block_counter(uc):
    """Count executed translated blocks with the compiled helper (vmm/_blockcount.c).
    Returns the ctypes counter, or None when the helper is not built."""
    import ctypes
    try:
        from vmm import _blockcount
    except ImportError:
        return None
    from unicorn import UC_HOOK_BLOCK
    from vmm.cpu.ucinternals import hook_add_c
    lib = ctypes.CDLL(_blockcount.__file__)
    counter = ctypes.c_uint64(0)
    handle = hook_add_c(uc, UC_HOOK_BLOCK, lib.v3_count_block, ctypes.pointer(counter))
    counter._keep = (lib, handle)         # keep the library and the hook alive with it
    return counter


def _exit_text(e):
    """One entry of a ring of recent exits: ("in"|"out", port, size, value), ("bios", what) or
    (kind, vector)."""
    if e[0] == "in":
        got = "(failed)" if e[3] is None else f"{e[3]:#x}"
        return f"in {e[1]:#06x}/{e[2]} -> {got}"
    if e[0] == "out":
        return f"out {e[1]:#06x}/{e[2]} <- {e[3]:#x}"
    if e[0] == "bios":
        return f"bios {e[1]}"
    return f"{e[0]} {e[1]:#04x}"


def timed(hook, stats):
    """The same hook, adding the time spent in it to stats.hook_s (telemetry only: two clock
    reads per exit)."""
    clock = time.perf_counter

    def wrapper(*args):
        t0 = clock()
        try:
            return hook(*args)
        finally:
            stats.hook_s += clock() - t0
    return wrapper


class Telemetry:
    RING = 32                       # how many recent exits the fail-stop diagnostic shows

    def __init__(self):
        self.port_reads = [0] * 0x10000      # per port; lists are the cheapest to bump
        self.port_writes = [0] * 0x10000
        self.mmio = collections.Counter()
        self.events = collections.Counter()      # (kind, vector)
        self.bios = collections.Counter()
        self.halts = 0
        self.preemptions = 0
        self.runs = 0
        self.skipped_ns = 0
        self.guest_s = 0.0                        # inside emu_start (guest code + hooks)
        self.hook_s = 0.0                         # of which in Python hooks (telemetry only)
        self.wall_start = time.monotonic()
        self.wall_s = 0.0
        self.recent = collections.deque(maxlen=self.RING)
        self.blocks = None                        # ctypes counter when blocks are counted
        self.fast_io = None                       # the C port dispatcher (vmm/cpu/portio.py)
        self.fast_mmio = None                     # the C MMIO dispatcher (vmm/memory.py)

    def count_event(self, kind, vector):
        self.events[(kind, vector)] += 1
        self.recent.append((kind, vector))

    def count_bios(self, what):
        self.bios[what] += 1
        self.recent.append(("bios", what))

    def exit_count(self):
        """All exits so far (port I/O, MMIO, interrupts and exceptions, BIOS services, halts,
        preemptions): the status line's exits/s."""
        fast = self.fast_io.total() if self.fast_io is not None else 0
        return (sum(self.port_reads) + sum(self.port_writes) + fast
                + sum(self.mmio_counts().values())
                + sum(self.events.values()) + sum(self.bios.values()) + self.halts
                + self.preemptions)

    def port_counts(self):
        """{port: [reads, writes]} of every port accessed, those done in C included."""
        out = {p: [self.port_reads[p], self.port_writes[p]] for p in range(0x10000)
               if self.port_reads[p] or self.port_writes[p]}
        if self.fast_io is not None:
            for p, (r, w) in self.fast_io.counts().items():
                c = out.setdefault(p, [0, 0])
                c[0] += r
                c[1] += w
        return out

    def mmio_counts(self):
        """{4 KiB page: accesses} of every MMIO page accessed, those done in C included."""
        out = collections.Counter(self.mmio)
        if self.fast_mmio is not None:
            for page, (r, w) in self.fast_mmio.counts().items():
                out[page] += r + w
        return out

    def recent_fast_text(self, n=8):
        """The last `n` port accesses the C dispatcher did itself (they are not in the ring
        of recent exits)."""
        if self.fast_io is None:
            return []
        return [_exit_text(e) for e in self.fast_io.recent()[-n:]]

    def recent_text(self, n=16):
        """The last `n` exits, formatted (only when a diagnostic is printed)."""
        return [_exit_text(e) for e in list(self.recent)[-n:]]

    def as_dict(self, virtual_ns=0, cpu=None):
        wall = self.wall_s or (time.monotonic() - self.wall_start)
        from vmm import engine
        d = {
            "engine": engine.info().describe(),
            "exits": {
                "port_io": {f"{p:#06x}": {"reads": r, "writes": w}
                            for p, (r, w) in sorted(self.port_counts().items())},
                "mmio": {f"{a:#x}": n for a, n in sorted(self.mmio_counts().items())},
                "interrupts": {f"{v:#04x}": n for (k, v), n in sorted(self.events.items())
                               if k == "irq"},
                "software_interrupts": {f"{v:#04x}": n for (k, v), n in sorted(self.events.items())
                                        if k == "software-int"},
                "exceptions": {f"{v:#04x}": n for (k, v), n in sorted(self.events.items())
                               if k == "exception"},
                "bios": dict(sorted(self.bios.items())),
                "halts": self.halts,
                "preemptions": self.preemptions,
            },
            "guest_runs": self.runs,
            "guest_blocks": self.blocks.value if self.blocks is not None else None,
            "sysenter": getattr(cpu, "sysenter_count", 0),
            "cpuid": getattr(cpu, "cpuid_count", 0),
            "virtual_time_s": virtual_ns / 1e9,
            "fast_forwarded_s": self.skipped_ns / 1e9,
            "wall_time_s": wall,
            "time_in_guest_code_s": max(0.0, self.guest_s - self.hook_s),
            "time_in_python_hooks_s": self.hook_s,
            "time_in_vmm_loop_s": max(0.0, wall - self.guest_s),
        }
        return d

    def render(self, console, virtual_ns=0, cpu=None):
        from rich.table import Table
        d = self.as_dict(virtual_ns, cpu)
        t = Table(title="v3 run telemetry", show_lines=False)
        t.add_column("exit kind")
        t.add_column("what")
        t.add_column("count", justify="right")
        for port, rw in d["exits"]["port_io"].items():
            t.add_row("port I/O", port, f"{rw['reads']} in / {rw['writes']} out")
        for key, label in (("mmio", "MMIO"), ("interrupts", "interrupt"),
                           ("software_interrupts", "INT n"), ("exceptions", "exception"),
                           ("bios", "BIOS service")):
            for what, n in d["exits"][key].items():
                t.add_row(label, what, str(n))
        t.add_row("halt", "HLT", str(d["exits"]["halts"]))
        t.add_row("preemption", "timer/device stop", str(d["exits"]["preemptions"]))
        t.add_row("SYSENTER", "", str(d["sysenter"]))
        t.add_row("CPUID", "", str(d["cpuid"]))
        console.print(t)
        console.print(f"engine: {d['engine']}")
        blocks = (f"{d['guest_blocks']:,} translated blocks executed"
                  if d["guest_blocks"] is not None else
                  "blocks not counted (the compiled helper vmm._blockcount is not built)")
        console.print(
            f"{blocks}; guest runs {d['guest_runs']}; virtual time {d['virtual_time_s']:.3f} s "
            f"(of which fast-forwarded {d['fast_forwarded_s']:.3f} s); wall time "
            f"{d['wall_time_s']:.3f} s: guest code {d['time_in_guest_code_s']:.3f} s, the VMM's "
            f"Python: exit hooks (I/O, interrupts, exceptions, BIOS) "
            f"{d['time_in_python_hooks_s']:.3f} s and run loop {d['time_in_vmm_loop_s']:.3f} s")
