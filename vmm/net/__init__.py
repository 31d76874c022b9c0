"""Guest networking: the link between a network card and a host backend.

A card (vmm/devices/rtl8139.py, ne2000.py) sees a `Port`: it calls `port.send(frame)` for each
frame it transmits and gets `receive(frame)` called for each frame that arrives. A backend
(user-mode networking on libslirp, a host TAP interface) sees the other side: `send(frame)` from
the guest, `deliver(frame)` towards it. The port writes every frame in both directions to the
packet capture, if there is one.

Frames can also cross without Python (vmm/net/framepath.h): a card with a receiver in C passes
it to `Port.connect(receive, fast_rx)`, and a card's C transmit path asks `Port.fast_tx()` for
the backend's sender in C. The port joins them only without a packet capture, which must see
every frame: with one, both directions stay on the Python path.

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

    def use_fast_receiver(self, obj):
        """Frames for the guest go first to obj's `_v3_frame_rx` in C (framepath.h), those it
        declines to `deliver`; None: all to `deliver`. A backend without a C path ignores it."""

    def fast_sender(self):
        """An object holding `_v3_frame_tx` (framepath.h) that sends frames from C, or None."""
        return None

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
        backend.deliver = self._from_host

    def connect(self, receive, fast_rx=None):
        """`receive(frame)` gets the frames from the host; `fast_rx`, an object holding the
        card's `_v3_frame_rx`, gets them first in C when there is no packet capture."""
        self.receive = receive
        self.backend.use_fast_receiver(fast_rx if self.pcap is None else None)

    def fast_tx(self):
        """The backend's object holding `_v3_frame_tx`, for the card's C transmit path; None
        when the backend has none or a packet capture must see the frames (use `send`)."""
        if self.pcap is not None:
            return None
        return self.backend.fast_sender()

    def send(self, frame):
        if self.pcap is not None:
            self.pcap.write(frame)
        self.backend.send(frame)

    def _from_host(self, frame):
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
