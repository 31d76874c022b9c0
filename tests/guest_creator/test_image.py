"""The image writer and the validating reader (the VMM's loader API)."""
import os
import struct

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from guest_creator import build_image, hashing, open_image, open_image_bytes
from guest_creator.image import encode_header
from v3tools.errors import ConfigError, ImageFormatError, V3Error


def make_config(tmp_path, files, extra=b""):
    """files: {id: bytes}; writes them and a config; returns the config path."""
    rows = []
    for name, data in files.items():
        (tmp_path / f"{name}.bin").write_bytes(data)
        rows.append(b'<file id="%s" filename="%s.bin"/>' % (name.encode(), name.encode()))
    cfg = tmp_path / "cfg.xml"
    cfg.write_bytes(b"<vm><files>" + b"".join(rows) + b"</files>" + extra + b"</vm>\n")
    return cfg


FILES = {"a": b"hello", "b": b"", "c": bytes(range(256)) * 50}


@pytest.mark.parametrize("version", [0, 1])
def test_exact_layout(tmp_path, version):
    cfg = make_config(tmp_path, FILES)
    result = build_image(cfg, tmp_path / "o.dat", version=version)
    xml = (b'<vm><files><file id="a" filename="a.bin" index="0"></file>'
           b'<file id="b" filename="b.bin" index="1"></file>'
           b'<file id="c" filename="c.bin" index="2"></file></files></vm>')
    assert result.xml == xml
    sizes = [len(d) for d in FILES.values()]
    hashes = [hashing.hash_bytes(d) for d in FILES.values()]
    expected = encode_header(xml, sizes, hashes, version) + b"".join(FILES.values())
    data = (tmp_path / "o.dat").read_bytes()
    assert data == expected
    assert data[:8] == b"v3vee\0\0" + bytes([version])
    assert struct.unpack_from("<I", data, 8)[0] == len(xml)
    entry = 16 if version == 0 else 24
    table = 12 + len(xml) + 16
    assert struct.unpack_from("<Q", data, table - 8)[0] == 3
    first = table + 3 * entry + 8
    assert struct.unpack_from("<IIQ", data, table) == (0, 5, first)
    assert struct.unpack_from("<IIQ", data, table + 2 * entry) == (2, 12800, first + 5)


def test_hash_after_an_empty_file_is_correct(tmp_path):
    # deliberate deviation from build_vm, which leaves 0 after an empty file
    cfg = make_config(tmp_path, {"e": b"", "x": b"xyz"})
    build_image(cfg, tmp_path / "o.dat")
    img = open_image(tmp_path / "o.dat")
    assert [e.hash for e in img.files] == [0, hashing.hash_bytes(b"xyz")]
    assert all(e.verified for e in img.files)


def test_index_attribute_replaced_in_place_or_appended(tmp_path):
    (tmp_path / "d").write_bytes(b"1")
    cfg = tmp_path / "c.xml"
    cfg.write_bytes(b'<vm><files><file index="7" id="a" filename="d"/>'
                    b'<file id="b" index="" filename="d" index="9"/>'
                    b'<file id="c" filename="d"><index>5</index></file></files></vm>')
    result = build_image(cfg, tmp_path / "o.dat")
    assert result.xml == (b'<vm><files><file index="0" id="a" filename="d"></file>'
                          b'<file id="b" index="1" filename="d"></file>'
                          b'<file id="c" filename="d" index="2"><index>5</index></file></files></vm>')


@pytest.mark.parametrize("version", [0, 1])
def test_round_trip_reader(tmp_path, version):
    cfg = make_config(tmp_path, FILES, extra=b"<memory>256</memory>")
    build_image(cfg, tmp_path / "o.dat", version=version)
    data = (tmp_path / "o.dat").read_bytes()
    for img in (open_image(tmp_path / "o.dat"), open_image_bytes(data)):
        with img:
            assert img.version == version
            assert img.xml.startswith(b"<vm><files>")
            assert [(e.index, e.id, e.filename) for e in img.files] == [
                (0, "a", "a.bin"), (1, "b", "b.bin"), (2, "c", "c.bin")]
            for name, content in FILES.items():
                assert img.read_by_id(name) == content
                assert b"".join(img.chunks(img.entry(name), 100)) == content
            assert [e.verified for e in img.files] == ([None] * 3 if version == 0 else [True] * 3)


