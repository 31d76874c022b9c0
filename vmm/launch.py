"""`v3 run` as a library call: decide what to boot, build the machine, run it.

What can be booted:
* a Palacios guest image (`.dat`, or the `initrd.img` of an ISO made by `v3 isoimage --guest`):
  its hashes are verified, its XML describes the VM (memory, devices in document order, files);
* any other bootable medium (`--cdrom`, `--hda`, `--fda`, or an IMAGE that is an ISO, disk or
  floppy image): a standard PC (the devices of Palacios' default.xml that exist so far) with the
  medium attached.
"""
import errno
import math
import os
from dataclasses import dataclass, field
from xml.sax.saxutils import escape

from v3tools.errors import ConfigError, V3Error, VMStop
from v3tools.paths import refuse_overwrite
from vmm.config import parse_vm_config

DEFAULT_IMAGE = "image.iso"
MAX_TIMEOUT_S = 1_000_000         # about 11.6 days (host waits are poll() calls in milliseconds)
MAX_MEMORY_MB = 3584              # below the 32-bit PCI hole
FLOPPY_SIZES = {160 * 1024, 180 * 1024, 320 * 1024, 360 * 1024, 720 * 1024, 1200 * 1024,
                1440 * 1024, 2880 * 1024}


@dataclass
class RunOptions:
    image: str = None
    serial: str = "stdio"             # file:PATH | stdio | null
    memory_mb: int = 1024             # the host machine's memory (-m)
    cdrom: str = None
    hda: str = None
    fda: str = None
    boot: str = None                  # d | c | a
    timeout: float = None
    until: str = None
    screen: str = None
    bios_console: str = None          # "serial"
    debug: tuple = ()
    telemetry: bool = False
    telemetry_json: str = None
    log: str = None
    io_policy: str = "stop"
    omit: tuple = ()
    smp: int = 1
    bios: str = None                  # a firmware image instead of the built-in BIOS
    kernel: str = None                # direct Linux boot: bzImage, initrd, command line
    initrd: str = None
    append: str = None
    savevm: str = None                # write a VM snapshot here once --until's text appears
    loadvm: str = None                # start from this VM snapshot instead of power-on
    nic: tuple = ()                   # --nic user|tap,... (QEMU's form)
    net: tuple = ()                   # -net nic,... / -net user|tap,... (the legacy pair)
    redir: tuple = ()                 # -redir tcp:PORT:GUESTADDR:GUESTPORT
    pcap: str = None                  # capture every frame of every card to this file
    gdb: str = None                   # tcp:HOST:PORT | tcp::PORT | unix:PATH: a gdb stub there
    start_stopped: bool = False       # -S: hold the CPU until a debugger or the monitor resumes it
    monitor: str = None               # unix:PATH,server | tcp:HOST:PORT,server
    snapshot: bool = False            # disk writes go to a temporary overlay, images untouched
    plain_cdrom: bool = False         # a v3 isoimage ISO as --cdrom boots as a plain CD
    hda_readonly: bool = False        # -drive ...,readonly=on: a guest write to --hda fail-stops
    name: str = None                  # the VM's name (QEMU's -name), for the log
    host_decompress: bool = True      # bzImage: decompress on the host (--kernel: enter via PVH;
                                      # firmware boots: at the boot loader hand-off)
    status: bool = False              # a live status line on stderr (a terminal) when the
                                      # serial console is not there: the CLI's default
                                      # (--no-status: off); library callers ask for it


@dataclass
class Plan:
    """What will be booted: a VM config plus the media and the files of the guest image."""
    config: object
    files: dict = field(default_factory=dict)
    floppy: str = None
    description: str = ""
    direct_boot: object = None        # vmm.boot.linux.LinuxBoot for --kernel
    note: str = None                  # one line for the log about what was chosen


def _need_medium(shown, path):
    """A medium must be a file (one line naming it otherwise)."""
    if os.path.isdir(path):
        raise V3Error(f"{shown}: is a directory")
    if not os.path.isfile(path):
        raise V3Error(f"{shown}: no such file")


