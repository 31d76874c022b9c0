from isoimage import layout


def test_default_cfg_is_kittens():
    assert layout.isolinux_cfg() == ("SERIAL 0 115200\nTIMEOUT 1\n"
                                     "default lwk console=serial initrd=initrd.img\n")


def test_no_serial_and_append():
    assert layout.isolinux_cfg("console=ttyS0 quiet", serial=False) == (
        "TIMEOUT 1\ndefault lwk console=ttyS0 quiet initrd=initrd.img\n")


def test_without_initrd_and_empty_append():
    assert layout.isolinux_cfg("", initrd=False) == "SERIAL 0 115200\nTIMEOUT 1\ndefault lwk\n"


def test_iso9660_names():
    assert layout.iso9660_name("lwk") == "/LWK.;1"
    assert layout.iso9660_name("initrd.img") == "/INITRD.IMG;1"
    assert layout.iso9660_name("isolinux.bin") == "/ISOLINUX.BIN;1"
