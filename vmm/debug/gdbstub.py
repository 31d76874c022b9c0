"""A gdb remote stub (the Remote Serial Protocol) on TCP or a unix socket.

The listening socket and the connection are one input source of the run loop (vmm/events.py):
packets are read and answered from the run loop's thread, between runs of the guest or while
the machine is held. One debugger at a time; a second connection is refused with a message.

Packets: qSupported, QStartNoAckMode, qXfer:features:read (target descriptions), ?, g/G,
p/P, m/M, c/s/C/S, vCont, Z0-Z4/z0-z4, qRcmd (the monitor), qAttached, qC, thread queries,
H, T, D (detach), k (ends the run), Ctrl-C (0x03). Anything else gets the empty reply that
means "not supported". A malformed packet gets an error reply; the VM runs on.
"""
from v3tools.errors import V3Error
from vmm.debug.control import DebugError
from vmm.events import Listener
from vmm.debug.registers import RegisterFile, target_xml

SIGINT, SIGTRAP, SIGABRT = 2, 5, 6
PACKET_SIZE = 0x4000
MAX_MEMORY_READ = PACKET_SIZE // 2 - 16


def checksum(data):
    return sum(data) & 0xFF


def escape_binary(data):
    out = bytearray()
    for b in data:
        if b in (0x23, 0x24, 0x7D, 0x2A):
            out += bytes((0x7D, b ^ 0x20))
        else:
            out.append(b)
    return bytes(out)