def _kind_of_medium(path):
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            head = f.read(8)
            f.seek(16 * 2048 + 1)
            cd = f.read(5) == b"CD001"
    except OSError as exc:
        raise V3Error(f"{path}: cannot read: {exc.strerror}")
    if head.startswith(b"v3vee\0"):
        return "guest-image"
    if head.lstrip()[:1] == b"<" or head.startswith(b"\xef\xbb\xbf<"):
        raise V3Error(f"{path} looks like a Palacios XML configuration, not a bootable image: "
                      f"build it first (v3 build-vm {path} -o image.dat, then v3 run image.dat)")
    if cd:
        return "cdrom"
    if size in FLOPPY_SIZES:
        return "floppy"
    return "disk"


def standard_pc_xml(memory_mb, cdrom=None, hda=None, hda_writable=True):
    """The devices of Palacios' default.xml (those that exist so far) as a VM description."""
    media = []
    if hda:
        media.append(f"""  <device class="FILEDISK" id="hda">
   <path>{escape(os.path.abspath(hda))}</path><writable>{int(hda_writable)}</writable>
   <frontend tag="ide0"><model>V3Vee ATA disk</model><type>DISK</type><bus_num>0</bus_num><drive_num>0</drive_num></frontend>
  </device>""")
    if cdrom:
        media.append(f"""  <device class="FILEDISK" id="cdrom">
   <path>{escape(os.path.abspath(cdrom))}</path>
   <frontend tag="ide0"><model>V3Vee CDROM</model><type>CDROM</type><bus_num>1</bus_num><drive_num>0</drive_num></frontend>
  </device>""")
    return f"""<vm class="PC">
 <memory>{memory_mb}</memory>
 <cores count="1"/>
 <devices>
  <device class="8259A" id="PIC"/>
  <device class="8254_PIT" id="PIT"/>
  <device class="MPTABLE" id="mptable"/>
  <device class="LAPIC" id="apic"/>
  <device class="IOAPIC" id="ioapic"><apic>apic</apic></device>
  <device class="HPET" id="hpet"/>
  <device class="ACPI" id="acpi"/>
  <device class="KEYBOARD" id="keyboard"/>
  <device class="NVRAM" id="nvram"/>
  <device class="PCI" id="pci0"/>
  <device class="i440FX" id="northbridge"><bus>pci0</bus></device>
  <device class="PIIX3" id="southbridge"><bus>pci0</bus></device>
  <device class="IDE" id="ide0"><bus>pci0</bus><controller>southbridge</controller></device>
{chr(10).join(media)}
  <device class="SERIAL" id="serial"/>
  <device class="BOCHS_DEBUG" id="bochs_debug"/>
  <device class="OS_DEBUG" id="os_debug"/>
 </devices>
</vm>"""


def plan(opts):
    """Work out what to boot from the options (no machine is built yet)."""
    p = _plan_media(opts)
    if opts.nic or opts.net or opts.redir or opts.pcap:
        from vmm.net.options import add_to_config
        if opts.pcap:
            _check_output_path(f"--pcap {opts.pcap}", opts.pcap)
        add_to_config(p.config, opts.nic, opts.net, opts.redir, opts.pcap)
    return p


def _plan_media(opts):
    if opts.kernel is not None or opts.initrd is not None or opts.append is not None:
        return _kernel_plan(opts)
    image = opts.image
    if image is None and not (opts.cdrom or opts.hda or opts.fda):
        image = DEFAULT_IMAGE
        if not os.path.exists(image):
            raise V3Error(f"nothing to boot: no IMAGE given and there is no ./{DEFAULT_IMAGE} "
                          f"(give an image, --cdrom, --hda or --fda)")
    cdrom, hda, fda = opts.cdrom, opts.hda, opts.fda
    for what, path in (("--cdrom", cdrom), ("--hda", hda), ("--fda", fda)):
        if path is not None:
            _need_medium(f"{what} {path}", path)
    if image is None and cdrom and not (hda or fda) and not opts.plain_cdrom:
        from isoimage import is_hosted_iso
        if _kind_of_medium(cdrom) == "cdrom" and is_hosted_iso(cdrom):
            # Kitten's and Palacios' own way: the ISO boots the host, which runs the guest
            # image the ISO carries. Here the VMM is the host: run that guest.
            p = _guest_plan(cdrom, open_from="iso", opts=opts, via_cdrom=True)
            p.note = (f"-cdrom {cdrom} was made by v3 isoimage: running the guest image it "
                      f"carries (/initrd.img), as Kitten and Palacios would "
                      f"(--plain-cdrom boots the CD itself)")
            return p
    if image is not None:
        _need_medium(image, image)
        kind = _kind_of_medium(image)
        if kind == "guest-image":
            return _guest_plan(image, open_from="file", opts=opts)
        if kind == "cdrom":
            from isoimage import is_hosted_iso
            if is_hosted_iso(image):
                return _guest_plan(image, open_from="iso", opts=opts)
            cdrom = image
        elif kind == "floppy":
            fda = image
        else:
            hda = image
    cfg = parse_vm_config(standard_pc_xml(opts.memory_mb, cdrom, hda,
                                          hda_writable=not opts.hda_readonly).encode(),
                          "<standard PC>")
    what = ", ".join(f"{k} {v}" for k, v in (("cdrom", cdrom), ("hda", hda), ("fda", fda)) if v)
    return Plan(cfg, {}, fda, f"standard PC with {what}")


