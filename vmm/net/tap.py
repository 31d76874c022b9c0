"""TAP backend: an existing host TAP interface, opened by name through /dev/net/tun as QEMU
does (TUNSETIFF with IFF_TAP | IFF_NO_PI): every frame the guest sends is written to it, every
frame the host sends on it arrives at the card. Creating the interface is the administrator's
job (`ip tuntap add tap0 mode tap`); opening it needs CAP_NET_ADMIN or the interface's owner.
"""
import errno
import fcntl
import os
import select
import struct

from v3tools.errors import V3Error
from vmm.net import Backend

TUN_DEVICE = "/dev/net/tun"
TUNSETIFF = 0x400454CA
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
IFF_TUN_EXCL = 0x8000
IFNAMSIZ = 16


class TapBackend(Backend):
    kind = "tap"

    def __init__(self, ifname, name=None):
        super().__init__()
        if not ifname or len(ifname.encode()) >= IFNAMSIZ or "/" in ifname:
            raise V3Error(f"tap ifname={ifname!r}: not an interface name")
        self.ifname = ifname
        self.name = name or f"tap {ifname}"
        self.fd = None
        self.is_open = False

    def open(self, ctx):
        if not os.path.exists(TUN_DEVICE):
            raise V3Error(f"tap {self.ifname}: {TUN_DEVICE} does not exist (load the tun module)")
        if not os.path.exists(f"/sys/class/net/{self.ifname}"):
            raise V3Error(f"tap {self.ifname}: no such network interface (create it first: "
                          f"ip tuntap add {self.ifname} mode tap)")
        try:
            fd = os.open(TUN_DEVICE, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:
            raise V3Error(f"tap {self.ifname}: cannot open {TUN_DEVICE}: {exc.strerror}"
                          f"{' (needs root or CAP_NET_ADMIN)' if exc.errno in (errno.EACCES, errno.EPERM) else ''}")
        ifr = struct.pack(f"{IFNAMSIZ}sH22x", self.ifname.encode(), IFF_TAP | IFF_NO_PI)
        try:
            fcntl.ioctl(fd, TUNSETIFF, ifr)
        except OSError as exc:
            os.close(fd)
            hint = ""
            if exc.errno in (errno.EPERM, errno.EACCES):
                hint = " (not permitted: run as root or as the interface's owner)"
            elif exc.errno == errno.EINVAL:
                hint = " (is it a TAP interface, not a TUN one?)"
            elif exc.errno == errno.EBUSY:
                hint = " (another program has it open)"
            raise V3Error(f"tap {self.ifname}: cannot attach: {exc.strerror}{hint}")
        self.fd = fd
        self.is_open = True
        events = getattr(ctx, "events", None)
        if events is not None:
            events.add(self)

    def send(self, frame):
        if self.fd is None:
            return
        try:
            os.write(self.fd, frame)
        except (BlockingIOError, OSError):
            pass                    # the host side is not up or its queue is full: dropped

    def fds(self):
        return [(self.fd, select.POLLIN)] if self.fd is not None else []

    def dispatch(self, ready):
        if self.fd is None or not ready.get(self.fd):
            return
        for _ in range(64):
            try:
                frame = os.read(self.fd, 65536)
            except BlockingIOError:
                return
            except OSError:
                return
            if not frame:
                return
            self.deliver(frame)

    def close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        self.is_open = False
