"""`v3 img`: look at and repair raw disk images -> v3tools.diskimage."""
import click

from v3tools import diskimage


@click.group(short_help="Raw disk images: partition table info, grow to the table's size.")
def command():
    """Raw disk images (as booted with v3 run --hda)."""


@command.command("info")
@click.argument("image", type=click.Path())
@click.pass_obj
def info(app, image):
    """Print IMAGE's partition table (MBR with logical partitions, or GPT), the partitions'
    sizes, and whether the file is shorter than its partitions need."""
    lines, _ = diskimage.describe(image)
    for line in lines:
        click.echo(line)


@command.command("grow")
@click.argument("image", type=click.Path())
@click.argument("size", required=False)
@click.option("--to-partitions", is_flag=True,
              help="Grow to what the partition table needs (the default without SIZE).")
@click.pass_obj
def grow(app, image, size, to_partitions):
    """Extend IMAGE to SIZE (bytes, or with K, M, G, T) or to what its partition table needs,
    rounded to a whole cylinder of the MBR's geometry; GPT images also get their backup table
    written at the new end. Never shrinks, never changes a byte already there."""
    if size is not None and to_partitions:
        app.abort("give SIZE or --to-partitions, not both")
    want = diskimage.parse_size(size) if size is not None else None
    old, new, table = diskimage.grow(image, want)
    if new == old:
        click.echo(f"{image}: {old} bytes already hold what its table needs; unchanged")
    else:
        click.echo(f"{image}: grown from {old} to {new} bytes "
                   f"({table.scheme.upper()} table needs {table.needed})")
