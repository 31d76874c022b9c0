"""`v3 run`: boot a guest image, a hosted ISO or any bootable medium in the v3 VMM."""
import click

from v3tools.cli.options import MemorySize, Number
from v3tools.cli.qemu_spellings import QemuSpellings
from vmm.launch import MAX_MEMORY_MB, MAX_TIMEOUT_S, RunOptions, run
from vmm.log import COMPONENTS

MACHINES = ("pc", "pc-i440fx")


@click.command(cls=QemuSpellings, short_help="Boot a guest in the v3 VMM (Unicorn-based PC).")
@click.argument("image", required=False)
@click.option("--serial", default="stdio", show_default=True, metavar="file:PATH|stdio|null",
              help="Where the guest's COM1 goes.")
@click.option("-m", "memory_mb", default="1024", show_default=True,
              type=MemorySize(MAX_MEMORY_MB), metavar="MB",
              help="Machine memory in MB, or 512M/1G (a guest image's <memory> must fit).")
@click.option("--smp", default="1", metavar="N", help="Cores (1 so far).")
@click.option("--cdrom", type=click.Path(), help="Attach an ISO as the CD-ROM (secondary master).")
@click.option("--hda", type=click.Path(), help="Attach a disk image (primary master).")
@click.option("--fda", type=click.Path(), help="Attach a floppy image.")
@click.option("--boot", metavar="d|c|a", help="Boot CD (d), disk (c) or floppy (a) first.")
@click.option("--timeout", metavar="SECONDS",
              type=Number(float, 0, MAX_TIMEOUT_S, f"a number of seconds above 0 and at most "
                                                   f"{MAX_TIMEOUT_S}", low_open=True),
              help=f"Stop after SECONDS of wall time (exit 6); 0 < SECONDS <= {MAX_TIMEOUT_S}.")
@click.option("--until", metavar="TEXT", help="End with status 0 once TEXT appears on the serial port.")
@click.option("--screen", type=click.Path(), help="Dump the VGA text screen to FILE at exit.")
@click.option("--bios", "bios", type=click.Path(dir_okay=False),
              help="Boot this firmware image (e.g. SeaBIOS's bios.bin) instead of the built-in BIOS.")
@click.option("--bios-console", type=click.Choice(["serial"]), help="Mirror BIOS teletype output to the serial port.")
@click.option("--debug", "debug", default="", metavar="COMPONENTS",
              help=f"Comma-separated debug components ({','.join(COMPONENTS)},all).")
@click.option("--telemetry", is_flag=True, help="Print a table of exits at the end.")
@click.option("--telemetry-json", type=click.Path(), help="Write the telemetry as JSON to FILE.")
@click.option("--log", type=click.Path(), help="Write the VMM's log to FILE instead of stderr.")
@click.option("--io-policy", type=click.Choice(["stop", "ignore"]), default="stop", show_default=True,
              help="What an access to an unclaimed port does.")
@click.option("--kernel", "kernel", type=click.Path(),
              help="Boot this kernel directly: a Linux bzImage or ELF, or a multiboot kernel "
                   "(version 1 or 2, gzip-compressed or not) (QEMU's -kernel).")
@click.option("--initrd", "initrd", type=click.Path(),
              help="With --kernel: the initial ramdisk; for a multiboot kernel the modules, "
                   "\"file args,file args\" as QEMU spells them.")
@click.option("--append", "append", metavar="CMDLINE",
              help="With --kernel: the kernel command line.")
@click.option("--savevm", type=click.Path(), metavar="FILE",
              help="With --until: save the whole machine to FILE when TEXT appears, then end.")
@click.option("--loadvm", type=click.Path(), metavar="FILE",
              help="Start from a snapshot saved by --savevm (same image and options).")
@click.option("--omit", multiple=True, metavar="CLASS",
              help="Leave out devices of this class.")
@click.option("--nic", "nic", multiple=True, metavar="user|tap,OPTIONS",
              help="Add a network card and its backend, QEMU's form: user,model=rtl8139,"
                   "hostfwd=tcp:127.0.0.1:8080-:80[,restrict=on][,net=10.0.2.0/24][,mac=...][,cplus=on] "
                   "or tap,ifname=tap0,model=ne2k_pci.")
@click.option("--net", "net", multiple=True, metavar="nic,...|user,...|tap,...",
              help="QEMU's legacy pair: -net nic,model=rtl8139 -net user (or tap,ifname=NAME).")
@click.option("--redir", "redir", multiple=True, metavar="tcp:PORT:GUESTADDR:GUESTPORT",
              help="QEMU's legacy host forward for -net user.")
@click.option("--pcap", type=click.Path(dir_okay=False),
              help="Write every frame of every network card to FILE (pcap; tcpdump -r reads it).")
@click.option("--gdb", "gdb", metavar="tcp:HOST:PORT|unix:PATH",
              help="Wait for a gdb connection there (see docs/debug.md).")
@click.option("-s", "gdb_default", is_flag=True, help="Shorthand for --gdb tcp::1234.")
@click.option("-S", "start_stopped", is_flag=True,
              help="Do not start the CPU until gdb or the monitor says so.")
@click.option("--monitor", "monitor", metavar="unix:PATH,server",
              help="Offer the monitor on a socket (help lists its commands).")
