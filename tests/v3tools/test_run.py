"""`v3 run`: exact exit statuses, one-line errors on stderr, nothing left where nothing belongs.

Guests are tiny boot sectors on a 1.44 MB floppy (`--fda`), written here as bytes with their
assembly beside them (rebuild one with `nasm -f bin x.asm`; the bytes assume `org 0x7c00`).
Every run is in this process through main(), as a user's `v3 run` would be.
"""
import json
import os
import shutil
import time

import pytest

from guest_creator.init_sample import config_xml
from isoimage import STUB_KERNEL
from vmm.devices import known_classes
from vmm.board import NOT_YET_AVAILABLE

FLOPPY_SIZE = 1474560

# cli; hlt
CLI_HLT = bytes.fromhex("faf4")
# jmp $
SPIN = bytes.fromhex("ebfe")
# mov dx,0x1234; in al,dx; mov al,0xfe; out 0x64,al; cli; hlt
UNCLAIMED_IN = bytes.fromhex("ba3412ec" "b0fee664" "faf4")
# mov al,0xfe; out 0x64,al; cli; hlt            (reset through the keyboard controller)
RESET = bytes.fromhex("b0fee664" "faf4")
# mov dx,0x3f8; mov al,'Z'; out dx,al; mov al,0xfe; out 0x64,al; cli; hlt
COM1_Z = bytes.fromhex("baf803b05aee" "b0fee664" "faf4")
# xor bx,bx; mov ax,0x0e48; int 0x10; mov ax,0x0e49; int 0x10; mov al,0xfe; out 0x64,al; cli; hlt
TELETYPE_HI = bytes.fromhex("31db" "b8480ecd10" "b8490ecd10" "b0fee664" "faf4")
# A triple fault in protected mode: an IDT with limit 0, then INT 30h
# (#GP delivering 30h, #GP delivering that #GP, then the #DF cannot be delivered either).
#   cli / xor ax,ax / mov ds,ax / lgdt [gdtr] / mov eax,cr0 / or al,1 / mov cr0,eax / jmp 8:pm
#   pm: (bits 32) mov ax,0x10 / mov ds,ax / mov ss,ax / lidt [idtr] / int 0x30 / hlt
#   align 8 / gdt: dq 0, 0x00CF9A000000FFFF, 0x00CF92000000FFFF
#   gdtr: dw 23, dd gdt / idtr: dw 0, dd 0
TRIPLE_FAULT = bytes.fromhex(
    "fa31c08ed80f0116487c0f20c00c010f22c0ea177c0800"
    "66b810008ed88ed00f011d4e7c0000cd30f4"
    "90909090909090"
    "0000000000000000ffff0000009acf00ffff00000092cf00"
    "1700307c0000" "000000000000")
# Real mode honours the IVT limit: an IVT of limit 0, then INT3 (#GP, #DF, shutdown).
#   xor ax,ax / mov ds,ax / lidt [idtr] / int3 / hlt / idtr: dw 0, dd 0
IVT_LIMIT_0_INT3 = bytes.fromhex("31c08ed80f011e0b7c" "cc" "f4" "0000" "00000000")
# A limit of 15 holds vectors 0-3: INT3 reaches its handler, which resets (status 0); the
# same with INT 4 (bytes 16-19, past the limit) shuts down.
#   xor ax,ax / mov ds,ax / mov word [12],handler / mov [14],ax / lidt [idtr] / int3 / jmp $ /
#   handler: mov al,0xfe / out 0x64,al / cli / hlt / idtr: dw 15, dd 0
IVT_LIMIT_15_INT3 = bytes.fromhex("31c08ed8c7060c00157ca30e000f011e1b7cccebfeb0fee664faf40f0000000000")
#   (the same with [16], [18] and `int 4`)
IVT_LIMIT_15_INT4 = bytes.fromhex("31c08ed8c7061000167ca312000f011e1c7ccd04ebfeb0fee664faf40f0000000000")

# `v3 init`'s configuration (boot-cd = sample.iso) with a LAPIC device added
# v3 init's PC without its other APIC-platform devices: a LAPIC alone (the 8259A behind it)
LAPIC_CONFIG = config_xml()
for _dev in ('<device class="MPTABLE" id="mptable"/>',
             '<device class="IOAPIC" id="ioapic">\n            <apic>apic</apic>\n        </device>',
             '<device class="HPET" id="hpet"/>', '<device class="ACPI" id="acpi"/>'):
    assert _dev in LAPIC_CONFIG, _dev
    LAPIC_CONFIG = LAPIC_CONFIG.replace("        " + _dev + "\n", "")


