"""`v3 run`: boot a guest image, a hosted ISO or any bootable medium in the v3 VMM."""
import click

from vmm.launch import RunOptions, run
from vmm.log import COMPONENTS


@click.command(short_help="Boot a guest in the v3 VMM (Unicorn-based PC).")
@click.argument("image", required=False)
@click.option("--serial", default="stdio", show_default=True, metavar="file:PATH|stdio|null",
              help="Where the guest's COM1 goes.")
@click.option("-m", "memory_mb", type=click.IntRange(1, 3584), default=1024, show_default=True,
              help="Machine memory in MB (a guest image's <memory> must fit).")
@click.option("--smp", type=click.IntRange(1, 1), default=1, help="Cores (1 so far).")
@click.option("--cdrom", type=click.Path(), help="Attach an ISO as the CD-ROM (secondary master).")
@click.option("--hda", type=click.Path(), help="Attach a disk image (primary master).")
@click.option("--fda", type=click.Path(), help="Attach a floppy image.")
@click.option("--boot", type=click.Choice(["d", "c", "a"]), help="Boot CD (d), disk (c) or floppy (a) first.")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), help="Stop after SECONDS of wall time (exit 6).")
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
@click.option("--omit", multiple=True, metavar="CLASS",
              help="Leave out devices of this class.")
@click.option("--kernel", "-kernel", "kernel", type=click.Path(dir_okay=False),
              help="Boot this Linux bzImage directly (Linux/x86 boot protocol, no boot loader).")
@click.option("--initrd", "-initrd", "initrd", type=click.Path(dir_okay=False),
              help="The initial RAM disk for --kernel.")
@click.option("--append", "-append", "append", metavar="TEXT",
              help="The kernel command line for --kernel.")
@click.option("--no-host-decompress", is_flag=True,
              help="--kernel bzImage: let the kernel decompress itself instead of the host "
                   "decompressing it and entering the ELF through its PVH note.")
@click.pass_obj
def command(app, image, serial, memory_mb, smp, cdrom, hda, fda, boot, timeout, until, screen,
            bios, bios_console, debug, telemetry, telemetry_json, log, io_policy, omit,
            kernel, initrd, append, no_host_decompress):
    """Boot IMAGE (default ./image.iso): a guest image made by `v3 build-vm`, an ISO made by
    `v3 isoimage --guest`, or any bootable ISO, disk or floppy image.

    Exit status: 0 guest powered off or reset (or --until text seen), 1 bad input,
    3 fail-stop, 4 triple fault, 5 halted with interrupts disabled, 6 --timeout,
    7 guest ended before the --until text appeared."""
    unknown = [c for c in debug.split(",") if c.strip() and c.strip() not in COMPONENTS + ("all",)]
    if unknown:
        app.abort(f"--debug: unknown component(s) {', '.join(unknown)}; known: {', '.join(COMPONENTS)}, all")
    opts = RunOptions(image=image, serial=serial, memory_mb=memory_mb, cdrom=cdrom, hda=hda, fda=fda,
                      boot=boot, timeout=timeout, until=until, screen=screen,
                      bios_console=bios_console, debug=tuple(c for c in debug.split(",") if c),
                      telemetry=telemetry, telemetry_json=telemetry_json, log=log,
                      io_policy=io_policy, omit=omit, smp=smp, bios=bios, kernel=kernel,
                      initrd=initrd, append=append, host_decompress=not no_host_decompress)
    machine_box = []
    try:
        result, machine = run(opts, on_machine=machine_box.append)
    finally:
        if machine_box and (telemetry or machine_box[0].telemetry_enabled):
            m = machine_box[0]
            m.stats.render(app.err, m.ctx.clock.now_ns(), m.cpu)
    app.info(f"v3 run: {result.reason}")
