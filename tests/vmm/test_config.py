"""vmm/config.py: the Palacios XML into a VMConfig, v3_cfg_val semantics, errors with places."""
import pytest

from v3tools.errors import ConfigError
from vmm.config import DeviceSpec, parse_vm_config


def cfg(body, source="cfg.xml"):
    return parse_vm_config(f'<vm class="PC">\n{body}\n</vm>\n'.encode(), source)


def device(xml):
    return cfg(f"<devices>\n{xml}\n</devices>").devices[0]


def test_value_from_attribute_or_child():
    d = device('<device class="NVRAM" id="nvram" storage="ide0"><bus>pci0</bus></device>')
    assert d.value("storage") == "ide0"
    assert d.value("bus") == "pci0"
    assert d.value("nothing") is None and d.value("nothing", "x") == "x"
    assert (d.id, d.class_name) == ("nvram", "NVRAM")


def test_value_both_attribute_and_child_is_an_error():
    d = device('<device class="IDE" id="ide0" bus="pci0">\n <bus>pci1</bus>\n</device>')
    with pytest.raises(ConfigError) as e:
        d.value("bus")
    assert str(e.value) == ("cfg.xml:3: <device> gives 'bus' both as an attribute and as a "
                            "child element")


def test_id_may_be_a_child():
    assert device('<device class="X"><id>dev1</id></device>').id == "dev1"


def test_int_value():
    d = device('<device class="X" id="x" irq="0x24"><port>1016</port><bad>ten</bad><e/></device>')
    assert d.int_value("irq") == 0x24 and d.int_value("port") == 1016
    assert d.int_value("e", 7) == 7 and d.int_value("none", 3) == 3
    with pytest.raises(ConfigError, match=r"^cfg.xml:3: <device> option 'bad' is not a number: 'ten'$"):
        d.int_value("bad")


def test_defaults():
    c = cfg("")
    assert (c.memory_mb, c.cores, c.schedule_hz, c.telemetry) == (256, 1, 100, False)
    assert (c.devices, c.memmap, c.files, c.ignored) == ([], [], {}, [])
    assert c.root.attrs == {"class": "PC"}


def test_memory_cores_telemetry_files():
    c = cfg('<memory>0x200</memory><cores count="2"/><schedule_hz>250</schedule_hz>'
            '<telemetry>enable</telemetry>'
            '<files><file id="boot-cd" filename="a.iso"/>'
            '<file><id>k</id><filename>b</filename></file></files>')
    assert (c.memory_mb, c.cores, c.schedule_hz, c.telemetry) == (512, 2, 250, True)
    assert c.files == {"boot-cd": "a.iso", "k": "b"}


@pytest.mark.parametrize("text, message", [
    ("lots", "cfg.xml:2: <memory> must be a size in MB, got 'lots'"),
    ("", "cfg.xml:2: <memory> must be a size in MB, got ''"),
    ("0", "cfg.xml:2: <memory> must be positive"),
    ("-5", "cfg.xml:2: <memory> must be positive"),
])
def test_memory_errors(text, message):
    with pytest.raises(ConfigError) as e:
        cfg(f"<memory>{text}</memory>")
    assert str(e.value) == message


def test_bad_schedule_hz_is_a_config_error():
    with pytest.raises(ConfigError, match=r"^cfg.xml:2: "):
        cfg("<schedule_hz>fast</schedule_hz>")


def test_malformed_xml_gives_file_line_col():
    with pytest.raises(ConfigError) as e:
        parse_vm_config(b'<vm>\n <memory>256</memory>\n <devices>\n</vm>\n', "guest.dat (embedded XML)")
    msg = str(e.value)
    assert msg.startswith("guest.dat (embedded XML):4:")
    line, col = msg.split(":")[1:3]
    assert line == "4" and col.isdigit()
    assert "malformed XML" in msg


def test_devices_in_document_order_with_lines():
    c = cfg('<devices>\n<device class="8259A" id="PIC"/>\n<!-- a comment -->\n'
            '<device class="8254_PIT" id="PIT"/>\n<device class="SERIAL" id="serial"/>\n</devices>')
    assert [(d.class_name, d.id, d.line) for d in c.devices] == [
        ("8259A", "PIC", 3), ("8254_PIT", "PIT", 5), ("SERIAL", "serial", 6)]
    assert all(isinstance(d, DeviceSpec) for d in c.devices)
    assert c.devices[0].where() == "cfg.xml:3"


def test_device_without_class():
    with pytest.raises(ConfigError, match=r"^cfg.xml:3: <device> without a class attribute$"):
        cfg('<devices>\n<device id="x"/>\n</devices>')


def test_unknown_blocks_collected_known_ones_not():
    c = cfg("<paging mode='nested'/><frobnicate/><extensions/><gizmo>1</gizmo>")
    assert c.ignored == ["frobnicate", "gizmo"]


def test_memmap_regions():
    c = cfg('<memmap>\n<region><start>0xa0000</start><end>0xc0000</end>'
            '<host_addr>0xa0000</host_addr></region>\n'
            '<region start="0x100000" end="0x200000" host_addr="0x0"/>\n</memmap>')
    assert c.memmap == [(0xA0000, 0xC0000, 0xA0000), (0x100000, 0x200000, 0)]


def test_child_helpers():
    d = device('<device class="FILEDISK" id="hda"><frontend tag="ide0"><type>DISK</type>'
               '</frontend><a>1</a><a>2</a></device>')
    assert d.child("frontend").attrs == {"tag": "ide0"}
    assert d.child("frontend").value("type") == "DISK"
    assert [a.text for a in d.all("a")] == ["1", "2"]
    assert d.child("missing") is None


# -- hostile XML: libxml2 bounds internal entities; external ones are never loaded -----------
def test_external_entity_is_not_loaded(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("SECRET")
    xml = (f'<?xml version="1.0"?><!DOCTYPE vm [<!ENTITY x SYSTEM "file://{secret}">]>'
           f'<vm><name>&x;</name></vm>').encode()
    with pytest.raises(ConfigError) as info:
        parse_vm_config(xml, "cfg")
    assert str(info.value) == ("cfg:1:%d: malformed XML: Entity 'x' not defined (external entities "
                               "are never loaded)" % (xml.index(b"&x;") + 4))


def test_entity_bomb_is_one_line():
    ents = '<!ENTITY a0 "lol">' + "".join(f'<!ENTITY a{i} "{("&a%d;" % (i - 1)) * 10}">' for i in range(1, 10))
    xml = f'<!DOCTYPE vm [{ents}]><vm><name>&a9;</name></vm>'.encode()
    with pytest.raises(ConfigError, match=r"^cfg:\d+:\d+: malformed XML: .* \(refused as an entity bomb\)$"):
        parse_vm_config(xml, "cfg")


def test_internal_entities_still_expand():
    cfg = parse_vm_config(b'<!DOCTYPE vm [<!ENTITY m "64">]><vm><memory>&m;</memory></vm>', "cfg")
    assert cfg.memory_mb == 64
