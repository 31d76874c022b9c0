"""User-mode networking on libslirp (Debian package libslirp0), QEMU's own user-mode stack,
driven through ctypes with its public API (libslirp.h).

The guest sits on a private subnet (10.0.2.0/24 unless `net=` says otherwise): the host side is
.2 (gateway, and the host's own 127.0.0.1 seen from the guest), DNS .3, DHCP hands out .15
onwards. Outbound TCP/UDP leaves through the host's sockets (NAT); `hostfwd` listens on a host
address and forwards to the guest; `restrict=on` cuts the guest off from the outside (host
forwards still work, and DHCP then offers no router or DNS).

libslirp is not thread-safe: everything here runs on the run loop's thread. The backend is an
input source of the loop (vmm/events.py): `fds()` asks libslirp for the descriptors to wait on
(slirp_pollfds_fill), `dispatch()` hands it the results (slirp_pollfds_poll) and fires due timers;
`timeout_ns()` is the nearest timer. Frames from the guest go in with slirp_input; frames for
the guest come back through the send_packet callback. Exceptions raised inside a callback are
caught (ctypes would swallow them) and re-raised after the libslirp call returns.

When vmm/net/_slirpio.c is built, the per-frame part is in C: its `SlirpGlue` is the
send_packet callback and calls slirp_input itself, and a card with C frame paths
(vmm/net/framepath.h) exchanges frames with it without Python (`use_fast_receiver`,
`fast_sender`). Without it, ctypes and the Python callback do the same work.
"""
import ctypes
import ctypes.util
import ipaddress
import select
import socket
import time

from v3tools.errors import ConfigError, V3Error
from vmm.net import Backend

try:
    from vmm.net import _slirpio
except ImportError:                   # not built: ctypes and Python carry every frame
    _slirpio = None

PACKAGE = "libslirp0"
MIN_VERSION = (4, 0, 0)

SLIRP_POLL_IN, SLIRP_POLL_OUT, SLIRP_POLL_PRI, SLIRP_POLL_ERR, SLIRP_POLL_HUP = 1, 2, 4, 8, 16
_TO_POLL = ((SLIRP_POLL_IN, select.POLLIN), (SLIRP_POLL_OUT, select.POLLOUT),
            (SLIRP_POLL_PRI, select.POLLPRI), (SLIRP_POLL_ERR, select.POLLERR),
            (SLIRP_POLL_HUP, select.POLLHUP))
MAX_WAIT_MS = 1000


class in_addr(ctypes.Structure):
    _fields_ = [("s_addr", ctypes.c_uint32)]          # network byte order


class in6_addr(ctypes.Structure):
    _fields_ = [("s6_addr32", ctypes.c_uint32 * 4)]   # 4-byte aligned, as glibc declares it


class SlirpConfig(ctypes.Structure):
    _fields_ = [
        ("version", ctypes.c_uint32),
        ("restricted", ctypes.c_int),
        ("in_enabled", ctypes.c_bool),
        ("vnetwork", in_addr),
        ("vnetmask", in_addr),
        ("vhost", in_addr),
        ("in6_enabled", ctypes.c_bool),
        ("vprefix_addr6", in6_addr),
        ("vprefix_len", ctypes.c_uint8),
        ("vhost6", in6_addr),
        ("vhostname", ctypes.c_char_p),
        ("tftp_server_name", ctypes.c_char_p),
        ("tftp_path", ctypes.c_char_p),
        ("bootfile", ctypes.c_char_p),
        ("vdhcp_start", in_addr),
        ("vnameserver", in_addr),
        ("vnameserver6", in6_addr),
        ("vdnssearch", ctypes.POINTER(ctypes.c_char_p)),
        ("vdomainname", ctypes.c_char_p),
        ("if_mtu", ctypes.c_size_t),
        ("if_mru", ctypes.c_size_t),
        ("disable_host_loopback", ctypes.c_bool),
        ("enable_emu", ctypes.c_bool),
        ("outbound_addr", ctypes.c_void_p),           # version 2
        ("outbound_addr6", ctypes.c_void_p),
        ("disable_dns", ctypes.c_bool),               # version 3
        ("disable_dhcp", ctypes.c_bool),              # version 4
    ]


