"""`v3 mkguest`: a busybox initramfs guest on an isolinux CD -> guest_creator.mkguest.mkguest."""
import click

from guest_creator.mkguest import DEFAULT_APPEND, mkguest


@click.command(short_help="Make a bootable Linux + busybox guest CD.")
@click.option("-o", "--output", default="guest.iso", show_default=True, type=click.Path(dir_okay=False),
              help="ISO file to write.")
@click.option("--kernel", type=click.Path(dir_okay=False),
              help="Kernel bzImage [default: the host's newest /boot/vmlinuz-*].")
@click.option("--busybox", type=click.Path(dir_okay=False),
              help="Static busybox [default: `busybox` on PATH].")
@click.option("--init", "init", type=click.Path(dir_okay=False),
              help="Script to use as /init [default: mount, banner, shell on the console].")
@click.option("--add", "add", multiple=True, metavar="SRC:DEST",
              help="Also put host file or directory SRC at DEST in the initramfs (repeatable).")
@click.option("--append", default=DEFAULT_APPEND, show_default=True, help="Kernel command line.")
@click.option("--serial/--no-serial", default=True, show_default=True,
              help="Put `SERIAL 0 115200` in isolinux.cfg.")
@click.option("--isolinux", type=click.Path(dir_okay=False), help="isolinux.bin to use instead of the host's.")
@click.option("--net", is_flag=True,
              help="Networked guest: the kernel's NIC modules (8139too, ne2k-pci), DHCP on eth0, "
                   "busybox httpd serving /www.")
@click.pass_obj
def command(app, output, kernel, busybox, init, add, append, serial, isolinux, net):
    """Write a CD that boots a Linux kernel with a busybox initramfs built by v3tools."""
    result = mkguest(output, kernel=kernel, busybox=busybox, init=init, add=add, append=append,
                     serial=serial, isolinux=isolinux, net=net)
    app.out.print(f"wrote {result.path} ({result.size} bytes): kernel {result.kernel}, "
                  f"busybox {result.busybox} with {result.applets} applet links, "
                  f"initramfs {result.initramfs_size} bytes", soft_wrap=True)
