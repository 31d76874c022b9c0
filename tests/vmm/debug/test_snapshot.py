"""VM snapshots (vmm/debug/snapshot.py; v3 run --savevm/--loadvm, v3 inspect): Debian's i386
kernel booted once to its busybox shell and saved; the snapshot restored twice in fresh
machines continues the same guest, whose shell answers the same command the same way."""
import zipfile
import json

import pytest

from v3tools import artefacts
from v3tools.errors import SnapshotError, V3Error
from vmm.debug import snapshot
from vmm.launch import RunOptions, run

LINUX_MARKER = "v3 guest: busybox initramfs up"


@pytest.fixture(scope="module")
def booted(tmp_path_factory, require_artefact, linux_iso):
    """(options, snapshot path): Debian i386 booted directly to /init's marker, then saved."""
    from isoimage import read_file_from_iso
    kernel = require_artefact(artefacts.debian_kernel, "i386")
    d = tmp_path_factory.mktemp("snap")
    (d / "initrd.img").write_bytes(read_file_from_iso(str(linux_iso), "/initrd.img"))
    base = dict(kernel=str(kernel), initrd=str(d / "initrd.img"), append="console=ttyS0",
                memory_mb=128)
    snap = d / "booted.v3snap"
    result, _ = run(RunOptions(**base, serial=f"file:{d / 'boot.out'}", until=LINUX_MARKER,
                               timeout=240, savevm=str(snap)))
    assert result.status == 0 and "saved the machine" in result.reason
    return base, snap, d


def _resume_and_type(base, snap, serial, command, until):
    typed = []

    def on_machine(machine):
        console = machine.ctx.console

        def on_output(data):
            # type once the shell has asked for the cursor position after its prompt (busybox
            # does, ESC [6n), so that input and output interleave the same way in every run
            if not typed and bytes(console.captured[-64:]).endswith(b"# \x1b[6n"):
                typed.append(True)
                console.feed(command)
        console.listeners.append(on_output)
        console.feed(b"\n")                     # a fresh prompt to answer
    result, machine = run(RunOptions(**base, serial=f"file:{serial}", until=until, timeout=60,
                                     loadvm=str(snap)), on_machine=on_machine)
    return result, serial.read_bytes().decode("latin-1")


def _shell_side(text):
    """The shell's side of a console transcript, as lines. Kernel log lines (printk,
    "[ 4.458646] ...") reach the console asynchronously, and busybox's cursor query (ESC [6n)
    after a prompt waits on a host-timed reply, so where these land and how many empty prompts
    show depend on host timing: they are left out."""
    import re
    text = re.sub(r"\[\s*\d+\.\d+\] [^\r\n]*(\r?\n)?", "", text).replace("\x1b[6n", "")
    return [line.strip() for line in text.splitlines() if line.strip() not in ("", "/ #")]


def test_restored_guest_continues_and_answers(booted):
    base, snap, d = booted
    outputs = []
    for i in range(2):
        result, text = _resume_and_type(base, snap, d / f"resume{i}.out",
                                        b"echo restored-$((6*7)); cat /proc/cmdline\n",
                                        "restored-42")
        assert result.status == 0, text[-1500:]
        assert "Linux version" not in text            # no second boot: it continued
        outputs.append(text)
    assert _shell_side(outputs[0]) == _shell_side(outputs[1])
    assert "restored-42" in _shell_side(outputs[0])


def test_snapshot_is_sparse_documented_and_inspectable(booted, v3):
    base, snap, d = booted
    with zipfile.ZipFile(snap) as z:
        assert set(z.namelist()) == {"v3snapshot.json", "cpu.context", "ram.index", "ram.pages"}
        meta = json.loads(z.read("v3snapshot.json"))
    assert meta["format"] == "v3tools VM snapshot" and meta["version"] == 1
    assert 0 < meta["ram"]["pages"] * 4096 < meta["ram"]["bytes"]        # sparse
    assert meta["clock"]["now_ns"] > 0
    serial = meta["state"]["device:serial"]                               # named fields
    assert "uarts" in serial
    r = v3("inspect", str(snap))
    assert r.exit_code == 0, r
    assert "v3 VM snapshot, format version 1" in r.stdout
    assert "non-zero pages" in r.stdout and "SERIAL serial" in r.stdout