SEND_PACKET = ctypes.CFUNCTYPE(ctypes.c_ssize_t, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p)
GUEST_ERROR = ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.c_void_p)
CLOCK_GET_NS = ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_void_p)
TIMER_NEW = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p)
TIMER_FREE = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p)
TIMER_MOD = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p)
POLL_FD = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_void_p)
NOTIFY = ctypes.CFUNCTYPE(None, ctypes.c_void_p)
INIT_COMPLETED = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p)
TIMER_NEW_OPAQUE = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)
TIMER_CB = ctypes.CFUNCTYPE(None, ctypes.c_void_p)
ADD_POLL = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_void_p)
GET_REVENTS = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_void_p)


class SlirpCb(ctypes.Structure):
    _fields_ = [
        ("send_packet", SEND_PACKET),
        ("guest_error", GUEST_ERROR),
        ("clock_get_ns", CLOCK_GET_NS),
        ("timer_new", TIMER_NEW),
        ("timer_free", TIMER_FREE),
        ("timer_mod", TIMER_MOD),
        ("register_poll_fd", POLL_FD),
        ("unregister_poll_fd", POLL_FD),
        ("notify", NOTIFY),
        ("init_completed", INIT_COMPLETED),
        ("timer_new_opaque", TIMER_NEW_OPAQUE),
    ]


_lib = None


def library():
    """The loaded libslirp and its version tuple; a one-line error naming the package."""
    global _lib
    if _lib is not None:
        return _lib
    name = ctypes.util.find_library("slirp") or "libslirp.so.0"
    try:
        lib = ctypes.CDLL(name)
    except OSError:
        raise V3Error(f"user-mode networking needs libslirp, which is not installed "
                      f"(Debian package {PACKAGE}: apt-get install {PACKAGE})")
    lib.slirp_version_string.restype = ctypes.c_char_p
    text = lib.slirp_version_string().decode()
    try:
        version = tuple(int(p) for p in text.split(".")[:3])
    except ValueError:
        version = (0,)
    if version < MIN_VERSION:
        raise V3Error(f"libslirp {text} is too old: user-mode networking needs "
                      f"{'.'.join(map(str, MIN_VERSION))} or newer (Debian package {PACKAGE})")
    lib.slirp_new.restype = ctypes.c_void_p
    lib.slirp_new.argtypes = [ctypes.POINTER(SlirpConfig), ctypes.POINTER(SlirpCb),
                              ctypes.c_void_p]
    lib.slirp_cleanup.argtypes = [ctypes.c_void_p]
    lib.slirp_input.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
    lib.slirp_pollfds_fill.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_uint32),
                                       ADD_POLL, ctypes.c_void_p]
    lib.slirp_pollfds_poll.argtypes = [ctypes.c_void_p, ctypes.c_int, GET_REVENTS,
                                       ctypes.c_void_p]
    lib.slirp_add_hostfwd.argtypes = [ctypes.c_void_p, ctypes.c_int, in_addr, ctypes.c_int,
                                      in_addr, ctypes.c_int]
    lib.slirp_handle_timer.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p]
    _lib = (lib, version, text)
    return _lib


def _addr(ip):
    return in_addr(int.from_bytes(ipaddress.IPv4Address(ip).packed, "little"))


class HostFwd:
    """One forward: proto ('tcp'/'udp'), host address and port, guest address (None: the
    DHCP address) and port."""

    def __init__(self, proto, host_addr, host_port, guest_addr, guest_port):
        self.proto, self.host_addr, self.host_port = proto, host_addr, host_port
        self.guest_addr, self.guest_port = guest_addr, guest_port

    def __repr__(self):
        return (f"{self.proto}:{self.host_addr}:{self.host_port}-"
                f"{self.guest_addr or ''}:{self.guest_port}")


