"""`v3 build-vm`: exit codes, one-line errors, no output left behind."""
import os

import pytest

from guest_creator import open_image


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.bin").write_bytes(b"AAAA")
    (tmp_path / "b.bin").write_bytes(b"BB")
    return tmp_path


def write_cfg(path, files_xml):
    path.write_text(f"<vm>\n  <files>\n{files_xml}  </files>\n</vm>\n")
    return path


def assert_one_line_error(result, text, workdir, before):
    assert result.exit_code == 1, result
    assert result.stdout == ""
    assert result.stderr == f"v3: error: {text}\n"
    assert sorted(os.listdir(workdir)) == before


def test_success_is_silent_when_not_a_terminal(workdir, v3):
    write_cfg(workdir / "cfg.xml", '    <file id="a" filename="a.bin"/>\n')
    result = v3("build-vm", "cfg.xml")
    assert (result.exit_code, result.stdout, result.stderr) == (0, "", "")
    with open_image(workdir / "cfg.dat") as img:
        assert img.version == 1 and img.read_by_id("a") == b"AAAA"


def test_v0_and_output_option(workdir, v3):
    write_cfg(workdir / "cfg.xml", '    <file id="a" filename="a.bin"/>\n')
    assert v3("build-vm", "cfg.xml", "-v", "0", "-o", "x.img", "--quiet").exit_code == 0
    assert (workdir / "x.img").read_bytes()[:8] == b"v3vee\0\0\0"


CASES = {
    "no-id-no-filename": ('    <file/>\n', 'cfg.xml:3:5: <file> 0 (no id) has no filename (attribute or '
                                            '<filename> child)'),
    "no-filename": ('    <file id="a"/>\n',
                    'cfg.xml:3:5: <file id="a"> has no filename (attribute or <filename> child)'),
    "duplicate-id": ('    <file id="a" filename="a.bin"/>\n    <file id="a" filename="b.bin"/>\n',
                     'cfg.xml:4:5: <file id="a"> repeats the id of the <file> at 3:5'),
    "missing": ('    <file id="a" filename="nope.bin"/>\n',
                'cfg.xml:3:5: <file id="a">: nope.bin: No such file or directory'),
    "directory": ('    <file id="a" filename="sub"/>\n', 'cfg.xml:3:5: <file id="a">: sub: is a directory'),
    "both": ('    <file id="a" filename="a.bin"><filename>b.bin</filename></file>\n',
             "cfg.xml:3:5: <file> has both a filename attribute ('a.bin') and a <filename> child "
             "element ('b.bin') at 3:35"),
}


@pytest.mark.parametrize("name", CASES)
def test_entry_errors(workdir, v3, name):
    files_xml, message = CASES[name]
    (workdir / "sub").mkdir()
    write_cfg(workdir / "cfg.xml", files_xml)
    before = sorted(os.listdir(workdir))
    assert_one_line_error(v3("build-vm", "cfg.xml"), message, workdir, before)


def test_too_big_for_the_32_bit_size_field(workdir, v3):
    with open(workdir / "huge.bin", "wb") as fh:  # sparse: no disk used
        fh.truncate(1 << 32)
    write_cfg(workdir / "cfg.xml", '    <file id="h" filename="huge.bin"/>\n')
    before = sorted(os.listdir(workdir))
    assert_one_line_error(v3("build-vm", "cfg.xml"),
                          'cfg.xml:3:5: <file id="h">: huge.bin is 4294967296 bytes; the image\'s '
                          '32-bit size field holds at most 4294967295', workdir, before)


def test_malformed_xml(workdir, v3):
    (workdir / "cfg.xml").write_text("<vm>\n  <files>\n  </vm>\n")
    before = sorted(os.listdir(workdir))
    assert_one_line_error(v3("build-vm", "cfg.xml"),
                          "cfg.xml:3:3: unexpected closing tag </vm> (expected </files> for the tag "
                          "opened at 2:3)", workdir, before)


def test_missing_config(workdir, v3):
    before = sorted(os.listdir(workdir))
    assert_one_line_error(v3("build-vm", "none.xml"),
                          "none.xml: cannot read the configuration: No such file or directory",
                          workdir, before)


