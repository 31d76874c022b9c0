"""Guest networking: the link between a network card and a host backend.

A card (vmm/devices/rtl8139.py, ne2000.py) sees a `Port`: it calls `port.send(frame)` for each
frame it transmits and gets `receive(frame)` called for each frame that arrives. A backend
(user-mode networking on libslirp, a host TAP interface) sees the other side: `send(frame)` from
the guest, `deliver(frame)` towards it. The port writes every frame in both directions to the
packet capture, if there is one.

Backends are input sources of the run loop (vmm/events.py): their descriptors and timers are
serviced from the loop's own thread, so an idle networked guest waits in the loop's poll().
"""
from v3tools.errors import ConfigError


class Backend:
    """The host side of a link. Subclasses implement `send(frame)`, `open(ctx)`, `close()`."""

    kind = "?"
    name = "net"
    is_open = True

    def __init__(self):
        self.deliver = _drop           # callable(frame): set by the Port

    def open(self, ctx):
        """Start (sockets, host forwards); register with ctx.events. Errors: one line."""

    def send(self, frame):
        raise NotImplementedError

    def close(self):
        pass

    # event-source protocol defaults (vmm/events.py)
    def fds(self):
        return []

    def dispatch(self, ready):
        pass

    def timeout_ns(self):
        return None


def _drop(frame):
    pass


class Port:
    """What a card holds: `send(frame)` to the host; frames from the host go to `receive`."""

    def __init__(self, backend, pcap=None):
        self.backend = backend
        self.pcap = pcap
        self.receive = _drop
        self.tx_frames = self.rx_frames = 0
        backend.deliver = self._from_host

    def connect(self, receive):
        self.receive = receive

    def send(self, frame):
        self.tx_frames += 1
        if self.pcap is not None:
            self.pcap.write(frame)
        self.backend.send(frame)

    def _from_host(self, frame):
        self.rx_frames += 1
        if self.pcap is not None:
            self.pcap.write(frame)
        self.receive(frame)


def connect_card(ctx, card_id, port, owner):
    """Attach `port` to the card device `card_id` (a bridge's <frontend tag="...">)."""
    card = ctx.find_device(card_id, wanted_by=owner)
    if not hasattr(card, "connect_port"):
        raise ConfigError(f"device '{owner}': <frontend tag=\"{card_id}\"> names a "
                          f"{card.CLASS_NAME}, which is not a network card")
    if getattr(card, "port", None) is not None:
        raise ConfigError(f"device '{owner}': network card '{card_id}' is already connected")
    card.connect_port(port)
