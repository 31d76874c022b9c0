"""Packet capture: every frame on a card's wire, in the classic pcap format (tcpdump -r and
Wireshark read it). One writer per file; several cards may share it."""
import os
import struct
import time

from v3tools.errors import V3Error

MAGIC = 0xA1B2C3D4
LINKTYPE_ETHERNET = 1
SNAPLEN = 65535


class PcapWriter:
    def __init__(self, path):
        self.path = path
        parent = os.path.dirname(os.path.abspath(path))
        if os.path.isdir(path) or not os.path.isdir(parent):
            raise V3Error(f"--pcap {path}: cannot open: "
                          f"{'is a directory' if os.path.isdir(path) else 'no such directory'}")
        self.file = None                 # created when the guest runs (nothing half-written)
        self.frames = 0
        self.users = 0

    def start(self):
        if self.file is None:
            try:
                self.file = open(self.path, "wb")
            except OSError as exc:
                raise V3Error(f"--pcap {self.path}: cannot open: {exc.strerror}")
            self.file.write(struct.pack("<IHHiIII", MAGIC, 2, 4, 0, 0, SNAPLEN,
                                        LINKTYPE_ETHERNET))
            self.file.flush()

    def write(self, frame):
        if self.file is None:
            self.start()
        t = time.time_ns()
        sec, usec = divmod(t // 1000, 1_000_000)
        n = len(frame)
        self.file.write(struct.pack("<IIII", sec, usec, min(n, SNAPLEN), n))
        self.file.write(frame[:SNAPLEN])
        self.file.flush()
        self.frames += 1

    def close(self):
        if self.file is None:
            self.start()            # an empty capture is still a valid file
        if not self.file.closed:
            self.file.close()


def open_shared(ctx, path):
    """The board's writer for `path` (one file even when several cards capture to it)."""
    writers = ctx.__dict__.setdefault("pcap_writers", {})
    key = os.path.abspath(path)
    w = writers.get(key)
    if w is None:
        w = writers[key] = PcapWriter(path)
    w.users += 1
    return w
