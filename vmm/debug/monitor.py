"""The monitor: QEMU-style commands that look at and control the machine.

`Monitor(machine).execute(line)` takes one command line and returns its text; every front end
uses it: the monitor socket (`--monitor unix:PATH,server`), gdb's `monitor` command (qRcmd) and
the console's escape keys. Commands run on the run loop's thread (the front ends are input
sources of the run loop), so they see the machine between two runs of the guest.
"""
import struct

from vmm.cpu import ucinternals as U
from vmm.debug.control import DebugError
from vmm.debug.registers import EFLAGS_FIELDS
from vmm.events import Listener

HELP = """\
info registers        the CPU's registers, flags decoded, segments with their caches
info mode             real, protected (16/32-bit, paging), long or compatibility mode
info pic|pit|lapic|ioapic   the interrupt controllers and the timer
info devices          the devices of the machine, by class and id
info telemetry        exits, runs and time so far
x /FMT ADDR           memory at a linear address (through the guest's page tables)
xp /FMT ADDR          memory at a physical address
                      FMT is [COUNT][FORMAT][SIZE]: FORMAT x d u c, SIZE b h w g (x /8xw 0x7c00)
stop | cont           hold the machine / let it run
sendkey KEYS          press keys on the PS/2 keyboard (ctrl-alt-f1, ret, a ...)
savevm FILE           save the whole machine to FILE (v3 run IMAGE --loadvm FILE goes on)
quit                  end the run
help                  this text"""

CR0_BITS = (("PE", 0), ("MP", 1), ("EM", 2), ("TS", 3), ("ET", 4), ("NE", 5), ("WP", 16),
            ("AM", 18), ("NW", 29), ("CD", 30), ("PG", 31))
CR4_BITS = (("VME", 0), ("PVI", 1), ("TSD", 2), ("DE", 3), ("PSE", 4), ("PAE", 5), ("MCE", 6),
            ("PGE", 7), ("PCE", 8), ("OSFXSR", 9), ("OSXMMEXCPT", 10), ("FSGSBASE", 16),
            ("OSXSAVE", 18), ("SMEP", 20), ("SMAP", 21))
EFER_BITS = (("SCE", 0), ("LME", 8), ("LMA", 10), ("NXE", 11))


def decode_bits(value, fields):
    return " ".join(n for n, b in fields if n and value >> b & 1) or "-"


class MonitorError(Exception):
    pass


