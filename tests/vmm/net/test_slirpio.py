"""libslirp's per-frame glue in C (vmm/net/_slirpio.c) with real libslirp, and the Python path
it replaces: frames cross between libslirp and a card's C paths (vmm/net/framepath.h) without
Python, declined frames and a packet capture keep to the Python path, errors become the
backend's pending error. The card is the module's test-only `Recorder` (a receiver and a
transmitter in C). Without libslirp the tests skip, except under CI, where they fail."""
import ipaddress
import os
import select
import socket
import struct
import time

import pytest

from v3tools.errors import V3Error
from vmm.net import Backend, Port
from vmm.net import slirp as slirp_mod
from vmm.net.slirp import SlirpBackend, parse_hostfwd

MAC = bytes.fromhex("525400123456")
HOST_MAC = bytes.fromhex("52550a000202")
GUEST_IP = "10.0.2.15"


def ip(text):
    return ipaddress.IPv4Address(text).packed


def arp_request(target="10.0.2.2"):
    return (b"\xff" * 6 + MAC + b"\x08\x06" + struct.pack(">HHBBH", 1, 0x0800, 6, 4, 1)
            + MAC + ip(GUEST_IP) + bytes(6) + ip(target))


def is_arp_reply_from_host(frame):
    return (frame[12:14] == b"\x08\x06" and frame[20:22] == b"\x00\x02"
            and frame[22:28] == HOST_MAC and frame[28:32] == ip("10.0.2.2")
            and frame[:6] == MAC)


def dhcp_discover(xid=0x1234ABCD):
    options = b"\x63\x82\x53\x63" + b"\x35\x01\x01" + b"\xff"
    bootp = (struct.pack(">BBBBIHH", 1, 1, 6, 0, xid, 0, 0x8000) + bytes(16) + MAC + bytes(10)
             + bytes(192) + options)
    udp = struct.pack(">HHHH", 68, 67, 8 + len(bootp), 0) + bootp
    hdr = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
                      bytes(4), b"\xff" * 4)
    s = sum(struct.unpack(">10H", hdr))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    hdr = hdr[:10] + struct.pack(">H", ~s & 0xFFFF) + hdr[12:]
    return b"\xff" * 6 + MAC + b"\x08\x00" + hdr + udp


def dhcp_offer_address(frame, xid=0x1234ABCD):
    """The address a DHCP OFFER for `xid` offers, else None."""
    if frame[12:14] != b"\x08\x00" or frame[23] != 17:
        return None
    bootp = frame[14 + 20 + 8:]
    if bootp[0] != 2 or struct.unpack(">I", bootp[4:8])[0] != xid:
        return None
    if b"\x35\x01\x02" not in bootp[240:]:
        return None
    return str(ipaddress.IPv4Address(bootp[16:20]))


@pytest.fixture(scope="module")
def libslirp():
    try:
        slirp_mod.library()
    except V3Error as exc:
        if os.environ.get("CI", "").strip().lower() == "true":
            pytest.fail(f"libslirp unavailable under CI: {exc}", pytrace=False)
        pytest.skip(f"libslirp unavailable: {exc}")


@pytest.fixture
def slirpio(require_built):
    require_built(slirp_mod._slirpio is not None, "libslirp's glue (vmm/net/_slirpio.c)")
    return slirp_mod._slirpio


class Capture:
    def __init__(self):
        self.frames = []

    def write(self, frame):
        self.frames.append(bytes(frame))


@pytest.fixture
def link(libslirp):
    """make(pcap=None, fast_rx=None, **backend options) -> (backend, port, frames the Python
    path delivered); closed at the end."""
    made = []

    def make(pcap=None, fast_rx=None, **kw):
        backend = SlirpBackend(restrict=True, **kw)
        port = Port(backend, pcap)
        received = []
        port.connect(received.append, fast_rx)
        backend.open(None)
        made.append(backend)
        return backend, port, received
    yield make
    for backend in made:
        backend.close()


def test_arp_request_through_the_tx_capsule_gets_its_reply_through_the_rx_capsule(link, slirpio):
    card = slirpio.Recorder()
    backend, port, received = link(fast_rx=card)
    sender = port.fast_tx()
    assert sender is backend.fast_sender() and sender is not None
    assert card.send(sender, arp_request()) == 1
    assert len(card.frames) == 1 and is_arp_reply_from_host(card.frames[0])
    assert received == []
    assert backend._glue.counts() == {"rx_fast": 1, "rx_python": 0, "tx_fast": 1,
                                      "tx_python": 0}


def test_dhcp_discover_gets_an_offer_in_c(link, slirpio):
    card = slirpio.Recorder()
    backend, port, received = link(fast_rx=card)
    assert card.send(port.fast_tx(), dhcp_discover()) == 1
    assert [dhcp_offer_address(f) for f in card.frames] == [GUEST_IP]
    assert received == []


def test_python_send_reaches_the_c_receiver(link, slirpio):
    """A card transmitting through Python (port.send) still gets its answer in C."""
    card = slirpio.Recorder()
    backend, port, received = link(fast_rx=card)
    port.send(arp_request())
    assert len(card.frames) == 1 and is_arp_reply_from_host(card.frames[0])
    assert backend._glue.counts()["tx_python"] == 1