def test_version_2(workdir, v3):
    write_cfg(workdir / "cfg.xml", "")
    before = sorted(os.listdir(workdir))
    assert_one_line_error(v3("build-vm", "cfg.xml", "-v", "2"),
                          "-v 2: expected the image format version, 0 or 1", workdir, before)


def test_unwritable_output(workdir, v3):
    write_cfg(workdir / "cfg.xml", '    <file id="a" filename="a.bin"/>\n')
    before = sorted(os.listdir(workdir))
    assert_one_line_error(v3("build-vm", "cfg.xml", "-o", "no/such/dir/x.dat"),
                          "no/such/dir/x.dat: cannot write the image: No such file or directory",
                          workdir, before)


def test_output_is_a_directory(workdir, v3):
    write_cfg(workdir / "cfg.xml", "")
    (workdir / "d").mkdir()
    before = sorted(os.listdir(workdir))
    assert_one_line_error(v3("build-vm", "cfg.xml", "-o", "d"), "d: output is a directory", workdir, before)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file(workdir, v3):
    os.chmod(workdir / "a.bin", 0)
    write_cfg(workdir / "cfg.xml", '    <file id="a" filename="a.bin"/>\n')
    before = sorted(os.listdir(workdir))
    assert_one_line_error(v3("build-vm", "cfg.xml"), 'cfg.xml:3:5: <file id="a">: a.bin: Permission denied',
                          workdir, before)


# -- bad input, table-driven: exit status, one line, no file created or changed -------------------
SAME = "; refusing to overwrite an input"
BILLION_LAUGHS = ('<?xml version="1.0"?>\n<!DOCTYPE vm [\n<!ENTITY a0 "lol">\n'
                  + "".join(f'<!ENTITY a{i} "{("&a%d;" % (i - 1)) * 10}">\n' for i in range(1, 10))
                  + ']>\n<vm><name>&a9;</name></vm>\n').encode()
DEEP_ENTITIES = ("<!DOCTYPE vm [" + '<!ENTITY e0 "x">'
                 + "".join(f'<!ENTITY e{i} "&e{i - 1};">' for i in range(1, 30)) + "]><vm>&e29;</vm>").encode()
BAD_INPUT = [
    # (args, setup files {name: bytes | ("link", target) | ("symlink", target)}, exit, message)
    (["cfg.xml", "-o", "cfg.xml"], {}, 1, "-o cfg.xml: is the same file as CONFIG cfg.xml" + SAME),
    (["cfg.xml", "-o", "./cfg.xml"], {}, 1, "-o ./cfg.xml: is the same file as CONFIG cfg.xml" + SAME),
    (["./cfg.xml", "-o", "cfg.xml"], {}, 1, "-o cfg.xml: is the same file as CONFIG ./cfg.xml" + SAME),
    (["cfg.xml", "-o", "hard.xml"], {"hard.xml": ("link", "cfg.xml")}, 1,
     "-o hard.xml: is the same file as CONFIG cfg.xml" + SAME),
    (["cfg.xml", "-o", "soft.xml"], {"soft.xml": ("symlink", "cfg.xml")}, 1,
     "-o soft.xml: is the same file as CONFIG cfg.xml" + SAME),
    (["cfg.xml", "-o", "a.bin"], {}, 1, '-o a.bin: is the same file as <file id="a"> a.bin' + SAME),
    (["cfg.xml", "-o", "b.bin"], {}, 1, '-o b.bin: is the same file as <file id="b"> b.bin' + SAME),
    (["cfg.xml", "-o", "hard.bin"], {"hard.bin": ("link", "b.bin")}, 1,
     '-o hard.bin: is the same file as <file id="b"> b.bin' + SAME),
    (["sub/cfg.xml", "-o", "sub/x.bin"], {}, 1,
     '-o sub/x.bin: is the same file as <file id="x"> sub/x.bin' + SAME),
    # no -o: the default output (CONFIG.dat) is a packed file
    (["d.xml"], {}, 1, 'output d.dat: is the same file as <file id="d"> d.dat' + SAME),
    # entity bombs: refused in one line, nothing written
    (["bomb.xml"], {"bomb.xml": BILLION_LAUGHS}, 1,
     "bomb.xml:14:11: entity references expand to more than 1048576 bytes in total "
     "(refused as an entity bomb)"),
    (["deep.xml"], {"deep.xml": DEEP_ENTITIES}, 1,
     "deep.xml:1:341: entity &e16; nests 17 levels of entity references; at most 16 are allowed "
     "(refused as an entity bomb)"),
    # option values and usage
    (["cfg.xml", "-v", "abc"], {}, 1, "-v abc: expected the image format version, 0 or 1"),
    (["cfg.xml", "-v", "-1"], {}, 1, "-v -1: expected the image format version, 0 or 1"),
    (["cfg.xml", "--nosuch"], {}, 1, "No such option '--nosuch' (see `v3 build-vm --help`)"),
    ([], {}, 1, "Missing argument 'CONFIG' (see `v3 build-vm --help`)"),
    (["cfg.xml", "x.xml"], {}, 1, "Got unexpected extra argument (x.xml) (see `v3 build-vm --help`)"),
]


