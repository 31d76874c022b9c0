import pytest

from isoimage.isolinux import find_isolinux, find_ldlinux, isolinux_version
from v3tools.errors import ToolMissing


def test_missing_override_names_the_packages():
    with pytest.raises(ToolMissing, match=r"/nonexistent .*`isolinux` and `syslinux-common`"):
        find_isolinux("/nonexistent")


def test_nothing_found_names_the_packages(monkeypatch):
    monkeypatch.setattr("isoimage.isolinux.SEARCH_DIRS", ("/nonexistent-a", "/nonexistent-b"))
    with pytest.raises(ToolMissing, match="isolinux.*syslinux-common"):
        find_isolinux()


def test_version_and_ldlinux_rules(tmp_path):
    old = tmp_path / "old" / "isolinux.bin"
    old.parent.mkdir()
    old.write_bytes(b"\0" * 64 + b"ISOLINUX 4.05 2011-12-09" + b"\0" * 64)
    assert isolinux_version(old) == (4, 5)
    assert find_ldlinux(old) is None            # isolinux 4 has ldlinux built in

    new = tmp_path / "new" / "isolinux.bin"
    new.parent.mkdir()
    new.write_bytes(b"ISOLINUX 6.04 20200816 ")
    (new.parent / "ldlinux.c32").write_bytes(b"module")
    assert find_ldlinux(new) == str(new.parent / "ldlinux.c32")   # next to isolinux.bin first


def test_isolinux_5_without_ldlinux_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setattr("isoimage.isolinux.SEARCH_DIRS", ())
    new = tmp_path / "isolinux.bin"
    new.write_bytes(b"ISOLINUX 6.04 20200816 ")
    with pytest.raises(ToolMissing, match="syslinux-common"):
        find_ldlinux(new)


def test_host_isolinux_is_found(require_artefact):
    from v3tools import artefacts
    path = require_artefact(artefacts.isolinux_bin)
    assert isolinux_version(path) is not None