def _kernel_plan(opts):
    """--kernel [--initrd] [--append]: the standard PC (with any --cdrom/--hda/--fda) and the
    kernel entered directly, everything checked before anything starts."""
    from vmm.boot import linux
    if opts.kernel is None:
        raise V3Error(f"{'--initrd' if opts.initrd is not None else '--append'} needs --kernel")
    if opts.image is not None:
        raise V3Error(f"--kernel cannot be combined with IMAGE {opts.image} (use --cdrom, "
                      f"--hda or --fda to attach media)")
    if opts.bios is not None:
        raise V3Error("--kernel cannot be combined with --bios: the kernel is entered directly")
    # (--initrd is read by linux.prepare: for a multiboot kernel it is a module list)
    for what, path in (("--kernel", opts.kernel), ("--cdrom", opts.cdrom),
                       ("--hda", opts.hda), ("--fda", opts.fda)):
        if path is not None and not os.path.isfile(path):
            raise V3Error(f"{what} {path}: no such file")
    boot = linux.prepare(opts.kernel, opts.initrd, opts.append or "", opts.memory_mb << 20,
                         host_decompress=opts.host_decompress)
    cfg = parse_vm_config(standard_pc_xml(opts.memory_mb, opts.cdrom, opts.hda).encode(),
                          "<standard PC>")
    return Plan(cfg, {}, opts.fda, f"standard PC, direct boot of {opts.kernel}",
                direct_boot=boot)


def _guest_plan(path, open_from, opts, via_cdrom=False):
    from guest_creator.image import open_image, open_image_bytes
    if open_from == "iso":
        from isoimage import read_file_from_iso
        image = open_image_bytes(read_file_from_iso(path, "/initrd.img"), verify=True,
                                 name=f"{path}:/initrd.img")
    else:
        image = open_image(path, verify=True)
    with image:
        source = f"{image.name} (embedded XML)"
        cfg = parse_vm_config(image.xml, source)
        files = {}
        for entry in image.files:
            if entry.id is not None:
                files[entry.id] = image.read(entry)
    extra = [f"--{k}" for k in ("cdrom", "hda", "fda") if getattr(opts, k)
             and not (via_cdrom and k == "cdrom")]
    if extra:
        raise ConfigError(f"{source}: {', '.join(extra)} cannot be added to a guest image: its "
                          f"XML describes the VM's media (add a RAMDISK or FILEDISK device)")
    if cfg.memory_mb > opts.memory_mb:
        raise ConfigError(f"{source}: the guest wants {cfg.memory_mb} MB of memory but the "
                          f"machine has {opts.memory_mb} MB (-m {opts.memory_mb}); raise -m")
    if cfg.cores > 1 or opts.smp > 1:
        raise ConfigError(f"{source}: {max(cfg.cores, opts.smp)} cores requested; only one core "
                          f"is implemented so far")
    direct_boot = None
    if cfg.multiboot is not None:
        from vmm.boot import linux
        if cfg.multiboot not in files:
            raise ConfigError(f"{source}: <multiboot file_id=\"{cfg.multiboot}\">: no file "
                              f"with that id in <files>")
        name = cfg.files.get(cfg.multiboot) or cfg.multiboot
        direct_boot = linux.prepare_multiboot(
            files[cfg.multiboot], f"{source}: <multiboot> kernel {name}", name, "",
            opts.memory_mb << 20)
    return Plan(cfg, files, None, f"guest image {image.name}", direct_boot=direct_boot)