class Monitor:
    def __init__(self, machine):
        self.m = machine

    def execute(self, line):
        words = line.strip().split()
        if not words:
            return ""
        cmd, args = words[0], words[1:]
        try:
            if cmd in ("help", "h", "?"):
                return HELP
            if cmd == "info":
                return self.info(args)
            if cmd in ("x", "xp"):
                return self.examine(cmd == "xp", " ".join(args))
            if cmd in ("stop", "s"):
                return self.stop()
            if cmd in ("cont", "c"):
                return self.cont()
            if cmd in ("quit", "q"):
                self.m.request_quit("ended from the monitor (quit)")
                return "quitting"
            if cmd == "sendkey":
                return self.sendkey(args)
            if cmd == "savevm":
                return self.savevm(args)
            if cmd == "loadvm":
                return ("loadvm: a snapshot is restored into a fresh machine: "
                        "v3 run IMAGE --loadvm FILE (docs/snapshots.md)")
            return f"unknown command: {cmd} (help lists the commands)"
        except (MonitorError, DebugError) as exc:
            return f"{cmd}: {exc}"

    # -- run control ---------------------------------------------------------------------------
    def _debugger(self):
        if self.m.debug is None:
            from vmm.debug.control import Debugger
            self.m.debug = Debugger(self.m)
        return self.m.debug

    def stop(self):
        dbg = self._debugger()
        if dbg.held:
            return "the machine is already stopped"
        dbg.stop(("interrupt",))
        return "stopped"

    def cont(self):
        dbg = self._debugger()
        if not dbg.held:
            return "the machine is running"
        dbg.resume()
        return "running"

    # -- info ----------------------------------------------------------------------------------
    def info(self, args):
        if not args:
            raise MonitorError("info what? registers, mode, pic, pit, lapic, ioapic, devices, "
                               "telemetry")
        what = args[0]
        fn = {"registers": self.info_registers, "mode": self.info_mode, "pic": self.info_pic,
              "pit": self.info_pit, "lapic": self.info_lapic, "ioapic": self.info_ioapic,
              "devices": self.info_devices, "telemetry": self.info_telemetry}.get(what)
        if fn is None:
            raise MonitorError(f"unknown item {what!r}")
        return fn()

    def info_mode(self):
        cpu = self.m.cpu
        state = "stopped" if self.m.debug is not None and self.m.debug.held else "running"
        return f"{cpu.mode()}, CPL {cpu.env.cpl}, machine {state}"

    def info_registers(self):
        cpu, env, uc = self.m.cpu, self.m.cpu.env, self.m.cpu.uc
        from unicorn import x86_const as X
        lines = [f"mode: {cpu.mode()}, CPL {env.cpl}"]
        long = bool(env.hflags & U.HF_LMA)
        if long:
            names = ("RAX", "RBX", "RCX", "RDX", "RSI", "RDI", "RBP", "RSP",
                     "R8", "R9", "R10", "R11", "R12", "R13", "R14", "R15")
            idx = (0, 3, 1, 2, 6, 7, 5, 4) + tuple(range(8, 16))
            cells = [f"{n:<3}={env.reg(i):016x}" for n, i in zip(names, idx)]
            for k in range(0, 16, 4):
                lines.append("  ".join(cells[k:k + 4]))
            lines.append(f"RIP={env.eip:016x}")
        else:
            names = ("EAX", "EBX", "ECX", "EDX", "ESI", "EDI", "EBP", "ESP")
            idx = (0, 3, 1, 2, 6, 7, 5, 4)
            cells = [f"{n}={env.reg(i) & 0xFFFFFFFF:08x}" for n, i in zip(names, idx)]
            lines.append("  ".join(cells[:4]))
            lines.append("  ".join(cells[4:]))
            lines.append(f"EIP={env.eip & 0xFFFFFFFF:08x}  linear PC={cpu.linear_pc():08x}")
        fl = uc.reg_read(X.UC_X86_REG_EFLAGS)
        iopl = (fl >> 12) & 3
        lines.append(f"EFL={fl:08x} [{decode_bits(fl, EFLAGS_FIELDS)}] IOPL={iopl}")
        lines.append("")
        lines.append("seg  sel   base              limit     flags     type")
        for i, name in enumerate(("ES", "CS", "SS", "DS", "FS", "GS")):
            sel, base, limit, flags = env.seg(i)
            lines.append(f"{name:<4} {sel & 0xFFFF:04x}  {base:016x}  {limit:08x}  {flags:08x}  "
                         f"{_segment_type(flags, name == 'CS')}")
        for name, off in (("LDT", U.ENV_LDT), ("TR", U.ENV_TR)):
            sel, base, limit, flags = _seg_at(env, off)
            lines.append(f"{name:<4} {sel & 0xFFFF:04x}  {base:016x}  {limit:08x}  {flags:08x}")
        for name, off in (("GDT", U.ENV_GDT), ("IDT", U.ENV_IDT)):
            _, base, limit, _ = _seg_at(env, off)
            lines.append(f"{name:<4}       {base:016x}  {limit:08x}")
        lines.append("")
        cr0, cr4 = env.cr(0), env.cr(4)
        lines.append(f"CR0={cr0:08x} [{decode_bits(cr0, CR0_BITS)}]")
        lines.append(f"CR2={env.cr(2):016x}  CR3={env.cr(3):016x}")
        lines.append(f"CR4={cr4:08x} [{decode_bits(cr4, CR4_BITS)}]")
        try:
            efer = uc.reg_read(X.UC_X86_REG_MSR, 0xC0000080)
            lines.append(f"EFER={efer:016x} [{decode_bits(efer, EFER_BITS)}]")
        except Exception:          # the MSR interface may be missing: say nothing then
            pass
        shadow = " (interrupt shadow)" if cpu.in_interrupt_shadow else ""
        lines.append(f"interrupts {'enabled' if fl & 0x200 else 'disabled'}{shadow}")
        return "\n".join(lines)

    def _device(self, cls):
        for dev in self.m.ctx.devices.values():
            if dev.CLASS_NAME == cls:
                return dev
        raise MonitorError(f"this machine has no {cls} device")

    def info_pic(self):
        dev = self._device("8259A")
        lines = ["chip    IRR  ISR  IMR  vector base  ELCR"]
        for chip in (dev.master, dev.slave):
            irr = getattr(chip, "edge_irr", 0) | (chip.lines & chip.elcr)
            lines.append(f"{chip.name:<7} {irr:02x}   {chip.isr:02x}   {chip.imr:02x}   "
                         f"{chip.vector_base:02x}           {chip.elcr:02x}")
        return "\n".join(lines)

    def info_pit(self):
        dev = self._device("8254_PIT")
        lines = ["channel  mode  count  gate  programmed"]
        for ch in dev.channels:
            count = ch.reload or 0x10000
            lines.append(f"{ch.index:<8} {ch.mode:<5} {count:<6} {int(ch.gate):<5} "
                         f"{'yes' if ch.programmed else 'no'}")
        return "\n".join(lines)

    def info_lapic(self):
        dev = self._device("LAPIC")
        lines = [f"id {dev.apic_id}  base {dev.base:#x}  TPR {dev.tpr:02x}  "
                 f"timer initial {dev.initial_count:#x} divide {dev.divide_conf:#x}",
                 f"IRR {_vectors(dev.irr)}", f"ISR {_vectors(dev.isr)}"]
        for off, val in sorted(dev.lvt.items()):
            lines.append(f"LVT {off:#05x}  {val:08x}  {'masked' if val & 0x10000 else ''}")
        return "\n".join(lines)

    def info_ioapic(self):
        dev = self._device("IOAPIC")
        lines = ["pin  level  sent"]
        for pin, level in enumerate(dev.levels):
            if level or dev.sent[pin]:
                lines.append(f"{pin:<4} {level:<6} {dev.sent[pin]}")
        if len(lines) == 1:
            lines.append("(no pin has been raised)")
        return "\n".join(lines)

    def info_devices(self):
        rows = [(d.CLASS_NAME, d.id) for d in self.m.ctx.devices.values()]
        w = max([len("class")] + [len(c) for c, _ in rows])
        return "\n".join([f"{'class':<{w}}  id"] + [f"{c:<{w}}  {i}" for c, i in rows])

    def info_telemetry(self):
        m = self.m
        d = m.stats.as_dict(m.ctx.clock.now_ns(), m.cpu)
        lines = [f"guest runs {d['guest_runs']}, halts {d['exits']['halts']}, "
                 f"preemptions {d['exits']['preemptions']}",
                 f"virtual time {d['virtual_time_s']:.3f} s (fast-forwarded "
                 f"{d['fast_forwarded_s']:.3f} s)"]
        for port, rw in sorted(d["exits"]["port_io"].items()):
            lines.append(f"  port {port:<10} {rw['reads']:>8} in {rw['writes']:>8} out")
        for key in ("interrupts", "software_interrupts", "exceptions", "bios"):
            for what, n in d["exits"][key].items():
                lines.append(f"  {key:<20} {what:<24} {n:>8}")
        return "\n".join(lines)

    # -- memory --------------------------------------------------------------------------------
    def examine(self, physical, spec):
        fmt, _, addr = spec.partition(" ") if spec.startswith("/") else ("", "", spec)
        if not addr.strip():
            raise MonitorError("an address is needed (x /8xw 0x7c00)")
        count, form, size = _parse_format(fmt[1:] if fmt else "")
        try:
            addr = int(addr.strip(), 0)
        except ValueError:
            raise MonitorError(f"bad address {addr.strip()!r}")
        dbg = self._debugger()
        n = count * size
        if n > 65536:
            raise MonitorError("at most 64 KiB at a time")
        data = dbg.read_physical(addr, n) if physical else dbg.read_memory(addr, n)
        letter = {1: "B", 2: "H", 4: "I", 8: "Q"}[size]
        values = struct.unpack(f"<{count}{letter}", data)
        per_line = max(1, 16 // size)
        lines = []
        for k in range(0, count, per_line):
            cells = []
            for v in values[k:k + per_line]:
                if form == "x":
                    cells.append(f"0x{v:0{size * 2}x}")
                elif form == "d":
                    cells.append(str(v - (1 << (8 * size)) if v >> (8 * size - 1) else v))
                elif form == "u":
                    cells.append(str(v))
                else:
                    cells.append(repr(chr(v)) if 32 <= v < 127 else f"\\x{v:02x}")
            lines.append(f"{addr + k * size:016x}: " + " ".join(cells))
        return "\n".join(lines)

    # -- snapshots -----------------------------------------------------------------------------
    def savevm(self, args):
        """Save the whole machine to FILE now (monitor commands run between two runs of the
        guest, the boundary --savevm uses as well)."""
        if len(args) != 1:
            raise MonitorError("savevm FILE")
        from v3tools.errors import V3Error
        from vmm.debug import snapshot
        try:
            snapshot.save(self.m, args[0])
        except V3Error as exc:
            raise MonitorError(str(exc))
        return f"saved the machine to {args[0]} (v3 run IMAGE --loadvm {args[0]} continues it)"

    # -- keys ----------------------------------------------------------------------------------
    def sendkey(self, args):
        if not args:
            raise MonitorError("which keys? (sendkey ctrl-alt-delete)")
        kbd = self._device("KEYBOARD")
        codes = bytearray()
        for combo in args:
            keys = combo.split("-")
            make = []
            for k in keys:
                if k not in SCANCODES:
                    raise MonitorError(f"unknown key {k!r}")
                make.append(SCANCODES[k])
            for c in make:
                codes += c
            for c in reversed(make):
                codes += c[:-1] + bytes([c[-1] | 0x80])
        kbd.inject_scancodes(bytes(codes))
        return ""


def _seg_at(env, off):
    sel = env.u32(off)
    base = env.u64(off + 8)
    limit = env.u32(off + 16)
    flags = env.u32(off + 20)
    return sel, base, limit, flags


def _segment_type(flags, is_cs):
    if not flags & (1 << 15):
        return "not present" if flags else "-"
    dpl = (flags >> 13) & 3
    if flags & (1 << 11):
        width = "64-bit" if flags & (1 << 21) else ("32-bit" if flags & (1 << 22) else "16-bit")
        return f"code {width} DPL{dpl}"
    return f"data {'32-bit' if flags & (1 << 22) else '16-bit'} DPL{dpl}" + \
        ("" if flags & (1 << 9) else " read-only")


def _vectors(mask):
    vs = [f"{v:#04x}" for v in range(256) if mask >> v & 1]
    return " ".join(vs) if vs else "-"


def _parse_format(fmt):
    digits = ""
    while fmt and fmt[0].isdigit():
        digits, fmt = digits + fmt[0], fmt[1:]
    count = int(digits) if digits else 1
    form, size = "x", 4
    for ch in fmt:
        if ch in "xduc":
            form = ch
            if ch == "c":
                size = 1
        elif ch in "bhwg":
            size = {"b": 1, "h": 2, "w": 4, "g": 8}[ch]
        else:
            raise MonitorError(f"unknown format letter {ch!r} (formats x d u c, sizes b h w g)")
    return count, form, size


def _scancodes():
    """Scan code set 1 make codes (what the guest reads with the controller translating)."""
    table = {}
    rows = ("1234567890-=", "qwertyuiop[]", "asdfghjkl;'`", "\\zxcvbnm,./")
    starts = (0x02, 0x10, 0x1E, 0x2B)
    names = {"-": "minus", "=": "equal", "[": "bracket_left", "]": "bracket_right",
             ";": "semicolon", "'": "apostrophe", "`": "grave_accent", "\\": "backslash",
             ",": "comma", ".": "dot", "/": "slash"}
    for row, start in zip(rows, starts):
        for i, ch in enumerate(row):
            table[names.get(ch, ch)] = bytes([start + i])
    table.update({"esc": b"\x01", "backspace": b"\x0e", "tab": b"\x0f", "ret": b"\x1c",
                  "ctrl": b"\x1d", "shift": b"\x2a", "shift_r": b"\x36", "alt": b"\x38",
                  "spc": b"\x39", "caps_lock": b"\x3a", "delete": b"\xe0\x53",
                  "up": b"\xe0\x48", "down": b"\xe0\x50", "left": b"\xe0\x4b",
                  "right": b"\xe0\x4d", "home": b"\xe0\x47", "end": b"\xe0\x4f",
                  "pgup": b"\xe0\x49", "pgdn": b"\xe0\x51", "insert": b"\xe0\x52"})
    for i in range(10):
        table[f"f{i + 1}"] = bytes([0x3B + i])
    table["f11"], table["f12"] = b"\x57", b"\x58"
    return table


SCANCODES = _scancodes()


class MonitorServer(Listener):
    """The monitor on a socket (`--monitor unix:PATH,server` or tcp:HOST:PORT,server): a
    line-oriented session per connection, one at a time, a `(v3) ` prompt after each answer.
    An input source of the run loop; `active` while someone is connected."""

    name = "monitor"
    PROMPT = b"(v3) "

    def __init__(self, machine, monitor, spec):
        opts = spec.split(",")[1:]
        bad = [o for o in opts if o not in ("server", "nowait", "wait=off")]
        if bad:
            from v3tools.errors import V3Error
            raise V3Error(f"--monitor {spec}: unknown option(s) {','.join(bad)} "
                          f"(accepted: server, nowait)")
        self.m = machine
        self.monitor = monitor
        self.spec = spec
        super().__init__(spec.split(",")[0], "--monitor")
        self.buf = bytearray()
        if machine.debug is not None:
            machine.debug.on_close.append(self.close)

    def refuse(self, conn):
        conn.sendall(b"v3 monitor: already in use\n")

    def on_connect(self):
        self._send(b"v3 monitor (help lists the commands)\n" + self.PROMPT)

    def on_readable(self):
        try:
            data = self.conn.recv(4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._drop()
            return
        self.buf += data
        while self.conn is not None and b"\n" in self.buf:
            line, _, rest = bytes(self.buf).partition(b"\n")
            self.buf = bytearray(rest)
            out = self.monitor.execute(line.decode(errors="replace").strip("\r"))
            self._send((out + "\n" if out else "").encode() + self.PROMPT)

    def _send(self, data):
        try:
            self.conn.sendall(data)
        except OSError:
            self._drop()

    def _drop(self):
        self.hang_up()
        self.buf.clear()