def floppy(code):
    """A 1.44 MB floppy image whose boot sector is `code` (padded, with the 55AAh signature)."""
    assert len(code) <= 510
    return (code.ljust(510, b"\0") + b"\x55\xaa").ljust(FLOPPY_SIZE, b"\0")


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def fda(workdir, code, name="boot.img"):
    (workdir / name).write_bytes(floppy(code))
    return name


def assert_one_line_error(result, text, workdir, before, exit_code=1):
    assert result.exit_code == exit_code, result
    assert result.stdout == ""
    assert result.stderr == f"v3: error: {text}\n"
    assert sorted(os.listdir(workdir)) == before


# -- bad input: exit 1, one line, no file created ---------------------------------------------
def test_nothing_to_boot_names_default_image(workdir, v3):
    r = v3("run")
    assert_one_line_error(r, "nothing to boot: no IMAGE given and there is no ./image.iso "
                             "(give an image, --cdrom, --hda or --fda)", workdir, [])


@pytest.mark.parametrize("option", [None, "--cdrom", "--hda", "--fda"])
def test_missing_medium(workdir, v3, option):
    args = ["nope.img"] if option is None else [option, "nope.img"]
    r = v3("run", "--serial", "null", *args)
    prefix = "" if option is None else f"{option} "
    assert_one_line_error(r, f"{prefix}nope.img: no such file", workdir, [])


@pytest.mark.parametrize("spec, message", [
    ("bogus", "--serial bogus: expected file:PATH, stdio or null"),
    ("file:", "--serial file: needs a path (file:serial.out)"),
    ("file:/nonexistent/dir/x", "--serial file:/nonexistent/dir/x: cannot open: No such file or directory"),
])
def test_bad_serial(workdir, v3, spec, message):
    name = fda(workdir, CLI_HLT)
    r = v3("run", "--fda", name, "--serial", spec)
    assert_one_line_error(r, message, workdir, [name])


@pytest.mark.parametrize("option, path, message", [
    ("--screen", "/nonexistent/dir/screen.txt", "cannot open: No such file or directory"),
    ("--telemetry-json", ".", "is a directory"),
    ("--log", "/nonexistent/dir/vmm.log", "cannot open: No such file or directory"),
])
def test_bad_output_paths_are_refused_before_the_run(workdir, v3, option, path, message):
    name = fda(workdir, CLI_HLT)
    r = v3("run", "--fda", name, "--serial", "null", option, path)
    assert_one_line_error(r, f"{option} {path}: {message}", workdir, [name])


def test_bad_serial_leaves_no_log_file(workdir, v3):
    name = fda(workdir, CLI_HLT)
    r = v3("run", "--fda", name, "--log", "vmm.log", "--serial", "bogus")
    assert_one_line_error(r, "--serial bogus: expected file:PATH, stdio or null", workdir, [name])


def test_unknown_debug_component(workdir, v3):
    from vmm.log import COMPONENTS
    name = fda(workdir, CLI_HLT)
    r = v3("run", "--fda", name, "--serial", "null", "--debug", "io,nosuch")
    assert_one_line_error(r, f"--debug: unknown component(s) nosuch; known: "
                             f"{', '.join(COMPONENTS)}, all", workdir, [name])


@pytest.fixture
def sample(workdir, v3):
    """`v3 init`'s config.xml and sample.iso in the working directory."""
    r = v3("init")
    assert r.exit_code == 0, r
    return workdir


def test_guest_memory_larger_than_machine(workdir, v3):
    (workdir / "big.xml").write_text('<vm class="PC">\n <memory>2048</memory>\n</vm>\n')
    assert v3("build-vm", "big.xml", "-o", "big.dat").exit_code == 0
    r = v3("run", "big.dat", "--serial", "null")
    assert_one_line_error(r, "big.dat (embedded XML): the guest wants 2048 MB of memory but the "
                             "machine has 1024 MB (-m 1024); raise -m", workdir, ["big.dat", "big.xml"])


