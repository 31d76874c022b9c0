"""`v3 isoimage`: Kitten's `make isoimage` -> isoimage.build_iso."""
import os

import click

import isoimage
from v3tools.errors import V3Error


@click.command(short_help="Make a bootable isolinux CD (image.dat -> image.iso).")
@click.option("-o", "--output", default="image.iso", show_default=True, type=click.Path(dir_okay=False),
              help="ISO file to write.")
@click.option("--guest", type=click.Path(dir_okay=False),
              help="Palacios guest image for initrd.img [default: ./image.dat without --kernel].")
@click.option("--kernel", type=click.Path(dir_okay=False),
              help="Kernel to boot as `lwk` [default: the v3 stub, which says to use `v3 run`].")
@click.option("--initrd", type=click.Path(dir_okay=False), help="initrd for --kernel (initrd.img).")
@click.option("--append", default=None, help="Kernel arguments [default: console=serial].")
@click.option("--serial/--no-serial", default=True, show_default=True,
              help="Put `SERIAL 0 115200` in isolinux.cfg.")
@click.option("--isolinux", type=click.Path(dir_okay=False), help="isolinux.bin to use instead of the host's.")
@click.pass_obj
def command(app, output, guest, kernel, initrd, append, serial, isolinux):
    """Write an ISO 9660 CD that isolinux boots: `lwk` with `initrd.img`.

    With no arguments, ./image.dat (from `v3 build-vm`) becomes initrd.img and ./image.iso is
    written. With --kernel and --initrd it is an ordinary Linux boot CD.
    """
    if guest is None and kernel is None and initrd is None:
        guest = "image.dat"
        if not os.path.isfile(guest):
            raise V3Error("no ./image.dat to package (run `v3 build-vm config.xml -o image.dat`, "
                          "or give --guest or --kernel)")
    if initrd is not None and kernel is None:
        raise V3Error("--initrd needs --kernel")
    result = isoimage.build_iso(output, kernel=kernel, initrd=initrd, guest=guest, append=append,
                                serial=serial, isolinux=isolinux)
    what = "v3 stub kernel" if result.stub_kernel else result.kernel
    app.out.print(f"wrote {result.path} ({result.size} bytes): {', '.join(result.files)}; "
                  f"lwk = {what}", soft_wrap=True)
