"""Configuration flows from the XML into the VM here, and only here.

`parse_vm_config(xml_bytes, source)` reads a Palacios VM description (the XML embedded in a guest
image) into a `VMConfig`. Devices get `DeviceSpec` trees: plain Python objects with Palacios'
`v3_cfg_val` semantics (a value is an attribute or a child element's text; both is an error).
"""
import re
from dataclasses import dataclass, field

from lxml import etree

from v3tools.errors import ConfigError


class DeviceSpec:
    """A plain copy of one XML element: tag, attributes, text, children, source line."""

    def __init__(self, tag, attrs, text, children, line, source=""):
        self.tag, self.attrs, self.text, self.children, self.line = tag, attrs, text, children, line
        self.source = source

    @classmethod
    def from_element(cls, el, source=""):
        kids = [cls.from_element(c, source) for c in el if isinstance(c.tag, str)]
        return cls(el.tag, dict(el.attrib), (el.text or "").strip(), kids, el.sourceline, source)

    @property
    def id(self):
        return self.attrs.get("id") or self.value("id") or ""

    @property
    def class_name(self):
        return self.attrs.get("class") or ""

    def where(self):
        return f"{self.source}:{self.line}" if self.source else f"line {self.line}"

    def child(self, tag):
        for c in self.children:
            if c.tag == tag:
                return c
        return None

    def all(self, tag):
        return [c for c in self.children if c.tag == tag]

    def value(self, name, default=None):
        """v3_cfg_val: attribute `name` or the text of child `<name>`; both is an error."""
        attr = self.attrs.get(name)
        kid = self.child(name)
        if attr is not None and kid is not None:
            raise ConfigError(f"{self.where()}: <{self.tag}> gives '{name}' both as an attribute "
                              f"and as a child element")
        if attr is not None:
            return attr
        if kid is not None:
            return kid.text
        return default

    def int_value(self, name, default=None):
        v = self.value(name)
        if v is None or v == "":
            return default
        try:
            return int(v, 0)
        except ValueError:
            raise ConfigError(f"{self.where()}: <{self.tag}> option '{name}' is not a number: {v!r}")


@dataclass
class VMConfig:
    memory_mb: int = 256
    cores: int = 1
    schedule_hz: int = 100
    telemetry: bool = False
    memmap: list = field(default_factory=list)      # (start, end, host_addr) tuples
    files: dict = field(default_factory=dict)       # id -> filename (as in the XML)
    devices: list = field(default_factory=list)     # DeviceSpec in document order
    ignored: list = field(default_factory=list)     # unknown top-level blocks (debug note)
    multiboot: str = None                           # <multiboot enable="y" file_id=ID>: ID
    name: str = ""
    root: DeviceSpec = None


KNOWN_BLOCKS = {"memory", "cores", "schedule_hz", "telemetry", "memmap", "files", "devices",
                "name", "paging", "shadow_paging", "mem_layout", "extensions", "perftune",
                "vm_class", "scheduler", "multiboot"}


def _parser():
    """Internal entities are expanded (libxml2 bounds their amplification and nesting);
    external ones (SYSTEM/PUBLIC) are never loaded, from the network or from a file."""
    return etree.XMLParser(remove_comments=True, resolve_entities="internal", no_network=True,
                           load_dtd=False, huge_tree=False)


def parse_vm_config(xml, source="config.xml"):
    try:
        root = etree.fromstring(xml, _parser())
    except etree.XMLSyntaxError as exc:
        line, col = exc.position
        msg = re.sub(r", line \d+, column \d+$", "", exc.msg or "")
        if "amplification" in msg or "entity reference loop" in msg or "Excessive depth" in msg:
            msg = f"{msg.split(',')[0]} (refused as an entity bomb)"
        elif msg.startswith("Entity") and msg.endswith("not defined") and \
                re.search(rb"<!ENTITY[^>]*(SYSTEM|PUBLIC)", bytes(xml)):
            msg += " (external entities are never loaded)"
        raise ConfigError(f"{source}:{line}:{col}: malformed XML: {msg}")
    spec = DeviceSpec.from_element(root, source)
    cfg = VMConfig(root=spec, name=spec.attrs.get("name", ""))
    mem = spec.child("memory")
    if mem is not None:
        try:
            cfg.memory_mb = int(mem.text, 0)
        except ValueError:
            raise ConfigError(f"{mem.where()}: <memory> must be a size in MB, got {mem.text!r}")
        if cfg.memory_mb <= 0:
            raise ConfigError(f"{mem.where()}: <memory> must be positive")
    cores = spec.child("cores")
    if cores is not None:
        cfg.cores = cores.int_value("count", 1)
    hz = spec.child("schedule_hz")
    if hz is not None and hz.text:
        try:
            cfg.schedule_hz = int(hz.text, 0)
        except ValueError:
            raise ConfigError(f"{hz.where()}: <schedule_hz> must be a number, got {hz.text!r}")
    tel = spec.child("telemetry")
    if tel is not None:
        cfg.telemetry = tel.text.strip().lower() in ("enable", "enabled", "1", "true", "yes")
    mm = spec.child("memmap")
    if mm is not None:
        for region in mm.all("region"):
            cfg.memmap.append((region.int_value("start", 0), region.int_value("end", 0),
                               region.int_value("host_addr", 0)))
    files = spec.child("files")
    if files is not None:
        for f in files.all("file"):
            cfg.files[f.value("id")] = f.value("filename")
    mb = spec.child("multiboot")
    if mb is not None and (mb.value("enable") or "").strip().lower() == "y":
        # Palacios' spelling: the kernel is one of <files>, booted instead of the BIOS's
        # boot device; any other enable value leaves the block off, as Palacios does
        cfg.multiboot = mb.value("file_id")
        if not cfg.multiboot:
            raise ConfigError(f"{mb.where()}: <multiboot enable=\"y\"> needs file_id (the id "
                              f"of the kernel in <files>)")
    devs = spec.child("devices")
    if devs is not None:
        for d in devs.all("device"):
            if not d.class_name:
                raise ConfigError(f"{d.where()}: <device> without a class attribute")
            cfg.devices.append(d)
    for c in spec.children:
        if c.tag not in KNOWN_BLOCKS:
            cfg.ignored.append(c.tag)
    return cfg
