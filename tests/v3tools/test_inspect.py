"""`v3 inspect`: the listing, --xml, --extract and one-line errors for bad images."""
import pytest

from guest_creator import build_image
from guest_creator.hashing import update_py


@pytest.fixture
def image(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "200")
    (tmp_path / "k.bin").write_bytes(b"kernel")
    (tmp_path / "e.bin").write_bytes(b"")
    (tmp_path / "cfg.xml").write_text('<vm>\n<files>\n<file id="../evil" filename="k.bin"/>\n'
                                      '<file id="disk" filename="e.bin"/>\n</files>\n</vm>\n')
    build_image(tmp_path / "cfg.xml", tmp_path / "img.dat")
    return tmp_path / "img.dat"


def test_listing(image, v3):
    result = v3("inspect", "img.dat")
    assert result.exit_code == 0, result
    lines = result.stdout.splitlines()
    assert lines[0] == "img.dat: guest image v1, 222 bytes, 2 file(s), XML 132 bytes"
    assert '<file id="../evil" filename="k.bin" index="0"></file>' in result.stdout
    row = next(line for line in lines if "k.bin" in line and "│" in line)
    assert [c.strip() for c in row.strip("│ ").split("│")] == ["0", "../evil", "k.bin", "6", "216",
                                                               f"{update_py(0, 0, b'kernel'):#x}", "verified"]
    assert result.stderr == ""


def test_xml_only(image, v3):
    result = v3("inspect", "img.dat", "--xml")
    assert result.exit_code == 0
    assert result.stdout == ('<vm>\n<files>\n<file id="../evil" filename="k.bin" index="0"></file>\n'
                             '<file id="disk" filename="e.bin" index="1"></file>\n</files>\n</vm>')


def test_extract_is_safe(image, v3, tmp_path):
    result = v3("inspect", "img.dat", "--extract", "out")
    assert result.exit_code == 0, result
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["disk", "file0__evil"]
    assert not (tmp_path / "evil").exists()
    names = {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir()}
    assert sorted(names.values()) == [b"", b"kernel"]


def test_hash_mismatch(image, v3):
    data = bytearray(image.read_bytes())
    data[-1] ^= 0xFF
    image.write_bytes(bytes(data))
    result = v3("inspect", "img.dat", "--extract", "out")
    assert result.exit_code == 1
    assert "MISMATCH" in result.stdout
    assert result.stderr == "v3: error: img.dat: hash mismatch in file(s) 0 (../evil): the image is corrupted\n"


@pytest.mark.parametrize("mutate,message", [
    (lambda d: d[:100], "img.dat: truncated or corrupt: XML length 132 runs past the end of the 100-byte image"),
    (lambda d: b"nope" + d[4:], "img.dat: not a guest image (no v3vee cookie)"),
    (lambda d: d[:7] + b"\x05" + d[8:], "img.dat: unsupported image version 5 (this v3 reads 0 and 1)"),
])
def test_bad_images(image, v3, mutate, message):
    image.write_bytes(mutate(image.read_bytes()))
    result = v3("inspect", "img.dat")
    assert (result.exit_code, result.stdout, result.stderr) == (1, "", f"v3: error: {message}\n")


def test_missing_image(tmp_path, v3, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = v3("inspect", "x.dat")
    assert (result.exit_code, result.stderr) == (1, "v3: error: x.dat: cannot open the image: No such file or directory\n")


# -- bad input, table-driven: exit status, one line, no file created or changed -------------------
# (a hash mismatch prints the listing with MISMATCH first: test_hash_mismatch)
BAD_INPUT = [
    (["nope.dat"], 1, "nope.dat: cannot open the image: No such file or directory"),
    (["sub"], 1, "Invalid value for 'IMAGE': File 'sub' is a directory (see `v3 inspect --help`)"),
    (["short.dat"], 1, "short.dat: truncated or corrupt: XML length 132 runs past the end of the "
                       "100-byte image"),
    (["cfg.xml"], 1, "cfg.xml: not a guest image (no v3vee cookie)"),
    # an entry whose id is the image's own name: --extract . would overwrite the image
    (["self.dat", "--extract", "."], 1,
     "--extract ./self.dat: is the same file as IMAGE self.dat; refusing to overwrite an input"),
    (["img.dat", "--extract", "cfg.xml"], 1,
     "Invalid value for '--extract': Directory 'cfg.xml' is a file (see `v3 inspect --help`)"),
    (["img.dat", "--nosuch"], 1, "No such option '--nosuch' (see `v3 inspect --help`)"),
]


@pytest.mark.parametrize("args, code, message", BAD_INPUT, ids=[" ".join(c[0]) for c in BAD_INPUT])
def test_bad_input(image, bad_input, args, code, message):
    d = image.parent
    (d / "sub").mkdir()
    data = image.read_bytes()
    (d / "short.dat").write_bytes(data[:100])
    (d / "self.xml").write_text('<vm><files><file id="self.dat" filename="k.bin"/></files></vm>\n')
    build_image(d / "self.xml", d / "self.dat")
    bad_input(["inspect", *args], code, message)