def _parse_port(text, what):
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 < port < 65536:
        raise ConfigError(f"{what}: port {text!r} is not a number from 1 to 65535")
    return port


def _parse_ip(text, what):
    try:
        return str(ipaddress.IPv4Address(text))
    except ValueError:
        raise ConfigError(f"{what}: {text!r} is not an IPv4 address")


def parse_hostfwd(spec):
    """QEMU's hostfwd=[tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT."""
    what = f"hostfwd={spec}"
    proto, sep, rest = spec.partition(":")
    if not sep or proto not in ("tcp", "udp", ""):
        raise ConfigError(f"{what}: expected [tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT")
    host, dash, guest = rest.partition("-")
    haddr, c1, hport = host.rpartition(":")
    gaddr, c2, gport = guest.rpartition(":")
    if not dash or not c1 or not c2:
        raise ConfigError(f"{what}: expected [tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT")
    return HostFwd(proto or "tcp", _parse_ip(haddr, what) if haddr else "0.0.0.0",
                   _parse_port(hport, what), _parse_ip(gaddr, what) if gaddr else None,
                   _parse_port(gport, what))


def parse_redir(spec):
    """QEMU's legacy -redir [tcp|udp]:HOSTPORT:[GUESTADDR]:GUESTPORT."""
    what = f"-redir {spec}"
    parts = spec.split(":")
    if len(parts) == 3:
        parts = ["tcp"] + parts
    if len(parts) != 4 or parts[0] not in ("tcp", "udp"):
        raise ConfigError(f"{what}: expected [tcp|udp]:HOSTPORT:[GUESTADDR]:GUESTPORT")
    proto, hport, gaddr, gport = parts
    return HostFwd(proto, "0.0.0.0", _parse_port(hport, what),
                   _parse_ip(gaddr, what) if gaddr else None, _parse_port(gport, what))


def parse_net(spec):
    """net=ADDR[/MASK] (QEMU's form): the guest subnet."""
    try:
        if "/" not in spec:
            spec += "/24"
        return ipaddress.IPv4Network(spec, strict=False)
    except ValueError:
        raise ConfigError(f"net={spec}: not an IPv4 network (e.g. 10.10.10.0/24)")


