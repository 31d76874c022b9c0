"""i440FX: the 82441FX PCI and Memory Controller (PMC) as host bridge 00:00.0.

Palacios registers it as vendor 0x8086 device 0x1237, revision 2, class 0x060000 (host bridge)
with SMRAM (0x72) = 0x02. Its configuration registers (Intel 82441FX datasheet, section 3.2)
are stored so firmware and Linux can program them, but they have no effect: DRAM is whatever
the VMM gives the guest, and the PAM registers (0x59-0x5F) do not switch shadowing because the
BIOS areas 0xC0000-0xFFFFF are plain RAM in this VMM. SMRAM is stored; there is no SMM.

    <device class="i440FX" id="northbridge"><bus>pci0</bus></device>
"""
from vmm.devices import register
from vmm.devices.base import Device
from vmm.devices.pci import PciConfig, bus_option, find_pci_bus

VENDOR_INTEL = 0x8086
DEVICE_82441FX = 0x1237
CLASS_HOST_BRIDGE = 0x060000

PMCCFG = 0x50               # PMC configuration (2 bytes)
DETURBO = 0x52              # deturbo counter control
DBC = 0x53                  # DRAM buffer control
AXC = 0x54                  # auxiliary control
DRAMR = 0x55                # DRAM row type (2 bytes)
DRAMC = 0x57                # DRAM control
DRAMT = 0x58                # DRAM timing
PAM0 = 0x59                 # programmable attribute map 0-6 (0x59-0x5F)
DRB0 = 0x60                 # DRAM row boundaries 0-7 (0x60-0x67)
FDHC = 0x68                 # fixed DRAM hole control
MTT = 0x70                  # multi-transaction timer
CLT = 0x71                  # CPU latency timer
SMRAM = 0x72                # system management RAM control
ERRCMD = 0x90               # error command
ERRSTS = 0x91               # error status (write 1 to clear)
TRC = 0x93                  # turbo reset control

SMRAM_DEFAULT = 0x02        # C_BASE_SEG = 010b: SMRAM at 0xA0000 (Palacios sets the same)


@register("i440FX")
class I440FX(Device):
    def __init__(self, dev_id, bus_id):
        super().__init__(dev_id)
        self.bus_id = bus_id
        self.config = PciConfig(VENDOR_INTEL, DEVICE_82441FX, CLASS_HOST_BRIDGE, revision=0x02,
                                name=f"{dev_id} (i440FX)", command=0x0006, status=0x0280)
        c = self.config
        c.declare(PMCCFG, 2)
        c.declare(DETURBO, 1, 0x80)
        c.declare(DBC, 1, 0x80)
        c.declare(AXC, 1)
        c.declare(DRAMR, 2)
        c.declare(DRAMC, 1, 0x01)
        c.declare(DRAMT, 1, 0x10)
        for i in range(7):
            c.declare(PAM0 + i, 1)
        for i in range(8):
            c.declare(DRB0 + i, 1, 0x01)
        c.declare(FDHC, 1)
        c.declare(MTT, 1, 0x20)
        c.declare(CLT, 1, 0x10)
        c.declare(SMRAM, 1, SMRAM_DEFAULT)
        c.declare(ERRCMD, 1)
        c.declare(ERRSTS, 1, mask=0, w1c=0xFF)
        c.declare(TRC, 1)

    @classmethod
    def from_spec(cls, spec, ctx):
        return cls(spec.id, bus_option(spec, "i440FX"))

    def attach(self, ctx):
        pci = find_pci_bus(ctx, self.bus_id, self)
        pci.register_function(0, 0, 0, self.config)

    def reset(self):
        self.config.reset()

    def pam(self, index):
        """PAM register `index` (0-6) as last written (shadowing is not modelled)."""
        return self.config.read(PAM0 + index, 1)