def test_lapic_config_boots_and_omit_drops_it(sample, v3):
    """Palacios' default.xml lists a LAPIC: the machine has one, and --omit still leaves it out."""
    (sample / "lapic.xml").write_text(LAPIC_CONFIG)
    assert v3("build-vm", "lapic.xml", "-o", "lapic.dat").exit_code == 0
    r = v3("run", "lapic.dat", "--serial", "file:serial.out", "--timeout", "20")
    assert r.exit_code == 0, r
    assert "hello from the boot CD" in (sample / "serial.out").read_text()
    assert "leaving out" not in r.stderr
    (sample / "serial.out").unlink()
    r = v3("run", "lapic.dat", "--serial", "file:serial.out", "--omit", "LAPIC", "--timeout", "20")
    assert r.exit_code == 0, r
    assert "leaving out device apic of class LAPIC (--omit)" in r.stderr
    assert "hello from the boot CD" in (sample / "serial.out").read_text()


def test_unknown_device_class(sample, v3):
    from vmm import devices
    (sample / "frob.xml").write_text(LAPIC_CONFIG.replace("LAPIC", "FROB"))
    assert v3("build-vm", "frob.xml", "-o", "frob.dat").exit_code == 0
    before = sorted(os.listdir(sample))
    r = v3("run", "frob.dat", "--serial", "null")
    assert_one_line_error(r, f"frob.dat (embedded XML):12: unknown device class 'FROB'; known "
                             f"classes: {', '.join(devices.known_classes())}", sample, before)
    assert "SERIAL" in r.stderr and "8254_PIT" in r.stderr


# -- exit statuses of tiny guests ---------------------------------------------------------------
def test_halt_with_interrupts_disabled_is_5(workdir, v3):
    r = v3("run", "--fda", fda(workdir, CLI_HLT), "--serial", "null")
    assert r.exit_code == 5, r
    assert r.stderr.startswith("v3: error: the guest halted with interrupts disabled")


def test_timeout_is_6_and_prompt(workdir, v3):
    name = fda(workdir, SPIN)
    t0 = time.monotonic()
    r = v3("run", "--fda", name, "--serial", "null", "--timeout", "0.5")
    assert time.monotonic() - t0 < 3
    assert r.exit_code == 6, r
    assert r.stderr.startswith("v3: error: --timeout of 0.5 s reached")


def test_triple_fault_is_4(workdir, v3):
    r = v3("run", "--fda", fda(workdir, TRIPLE_FAULT), "--serial", "null")
    assert r.exit_code == 4, r
    assert r.stderr.startswith("v3: error: triple fault:")
    assert "mode protected 32-bit" in r.stderr


@pytest.mark.parametrize("code, status", [(IVT_LIMIT_0_INT3, 4), (IVT_LIMIT_15_INT3, 0),
                                          (IVT_LIMIT_15_INT4, 4)], ids=["limit0-int3", "limit15-int3",
                                                                        "limit15-int4"])
def test_real_mode_ivt_limit(workdir, v3, code, status):
    r = v3("run", "--fda", fda(workdir, code), "--serial", "null")
    assert r.exit_code == status, r
    if status == 4:
        assert r.stderr.startswith("v3: error: triple fault: faults while delivering ")
        assert "#GP general protection and #GP general protection" in r.stderr
        assert "mode real" in r.stderr


def test_unclaimed_port_is_a_fail_stop_with_diagnostic(workdir, v3):
    r = v3("run", "--fda", fda(workdir, UNCLAIMED_IN), "--serial", "null")
    assert r.exit_code == 3, r
    first, *rest = r.stderr.splitlines()
    assert first == "v3: error: unclaimed read of 1 byte(s) port 0x1234"
    diag = "\n".join(rest)
    # the state is the faulting IN's: EIP at 0x7c03, the code shown starts with EC (in al,dx)
    assert "CS:EIP 0000:00007c03" in diag
    assert "mode real" in diag
    assert "EDX=00001234" in diag
    assert "code at EIP: ec b0 fe" in diag
    assert "last exits:" in diag


def test_io_policy_ignore_continues(workdir, v3):
    r = v3("run", "--fda", fda(workdir, UNCLAIMED_IN), "--serial", "null", "--io-policy", "ignore")
    assert r.exit_code == 0, r
    assert "ignoring unclaimed port 0x1234" in r.stderr
    assert "v3 run: guest reset" in r.stderr


def test_reset_before_until_is_7(workdir, v3):
    r = v3("run", "--fda", fda(workdir, RESET), "--serial", "null", "--until", "NEVER")
    assert r.exit_code == 7, r
    assert r.stderr.startswith("v3: error: the guest requested reset before 'NEVER' appeared")