@pytest.mark.parametrize("args, setup, code, message", BAD_INPUT,
                         ids=[" ".join(case[0]) for case in BAD_INPUT])
def test_bad_input(workdir, bad_input, args, setup, code, message):
    write_cfg(workdir / "cfg.xml", '    <file id="a" filename="a.bin"/>\n    <file id="b" filename="b.bin"/>\n')
    write_cfg(workdir / "d.xml", '    <file id="d" filename="d.dat"/>\n')
    (workdir / "d.dat").write_bytes(b"DDDD")
    (workdir / "sub").mkdir()
    (workdir / "sub" / "x.bin").write_bytes(b"X")
    write_cfg(workdir / "sub" / "cfg.xml", '    <file id="x" filename="x.bin"/>\n')
    for name, what in setup.items():
        if isinstance(what, bytes):
            (workdir / name).write_bytes(what)
        elif what[0] == "link":
            os.link(workdir / what[1], workdir / name)
        else:
            os.symlink(what[1], workdir / name)
    bad_input(["build-vm", *args], code, message)


def test_unknown_device_class_is_a_warning_and_the_image_is_written(workdir, v3):
    from vmm.devices import known_classes
    (workdir / "cfg.xml").write_text('<vm class="PC">\n <devices>\n  <device class="8259A" id="pic"/>\n'
                                     '  <device class="NOSUCH" id="x"/>\n  <device class="APIC" id="m"/>\n'
                                     '  <device id="noclass"/>\n </devices>\n</vm>\n')
    r = v3("build-vm", "cfg.xml")
    assert (r.exit_code, r.stdout) == (0, ""), r
    assert r.stderr == (
        f"v3: warning: cfg.xml:4:3: unknown device class 'NOSUCH': v3 run will refuse it (known "
        f"classes: {', '.join(known_classes())})\n"
        f"v3: warning: cfg.xml:5:3: device class APIC is not available yet: v3 run will refuse it "
        f"unless given --omit APIC\n"
        f"v3: warning: cfg.xml:6:3: <device> without a class attribute: v3 run will refuse it\n")
    with open_image(workdir / "cfg.dat") as img:
        assert b'class="NOSUCH"' in img.xml


def test_file_without_id_is_packed_with_a_note(workdir, v3):
    """build_vm takes a <file> with no id (the no_id vector checks the bytes): a note, status 0."""
    write_cfg(workdir / "cfg.xml", '    <file filename="a.bin"/>\n    <file id="b" filename="b.bin"/>\n'
                                   '    <file><filename>a.bin</filename></file>\n')
    r = v3("build-vm", "cfg.xml")
    assert (r.exit_code, r.stdout) == (0, "")
    assert r.stderr == "".join(
        f"v3: note: cfg.xml:{line}:5: <file> {i} (a.bin) has no id: it is packed, indexed and hashed "
        f"as build_vm does, but no device can name it\n" for i, line in ((0, 3), (2, 5)))
    with open_image(workdir / "cfg.dat") as img:
        assert [(e.index, e.id, e.filename, img.read(e)) for e in img.files] == [
            (0, None, "a.bin", b"AAAA"), (1, "b", "b.bin", b"BB"), (2, None, "a.bin", b"AAAA")]
        assert img.verify() == []