def test_declined_frames_go_to_deliver(link, slirpio):
    card = slirpio.Recorder(answer=0)
    backend, port, received = link(fast_rx=card)
    assert card.send(port.fast_tx(), arp_request()) == 1
    assert card.frames == [] and len(received) == 1 and is_arp_reply_from_host(received[0])
    assert backend._glue.counts()["rx_python"] == 1


def test_a_failing_receiver_is_the_backends_pending_error(link, slirpio):
    card = slirpio.Recorder(answer=-1)
    backend, port, received = link(fast_rx=card)
    with pytest.raises(RuntimeError, match="told to fail"):
        card.send(port.fast_tx(), arp_request())        # raised by check() after slirp_input
    with pytest.raises(RuntimeError, match="told to fail"):
        port.send(arp_request())                        # the Python path: the same
    card.answer = 1
    assert card.send(port.fast_tx(), arp_request()) == 1    # the error was taken once
    backend._check()
    assert received == []


def test_a_failing_deliver_is_the_backends_pending_error(link, slirpio):
    card = slirpio.Recorder(answer=0)
    backend, port, received = link(fast_rx=card)

    def broken(frame):
        raise ValueError("the card fail-stopped")
    port.receive = broken
    with pytest.raises(ValueError, match="fail-stopped"):
        card.send(port.fast_tx(), arp_request())


def test_frames_from_libslirps_poll_reach_the_c_receiver(link, slirpio, tmp_path):
    """send_packet called from slirp_pollfds_poll (ctypes, without the GIL): a UDP datagram
    through a host forward arrives at the card in C."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port_no = s.getsockname()[1]
    s.close()
    card = slirpio.Recorder()
    backend, port, received = link(fast_rx=card,
                                   hostfwds=[parse_hostfwd(f"udp:127.0.0.1:{port_no}-:7")])
    card.send(port.fast_tx(), arp_request())             # libslirp learns the guest's MAC
    card.frames.clear()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as out:
        out.sendto(b"v3-slirpio-probe", ("127.0.0.1", port_no))
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not any(b"v3-slirpio-probe" in f
                                                      for f in card.frames):
            poller = select.poll()
            for fd, ev in backend.fds():
                poller.register(fd, ev)
            ready = dict(poller.poll(50))
            backend.dispatch(ready)
    assert any(b"v3-slirpio-probe" in f and f[:6] == MAC for f in card.frames), card.frames
    assert received == []


def test_a_packet_capture_keeps_both_directions_in_python(link, slirpio):
    card = slirpio.Recorder()
    pcap = Capture()
    backend, port, received = link(pcap=pcap, fast_rx=card)
    assert port.fast_tx() is None
    assert backend._glue.receiver is None
    port.send(arp_request())
    assert card.frames == []
    assert len(received) == 1 and is_arp_reply_from_host(received[0])
    assert pcap.frames == [arp_request(), received[0]]


def test_after_close_the_tx_capsule_declines(link, slirpio):
    card = slirpio.Recorder()
    backend, port, received = link(fast_rx=card)
    sender = port.fast_tx()
    backend.close()
    assert not sender.is_open
    assert card.send(sender, arp_request()) == 0
    port.send(arp_request())                             # dropped, as before
    assert card.frames == [] and received == []


def test_without_the_extension_the_python_path_does_the_work(link, monkeypatch):
    monkeypatch.setattr(slirp_mod, "_slirpio", None)

    class NotUsed:
        _v3_frame_rx = None
    backend, port, received = link(fast_rx=NotUsed())
    assert backend._glue is None and backend.fast_sender() is None and port.fast_tx() is None
    port.send(dhcp_discover())
    assert [dhcp_offer_address(f) for f in received] == [GUEST_IP]

    def broken(frame):
        raise ValueError("the card fail-stopped")
    port.receive = broken
    with pytest.raises(ValueError, match="fail-stopped"):
        port.send(arp_request())


def test_the_glue_without_libslirp(slirpio):
    errors = []
    glue = slirpio.SlirpGlue(lambda frame: None, lambda: None, errors.append)
    assert glue.send(arp_request()) is False and not glue.is_open
    assert slirpio.Recorder().send(glue, arp_request()) == 0
    with pytest.raises(AttributeError):
        glue.connect(object())
    with pytest.raises(ValueError):
        glue.set_slirp(1)
    with pytest.raises(TypeError):
        slirpio.SlirpGlue(None, lambda: None, errors.append)
    with pytest.raises(ValueError):
        slirpio.Recorder(answer=2)
    with pytest.raises(ValueError):
        slirpio.Recorder().answer = 5
    entry = glue.entry_points()
    assert entry["send_packet"] and entry["opaque"] == id(glue)


def test_backends_without_a_c_path():
    backend = Backend()
    port = Port(backend)
    port.connect(lambda frame: None, object())
    assert backend.fast_sender() is None and port.fast_tx() is None