def test_bad_snapshot_inputs(booted, tmp_path):
    base, snap, d = booted
    junk = tmp_path / "junk.v3snap"
    junk.write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(SnapshotError, match=r"junk.v3snap: not a v3 VM snapshot$"):
        run(RunOptions(**base, serial="null", loadvm=str(junk)))
    newer = tmp_path / "newer.v3snap"
    with zipfile.ZipFile(snap) as src, zipfile.ZipFile(newer, "w") as dst:
        for name in src.namelist():
            data = src.read(name)
            if name == "v3snapshot.json":
                meta = json.loads(data)
                meta["version"] = 99
                data = json.dumps(meta)
            dst.writestr(name, data)
    with pytest.raises(SnapshotError, match=r"format version 99 is newer than this v3's \(1\)$"):
        run(RunOptions(**base, serial="null", loadvm=str(newer)))
    other = dict(base, memory_mb=256)
    with pytest.raises(SnapshotError, match=r"saved from another machine \(memory_size differ"):
        run(RunOptions(**other, serial="null", loadvm=str(snap)))
    with pytest.raises(V3Error, match=r"^--savevm needs --until TEXT"):
        run(RunOptions(**base, serial="null", savevm=str(tmp_path / "x.v3snap")))
    assert not (tmp_path / "x.v3snap").exists()


def _pc_with_nic(nic_option):
    """The standard PC (32 MiB) with `--nic nic_option`, assembled but not run: (machine, card)."""
    from vmm.config import parse_vm_config
    from vmm.launch import standard_pc_xml
    from vmm.machine import Machine
    from vmm.net.card import PciNic
    from vmm.net.options import add_to_config
    cfg = parse_vm_config(standard_pc_xml(32).encode(), "<standard PC>")
    add_to_config(cfg, [nic_option])
    m = Machine(memory_mb=32)
    m.add_devices(cfg.devices)
    m.finish_board()
    return m, next(d for d in m.ctx.devices.values() if isinstance(d, PciNic))


def test_rtl8139_in_c_plus_mode_saves_and_restores_its_rings(tmp_path):
    """The C+ state (vmm/devices/rtl8139_cplus.py) is the card's: CpCmd, ring addresses and
    indices, and the receive path it selects come back."""
    from vmm.bios import pci_init

    def build():
        return _pc_with_nic("user,model=rtl8139,restrict=on,cplus=on")
    m, nic = build()
    pci_init.assign(m.ctx)
    bar = nic.cfg.bar(1)
    m.ctx.mmio.write(bar + 0xE0, 2, 0x003B)
    m.ctx.mmio.write(bar + 0xE4, 4, 0x123000)
    m.ctx.mmio.write(bar + 0x20, 4, 0x124000)
    nic.cp.tx_index[0], nic.cp.rx_index = 5, 7
    path = tmp_path / "cplus.v3snap"
    snapshot.save(m, str(path))
    m.close()
    m2, nic2 = build()
    snapshot.load(m2, str(path))
    assert m2.ctx.mmio.read(bar + 0xE0, 2) == 0x003B
    assert m2.ctx.mmio.read(bar + 0xE4, 4) == 0x123000
    assert m2.ctx.mmio.read(bar + 0x20, 4) == 0x124000
    assert (nic2.cp.tx_index[0], nic2.cp.rx_index) == (5, 7)
    assert nic2.store == nic2.cp._store and nic2.cp.nic is nic2
    m2.close()


def test_machine_with_a_nic_saves_and_restores_its_pci_bars(tmp_path):
    """A PCI card's BAR mappings are wiring that follows from its configuration space: the
    snapshot saves the space, and a restored machine maps the BARs where the guest put them."""
    from vmm.bios import pci_init

    def build():
        return _pc_with_nic("user,model=rtl8139,restrict=on")
    m, nic = build()
    pci_init.assign(m.ctx)                        # what the BIOS does at POST
    io_bar, mmio_bar = nic.cfg.bar(0), nic.cfg.bar(1)
    assert io_bar and mmio_bar
    m.ctx.mmio.write(mmio_bar + 0x3C, 2, 0x0005)   # IMR: state that must come back
    path = tmp_path / "nic.v3snap"
    snapshot.save(m, str(path))
    m.close()
    m2, nic2 = build()
    assert m2.ctx.mmio.find(mmio_bar) is None      # nothing mapped before the restore
    snapshot.load(m2, str(path))
    assert m2.ctx.mmio.read(mmio_bar + 0x3C, 2) == 0x0005
    assert m2.ctx.io.read(io_bar + 0x3C, 2) == 0x0005
    assert m2.ctx.mmio.read(mmio_bar + 0x40, 4) & 0x7C800000 == 0x74000000
    m2.close()


