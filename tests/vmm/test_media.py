"""vmm/media.py: sector media over bytes and host files, bounds, read-only, close."""
import os

import pytest

from v3tools.errors import V3Error
from vmm.media import CD_SECTOR, BytesMedium, FileMedium, MediumError


def sectors(n, size=512):
    return b"".join(bytes([i]) * size for i in range(n))


def test_bytes_medium_reads_sectors():
    m = BytesMedium(sectors(4))
    assert m.num_sectors == 4
    assert m.read(2) == bytes([2]) * 512
    assert m.read(1, 3) == sectors(4)[512:]


def test_bytes_medium_pads_the_last_partial_sector():
    m = BytesMedium(b"\x01" * 700)
    assert m.num_sectors == 2
    assert m.read(1) == b"\x01" * 188 + bytes(324)


def test_bytes_medium_cd_sectors():
    m = BytesMedium(bytes(3 * CD_SECTOR), sector_size=CD_SECTOR)
    assert m.num_sectors == 3 and len(m.read(2)) == CD_SECTOR


@pytest.mark.parametrize("lba, count", [(4, 1), (3, 2), (-1, 1), (0, 5), (0, -1)])
def test_out_of_bounds_read(lba, count):
    m = BytesMedium(sectors(4), name="ramdisk0")
    with pytest.raises(MediumError, match=r"^ramdisk0: access to sectors .* beyond the end of "
                                          r"the medium \(4 sectors\)$"):
        m.read(lba, count)


def test_bytes_medium_write_and_bounds():
    m = BytesMedium(sectors(4))
    m.write(3, b"\xff" * 512)
    assert m.read(3) == b"\xff" * 512
    with pytest.raises(MediumError):
        m.write(4, b"\0" * 512)
    with pytest.raises(MediumError):
        m.write(3, b"\0" * 1024)
    assert m.size == 4 * 512


def test_partial_sector_write_past_the_end_is_refused():
    m = BytesMedium(sectors(1))
    with pytest.raises(MediumError):
        m.write(1, b"x" * 100)
    assert len(m.data) == 512


def test_read_only_bytes_medium():
    m = BytesMedium(sectors(2), writable=False, name="cd")
    with pytest.raises(MediumError, match="^cd: write to a read-only medium$"):
        m.write(0, bytes(512))
    assert m.read(0) == bytes(512)


def test_medium_error_is_a_vm_stop():
    from v3tools.errors import VMStop
    assert issubclass(MediumError, VMStop)


@pytest.fixture
def disk(tmp_path):
    path = tmp_path / "disk.img"
    path.write_bytes(sectors(3) + b"\x07" * 100)       # 3 sectors and a partial fourth
    return path


def test_file_medium_reads_and_rounds_up(disk):
    m = FileMedium(disk)
    try:
        assert m.num_sectors == 4
        assert m.read(1) == bytes([1]) * 512
        assert m.read(3) == b"\x07" * 100 + bytes(412)
        with pytest.raises(MediumError):
            m.read(4)
    finally:
        m.close()


def test_file_medium_read_only_by_default(disk):
    m = FileMedium(disk)
    with pytest.raises(MediumError, match="write to a read-only medium"):
        m.write(0, bytes(512))
    m.close()
    assert disk.read_bytes()[:512] == bytes(512)


def test_file_medium_write_reaches_the_file(disk):
    m = FileMedium(disk, writable=True)
    m.write(2, b"\xaa" * 512)
    m.close()
    assert disk.read_bytes()[1024:1536] == b"\xaa" * 512
    assert os.path.getsize(disk) == 3 * 512 + 100


def test_file_medium_close_is_idempotent(disk):
    m = FileMedium(disk)
    fd = m.fd
    m.close()
    m.close()
    assert m.fd is None
    with pytest.raises(OSError):
        os.fstat(fd)


def test_file_medium_missing_and_empty(tmp_path):
    with pytest.raises(V3Error, match="nope.img: cannot open: No such file or directory"):
        FileMedium(tmp_path / "nope.img")
    (tmp_path / "empty.img").write_bytes(b"")
    with pytest.raises(V3Error, match="empty.img: empty medium"):
        FileMedium(tmp_path / "empty.img")


def test_empty_file_medium_leaks_no_descriptor(tmp_path):
    (tmp_path / "empty.img").write_bytes(b"")
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(5):
        with pytest.raises(V3Error):
            FileMedium(tmp_path / "empty.img")
    assert len(os.listdir("/proc/self/fd")) == before
