"""RAMDISK: a block backend serving a file of the guest image from memory.

    <device class="RAMDISK" id="CD0">
      <file>boot-cd</file>                      <!-- an id from the <files> list -->
      <frontend tag="ide">                      <!-- the IDE device it plugs into -->
        <model>V3Vee CDROM</model> <type>CDROM</type> <bus_num>0</bus_num> <drive_num>0</drive_num>
      </frontend>
    </device>

As in Palacios, guest writes to a RAMDISK change only the in-memory copy. CD-ROMs are read-only
(2048-byte sectors); disks (type HD or DISK) are writable (512-byte sectors). The drive is also
recorded in `ctx.drives` so the BIOS can find and boot it.
"""
from v3tools.errors import ConfigError
from vmm.devices import register
from vmm.devices.base import Device
from vmm.devices.ide import connect_backend, parse_frontend
from vmm.media import BytesMedium


@register("RAMDISK")
class RamDisk(Device):
    def __init__(self, dev_id, file_id, data, frontend):
        super().__init__(dev_id)
        self.file_id, self.frontend = file_id, frontend
        self.medium = BytesMedium(data, frontend.sector_size, name=f"RAMDISK {dev_id} ({file_id})",
                                  writable=frontend.kind == "disk")

    @classmethod
    def from_spec(cls, spec, ctx):
        owner = f"RAMDISK '{spec.id}'"
        file_id = spec.value("file")
        if not file_id:
            raise ConfigError(f"{spec.where()}: {owner} has no <file> naming a file of the image")
        data = ctx.files.get(file_id)
        if data is None:
            raise ConfigError(f"{spec.where()}: {owner} uses file '{file_id}', which the image's "
                              f"<files> list does not contain")
        if len(data) == 0:
            raise ConfigError(f"{spec.where()}: {owner}: file '{file_id}' is empty")
        return cls(spec.id, file_id, data, parse_frontend(spec, owner))

    def attach(self, ctx):
        connect_backend(ctx, self.id, self.frontend, self.medium)