@click.option("--hda-readonly", is_flag=True, hidden=True)   # -drive ...,readonly=on
@click.option("--snapshot", is_flag=True,
              help="Disk and floppy writes go to a temporary overlay; image files stay untouched.")
@click.option("--plain-cdrom", is_flag=True,
              help="Boot an ISO made by `v3 isoimage` as a plain CD instead of the guest it carries.")
@click.option("--nographic", is_flag=True, help="Accepted (QEMU): v3 has no display anyway.")
@click.option("--display", metavar="none", help="Accepted as `none` (QEMU): v3 has no display.")
@click.option("--no-reboot", is_flag=True, help="Accepted (QEMU): a guest reset always ends the run.")
@click.option("-k", "keymap", metavar="LAYOUT", help="Accepted (QEMU), with a note: no display, no keymap.")
@click.option("--accel", metavar="tcg", help="Accepted as `tcg` (QEMU): the CPU is emulated.")
@click.option("--machine", metavar="pc", help="Accepted as `pc` (QEMU): the i440FX PC.")
@click.option("--name", metavar="NAME", help="A name for the VM (shown in the log).")
@click.option("--no-host-decompress", is_flag=True,
              help="Let a bzImage decompress itself instead of the host decompressing it "
                   "(--kernel: entering the ELF through its PVH note; a CD/disk boot: at the "
                   "boot loader's hand-off).")
@click.option("--no-status", is_flag=True,
              help="No live status line on stderr (shown when stderr is a terminal and the "
                   "serial console is elsewhere, e.g. --serial file:PATH).")
@click.pass_obj
def command(app, image, serial, memory_mb, smp, cdrom, hda, fda, boot, timeout, until, screen,
            bios, bios_console, debug, telemetry, telemetry_json, log, io_policy, kernel, initrd,
            append, savevm, loadvm, omit, nic, net, redir, pcap, gdb, gdb_default, start_stopped,
            monitor, hda_readonly, snapshot, plain_cdrom, nographic, display, no_reboot, keymap,
            accel, machine, name, no_host_decompress, no_status):
    """Boot IMAGE (default ./image.iso): a guest image made by `v3 build-vm`, an ISO made by
    `v3 isoimage --guest`, or any bootable ISO, disk or floppy image.

    Exit status: 0 guest powered off or reset (or --until text seen), 1 bad input,
    3 fail-stop, 4 triple fault, 5 halted with interrupts disabled, 6 --timeout,
    7 guest ended before the --until text appeared."""
    unknown = [c for c in debug.split(",") if c.strip() and c.strip() not in COMPONENTS + ("all",)]
    if unknown:
        app.abort(f"--debug: unknown component(s) {', '.join(unknown)}; known: {', '.join(COMPONENTS)}, all")
    cores = smp.split(",")[0].removeprefix("cpus=")
    if not cores.isdigit() or int(cores) < 1:
        app.abort(f"-smp {smp}: expected a number of cores")
    if int(cores) > 1:
        app.abort(f"-smp {smp}: only one core is implemented so far")
    smp = 1
    if display is not None and display.split(",")[0] != "none":
        app.abort(f"-display {display}: v3 run has no display (only -display none)")
    if accel is not None and accel.split(",")[0] != "tcg":
        app.abort(f"-accel {accel}: not supported by v3 run (the CPU is emulated: -accel tcg)")
    if machine is not None:
        mtype = machine.split(",")[0].removeprefix("type=")
        if not mtype.startswith(MACHINES):
            app.abort(f"-machine {machine}: not supported by v3 run (the i440FX PC: -machine pc)")
    if keymap is not None:
        app.info(f"v3 run: -k {keymap}: ignored (keyboard layouts apply to a graphical display, "
                 f"which v3 does not have; keys typed on stdio reach the guest as they are)")
    if serial == "none":
        serial = "null"
    if boot is not None and boot.startswith("order="):
        boot = boot[6:7]
    if boot is not None and boot not in ("a", "c", "d"):
        app.abort(f"-boot {boot}: expected d (CD), c (disk) or a (floppy)")
    opts = RunOptions(image=image, serial=serial, memory_mb=memory_mb, cdrom=cdrom, hda=hda, fda=fda,
                      boot=boot, timeout=timeout, until=until, screen=screen,
                      bios_console=bios_console, debug=tuple(c for c in debug.split(",") if c),
                      telemetry=telemetry, telemetry_json=telemetry_json, log=log,
                      io_policy=io_policy, omit=omit, smp=smp, bios=bios,
                      gdb=gdb or ("tcp::1234" if gdb_default else None),
                      start_stopped=start_stopped, monitor=monitor, snapshot=snapshot,
                      hda_readonly=hda_readonly,
                      plain_cdrom=plain_cdrom, name=name, kernel=kernel, initrd=initrd,
                      append=append, savevm=savevm, loadvm=loadvm, nic=nic, net=net, redir=redir,
                      pcap=pcap, host_decompress=not no_host_decompress,
                      status=not no_status)
    machine_box = []
    try:
        result, machine = run(opts, on_machine=machine_box.append)
    finally:
        if machine_box and (telemetry or machine_box[0].telemetry_enabled):
            m = machine_box[0]
            m.stats.render(app.err, m.ctx.clock.now_ns(), m.cpu)
    app.info(f"v3 run: {result.reason}")