def test_until_seen_on_com1_is_0(workdir, v3):
    r = v3("run", "--fda", fda(workdir, COM1_Z), "--serial", "file:serial.out", "--until", "Z")
    assert r.exit_code == 0, r
    assert (workdir / "serial.out").read_bytes() == b"Z"


def test_reset_without_until_is_0(workdir, v3):
    r = v3("run", "--fda", fda(workdir, RESET), "--serial", "null")
    assert (r.exit_code, r.stdout) == (0, ""), r
    assert r.stderr == "v3 run: guest reset\n"


# -- outputs ------------------------------------------------------------------------------------
def test_screen_dump(workdir, v3):
    r = v3("run", "--fda", fda(workdir, TELETYPE_HI), "--serial", "file:serial.out",
           "--screen", "screen.txt")
    assert r.exit_code == 0, r
    assert "HI" in (workdir / "screen.txt").read_text()
    assert b"HI" not in (workdir / "serial.out").read_bytes()


def test_bios_console_mirrors_teletype_to_serial(workdir, v3):
    r = v3("run", "--fda", fda(workdir, TELETYPE_HI), "--serial", "file:serial.out",
           "--screen", "screen.txt", "--bios-console", "serial")
    assert r.exit_code == 0, r
    assert "HI" in (workdir / "screen.txt").read_text()
    assert b"HI" in (workdir / "serial.out").read_bytes()


def test_telemetry_json(workdir, v3):
    r = v3("run", "--fda", fda(workdir, RESET), "--serial", "null", "--telemetry-json", "t.json")
    assert r.exit_code == 0, r
    d = json.loads((workdir / "t.json").read_text())
    assert d["exits"]["port_io"]["0x0064"] == {"reads": 0, "writes": 1}
    assert d["wall_time_s"] > 0


def test_telemetry_table_on_stderr(workdir, v3):
    r = v3("run", "--fda", fda(workdir, RESET), "--serial", "null", "--telemetry")
    assert r.exit_code == 0, r
    assert r.stdout == ""
    assert "v3 run telemetry" in r.stderr
    assert "0x0064" in r.stderr
    assert "wall time" in r.stderr


def test_telemetry_table_after_a_fail_stop(workdir, v3):
    r = v3("run", "--fda", fda(workdir, UNCLAIMED_IN), "--serial", "null", "--telemetry")
    assert r.exit_code == 3, r
    assert "v3 run telemetry" in r.stderr
    assert "v3: error: unclaimed read" in r.stderr


def test_log_file_gets_vmm_log_not_serial(workdir, v3):
    r = v3("run", "--fda", fda(workdir, COM1_Z), "--serial", "file:serial.out",
           "--log", "vmm.log", "--debug", "io")
    assert r.exit_code == 0, r
    log = (workdir / "vmm.log").read_text()
    assert "out 0x0064" in log and "out 0x03f8" in log
    assert (workdir / "serial.out").read_bytes() == b"Z"
    assert "out 0x0064" not in r.stderr


def test_an_xml_configuration_is_not_booted(workdir, v3):
    (workdir / "config.xml").write_text('<vm class="PC"><memory>16</memory></vm>\n')
    r = v3("run", "config.xml", "--serial", "null")
    assert_one_line_error(r, "config.xml looks like a Palacios XML configuration, not a bootable "
                             "image: build it first (v3 build-vm config.xml -o image.dat, then "
                             "v3 run image.dat)", workdir, ["config.xml"])


