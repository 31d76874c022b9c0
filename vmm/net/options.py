"""QEMU's network options, turned into the VM's XML devices (a card plus a NIC_BRIDGE), so that
configuration reaches the devices in one place (vmm/config.py) whether it came from a guest
image's XML or from the command line.

    --nic user,model=rtl8139,hostfwd=tcp:127.0.0.1:8080-:80,restrict=on,net=10.0.2.0/24,mac=...
    --nic user,model=rtl8139,cplus=on      (the RTL8139C+ in C+ mode, as QEMU's rtl8139)
    --nic tap,ifname=tap2,model=ne2k_pci
    -net nic,model=rtl8139[,macaddr=...]  -net user[,hostfwd=...]|tap,ifname=...  -redir tcp:P:A:P

`-net` is the legacy pair: one card and one backend on the same wire; `-redir` adds a host
forward to its user-mode backend.
"""
from dataclasses import dataclass, field
from xml.sax.saxutils import escape

from v3tools.errors import ConfigError
from vmm.config import DeviceSpec
from vmm.net.mac import format_mac, parse_mac

MODELS = {"rtl8139": "RTL8139", "ne2k_pci": "NE2000"}
DEFAULT_MODEL = "rtl8139"
USER_KEYS = {"hostfwd", "restrict", "net", "model", "mac", "macaddr", "id", "cplus"}
TAP_KEYS = {"ifname", "model", "mac", "macaddr", "id", "script", "downscript", "cplus"}
CPLUS_MODELS = {"rtl8139"}          # the models with a C+ mode (the card's <cplus>)


@dataclass
class NicConfig:
    backend: str                      # "user" or "tap"
    model: str = DEFAULT_MODEL
    mac: str = None
    hostfwd: list = field(default_factory=list)
    restrict: bool = False
    net: str = None
    ifname: str = None
    cplus: bool = False


def _split(spec, what):
    """'user,model=x,hostfwd=a,hostfwd=b' -> ('user', [(key, value), ...])."""
    parts = [p for p in spec.split(",")]
    kind = parts[0].strip()
    opts = []
    for p in parts[1:]:
        if not p:
            continue
        key, eq, value = p.partition("=")
        if not eq:
            raise ConfigError(f"{what} {spec}: option {p!r} needs a value (KEY=VALUE)")
        opts.append((key.strip(), value.strip()))
    return kind, opts


def _on_off(value, what, key="restrict"):
    v = value.lower()
    if v in ("on", "yes", "y", "1", "true"):
        return True
    if v in ("off", "no", "n", "0", "false"):
        return False
    raise ConfigError(f"{what}: {key}={value}: expected on or off")


def _model(value, what):
    if value not in MODELS:
        raise ConfigError(f"{what}: unknown NIC model {value!r} (known: {', '.join(MODELS)})")
    return value


def _backend_options(nic, kind, opts, what, allowed):
    from vmm.net.slirp import parse_hostfwd, parse_net
    for key, value in opts:
        if key not in allowed:
            raise ConfigError(f"{what}: unknown option {key!r} for the {kind} backend "
                              f"(known: {', '.join(sorted(allowed))})")
        if key == "hostfwd":
            parse_hostfwd(value)                     # checked now: one line if malformed
            nic.hostfwd.append(value)
        elif key == "restrict":
            nic.restrict = _on_off(value, what)
        elif key == "net":
            parse_net(value)
            nic.net = value
        elif key == "model":
            nic.model = _model(value, what)
        elif key in ("mac", "macaddr"):
            parse_mac(value, f"{what}: {key}")
            nic.mac = value
        elif key == "ifname":
            nic.ifname = value
        elif key == "cplus":
            nic.cplus = _on_off(value, what, "cplus")
        elif key in ("script", "downscript") and value != "no":
            raise ConfigError(f"{what}: {key}={value}: running host scripts is not supported "
                              f"(create and configure the TAP interface beforehand; "
                              f"{key}=no is accepted)")


def parse_nic(spec):
    """One --nic value."""
    what = f"--nic {spec}"
    kind, opts = _split(spec, "--nic")
    if kind not in ("user", "tap"):
        raise ConfigError(f"{what}: unknown network backend {kind!r} (known: user, tap)")
    nic = NicConfig(kind)
    _backend_options(nic, kind, opts, what, USER_KEYS if kind == "user" else TAP_KEYS)
    if kind == "tap" and not nic.ifname:
        raise ConfigError(f"{what}: the tap backend needs ifname=NAME")
    if nic.cplus and nic.model not in CPLUS_MODELS:
        raise ConfigError(f"{what}: cplus=on is an option of model=rtl8139 (the RTL8139C+), "
                          f"not of model={nic.model}")
    return nic