def test_ne2000_restores_into_the_buffers_its_fast_path_holds(tmp_path, require_built):
    """The NE2000's registers and packet memory live in bytearrays its C fast path holds: a
    restore fills them in place, so the port accesses the fast path does after it see the
    restored state (a new bytearray would leave it on the old one)."""
    from vmm.bios import pci_init

    def build():
        return _pc_with_nic("user,model=ne2k_pci,restrict=on")
    m, nic = build()
    require_built(nic.fast is not None, "vmm/devices/_ne2000.c")
    pci_init.assign(m.ctx)
    bar = nic.cfg.bar(0)
    m.ctx.io.write(bar + 0x03, 1, 0x5A)            # BNRY
    nic.mem[0x4000:0x4004] = b"v3v3"
    path = tmp_path / "ne.v3snap"
    snapshot.save(m, str(path))
    m.close()
    m2, nic2 = build()
    regs, mem = nic2.regs, nic2.mem
    snapshot.load(m2, str(path))
    assert nic2.regs is regs and nic2.mem is mem
    assert nic2.fast.port_in(0x03, 1) == 0x5A      # the C path reads the restored register
    nic2.regs[8:12] = bytes([0x00, 0x40, 0x04, 0x00])   # RSAR 0x4000, RBCR 4
    assert nic2.fast.port_in(0x10, 4) == int.from_bytes(b"v3v3", "little")
    m2.close()


def test_ne2000_snapshot_of_the_older_layout_keeps_the_fast_path_in_step(tmp_path,
                                                                        require_built):
    """A file saved before the registers moved into `regs` names them one by one (cr, isr, imr,
    par ...). It still loads, and the fast path's view of the interrupt line follows the
    restored line: with the line up, clearing the last pending bit is left to the model, which
    lowers the line."""
    import base64
    import json
    import zipfile
    from vmm.bios import pci_init
    m, nic = _pc_with_nic("user,model=ne2k_pci,restrict=on")
    require_built(nic.fast is not None, "vmm/devices/_ne2000.c")
    pci_init.assign(m.ctx)
    bar = nic.cfg.bar(0)
    for reg, value in ((0x0E, 0x49), (0x01, 0x4C), (0x02, 0x80), (0x03, 0x4C), (0x0F, 0x01),
                       (0x0C, 0x04), (0x00, 0x22)):
        m.ctx.io.write(bar + reg, 1, value)
    nic.receive(b"\xff" * 6 + bytes(58))               # PRX with IMR.PRX: the line is up
    assert nic.irq.level == 1
    path = tmp_path / "old.v3snap"
    snapshot.save(m, str(path))
    m.close()
    # rewrite the card's state as the older layout saved it
    with zipfile.ZipFile(path) as z:
        members = {n: z.read(n) for n in z.namelist()}
    meta = json.loads(members["v3snapshot.json"])
    dev = meta["state"]["device:" + nic.id]
    regs = nic.regs
    dev.pop("regs")
    for name in ("cr", "pstart", "pstop", "bnry", "tpsr", "isr", "rcr", "tcr", "dcr", "imr",
                 "curr", "tsr", "rsr", "tbcr", "rsar", "rbcr"):
        dev[name] = getattr(nic, name)
    dev["par"] = {"__bytes__": base64.b64encode(bytes(regs[20:26])).decode(), "mutable": True}
    members["v3snapshot.json"] = json.dumps(meta).encode()
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    m2, nic2 = _pc_with_nic("user,model=ne2k_pci,restrict=on")
    snapshot.load(m2, str(path))
    assert nic2.irq.level == 1 and nic2.isr & 0x01 and bytes(nic2.par) == bytes(regs[20:26])
    assert nic2.fast.port_out(0x07, 1, 0x01) is False  # would lower the line: the model's
    m2.ctx.io.write(bar + 0x07, 1, 0x01)
    assert nic2.irq.level == 0
    m2.close()
