"""Assembling a board: the devices named by the configuration, then the ignored legacy ports,
device reset, the firmware (the built-in BIOS with its MP/ACPI tables, or --bios), and a direct
kernel boot (--kernel) or, for a firmware boot, the boot loader hand-off
(vmm/boot/loaded.py). Configuration reaches devices here, through each class's from_spec."""
from v3tools.errors import ConfigError

NOT_YET_AVAILABLE = {"APIC"}


def add_devices(machine, specs, omit=()):
    from vmm import devices
    omit = {c.upper() for c in omit}
    for spec in specs:
        name = spec.class_name.upper()
        if name in omit:
            machine.log.info(f"leaving out device {spec.id or '?'} of class {spec.class_name} (--omit)")
            continue
        cls = devices.lookup(spec.class_name)
        if cls is None:
            if name in NOT_YET_AVAILABLE:
                raise ConfigError(
                    f"{spec.where()}: device class {spec.class_name} is not available "
                    f"(Palacios' old name: use LAPIC and IOAPIC); pass --omit "
                    f"{spec.class_name} to leave it out")
            raise ConfigError(f"{spec.where()}: unknown device class '{spec.class_name}'; "
                              f"known classes: {', '.join(devices.known_classes())}")
        dev = cls.from_spec(spec, machine.ctx)
        machine.ctx.add_device(dev)
        machine.vmmlog.component("config").debug(f"device {dev.id} ({cls.CLASS_NAME}) attached")


def _fast_acknowledge(machine):
    """With the engine's INTR input and the APIC fast paths built, the engine's acknowledge
    cycle for a LAPIC vector runs in C (vmm/devices/_apic.c), the rest in vmm/cpu/intr.py."""
    try:
        from vmm.devices import _apic
    except ImportError:
        return
    if machine._intr is not None:
        machine._intr.use_fast_ack(_apic.AckFast(machine._intr, machine.ctx.lapic, machine.ctx,
                                                 machine.cpu.delivery.note_external))


def finish_board(machine):
    """After all devices: the ignored legacy ports, device reset, the BIOS."""
    try:
        from vmm.ignored_ports import attach_ignored_ports
    except ImportError:
        attach_ignored_ports = None
    if attach_ignored_ports is not None:
        attach_ignored_ports(machine.ctx, machine.iolog)
    for dev in machine.ctx.devices.values():
        dev.reset()
    if machine.ctx.lapic is not None:
        machine.cpu.cpuid.set_apic(True)
        _fast_acknowledge(machine)
    machine.cpu.msrs.lapic = machine.ctx.lapic
    if machine.firmware is not None:
        tabled = [d.id for d in machine.ctx.devices.values() if hasattr(d, "build_tables")]
        if tabled:
            machine.log.info(f"--bios: devices {', '.join(tabled)} publish no tables; the "
                          f"firmware builds its own MP/ACPI tables, or none")
        # Someone else's BIOS (e.g. SeaBIOS): its last 128 KiB sit below 1 MiB as on a PC.
        low = machine.firmware[-0x20000:]
        machine.uc.mem_write(0x100000 - len(low), low)
    else:
        from vmm.bios import Bios, BiosOptions
        machine.bios = Bios(machine.ctx, BiosOptions(machine.bios_console_serial))
        rom = machine.bios.rom()
        machine.uc.mem_write(0x100000 - len(rom), rom)
        machine.cpu.delivery.bios = machine.bios
        _install_firmware_tables(machine)
    machine.cpu.reset()
    if machine.direct_boot is not None:
        _start_direct_boot(machine)
    elif machine.host_decompress:
        from vmm.boot import loaded
        machine.boot_handoff = loaded.arm(machine)


def _start_direct_boot(machine):
    """--kernel: the kernel, initrd, command line and zero page in memory, the CPU at the
    kernel's 32-bit entry (no POST: the BIOS ROM and its firmware tables are in place)."""
    from vmm.bios.int15 import memory_map
    from vmm.boot import linux
    boot = machine.direct_boot
    rsdp = next((d.rsdp for d in machine.ctx.devices.values() if getattr(d, "rsdp", None)),
                None)
    if boot.multiboot is not None and machine.bios is not None:
        # a multiboot kernel may rely on what POST sets up (BDA, PICs, PCI, tables)
        machine.bios.post.run()
    linux.load(boot, machine.ctx.mem.write, memory_map(machine.memory_size), rsdp,
               machine.ctx.mem.read)
    if boot.multiboot is not None:
        from vmm.boot import multiboot
        multiboot.enter(machine.cpu, boot.multiboot.entry, boot.multiboot.version)
    elif boot.elf is not None:
        from vmm.boot import pvh
        pvh.enter(machine.cpu, boot.elf.entry)
    else:
        linux.enter(machine.cpu)
    if boot.elf is not None and boot.kernel is not None:
        # the host did the guest's decompression: say so where the user looks
        machine.log.info(f"--kernel: {boot.kernel.path}'s payload decompressed on the host "
                      f"({boot.elf.compression}) and entered through its PVH note at "
                      f"{boot.elf.entry:#x} (--no-host-decompress runs the kernel's own "
                      f"decompressor instead)")
    elif boot.note:
        machine.log.info(f"--kernel: not decompressed on the host: {boot.note}; the kernel "
                      f"decompresses itself")
    machine.log.debug(f"direct boot: {boot.describe()}")


def _install_firmware_tables(machine):
    """MP and ACPI tables from the devices that publish them (MPTABLE, ACPI), in the
    built-in BIOS's table area (vmm/tables). Another firmware (--bios) builds its own."""
    from vmm.bios.rom import ROM_BASE, TABLES_AREA, TABLES_AREA_SIZE
    from vmm.tables import TableArea, build_tables
    machine.ctx.cpuid = machine.cpu.cpuid
    area = build_tables(machine.ctx, TableArea(ROM_BASE + TABLES_AREA, TABLES_AREA_SIZE))
    if area.used:
        machine.ctx.mem.write(area.base, bytes(area.data[:area.used]))
        log = machine.vmmlog.component("config")
        if log.on:
            for addr, name, length in area.placed:
                log.debug(f"firmware table {name}: {length} bytes at {addr:#x}")
    machine.ctx.firmware_tables = area
