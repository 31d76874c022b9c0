"""FILEDISK: a block backend serving a host file.

    <device class="FILEDISK" id="HD0">
      <path>disk.img</path>                     <!-- relative to the current directory -->
      <writable>1</writable>                    <!-- optional; Palacios also accepts "writeable" -->
      <frontend tag="ide"> <type>HD</type> <bus_num>0</bus_num> <drive_num>0</drive_num> </frontend>
    </device>

The file is opened read-only unless `writable` (or `writeable`) starts with "1", as in Palacios'
filedisk.c; guest writes then go straight to the file (with `v3 run -snapshot` to a temporary
overlay instead, leaving the file untouched). A guest write to a read-only FILEDISK
stops the VM (MediumError) rather than being dropped.
"""
from v3tools.errors import ConfigError, V3Error
from vmm.devices import register
from vmm.devices.base import Device
from vmm.devices.ide import connect_backend, parse_frontend
from vmm.media import FileMedium


@register("FILEDISK")
class FileDisk(Device):
    def __init__(self, dev_id, medium, frontend):
        super().__init__(dev_id)
        self.medium, self.frontend = medium, frontend

    @classmethod
    def from_spec(cls, spec, ctx):
        owner = f"FILEDISK '{spec.id}'"
        path = spec.value("path")
        if not path:
            raise ConfigError(f"{spec.where()}: {owner} has no <path>")
        writable = any((spec.value(name) or "").strip().startswith("1")
                       for name in ("writable", "writeable"))
        frontend = parse_frontend(spec, owner)
        try:
            medium = FileMedium(path, frontend.sector_size, writable=writable,
                                snapshot=getattr(ctx, "disk_snapshot", False))
        except V3Error as exc:
            raise ConfigError(f"{spec.where()}: {owner}: {exc}") from None
        return cls(spec.id, medium, frontend)

    def attach(self, ctx):
        connect_backend(ctx, self.id, self.frontend, self.medium)
