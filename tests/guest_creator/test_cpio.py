import gzip
import io
import shutil
import stat
import subprocess

import pytest

from guest_creator.cpio import CpioWriter, read_archive, write_gzip_archive


def _archive(fill):
    buf = io.BytesIO()
    w = CpioWriter(buf)
    fill(w)
    w.close()
    return buf.getvalue()


def test_entries_round_trip_with_padding():
    def fill(w):
        w.directory("dev")
        w.char_device("dev/console", 5, 1)
        w.block_device("dev/ram0", 1, 0, 0o660)
        w.file("/init", b"#!/bin/sh\n", 0o755)
        w.file("odd", b"abcde")
        w.symlink("sh", "/bin/busybox")
    data = _archive(fill)
    assert len(data) % 4 == 0 and data[:6] == b"070701"
    entries = read_archive(data)
    assert [e.name for e in entries] == ["dev", "dev/console", "dev/ram0", "init", "odd", "sh"]
    console = entries[1]
    assert console.kind == stat.S_IFCHR and (console.rdevmajor, console.rdevminor) == (5, 1)
    assert stat.S_IMODE(console.mode) == 0o600 and console.uid == 0 and console.gid == 0
    assert entries[2].kind == stat.S_IFBLK
    assert entries[3].data == b"#!/bin/sh\n" and stat.S_IMODE(entries[3].mode) == 0o755
    assert entries[4].data == b"abcde"
    assert entries[5].kind == stat.S_IFLNK and entries[5].data == b"/bin/busybox"
    assert entries[0].nlink == 2


def test_duplicates_are_refused():
    with pytest.raises(ValueError, match="duplicate entry dev"):
        _archive(lambda w: (w.directory("dev"), w.directory("/dev/")))


def test_ensure_dirs_and_tree(tmp_path):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "f").write_bytes(b"x")
    (src / "link").symlink_to("sub/f")
    entries = read_archive(_archive(lambda w: w.tree(str(src), "/opt/app")))
    assert [e.name for e in entries] == ["opt", "opt/app", "opt/app/sub", "opt/app/link", "opt/app/sub/f"]


def test_gnu_cpio_reads_our_gzip_archive(tmp_path, require_tool):
    cpio = require_tool("cpio", "cpio")
    path = tmp_path / "initrd.gz"
    write_gzip_archive(path, lambda w: (w.directory("dev"), w.char_device("dev/console", 5, 1),
                                        w.file("init", b"hi\n", 0o755)))
    listing = subprocess.run([cpio, "-itv", "--quiet"], input=gzip.decompress(path.read_bytes()),
                             capture_output=True, check=True).stdout.decode().splitlines()
    assert listing[0].startswith("drwxr-xr-x") and listing[0].endswith(" dev")
    assert listing[1].startswith("crw-------") and "5,   1" in listing[1]
    assert listing[2].startswith("-rwxr-xr-x") and listing[2].endswith(" init")
    out = tmp_path / "x"
    out.mkdir()
    subprocess.run([cpio, "-id", "--quiet", "init"], input=gzip.decompress(path.read_bytes()),
                   cwd=out, check=True)
    assert (out / "init").read_bytes() == b"hi\n"
    shutil.rmtree(out)