# -- bad input, table-driven: exit status, one line, no file created or changed -------------------
SAME = "; refusing to overwrite an input"
OWN = "; give each output its own file"
LATER = sorted(c for c in NOT_YET_AVAILABLE if c not in known_classes())   # --omit takes them too
BAD_INPUT = [
    # (args, exit, message). The directory holds image.dat (a guest image whose FILEDISK `d`
    # has <path>disk.img</path>), image.iso (a copy of boot.img), boot.img (a floppy that
    # halts), disk.img, hard.img (a hard link to boot.img).
    (["image.dat", "--serial", "file:image.dat"], 1,
     "--serial file:image.dat: is the same file as IMAGE image.dat" + SAME),
    (["image.dat", "--serial", "file:./image.dat"], 1,
     "--serial file:./image.dat: is the same file as IMAGE image.dat" + SAME),
    (["image.dat", "--serial", "null", "--screen", "image.dat"], 1,
     "--screen image.dat: is the same file as IMAGE image.dat" + SAME),
    (["image.dat", "--serial", "null", "--log", "image.dat"], 1,
     "--log image.dat: is the same file as IMAGE image.dat" + SAME),
    (["image.dat", "--serial", "null", "--telemetry-json", "image.dat"], 1,
     "--telemetry-json image.dat: is the same file as IMAGE image.dat" + SAME),
    (["image.dat", "--serial", "file:disk.img"], 1,
     "--serial file:disk.img: is the same file as FILEDISK d <path> disk.img" + SAME),
    (["--serial", "file:image.iso"], 1, "--serial file:image.iso: is the same file as IMAGE image.iso" + SAME),
    (["--fda", "boot.img", "--serial", "file:hard.img"], 1,
     "--serial file:hard.img: is the same file as --fda boot.img" + SAME),
    (["--hda", "disk.img", "--serial", "file:disk.img"], 1,
     "--serial file:disk.img: is the same file as --hda disk.img" + SAME),
    (["--cdrom", "disk.img", "--serial", "null", "--screen", "disk.img"], 1,
     "--screen disk.img: is the same file as --cdrom disk.img" + SAME),
    (["--fda", "boot.img", "--bios", "disk.img", "--serial", "null", "--log", "disk.img"], 1,
     "--log disk.img: is the same file as --bios disk.img" + SAME),
    (["--fda", "boot.img", "--serial", "file:out.txt", "--log", "./out.txt"], 1,
     "--log ./out.txt: is the same file as --serial file:out.txt" + OWN),
    (["--fda", "boot.img", "--serial", "null", "--screen", "s.txt", "--telemetry-json", "s.txt"], 1,
     "--telemetry-json s.txt: is the same file as --screen s.txt" + OWN),
    (["--fda", "boot.img", "--serial", "null", "--nic", "user", "--pcap", "./boot.img"], 1,
     "--pcap ./boot.img: is the same file as --fda boot.img" + SAME),
    (["--fda", "boot.img", "--serial", "null", "--until", "x", "--savevm", "hard.img"], 1,
     "--savevm hard.img: is the same file as --fda boot.img" + SAME),
    (["--kernel", "bz", "--serial", "file:bz"], 1, "--serial file:bz: is the same file as --kernel bz" + SAME),
    (["--kernel", "bz", "--initrd", "disk.img", "--serial", "null", "--log", "disk.img"], 1,
     "--log disk.img: is the same file as --initrd disk.img" + SAME),
    # option values: one line naming the option and what it expects
    *[(["--fda", "boot.img", "-m", m], 1, f"-m {m}: expected the machine's memory in MB, a whole "
                                          f"number from 1 to 3584 (or a size: 512M, 1G)")
      for m in ("0", "-5", "abc", "3585", "1.5")],
    *[(["--fda", "boot.img", "--timeout", t], 1, f"--timeout {t}: expected a number of seconds "
                                                 f"above 0 and at most 1000000")
      for t in ("nan", "inf", "-inf", "1e300", "0", "-1", "abc", "1000001")],
    (["--fda", "boot.img", "--smp", "2"], 1, "-smp 2: only one core is implemented so far"),
    (["--fda", "boot.img", "--boot", "x"], 1, "-boot x: expected d (CD), c (disk) or a (floppy)"),
    (["--fda", "boot.img", "--zzzz"], 1, "No such option '--zzzz' (see `v3 run --help`)"),
    # inputs that cannot work
    (["--fda", "boot.img", "--serial", "null", "--omit", "NOSUCH"], 1,
     f"--omit NOSUCH: unknown device class; known: {', '.join(known_classes() + LATER)}"),
    (["sub", "--serial", "null"], 1, "sub: is a directory"),
    (["--cdrom", "sub", "--serial", "null"], 1, "--cdrom sub: is a directory"),
    (["--hda", "sub/", "--serial", "null"], 1, "--hda sub/: is a directory"),
    (["nope.img", "--serial", "null"], 1, "nope.img: no such file"),
]


def test_library_refuses_bad_numbers(workdir):
    from v3tools.errors import V3Error
    from vmm.launch import RunOptions, run
    for opts, message in ((RunOptions(fda="x", timeout=float("nan")), "--timeout nan: expected"),
                          (RunOptions(fda="x", timeout=1e300), "--timeout 1e+300: expected"),
                          (RunOptions(fda="x", memory_mb=0), "-m 0: expected")):
        with pytest.raises(V3Error, match=message.replace("+", r"\+")):
            run(opts)