class GdbStub(Listener):
    """One listening socket, at most one gdb connected: an input source (vmm/events.py), which
    is `active` (keeps an idle guest in real time) while gdb is connected."""

    name = "gdb"

    def __init__(self, machine, debugger, spec, monitor=None, log=None):
        self.m = machine
        self.dbg = debugger
        self.monitor = monitor
        self.log = log
        self.spec = spec
        address, *options = spec.split(",")
        self.arch = "auto"                # the description: by the CPU mode at connection
        for opt in options:
            if opt.startswith("arch=") and opt[5:] in ("auto", "i386", "x86-64"):
                self.arch = opt[5:]
            elif opt not in ("server", "nowait", "wait=off"):
                raise V3Error(f"--gdb {spec}: unknown option {opt!r} (arch=i386|x86-64|auto, "
                              f"server, nowait)")
        super().__init__(address, "--gdb")
        self.inbuf = bytearray()
        self.no_ack = False
        self.regs = None                  # RegisterFile of this connection's description
        self.waiting_for_stop = False     # a c/s packet is outstanding: report the next stop
        self.told_long_mode = False
        debugger.listeners.append(self._on_stop)
        debugger.clients.append(self)
        debugger.on_close.append(self.close)

    def on_readable(self):
        try:
            data = self.conn.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if data == b"":
            self._hang_up()
        else:
            self.inbuf += data
            self._process()

    def refuse(self, conn):
        msg = b"v3: a debugger is already connected\n"
        conn.sendall(b"$O" + msg.hex().encode() + b"#" +
                     b"%02x" % checksum(b"O" + msg.hex().encode()))

    def on_connect(self):
        self.inbuf.clear()
        self.no_ack = False
        self.regs = None
        self.told_long_mode = False
        self.waiting_for_stop = False
        if self.log:
            self.log.info("gdb connected")
        if not self.dbg.held:
            self.dbg.stop(("attach",))          # gdb expects a stopped target on connection

    def _hang_up(self, detach=False):
        """The connection ended. After `detach` (D) the guest runs on; after a plain
        disconnect it stays stopped for the next connection, as gdb's `disconnect` intends."""
        self.hang_up()
        self.waiting_for_stop = False
        self.dbg.clear()
        if detach or not self.dbg.held:
            if self.log:
                self.log.info("gdb detached: the guest runs on")
            self.dbg.resume()
        elif self.log:
            self.log.info("gdb disconnected: the machine stays stopped until a debugger or "
                          "the monitor resumes it")

    def on_close(self):
        """The run ended: tell gdb."""
        self._send(b"W%02x" % (self.dbg.exit_status & 0xFF))

    # -- framing ---------------------------------------------------------------------------------
    def _send(self, payload):
        if isinstance(payload, str):
            payload = payload.encode()
        pkt = b"$" + payload + b"#" + b"%02x" % checksum(payload)
        if self.conn is None:
            return
        try:
            self.conn.sendall(pkt)
        except OSError:
            self._hang_up()

    def _process(self):
        buf = self.inbuf
        while buf:
            c = buf[0]
            if c in (0x2B, 0x2D):              # + / - acknowledgements
                del buf[0]
                continue
            if c == 0x03:                      # Ctrl-C
                del buf[0]
                if not self.dbg.held:
                    self.dbg.stop(("interrupt",))
                continue
            if c != 0x24:                      # junk between packets
                del buf[0]
                continue
            end = buf.find(b"#", 1)
            if end < 0 or len(buf) < end + 3:
                return                          # incomplete
            body = bytes(buf[1:end])
            try:
                sent = int(buf[end + 1:end + 3], 16)
            except ValueError:
                sent = -1
            del buf[:end + 3]
            if not self.no_ack:
                try:
                    self.conn.sendall(b"+" if sent == checksum(body) else b"-")
                except OSError:
                    self._hang_up()
                    return
            if sent != checksum(body) and not self.no_ack:
                continue
            body = _unescape(body)
            try:
                reply = self._handle(body)
            except DebugError:
                reply = "E14"
            except (ValueError, IndexError, KeyError):
                reply = "E22"
            if reply is not None:
                self._send(reply)
            if self.conn is None:
                return

    # -- stops -----------------------------------------------------------------------------------
    def _on_stop(self, reason):
        if self.conn is not None and self.waiting_for_stop:
            self.waiting_for_stop = False
            self._notify_mode()
            if reason[0] == "failstop":
                exc = reason[1]
                text = f"v3: error: {exc}\n{self.m.diagnostic(exc)}\n" \
                       f"v3: the machine is held for inspection; continue ends the run\n"
                self._send("O" + text.encode().hex())
            self._send(self._stop_reply(reason))

    def _stop_reply(self, reason=None):
        reason = reason or self.dbg.reason
        kind = reason[0]
        sig = SIGINT if kind == "interrupt" else SIGABRT if kind == "failstop" else SIGTRAP
        extra = ""
        if kind == "breakpoint":
            extra = "swbreak:;" if reason[1] == "sw" else "hwbreak:;"
        elif kind == "watch":
            word = {"write": "watch", "read": "rwatch", "access": "awatch"}[reason[1]]
            extra = f"{word}:{reason[2]:x};"
        return f"T{sig:02x}{extra}thread:01;"

    def _notify_mode(self):
        if self.regs is not None and self.regs.arch == "i386" and not self.told_long_mode \
                and self.arch == "auto":
            from vmm.cpu import ucinternals as U
            if self.m.cpu.env.hflags & U.HF_LMA:
                self.told_long_mode = True
                msg = ("v3: the guest entered long mode; this session has the i386 register "
                       "set (low halves): reconnect (target remote) for x86-64\n")
                self._send("O" + msg.encode().hex())

    def _registers(self):
        if self.regs is None:
            self.regs = RegisterFile(self.m.cpu, self._current_arch())
        return self.regs

    def _current_arch(self):
        from vmm.cpu import ucinternals as U
        if self.arch != "auto":
            return self.arch
        return "x86-64" if self.m.cpu.env.hflags & U.HF_LMA else "i386"

    # -- packets ---------------------------------------------------------------------------------
    def _handle(self, body):
        text = body.decode("latin-1")
        if not text:
            return ""
        cmd = text[0]
        if text.startswith("qSupported"):
            return (f"PacketSize={PACKET_SIZE:x};qXfer:features:read+;QStartNoAckMode+;"
                    f"swbreak+;hwbreak+;vContSupported+")
        if text == "QStartNoAckMode":
            self.no_ack = True
            return "OK"
        if text.startswith("qXfer:features:read:"):
            return self._xfer_features(text[len("qXfer:features:read:"):])
        if text == "?":
            return self._stop_reply()
        if text == "qAttached":
            return "1"
        if text == "qC":
            return "QC01"
        if text == "qfThreadInfo":
            return "m01"
        if text == "qsThreadInfo":
            return "l"
        if text.startswith("qSymbol"):
            return "OK"
        if text.startswith("qRcmd,"):
            return self._monitor(bytes.fromhex(text[6:]).decode(errors="replace"))
        if cmd == "H" or cmd == "T":
            return "OK"
        if cmd == "g":
            return self._registers().read_all().hex()
        if cmd == "G":
            self._require_held()
            self._registers().write_all(bytes.fromhex(text[1:]))
            return "OK"
        if cmd == "p":
            regs = self._registers()
            i = int(text[1:], 16)
            if i >= len(regs.regs):
                return "E45"
            return regs.encode(i).hex()
        if cmd == "P":
            self._require_held()
            num, _, val = text[1:].partition("=")
            regs = self._registers()
            i = int(num, 16)
            if i >= len(regs.regs):
                return "E45"
            try:
                regs.write(i, bytes.fromhex(val))
            except ValueError:
                return "E16"
            return "OK"
        if cmd == "m":
            addr, n = (int(x, 16) for x in text[1:].split(","))
            n = min(n, MAX_MEMORY_READ)
            out = bytearray()
            while n > 0:                       # as much as is readable; an error if nothing
                chunk = min(n, 0x1000 - (addr & 0xFFF))
                try:
                    out += self.dbg.read_memory(addr, chunk)
                except DebugError:
                    if not out:
                        raise
                    break
                addr += chunk
                n -= chunk
            return out.hex()
        if cmd == "M":
            head, _, data = text[1:].partition(":")
            addr, n = (int(x, 16) for x in head.split(","))
            raw = bytes.fromhex(data)
            if len(raw) != n:
                return "E22"
            self.dbg.write_memory(addr, raw)
            return "OK"
        if cmd in "cCsS":
            return self._resume(cmd, text[1:])
        if text == "vCont?":
            return "vCont;c;C;s;S"
        if text.startswith("vCont;"):
            action = text[6:].split(";")[0].split(":")[0]
            if not action or action[0] not in "cCsS":
                return "E22"
            return self._resume(action[0].lower(), "")  # one thread: its action
        if cmd in "Zz" and len(text) > 1:
            return self._break(cmd == "Z", text[1:])
        if cmd == "D":
            self.dbg.clear()
            self._send("OK")
            self._hang_up(detach=True)
            return None
        if cmd == "k":
            self.m.request_quit("ended by the debugger (kill)")
            self.dbg.clear()
            self.dbg.resume()
            return None
        return ""

    def _require_held(self):
        if not self.dbg.held:
            raise DebugError("the machine is running")

    def _xfer_features(self, args):
        annex, _, span = args.partition(":")
        if annex != "target.xml":
            return "E00"
        off, length = (int(x, 16) for x in span.split(","))
        if self.regs is None:
            self.regs = RegisterFile(self.m.cpu, self._current_arch())
        doc = target_xml(self.regs.arch).encode()
        chunk = doc[off:off + length]
        return (b"l" if off + length >= len(doc) else b"m") + escape_binary(chunk)

    def _resume(self, how, args):
        """c/s [ADDR], C/S SIG[;ADDR], vCont: a resume address, if given, becomes $pc."""
        if args:
            addr = args.split(";", 1)[1] if how in "CS" and ";" in args else \
                (args if how in "cs" else "")
            if addr:
                self._require_held()
                regs = self._registers()
                i = regs.index["rip" if regs.arch == "x86-64" else "eip"]
                regs.write(i, int(addr, 16).to_bytes(regs.size(i), "little"))
        self.waiting_for_stop = True
        if how in "sS":
            self.dbg.step()
        else:
            self.dbg.resume()
        return None

    def _break(self, insert, args):
        parts = args.split(";")[0].split(",")
        if len(parts) < 3:
            return "E22"
        kind, addr, length = int(parts[0]), int(parts[1], 16), int(parts[2], 16)
        if kind in (0, 1):
            k = "sw" if kind == 0 else "hw"
            if insert:
                self.dbg.add_breakpoint(addr, k)
            elif not self.dbg.remove_breakpoint(addr, k):
                return "E22"
            return "OK"
        if kind in (2, 3, 4):
            k = {2: "write", 3: "read", 4: "access"}[kind]
            if insert:
                self.dbg.add_watchpoint(k, addr, length)
            elif not self.dbg.remove_watchpoint(k, addr, length):
                return "E22"
            return "OK"
        return ""

    def _monitor(self, line):
        if self.monitor is None:
            text = "no monitor in this run\n"
        else:
            text = self.monitor.execute(line)
        if text and not text.endswith("\n"):
            text += "\n"
        if text:
            self._send("O" + text.encode().hex())
        return "OK"


def _unescape(body):
    if b"}" not in body:
        return body
    out = bytearray()
    it = iter(body)
    for b in it:
        if b == 0x7D:
            out.append(next(it, 0) ^ 0x20)
        else:
            out.append(b)
    return bytes(out)
