"""What the PCI network cards (vmm/devices/rtl8139.py, ne2000.py) share: one PCI function on a
PCI bus with its INTx line, a MAC from the XML's `<mac>` or the next default one, the BARs
decoded through `BarDecoder`, and the port to a backend (vmm/net/__init__.py). A card
subclass, registered under its Palacios class name, gives its configuration space
(`make_config`), the handlers of its BARs (`bar_handlers`) and its own `power_on`, `receive` and
registers."""
import zlib
from collections import deque

from vmm.devices.base import Device
from vmm.devices.pci import BarDecoder, bus_option, find_pci_bus
from vmm.net.mac import format_mac, next_default_mac, parse_mac


def with_fcs(frame):
    """The frame as a card stores a received one: followed by its Ethernet FCS (CRC-32,
    least significant byte first)."""
    return bytes(frame) + (zlib.crc32(frame) & 0xFFFFFFFF).to_bytes(4, "little")


class PciNic(Device):
    def __init__(self, dev_id, bus_id, mac=None):
        super().__init__(dev_id)
        self.bus_id = bus_id
        self.mac = mac
        self.port = None
        self.ctx = None
        self.irq = None
        self.cfg = self.make_config()
        self.fifo = deque()
        self.stats = {"tx": 0, "rx": 0, "rx_dropped": 0, "rx_filtered": 0}

    @classmethod
    def from_spec(cls, spec, ctx):
        text = spec.value("mac")
        mac = parse_mac(text, f"{spec.where()}: {cls.CLASS_NAME} '{spec.id}' <mac>") if text else None
        return cls(spec.id, bus_option(spec, cls.CLASS_NAME), mac)

    def make_config(self):
        """The card's PciConfig, with its BARs sized."""
        raise NotImplementedError

    def bar_handlers(self):
        """BarDecoder's handlers: {bar: (read, write, sizes[, block ports])}."""
        raise NotImplementedError

    def attach(self, ctx):
        self.ctx = ctx
        pci = find_pci_bus(ctx, self.bus_id, self)
        if self.mac is None:
            self.mac = next_default_mac(ctx)
        pci.register_function(0, None, 0, self.cfg)
        self.irq = pci.intx_line(self.cfg)
        self.bars = BarDecoder(ctx, self.cfg, self.id, self.bar_handlers())
        self.log.debug(f"MAC {format_mac(self.mac)} at PCI {self.cfg.address[1]:02x}.0")
        self.power_on()

    def connect_port(self, port):
        """A NIC_BRIDGE (or the command line's --nic) connects the card to a backend."""
        self.port = port
        # a card with a receiver in C (`fast_rx`, holding `_v3_frame_rx`: vmm/net/framepath.h)
        # gets frames from a backend's C path without Python
        port.connect(self.receive, getattr(self, "fast_rx", None))