def test_bare_v3_prints_the_commands(v3):
    r = v3()
    assert r.exit_code == 0 and "Commands:" in r.stdout and r.stderr == ""


@pytest.fixture
def baddir(workdir, v3):
    (workdir / "cfg.xml").write_text(
        '<vm class="PC"><memory>16</memory><devices>'
        '<device class="FILEDISK" id="d"><path>disk.img</path></device></devices></vm>\n')
    assert v3("build-vm", "cfg.xml", "-o", "image.dat").exit_code == 0
    os.unlink(workdir / "cfg.xml")
    fda(workdir, CLI_HLT)
    fda(workdir, CLI_HLT, "image.iso")
    (workdir / "disk.img").write_bytes(bytes(512 * 64))
    os.link(workdir / "boot.img", workdir / "hard.img")
    (workdir / "sub").mkdir()
    shutil.copy(STUB_KERNEL, workdir / "bz")
    return workdir


@pytest.mark.parametrize("args, code, message", BAD_INPUT, ids=[" ".join(c[0]) for c in BAD_INPUT])
def test_bad_input(baddir, bad_input, args, code, message):
    bad_input(["run", *args], code, message)


def test_kernel_bad_input_is_one_line(workdir, v3):
    (workdir / "notakernel").write_bytes(b"hello\n" * 200)
    (workdir / "initrd").write_bytes(b"x")
    before = sorted(os.listdir(workdir))
    r = v3("run", "-kernel", "notakernel", "--serial", "file:serial.out")
    assert_one_line_error(r, "--kernel notakernel: neither a Linux bzImage (no boot sector "
                             "signature and 'HdrS' setup header at 0x1FE/0x202) nor an ELF or "
                             "multiboot kernel", workdir, before)
    r = v3("run", "-initrd", "initrd", "--serial", "null")
    assert_one_line_error(r, "--initrd needs --kernel", workdir, before)
    r = v3("run", "--kernel", "missing", "--serial", "null")
    assert_one_line_error(r, "--kernel missing: no such file", workdir, before)


# -- network options: bad input is one line before the guest starts, nothing written ----------
@pytest.mark.parametrize("args, message", [
    (["--nic", "user,model=e1000"], "--nic user,model=e1000: unknown NIC model 'e1000' "
                                    "(known: rtl8139, ne2k_pci)"),
    (["--nic", "slirp"], "--nic slirp: unknown network backend 'slirp' (known: user, tap)"),
    (["--nic", "user,hostfwd=tcp:127.0.0.1:80"], "hostfwd=tcp:127.0.0.1:80: expected "
                                                 "[tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT"),
    (["--nic", "user,mac=01:02:03:04:05:06"], "--nic user,mac=01:02:03:04:05:06: mac: "
                                              "01:02:03:04:05:06 is a multicast address, not a "
                                              "card's address"),
    (["--nic", "tap,ifname=v3-no-such-tap"], "tap v3-no-such-tap: no such network interface "
                                             "(create it first: ip tuntap add v3-no-such-tap "
                                             "mode tap)"),
    (["-net", "nic,model=rtl8139"], "-net nic: no backend for the card (add -net user or -net "
                                    "tap,ifname=NAME)"),
    (["-net", "user", "-net", "nic", "-redir", "tcp:x:10.0.2.15:80"],
     "-redir tcp:x:10.0.2.15:80: port 'x' is not a number from 1 to 65535"),
    (["--nic", "user", "--pcap", "/nonexistent/dir/x.pcap"],
     "--pcap /nonexistent/dir/x.pcap: cannot open: No such file or directory"),
])
def test_bad_network_options(workdir, v3, args, message):
    name = fda(workdir, CLI_HLT)
    r = v3("run", "--fda", name, "--serial", "null", *args)
    assert_one_line_error(r, message, workdir, [name])


def test_host_port_in_use(workdir, v3):
    import socket
    name = fda(workdir, CLI_HLT)
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    port = s.getsockname()[1]
    try:
        r = v3("run", "--fda", name, "--serial", "null", "--nic",
               f"user,hostfwd=tcp:127.0.0.1:{port}-:80")
    finally:
        s.close()
    assert_one_line_error(r, f"hostfwd tcp:127.0.0.1:{port}-:80: cannot listen on "
                             f"127.0.0.1:{port}: address already in use", workdir, [name])
