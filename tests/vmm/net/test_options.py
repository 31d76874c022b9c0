"""Network options: QEMU's spellings, and bad input as one-line errors before the guest runs."""
import socket

import pytest

from v3tools.errors import ConfigError, V3Error
from vmm.config import parse_vm_config
from vmm.launch import standard_pc_xml
from vmm.net.options import add_to_config, parse_legacy, parse_nic
from vmm.net.slirp import SlirpBackend, parse_hostfwd, parse_redir


def test_modern_and_legacy_forms():
    nic = parse_nic("user,model=rtl8139,hostfwd=tcp:127.0.0.1:8080-:80,restrict=on,"
                    "net=10.10.10.0/24")
    assert (nic.backend, nic.model, nic.restrict, nic.net) == ("user", "rtl8139", True,
                                                              "10.10.10.0/24")
    legacy = parse_legacy(["user", "nic,model=rtl8139"], ["tcp:9555:10.10.10.33:80"])
    assert legacy.model == "rtl8139" and legacy.hostfwd == ["tcp::9555-10.10.10.33:80"]
    fwd = parse_redir("tcp:9555:10.10.10.33:80")
    assert (fwd.host_port, fwd.guest_addr, fwd.guest_port) == (9555, "10.10.10.33", 80)
    fwd = parse_hostfwd("tcp::5555-:22")
    assert (fwd.host_addr, fwd.host_port, fwd.guest_addr) == ("0.0.0.0", 5555, None)


@pytest.mark.parametrize("spec, message", [
    ("user,model=e1000", "unknown NIC model"),
    ("socket,model=rtl8139", "unknown network backend"),
    ("user,hostfwd=tcp:127.0.0.1:99999-:80", "port"),
    ("user,hostfwd=tcp:80", "expected"),
    ("user,mac=52:54:00:12:34", "not a MAC"),
    ("tap,model=rtl8139", "needs ifname"),
    ("user,model=rtl8139,cplus=maybe", "cplus=maybe: expected on or off"),
    ("user,model=ne2k_pci,cplus=on", "cplus=on is an option of model=rtl8139"),
    ("user,cplus=on,model=ne2k_pci", "cplus=on is an option of model=rtl8139"),
])
def test_bad_nic_options_are_one_line_errors(spec, message):
    with pytest.raises(ConfigError, match=message) as e:
        parse_nic(spec)
    assert "\n" not in str(e.value)


def test_legacy_pair_must_be_complete():
    with pytest.raises(ConfigError, match="no backend"):
        parse_legacy(["nic,model=rtl8139"], [])
    with pytest.raises(ConfigError, match="-redir needs"):
        parse_legacy(["nic", "tap,ifname=tap0"], ["tcp:1:10.0.2.15:80"])


def test_command_line_becomes_xml_devices():
    cfg = parse_vm_config(standard_pc_xml(256).encode(), "<pc>")
    add_to_config(cfg, ["user,model=rtl8139,hostfwd=tcp:127.0.0.1:8080-:80"], pcap="x.pcap")
    card, bridge = cfg.devices[-2:]
    assert card.class_name == "RTL8139" and card.value("bus") == "pci0"
    assert bridge.class_name == "NIC_BRIDGE" and bridge.child("frontend").attrs["tag"] == card.id
    assert bridge.value("pcap") == "x.pcap" and bridge.value("hostfwd").startswith("tcp:")


def test_host_port_in_use_is_a_one_line_error():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    port = s.getsockname()[1]
    try:
        b = SlirpBackend(hostfwds=[parse_hostfwd(f"tcp:127.0.0.1:{port}-:80")])
        with pytest.raises(V3Error, match=f"cannot listen on 127.0.0.1:{port}"):
            b.open(object())
    finally:
        s.close()


def test_tap_that_does_not_exist_is_a_one_line_error():
    from vmm.net.tap import TapBackend
    with pytest.raises(V3Error, match="no such network interface") as e:
        TapBackend("v3-no-such-tap").open(object())
    assert "\n" not in str(e.value)


def test_cplus_reaches_the_card_through_the_xml():
    cfg = parse_vm_config(standard_pc_xml(256).encode(), "<pc>")
    add_to_config(cfg, ["user,model=rtl8139,cplus=on", "user,model=rtl8139,cplus=off"])
    first, _, second, _ = cfg.devices[-4:]
    assert first.value("cplus") == "on" and second.value("cplus") is None
    assert parse_nic("tap,ifname=tap0,cplus=on").cplus


def test_bad_cplus_is_a_one_line_error_before_the_guest_starts(v3, tmp_path):
    iso = tmp_path / "x.iso"
    iso.write_bytes(b"")
    r = v3("run", "--cdrom", str(iso), "--nic", "user,model=rtl8139,cplus=perhaps")
    assert r.exit_code == 1
    assert r.stderr.strip().count("\n") == 0 and "cplus=perhaps: expected on or off" in r.stderr
