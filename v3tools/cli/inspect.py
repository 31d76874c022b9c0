"""`v3 inspect`: show, verify and unpack a guest image -> guest_creator.open_image."""
import os
import re

import click
from rich.markup import escape
from rich.table import Table

import guest_creator
from v3tools.errors import ImageFormatError, V3Error
from v3tools.paths import refuse_overwrite

_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]")


def safe_names(entries):
    """index -> a file name for each entry: its id made safe (no separators, no dot-names)."""
    names, taken = {}, set()
    for entry in entries:
        base = _UNSAFE.sub("_", entry.id or "")
        if not base.strip(".") or base.startswith("."):
            base = f"file{entry.index}" + (("_" + base.lstrip(".")) if base.strip(".") else "")
        name = base
        if name in taken:
            name = f"{base}.{entry.index}"
        taken.add(name)
        names[entry.index] = name
    return names


def extract(image, directory):
    """Write every file of `image` into `directory`; returns [(entry, path)]."""
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as exc:
        raise V3Error(f"{directory}: cannot create: {exc.strerror}") from None
    written = []
    for entry in image.files:
        path = os.path.join(directory, safe_names(image.files)[entry.index])
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0), 0o666)
            with os.fdopen(fd, "wb") as out:
                for block in image.chunks(entry):
                    out.write(block)
        except OSError as exc:
            raise V3Error(f"{path}: cannot write: {exc.strerror}") from None
        written.append((entry, path))
    return written


def _status(entry):
    if entry.verified is None:
        return "-"
    return "[green]verified[/]" if entry.verified else "[bold red]MISMATCH[/]"


def _is_snapshot(path):
    import zipfile
    try:
        with open(path, "rb") as f:
            if f.read(4) != b"PK\x03\x04":
                return False
        with zipfile.ZipFile(path) as z:
            return "v3snapshot.json" in z.namelist()
    except (OSError, zipfile.BadZipFile):
        return False


@click.command(short_help="Show, verify and unpack a guest image (.dat) or a VM snapshot.")
@click.argument("image", type=click.Path(dir_okay=False))
@click.option("--extract", "extract_dir", type=click.Path(file_okay=False),
              help="Write each file into DIR, named after its id.")
@click.option("--xml", "xml_only", is_flag=True, help="Print only the embedded XML (exact bytes).")
@click.pass_obj
def command(app, image, extract_dir, xml_only):
    """Print IMAGE's version, embedded XML and file table, checking every v1 hash; for a VM
    snapshot (v3 run --savevm), its machine, time, RAM, CPU and timers.

    Exits 1 with one line if the image is malformed or a hash does not match.
    """
    if _is_snapshot(image):
        from vmm.debug import snapshot
        for line in snapshot.summary(image):
            app.out.print(escape(line), soft_wrap=True)
        return
    with guest_creator.open_image(image, verify=False) as img:
        if extract_dir is not None:      # an entry named like the image must not overwrite it
            refuse_overwrite([("--extract", os.path.join(extract_dir, name))
                              for name in safe_names(img.files).values()], [("IMAGE", image)])
        if xml_only:
            click.echo(img.xml, nl=False)
            return
        bad = img.verify()
        out = app.out
        out.print(f"[bold]{escape(image)}[/]: guest image v{img.version}, {img.size} bytes, "
                  f"{len(img.files)} file(s), XML {len(img.xml)} bytes", soft_wrap=True)
        out.rule("embedded XML")
        out.print(escape(img.xml_text), soft_wrap=True)
        out.rule()
        table = Table("index", "id", "filename", "size", "offset", "hash", "status")
        for entry in img.files:
            table.add_row(str(entry.index), escape(entry.id or "?"), escape(entry.filename or "?"),
                          str(entry.size), str(entry.offset),
                          "-" if entry.hash is None else f"{entry.hash:#x}", _status(entry))
        out.print(table)
        if bad:
            ids = ", ".join(str(e.index) + (f" ({e.id})" if e.id else "") for e in bad)
            raise ImageFormatError(f"{image}: hash mismatch in file(s) {ids}: the image is corrupted")
        if extract_dir is not None:
            for entry, path in extract(img, extract_dir):
                out.print(f"extracted {escape(path)} ({entry.size} bytes)", soft_wrap=True)
