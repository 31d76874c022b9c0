"""NIC_BRIDGE: connects a network card to the host, as Palacios' NIC_BRIDGE does: the card is
named by `<frontend tag="...">`; the backend and its options are children.

    <device class="NIC_BRIDGE" id="net0">
      <frontend tag="nic0"/>
      <backend>user</backend>                      user (libslirp, default) or tap
      <hostfwd>tcp:127.0.0.1:8080-:80</hostfwd>    user: host forwards (repeatable)
      <restrict>on</restrict>                      user: no way out but the forwards
      <net>10.0.2.0/24</net>                       user: the guest's subnet
      <ifname>tap0</ifname>                        tap: an existing TAP interface
      <pcap>net0.pcap</pcap>                       every frame of the card, for tcpdump -r
    </device>

The backend starts when the device is attached (sockets bound, TAP opened), so a port in use or
a missing interface is a one-line error before the guest runs; it becomes an input source of
the run loop.
"""
from v3tools.errors import ConfigError
from vmm.devices import register
from vmm.devices.base import Device
from vmm.net import Port, connect_card

BACKENDS = ("user", "tap")


def _on_off(spec, name):
    v = (spec.value(name) or "off").strip().lower()
    if v in ("on", "yes", "1", "true"):
        return True
    if v in ("off", "no", "0", "false"):
        return False
    raise ConfigError(f"{spec.where()}: <{name}> must be on or off, got {v!r}")


@register("NIC_BRIDGE")
class NicBridge(Device):
    def __init__(self, dev_id, frontend, backend, pcap=None):
        super().__init__(dev_id)
        self.frontend = frontend
        self.backend = backend
        self.pcap_path = pcap
        self.pcap = None
        self.port = None

    @classmethod
    def from_spec(cls, spec, ctx):
        fe = spec.child("frontend")
        tag = fe.attrs.get("tag") if fe is not None else None
        if not tag:
            raise ConfigError(f"{spec.where()}: NIC_BRIDGE '{spec.id}' needs "
                              f"<frontend tag=\"CARD-ID\"/> naming its network card")
        kind = (spec.value("backend") or "user").strip().lower()
        if kind not in BACKENDS:
            raise ConfigError(f"{spec.where()}: NIC_BRIDGE '{spec.id}': unknown backend "
                              f"{kind!r} (known: {', '.join(BACKENDS)})")
        if kind == "user":
            from vmm.net.slirp import SlirpBackend, parse_hostfwd
            fwds = [parse_hostfwd(h.text.strip()) for h in spec.all("hostfwd")]
            backend = SlirpBackend(net=spec.value("net") or "10.0.2.0/24",
                                   restrict=_on_off(spec, "restrict"), hostfwds=fwds,
                                   name=f"{spec.id} (user)")
        else:
            from vmm.net.tap import TapBackend
            ifname = spec.value("ifname")
            if not ifname:
                raise ConfigError(f"{spec.where()}: NIC_BRIDGE '{spec.id}': the tap backend "
                                  f"needs <ifname>")
            for opt in ("hostfwd", "net", "restrict"):
                if spec.value(opt) is not None:
                    raise ConfigError(f"{spec.where()}: NIC_BRIDGE '{spec.id}': <{opt}> is a "
                                      f"user-mode option; the tap backend does not take it")
            backend = TapBackend(ifname, name=f"{spec.id} (tap {ifname})")
        return cls(spec.id, tag, backend, spec.value("pcap"))

    def attach(self, ctx):
        if self.pcap_path:
            from vmm.net.pcap import open_shared
            self.pcap = open_shared(ctx, self.pcap_path)
        self.port = Port(self.backend, self.pcap)
        connect_card(ctx, self.frontend, self.port, self.id)
        self.backend.open(ctx)

    def close(self):
        self.backend.close()
        if self.pcap is not None:
            self.pcap.users -= 1
            if self.pcap.users <= 0:
                self.pcap.close()
