"""`v3 init`: a ready config.xml and a sample guest CD -> guest_creator.init_sample.init_project."""
import click

from guest_creator.init_sample import init_project


@click.command(short_help="Write a config.xml and a sample guest CD to start from.")
@click.argument("directory", default=".", type=click.Path(file_okay=False))
@click.option("-f", "--force", is_flag=True, help="Overwrite config.xml and sample.iso if they exist.")
@click.pass_obj
def command(app, directory, force):
    """Write DIRECTORY/config.xml (a PC with IDE CD-ROM and serial port) and DIRECTORY/sample.iso.

    Then: v3 build-vm config.xml -o image.dat && v3 run image.dat
    """
    result = init_project(directory, force=force)
    app.out.print(f"wrote {result.config} and {result.iso} ({result.iso_size} bytes)", soft_wrap=True)
    app.out.print("next: v3 build-vm config.xml -o image.dat && v3 run image.dat", soft_wrap=True)
