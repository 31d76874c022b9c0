"""`v3 init`: a ready config.xml and a sample guest CD -> guest_creator.init_sample.init_project."""
import os
import shlex

import click

from guest_creator.init_sample import init_project


@click.command(short_help="Write a config.xml and a sample guest CD to start from.")
@click.argument("directory", default=".", type=click.Path(file_okay=False))
@click.option("-f", "--force", is_flag=True, help="Overwrite config.xml and sample.iso if they exist.")
@click.pass_obj
def command(app, directory, force):
    """Write DIRECTORY/config.xml (a PC with IDE CD-ROM and serial port) and DIRECTORY/sample.iso.

    Then, in DIRECTORY: v3 build-vm config.xml -o image.dat && v3 isoimage && v3 run
    (the image, then the CD that holds it, then a boot of ./image.iso; README's quick start).
    """
    result = init_project(directory, force=force)
    app.out.print(f"wrote {result.config} and {result.iso} ({result.iso_size} bytes)", soft_wrap=True)
    cd = "" if os.path.samefile(directory, ".") else f"cd {shlex.quote(directory)} && "
    app.out.print(f"next: {cd}v3 build-vm config.xml -o image.dat && v3 isoimage && v3 run", soft_wrap=True)