class SerialSink:
    """Where COM1 goes: a file (created or truncated, written as bytes arrive), stdout, nothing."""

    @staticmethod
    def check(spec):
        """Validate a --serial value without opening anything."""
        if spec.startswith("file:"):
            path = spec[5:]
            if not path:
                raise V3Error("--serial file: needs a path (file:serial.out)")
            _check_output_path(f"--serial {spec}", path)
        elif spec not in ("stdio", "null"):
            raise V3Error(f"--serial {spec}: expected file:PATH, stdio or null")

    def __init__(self, spec):
        import sys
        self.file = None
        self.stdin = False
        if spec.startswith("file:"):
            path = spec[5:]
            if not path:
                raise V3Error("--serial file: needs a path (file:serial.out)")
            try:
                self.file = open(path, "wb", buffering=0)
            except OSError as exc:
                raise V3Error(f"--serial {spec}: cannot open: {exc.strerror}")
        elif spec == "stdio":
            self.file = sys.stdout.buffer
            self.stdin = True
        elif spec != "null":
            raise V3Error(f"--serial {spec}: expected file:PATH, stdio or null")

    def write(self, data):
        if self.file is not None:
            self.file.write(data)

    def flush(self):
        if self.file is not None:
            self.file.flush()

    def close(self):
        import sys
        if self.file is not None and self.file is not sys.stdout.buffer:
            self.file.close()


def build_machine(p, opts, console, vmmlog):
    from vmm.machine import Machine
    from vmm.media import Drive, FileMedium
    m = Machine(memory_mb=p.config.memory_mb, log=vmmlog, console=console,
                io_policy=opts.io_policy,
                telemetry=bool(opts.telemetry or opts.telemetry_json or p.config.telemetry),
                bios_console_serial=(opts.bios_console == "serial"), firmware=opts.bios)
    m.ctx.files = p.files
    m.ctx.disk_snapshot = opts.snapshot
    if opts.boot:
        order = {"d": "cdrom", "c": "disk", "a": "floppy"}
        first = order[opts.boot]
        m.ctx.boot_order = [first] + [k for k in ("cdrom", "disk", "floppy") if k != first]
    for tag in p.config.ignored:
        vmmlog.component("config").debug(f"ignoring unknown configuration block <{tag}>")
    for start, end, host in p.config.memmap:
        # Palacios maps such regions onto host physical memory (the stock default.xml maps
        # the VGA window to the host's framebuffer). There is no host memory to hand out here.
        vmmlog.component("config").info(
            f"<memmap> region {start:#x}-{end:#x} -> host {host:#x}: there is no host physical "
            f"memory to map in this VMM; the region stays ordinary guest memory")
    m.add_devices(p.config.devices, omit=opts.omit)
    m.direct_boot = p.direct_boot
    m.host_decompress = opts.host_decompress
    com1 = m.ctx.io.find(0x3F8)
    if com1 is not None and "COM1" not in m.ctx.serial_ports:
        # Palacios' stock default.xml gives COM1's ports to GENERIC as PRINT_AND_IGNORE: the
        # guest's serial console then talks to nothing, and a Linux console waits on a
        # transmitter that never empties. Say so where the user will look.
        vmmlog.component("config").info(
            f"COM1 (0x3f8) belongs to {com1.owner}, not to a SERIAL device: the guest's serial "
            f"output will not reach --serial. Add <device class=\"SERIAL\" id=\"serial\"/> and "
            f"leave 0x3f8-0x3ff out of GENERIC (v3 init's config.xml does), or make that "
            f"GENERIC range PASSTHROUGH")
    if p.floppy:
        m.ctx.drives.append(Drive("floppy", FileMedium(p.floppy, 512, writable=True,
                                                       snapshot=opts.snapshot), 0, 0, "fda"))
    m.finish_board()
    return m