def parse_legacy(nets, redirs):
    """The seeds' `-net nic,... -net user|tap,...` pair and `-redir`: at most one NicConfig."""
    card = backend = None
    for spec in nets:
        what = f"-net {spec}"
        kind, opts = _split(spec, "-net")
        if kind == "nic":
            if card is not None:
                raise ConfigError(f"{what}: only one -net nic is supported (use --nic for more "
                                  f"cards)")
            card = {}
            for key, value in opts:
                if key == "model":
                    card["model"] = _model(value, what)
                elif key == "macaddr":
                    parse_mac(value, f"{what}: macaddr")
                    card["mac"] = value
                elif key not in ("vlan", "name", "id") or (key == "vlan" and value != "0"):
                    raise ConfigError(f"{what}: unsupported option {key}={value}")
        elif kind in ("user", "tap"):
            if backend is not None:
                raise ConfigError(f"{what}: only one -net user|tap backend is supported")
            backend = NicConfig(kind)
            opts = [(k, v) for k, v in opts if not (k == "vlan" and v == "0")]
            _backend_options(backend, kind, opts, what,
                             (USER_KEYS if kind == "user" else TAP_KEYS) - {"model", "mac"})
            if kind == "tap" and not backend.ifname:
                raise ConfigError(f"{what}: the tap backend needs ifname=NAME")
        elif kind == "none":
            continue
        else:
            raise ConfigError(f"{what}: unknown -net type {kind!r} (known: nic, user, tap)")
    if redirs:
        from vmm.net.slirp import parse_redir
        if backend is None or backend.backend != "user":
            raise ConfigError("-redir needs a user-mode network (-net user)")
        for r in redirs:
            fwd = parse_redir(r)
            backend.hostfwd.append(f"{fwd.proto}::{fwd.host_port}-{fwd.guest_addr or ''}:"
                                   f"{fwd.guest_port}")
    if card is None and backend is None:
        return None
    if card is None:
        raise ConfigError(f"-net {backend.backend}: no card to connect it to (add -net nic,"
                          f"model=rtl8139)")
    if backend is None:
        raise ConfigError("-net nic: no backend for the card (add -net user or -net tap,"
                          "ifname=NAME)")
    backend.model = card.get("model", DEFAULT_MODEL)
    backend.mac = card.get("mac")
    return backend


def device_specs(nics, pci_id, pcap=None, first_index=0):
    """The card and NIC_BRIDGE DeviceSpecs for each NicConfig (ids nic0/net0, nic1/net1 ...)."""
    from vmm.config import parse_vm_config
    parts = []
    for i, nic in enumerate(nics, start=first_index):
        mac = f"<mac>{escape(format_mac(parse_mac(nic.mac)))}</mac>" if nic.mac else ""
        cplus = "<cplus>on</cplus>" if nic.cplus else ""
        parts.append(f'<device class="{MODELS[nic.model]}" id="nic{i}"><bus>{escape(pci_id)}'
                     f'</bus>{mac}{cplus}</device>')
        opts = [f"<backend>{nic.backend}</backend>"]
        opts += [f"<hostfwd>{escape(h)}</hostfwd>" for h in nic.hostfwd]
        if nic.restrict:
            opts.append("<restrict>on</restrict>")
        if nic.net:
            opts.append(f"<net>{escape(nic.net)}</net>")
        if nic.ifname:
            opts.append(f"<ifname>{escape(nic.ifname)}</ifname>")
        if pcap:
            opts.append(f"<pcap>{escape(pcap)}</pcap>")
        parts.append(f'<device class="NIC_BRIDGE" id="net{i}"><frontend tag="nic{i}"/>'
                     f'{"".join(opts)}</device>')
    xml = f"<vm><devices>{''.join(parts)}</devices></vm>".encode()
    return parse_vm_config(xml, "<command line>").devices


def add_to_config(cfg, nic_specs=(), nets=(), redirs=(), pcap=None):
    """Add the command line's cards and backends to a parsed VMConfig; --pcap also captures
    the cards the XML already connects."""
    nics = [parse_nic(s) for s in nic_specs]
    legacy = parse_legacy(nets, redirs)
    if legacy is not None:
        nics.insert(0, legacy)
    if pcap:
        for spec in cfg.devices:
            if spec.class_name.upper() == "NIC_BRIDGE" and spec.value("pcap") is None:
                spec.children.append(DeviceSpec("pcap", {}, pcap, [], spec.line, spec.source))
    if not nics:
        if pcap and not any(s.class_name.upper() == "NIC_BRIDGE" for s in cfg.devices):
            raise ConfigError(f"--pcap {pcap}: the VM has no network card to capture")
        return
    pci = [s.id for s in cfg.devices if s.class_name.upper() == "PCI"]
    if not pci:
        raise ConfigError("a network card needs a PCI bus, and the VM's configuration has no "
                          "PCI device")
    taken = {s.id for s in cfg.devices}
    first = 0
    while f"nic{first}" in taken or f"net{first}" in taken:
        first += 1
    cfg.devices.extend(device_specs(nics, pci[0], pcap, first))