class SlirpBackend(Backend):
    kind = "user"

    def __init__(self, net="10.0.2.0/24", restrict=False, hostfwds=(), name="slirp"):
        super().__init__()
        self.name = name
        self.network = parse_net(net) if isinstance(net, str) else net
        if self.network.num_addresses < 16:
            raise ConfigError(f"net={self.network}: the subnet is too small for the host, DNS "
                              f"and DHCP addresses")
        base = int(self.network.network_address)
        self.host_ip = str(ipaddress.IPv4Address(base + 2))
        self.dns_ip = str(ipaddress.IPv4Address(base + 3))
        self.dhcp_start = str(ipaddress.IPv4Address(base + 15))
        self.restrict = restrict
        self.hostfwds = list(hostfwds)
        self.slirp = None
        self.is_open = False
        self._timers = {}             # handle -> [expire_ms or None, kind, fn, cb_opaque]
        self._next_handle = 1
        self._pollfds = []            # (fd, slirp events) in the order libslirp added them
        self._revents = {}
        self._filled = False
        self._error = None
        self._glue = None if _slirpio is None else _slirpio.SlirpGlue(
            self.deliver, self._check, self._keep_error)

    @property
    def deliver(self):
        return self._deliver

    @deliver.setter
    def deliver(self, fn):            # the Port sets it; the glue calls it from C
        self._deliver = fn
        glue = getattr(self, "_glue", None)
        if glue is not None:
            glue.deliver = fn

    def use_fast_receiver(self, obj):
        if self._glue is not None:
            self._glue.connect(obj)

    def fast_sender(self):
        return self._glue

    # -- life cycle -------------------------------------------------------------------------------
    def open(self, ctx):
        lib, version, text = library()
        self.lib = lib
        cfg = self._cfg = SlirpConfig()
        cfg.version = 4 if version >= (4, 7, 0) else (3 if version >= (4, 5, 0) else 1)
        cfg.restricted = 1 if self.restrict else 0
        cfg.in_enabled = True
        cfg.vnetwork = _addr(self.network.network_address)
        cfg.vnetmask = _addr(self.network.netmask)
        cfg.vhost = _addr(self.host_ip)
        cfg.in6_enabled = False
        cfg.vdhcp_start = _addr(self.dhcp_start)
        cfg.vnameserver = _addr(self.dns_ip)
        cfg.if_mtu = 1500
        cfg.if_mru = 1500
        cb = self._cb = SlirpCb()
        # keep every callback object alive as long as the Slirp instance
        self._callbacks = [
            SEND_PACKET(self._send_packet), GUEST_ERROR(self._guest_error),
            CLOCK_GET_NS(self._clock_get_ns), TIMER_NEW(self._timer_new),
            TIMER_FREE(self._timer_free), TIMER_MOD(self._timer_mod),
            POLL_FD(self._poll_fd), POLL_FD(self._poll_fd), NOTIFY(self._notify),
            INIT_COMPLETED(self._init_completed), TIMER_NEW_OPAQUE(self._timer_new_opaque)]
        for (fname, _), fn in zip(SlirpCb._fields_, self._callbacks):
            setattr(cb, fname, fn)
        self._add_poll = ADD_POLL(self._add_poll_cb)
        self._get_revents = GET_REVENTS(self._get_revents_cb)
        opaque = None
        if self._glue is not None:
            entry = self._glue.entry_points()
            cb.send_packet = self._callbacks[0] = SEND_PACKET(entry["send_packet"])
            opaque = ctypes.c_void_p(entry["opaque"])
        self.slirp = lib.slirp_new(ctypes.byref(cfg), ctypes.byref(cb), opaque)
        if self._glue is not None and self.slirp:
            self._glue.set_slirp(self.slirp, ctypes.cast(lib.slirp_input, ctypes.c_void_p).value)
        self._check()
        if not self.slirp:
            raise V3Error(f"libslirp {text}: slirp_new failed for net={self.network}")
        for fwd in self.hostfwds:
            guest = fwd.guest_addr or self.dhcp_start
            if ipaddress.IPv4Address(guest) not in self.network:
                self.close()
                raise ConfigError(f"hostfwd {fwd}: guest address {guest} is outside the user "
                                  f"network {self.network}")
            rc = lib.slirp_add_hostfwd(self.slirp, 1 if fwd.proto == "udp" else 0,
                                       _addr(fwd.host_addr), fwd.host_port, _addr(guest),
                                       fwd.guest_port)
            if rc < 0:
                reason = _why_bind_fails(fwd)
                self.close()
                raise V3Error(f"hostfwd {fwd}: cannot listen on {fwd.host_addr}:"
                              f"{fwd.host_port}{': ' + reason if reason else ''}")
        self.is_open = True
        events = getattr(ctx, "events", None)
        if events is not None:
            events.add(self)

    def close(self):
        if self.slirp:
            if self._glue is not None:
                self._glue.set_slirp(0)
            self.lib.slirp_cleanup(self.slirp)
            self.slirp = None
        self.is_open = False

    # -- frames -----------------------------------------------------------------------------------
    def send(self, frame):
        if not self.slirp:
            return
        if self._glue is not None:
            self._glue.send(frame)        # slirp_input, then _check
            return
        self.lib.slirp_input(self.slirp, bytes(frame), len(frame))
        self._check()

    def _send_packet(self, buf, length, opaque):
        # A frame libslirp answers inside slirp_input (the card is transmitting, from inside
        # the guest's register write) goes to the card at once: it lands in the ring, and the
        # interrupt it raises stops the guest only if the line was not already up or masked.
        # (The glue's send_packet in C does the same.)
        try:
            self.deliver(ctypes.string_at(buf, length))
        except BaseException as exc:
            self._keep_error(exc)
        return length

    def _keep_error(self, exc):
        self._error = self._error or exc

    def _check(self):
        if self._error is not None:
            exc, self._error = self._error, None
            raise exc

    # -- event source -----------------------------------------------------------------------------
    def _fill(self):
        self._pollfds = []
        timeout = ctypes.c_uint32(MAX_WAIT_MS)
        self.lib.slirp_pollfds_fill(self.slirp, ctypes.byref(timeout), self._add_poll, None)
        self._fill_timeout_ms = timeout.value
        self._filled = True

    def timeout_ns(self):
        if not self.slirp:
            return None
        self._fill()
        t = self._fill_timeout_ms * 1_000_000
        now_ms = time.monotonic_ns() / 1e6
        for expire, *_ in self._timers.values():
            if expire is not None:
                t = min(t, max(0, int((expire - now_ms) * 1_000_000)))
        return t

    def fds(self):
        if not self.slirp:
            return []
        if not self._filled:
            self._fill()
        out = []
        for fd, events in self._pollfds:
            ev = 0
            for s, p in _TO_POLL:
                if events & s:
                    ev |= p
            out.append((fd, ev))
        return out

    def dispatch(self, ready):
        if not self.slirp:
            return
        if not self._filled:
            self._fill()
        self._revents = ready
        self._filled = False
        self.lib.slirp_pollfds_poll(self.slirp, 0, self._get_revents, None)
        self._check()
        self._run_timers()

    def _add_poll_cb(self, fd, events, opaque):
        self._pollfds.append((fd, events))
        return len(self._pollfds) - 1

    def _get_revents_cb(self, idx, opaque):
        try:
            fd = self._pollfds[idx][0]
        except IndexError:
            return 0
        rev = self._revents.get(fd, 0)
        out = 0
        for s, p in _TO_POLL:
            if rev & p:
                out |= s
        return out

    # -- timers -----------------------------------------------------------------------------------
    def _run_timers(self):
        now_ms = time.monotonic_ns() / 1e6
        for handle, t in list(self._timers.items()):
            if t[0] is not None and t[0] <= now_ms:
                t[0] = None
                if t[1] == "cb":
                    TIMER_CB(t[2])(t[3])
                else:
                    self.lib.slirp_handle_timer(self.slirp, t[2], t[3])
                self._check()

    def _new_handle(self, entry):
        handle = self._next_handle
        self._next_handle += 1
        self._timers[handle] = entry
        return handle

    def _timer_new(self, cb, cb_opaque, opaque):
        return self._new_handle([None, "cb", cb, cb_opaque])

    def _timer_new_opaque(self, timer_id, cb_opaque, opaque):
        return self._new_handle([None, "id", timer_id, cb_opaque])

    def _timer_free(self, handle, opaque):
        self._timers.pop(handle, None)

    def _timer_mod(self, handle, expire_ms, opaque):
        t = self._timers.get(handle)
        if t is not None:
            t[0] = expire_ms

    # -- the rest of the callbacks ------------------------------------------------------------------
    def _guest_error(self, msg, opaque):
        self._error = self._error or V3Error(f"libslirp: guest error: {msg.decode(errors='replace')}")

    @staticmethod
    def _clock_get_ns(opaque):
        return time.monotonic_ns()

    def _poll_fd(self, fd, opaque):
        pass

    def _notify(self, opaque):
        pass

    def _init_completed(self, slirp, opaque):
        pass


def _why_bind_fails(fwd):
    """Why libslirp could not listen: try the same bind ourselves for the message."""
    kind = socket.SOCK_DGRAM if fwd.proto == "udp" else socket.SOCK_STREAM
    s = socket.socket(socket.AF_INET, kind)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((fwd.host_addr, fwd.host_port))
        if kind == socket.SOCK_STREAM:
            s.listen(1)
    except OSError as exc:
        return exc.strerror.lower() if exc.strerror else str(exc)
    finally:
        s.close()
    return ""
