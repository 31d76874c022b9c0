"""`v3 build-vm`: Palacios' build_vm -> guest_creator.build_image."""
import click
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

import guest_creator
from v3tools.cli.options import Number


class _Bars:
    """One rich progress bar per file, fed by build_image's progress callback."""

    def __init__(self, console):
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                                 TransferSpeedColumn(), console=console, transient=False)
        self.tasks = {}

    def __call__(self, entry, done, size):
        task = self.tasks.get(entry.index)
        if task is None:
            task = self.tasks[entry.index] = self.progress.add_task(f"[{entry.index}] {entry.id or '(no id)'}",
                                                                   total=max(size, 1))
        self.progress.update(task, completed=done if size else 1)


@click.command(short_help="Build a guest image (.dat) from a Palacios XML configuration.")
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("-o", "--output", type=click.Path(),
              help="Image to write [default: CONFIG with the extension replaced by .dat].")
@click.option("-v", "version", default=1, show_default=True,
              type=Number(int, 0, 1, "the image format version, 0 or 1", metavar="0|1"),
              help="Image format version: 0 (no hashes) or 1 (per-file hashes).")
@click.option("-q", "--quiet", is_flag=True, help="No progress display.")
@click.pass_obj
def command(app, config, output, version, quiet):
    """Write CONFIG's re-serialised XML and the files of its <files> section into one image,
    byte for byte as Palacios' build_vm does (relative filenames resolve against CONFIG's
    directory). Nothing is left behind on error. Progress is drawn only on a terminal.
    """
    show = not quiet and app.out.is_terminal
    if not show:
        result = guest_creator.build_image(config, output, version=version)
    else:
        bars = _Bars(app.out)
        with bars.progress:
            result = guest_creator.build_image(config, output, version=version, progress=bars)
        app.out.print(f"wrote {result.output}: v{result.version}, {len(result.entries)} file(s), "
                      f"{result.size} bytes", soft_wrap=True)
    for note in result.notes:
        app.err.print(f"v3: note: {escape(note)}", soft_wrap=True)
    for warning in device_warnings(config):
        app.err.print(f"[bold yellow]v3: warning:[/] {escape(warning)}", soft_wrap=True)


def device_warnings(config):
    """What `v3 run` would refuse in CONFIG's <devices>: build_vm does not look at devices, so
    the image is written all the same; these are said at build time, file:line:col first."""
    from guest_creator.xmlconfig import parse_file
    from vmm.devices import class_problem
    doc = parse_file(config)
    devices = doc.root.child(b"devices")
    found = []
    for dev in devices.children_named(b"device") if devices is not None else ():
        name = (dev.attr(b"class") or b"").decode("utf-8", "replace")
        problem = class_problem(name) if name else \
            "<device> without a class attribute: v3 run will refuse it"
        if problem:
            found.append(f"{doc.location(dev)}: {problem}")
    return found