def run(opts, on_machine=None):
    """Boot what the options describe; returns (RunResult, machine). VMStop errors carry a
    `.diagnostic` with the CPU state and the last exits.

    Everything that can be checked is checked before a file is created: the options, the
    image and its configuration, the machine itself. Only then are the serial and log files
    opened (the log written while the machine was built is kept in memory until then)."""
    import io
    import sys
    from vmm.context import Console
    from vmm.log import VMMLog
    from vmm.terminal.host import HostConsole
    from vmm.terminal.signals import orderly_signals
    check_numbers(opts)
    check_omit(opts.omit)
    SerialSink.check(opts.serial)
    for option, path in (("--screen", opts.screen), ("--telemetry-json", opts.telemetry_json),
                         ("--log", opts.log)):
        if path:
            _check_output_path(f"{option} {path}", path)
    if opts.start_stopped and not (opts.gdb or opts.monitor):
        raise V3Error("-S holds the CPU until a debugger or the monitor lets it go: give -s, "
                      "--gdb or --monitor with it")
    refuse_overwrite(_outputs(opts), _inputs(opts))      # the options, before reading anything
    p = plan(opts)
    refuse_overwrite(_outputs(opts, p), _inputs(opts, p))  # with the guest image's own files
    _check_snapshot_options(opts)
    early_log = io.StringIO()
    vmmlog = VMMLog(early_log, opts.debug)
    console = Console(None)
    machine = build_machine(p, opts, console, vmmlog)
    logstream = sink = host = status = None

    def force_exit():                   # a second signal: restore the terminal, then go
        if status is not None:
            status.close()
        if host is not None:
            host.close()
    # The orderly handlers go in before the terminal turns raw: a SIGHUP or SIGTERM in between
    # would otherwise end the process by its default action and leave the terminal raw.
    with orderly_signals(machine, on_force_exit=force_exit):
        try:
            if opts.gdb or opts.monitor or opts.start_stopped:
                from vmm.debug import attach
                attach(machine, gdb=opts.gdb, monitor=opts.monitor,
                       start_stopped=opts.start_stopped)
            logstream = _open_log(opts.log) if opts.log else sys.stderr
            logstream.write(early_log.getvalue())
            vmmlog.stream = logstream
            from vmm import engine
            if not engine.info().patched:
                logstream.write(f"v3: warning: {engine.SLOW_WARNING}\n")
            sink = SerialSink(opts.serial)
            console.sink = sink
            vmmlog.component("run").debug(f"booting {p.description}"
                                          + (f" ({opts.name})" if opts.name else ""))
            if p.note:
                vmmlog.component("run").info(p.note)
            if on_machine is not None:
                on_machine(machine)
            if opts.loadvm:
                from vmm.debug import snapshot
                meta = snapshot.load(machine, opts.loadvm)
                vmmlog.component("run").info(f"restored {opts.loadvm}: the guest continues at "
                                             f"{meta['clock']['now_ns'] / 1e9:.3f} s of its time")
            if sink.stdin:
                host = HostConsole.attach(machine)
                if host is not None and host.keys is not None:
                    from vmm.debug.console import ConsoleMonitor
                    from vmm.debug.monitor import Monitor
                    if getattr(machine, "monitor", None) is None:
                        machine.monitor = Monitor(machine)
                    ConsoleMonitor(machine, host.keys, machine.monitor)
                # a person at a terminal: idle time passes in real time, not fast-forwarded
                machine.realtime_idle = host is not None and host.is_terminal
            status = _start_status(machine, opts, vmmlog)
            try:
                result = machine.run(timeout=opts.timeout, until=opts.until)
                if opts.savevm:
                    from vmm.debug import snapshot
                    snapshot.save(machine, opts.savevm)
                    result.reason += f"; saved the machine to {opts.savevm}"
            except VMStop as exc:
                if exc.diagnostic is None:
                    exc.diagnostic = machine.diagnostic(exc)
                if machine.debug is not None:
                    machine.debug.exit_status = exc.exit_status    # what gdb is told at the end
                raise
            return result, machine
        finally:
            if status is not None:
                status.close()              # erased before anything else (a diagnostic) is printed
                vmmlog.stream = logstream
            if host is not None:
                host.close()                # the terminal first: whatever follows is readable
            try:
                _finish(machine, opts)
            finally:
                machine.close()
                if sink is not None:
                    sink.close()
                if opts.log and logstream is not None:
                    logstream.close()


def _start_status(machine, opts, vmmlog):
    """The live status line (vmm/terminal/status.py) when stderr is a terminal and the serial
    console is not on it; the log (if on stderr) is then printed above the line."""
    import sys
    from vmm.terminal import status
    if not status.wanted(opts.serial, sys.stderr, opts.status):
        return None
    line = status.StatusLine(machine, sys.stderr)
    if not opts.log:
        vmmlog.stream = line.log_stream()
    machine.status = line
    return line.start()