def good_image(tmp_path):
    cfg = make_config(tmp_path, {"a": b"hello", "b": b"world!"})
    build_image(cfg, tmp_path / "o.dat")
    return (tmp_path / "o.dat").read_bytes()


def test_hash_mismatch(tmp_path):
    data = bytearray(good_image(tmp_path))
    data[-1] ^= 1
    with pytest.raises(ImageFormatError, match=r"hash mismatch in file 1 \(id 'b'\)"):
        open_image_bytes(data)
    img = open_image_bytes(data, verify=False)
    assert [e.id for e in img.verify()] == ["b"]
    assert [e.verified for e in img.files] == [True, False]


@pytest.mark.parametrize("mutate,message", [
    (lambda d: b"v4vee" + d[5:], "no v3vee cookie"),
    (lambda d: d[:5] + b"\0\0\2" + d[8:], "unsupported image version 2"),
    (lambda d: d[:10], "shorter than the 12-byte header"),
    (lambda d: d[:8] + struct.pack("<I", 1 << 31) + d[12:], "XML length 2147483648 runs past"),
    (lambda d: d[:-3], "outside the data area"),
    (lambda d: b"", "truncated"),
])
def test_defects_are_one_line_errors(tmp_path, mutate, message):
    data = mutate(good_image(tmp_path))
    with pytest.raises(ImageFormatError, match=message) as info:
        open_image_bytes(data)
    assert "\n" not in str(info.value)


def test_absurd_file_count_is_refused_before_allocating(tmp_path):
    data = bytearray(good_image(tmp_path))
    xml_len = struct.unpack_from("<I", data, 8)[0]
    struct.pack_into("<Q", data, 12 + xml_len + 8, (1 << 64) - 1)
    with pytest.raises(ImageFormatError, match="file count 18446744073709551615 does not fit"):
        open_image_bytes(bytes(data))


def test_open_missing_file(tmp_path):
    with pytest.raises(ImageFormatError, match="cannot open the image"):
        open_image(tmp_path / "nope.dat")


def test_read_by_unknown_id(tmp_path):
    with pytest.raises(ImageFormatError, match="no file with id 'zz'"):
        open_image_bytes(good_image(tmp_path)).read_by_id("zz")


_GOOD = {}


def cached_good_image(tmp_path_factory):
    if "image" not in _GOOD:
        _GOOD["image"] = good_image(tmp_path_factory.mktemp("good"))
    return _GOOD["image"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_random_corruption_only_raises_image_format_error(tmp_path_factory, data):
    image = bytearray(cached_good_image(tmp_path_factory))
    for _ in range(data.draw(st.integers(0, 4))):
        pos = data.draw(st.integers(0, len(image) - 1))
        image[pos] = data.draw(st.integers(0, 255))
    image = image[:data.draw(st.integers(0, len(image)))]
    try:
        with open_image_bytes(bytes(image)) as img:
            for entry in img.files:
                assert len(img.read(entry)) == entry.size
    except ImageFormatError as exc:
        assert "\n" not in str(exc)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_arbitrary_bytes_only_raise_image_format_error(blob):
    for data in (blob, b"v3vee\0\0\1" + blob, b"v3vee\0\0\0" + blob):
        try:
            open_image_bytes(data)
        except ImageFormatError:
            pass


def test_build_errors_leave_nothing(tmp_path):
    cfg = make_config(tmp_path, {"a": b"x"})
    cfg.write_bytes(cfg.read_bytes().replace(b"</files>", b'<file id="m" filename="missing"/></files>'))
    before = sorted(os.listdir(tmp_path))
    with pytest.raises(ConfigError, match=r'cfg.xml:1:\d+: <file id="m">: missing: No such file'):
        build_image(cfg, tmp_path / "o.dat")
    assert sorted(os.listdir(tmp_path)) == before


def test_version_2_is_refused(tmp_path):
    with pytest.raises(V3Error, match="only versions 0 and 1 are supported"):
        build_image(make_config(tmp_path, {}), tmp_path / "o.dat", version=2)


def test_progress_callback(tmp_path):
    cfg = make_config(tmp_path, {"a": b"x" * 3_000_000, "b": b""})
    seen = []
    build_image(cfg, tmp_path / "o.dat", progress=lambda e, done, size: seen.append((e.id, done, size)))
    assert seen == [("a", 0, 3_000_000), ("a", 1 << 20, 3_000_000), ("a", 2 << 20, 3_000_000),
                    ("a", 3_000_000, 3_000_000), ("b", 0, 0)]
