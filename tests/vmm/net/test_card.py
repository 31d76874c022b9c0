"""vmm/net/card.py: the PCI network cards' shared set-up (PciNic), for both cards: the XML's
<mac> (checked, named after the card's Palacios class), default MACs in attach order, one PCI
function with its INTx line and BARs, and the backend port."""
import io

import pytest
from lxml import etree

from v3tools.errors import ConfigError
from vmm.clock import ManualClock
from vmm.config import DeviceSpec
from vmm.context import BoardContext, BytesMemory
from vmm.devices.i8259 import PIC8259 as PIC
from vmm.devices.ne2000 import NE2000
from vmm.devices.pci import PciBus
from vmm.devices.rtl8139 import RTL8139
from vmm.log import VMMLog
from vmm.net import Backend, Port
from vmm.net.card import PciNic

CARDS = [RTL8139, NE2000]


def spec(xml):
    return DeviceSpec.from_element(etree.fromstring(xml))


def board():
    c = BoardContext(memory=BytesMemory(4 << 20), clock=ManualClock(),
                     log=VMMLog(stream=io.StringIO()))
    c.memory_size = 4 << 20
    c.add_device(PIC("pic"))
    c.add_device(PciBus("pci0"))
    return c


@pytest.mark.parametrize("card", CARDS, ids=lambda c: c.CLASS_NAME)
def test_a_bad_mac_is_named_after_the_card(card):
    name = card.CLASS_NAME
    with pytest.raises(ConfigError, match=f"{name} 'n' <mac>.*not a MAC"):
        card.from_spec(spec(f'<device class="{name}" id="n"><bus>pci0</bus>'
                            f'<mac>52:54:00:zz:00:01</mac></device>'), board())


@pytest.mark.parametrize("card", CARDS, ids=lambda c: c.CLASS_NAME)
def test_xml_mac_pci_function_and_port(card):
    c = board()
    name = card.CLASS_NAME
    nic = card.from_spec(spec(f'<device class="{name}" id="nic0"><bus>pci0</bus>'
                              f'<mac>52:54:00:ab:cd:ef</mac></device>'), c)
    assert isinstance(nic, PciNic) and nic.bus_id == "pci0"
    c.add_device(nic)
    assert nic.mac == bytes.fromhex("525400abcdef")
    assert nic.irq is not None and nic.bars is not None
    assert nic.cfg.address is not None                   # registered on the bus
    got = []

    class Sink(Backend):
        def send(self, frame):
            got.append(frame)

    port = Port(Sink())
    nic.connect_port(port)
    assert nic.port is port


def test_default_macs_in_attach_order_across_both_cards():
    c = board()
    first = RTL8139.from_spec(spec('<device class="RTL8139" id="a"><bus>pci0</bus></device>'), c)
    second = NE2000.from_spec(spec('<device class="NE2000" id="b"><bus>pci0</bus></device>'), c)
    c.add_device(first)
    c.add_device(second)
    assert first.mac != second.mac
    assert first.mac[:3] == second.mac[:3] and second.mac[5] == first.mac[5] + 1