def check_numbers(opts):
    """The numeric options, checked for library callers as the CLI checks them."""
    t = opts.timeout
    if t is not None and (isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t)
                          or not 0 < t <= MAX_TIMEOUT_S):
        raise V3Error(f"--timeout {t}: expected a number of seconds above 0 and at most {MAX_TIMEOUT_S}")
    m = opts.memory_mb
    if isinstance(m, bool) or not isinstance(m, int) or not 1 <= m <= MAX_MEMORY_MB:
        raise V3Error(f"-m {m}: expected the machine's memory in MB, a whole number from 1 to "
                      f"{MAX_MEMORY_MB}")


def _check_snapshot_options(opts):
    if opts.savevm:
        if not opts.until:
            raise V3Error("--savevm needs --until TEXT: the snapshot is taken when TEXT "
                          "appears on the serial port")
        _check_output_path(f"--savevm {opts.savevm}", opts.savevm)
    if opts.loadvm:
        from vmm.debug import snapshot
        snapshot.read_meta(opts.loadvm)           # a one-line error before any machine exists


def check_omit(classes):
    """--omit names device classes: ones that exist, or the Palacios ones not written yet."""
    from vmm import devices
    from vmm.board import NOT_YET_AVAILABLE
    known = {c.upper() for c in devices.known_classes()} | NOT_YET_AVAILABLE
    for name in classes:
        if name.upper() not in known:
            later = sorted(c for c in NOT_YET_AVAILABLE if devices.lookup(c) is None)
            raise V3Error(f"--omit {name}: unknown device class; known: "
                          f"{', '.join(devices.known_classes() + later)}")


def _outputs(opts, p=None):
    """The files a run writes, labelled as the user named them (a capture file named in the
    guest image's XML too; one file shared by every card counts once)."""
    serial = opts.serial[5:] if opts.serial.startswith("file:") else None
    found = [("--serial file:", serial), ("--screen", opts.screen),
             ("--telemetry-json", opts.telemetry_json), ("--log", opts.log),
             ("--savevm", opts.savevm), ("--pcap", opts.pcap)]
    captures = {opts.pcap}
    for spec in (p.config.devices if p is not None else ()):
        if spec.class_name.upper() == "NIC_BRIDGE" and spec.value("pcap") not in captures:
            captures.add(spec.value("pcap"))
            found.append((f"NIC_BRIDGE {spec.id or '?'} <pcap>", spec.value("pcap")))
    return found


def _inputs(opts, p=None):
    """The files a run reads (or writes as a guest's disk): media, firmware, FILEDISK paths."""
    image = opts.image
    if image is None and not (opts.cdrom or opts.hda or opts.fda or opts.kernel):
        image = DEFAULT_IMAGE
    found = [("IMAGE", image), ("--cdrom", opts.cdrom), ("--hda", opts.hda), ("--fda", opts.fda),
             ("--bios", opts.bios), ("--kernel", opts.kernel), ("--initrd", opts.initrd),
             ("--loadvm", opts.loadvm)]
    for spec in (p.config.devices if p is not None else ()):
        if spec.class_name.upper() == "FILEDISK" and spec.value("path"):
            found.append((f"FILEDISK {spec.id or '?'} <path>", spec.value("path")))
    return found


def _open_log(path):
    try:
        return open(path, "w")
    except OSError as exc:
        raise V3Error(f"--log {path}: cannot open: {exc.strerror}")


def _check_output_path(what, path):
    """An output file of the run must be creatable: its directory exists, it is not one.
    `what` names it in the error ("--screen FILE", "--serial file:PATH")."""
    parent = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise V3Error(f"{what}: is a directory")
    if not os.path.isdir(parent):
        raise V3Error(f"{what}: cannot open: {os.strerror(errno.ENOENT)}")


def _write_output(option, path, text):
    """Write a result file whole (temp file, then rename), or fail with one line."""
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except OSError as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise V3Error(f"{option} {path}: cannot write: {exc.strerror}")


def _finish(machine, opts):
    import json
    if opts.screen:
        from vmm.screen import dump_text_screen
        _write_output("--screen", opts.screen, dump_text_screen(machine.ctx.mem))
    if opts.telemetry_json:
        stats = machine.stats.as_dict(machine.ctx.clock.now_ns(), machine.cpu)
        _write_output("--telemetry-json", opts.telemetry_json, json.dumps(stats, indent=1))
