"""Acceptance: networking with Debian's own drivers (8139too, ne2k-pci from the kernel package)
and busybox-static in the guest, libslirp as the user-mode network, tcpdump reading the capture.

Each test is one boot in this process; the host side (HTTP clients and servers) runs in a
thread while the run loop runs the guest. Host ports are on 127.0.0.1 only; the user-mode
network is restricted except where the guest must reach the host.
"""
import hashlib
import http.server
import os
import random
import socket
import subprocess
import threading
import urllib.request
from pathlib import Path

import pytest

from guest_creator.netguest import LEASE, READY
from v3tools import artefacts
from vmm.launch import RunOptions, run

BIG = 8 << 20
APPEND = "console=ttyS0"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.fixture(scope="module")
def i386_parts(require_artefact):
    kernel = require_artefact(artefacts.debian_kernel, "i386")
    busybox = require_artefact(artefacts.busybox_static, "i386")
    require_artefact(artefacts.isolinux_bin)
    return kernel, busybox


def make_net_iso(path, parts, append=APPEND, big=None):
    from guest_creator.mkguest import mkguest
    kernel, busybox = parts
    add = [(str(big), "/www/big")] if big else []
    mkguest(path, kernel=kernel, busybox=busybox, net=True, add=add, append=append)
    return path


@pytest.fixture(scope="module")
def big_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("big") / "big"
    path.write_bytes(random.Random(8).randbytes(BIG))
    return path


@pytest.fixture(scope="module")
def net_isos(tmp_path_factory, require_artefact, big_file):
    """arch -> the networked guest CD with the 8 MiB file (built on first use)."""
    cache = {}

    def get(arch):
        if arch not in cache:
            parts = (require_artefact(artefacts.debian_kernel, arch),
                     require_artefact(artefacts.busybox_static, arch))
            require_artefact(artefacts.isolinux_bin)
            cache[arch] = make_net_iso(tmp_path_factory.mktemp(f"netiso-{arch}") / "net.iso",
                                       parts, big=big_file)
        return cache[arch]
    return get


def boot_with_client(tmp_path, client, timeout=300, **kw):
    """Boot; once the guest says READY, run `client()` in a thread, then end the run through
    the guest's shell. Returns (serial text, client's result or exception)."""
    done = "v3net-done-42"
    out = {}

    def on_machine(machine):
        console = machine.ctx.console

        def work():
            try:
                out["result"] = client()
            except BaseException as exc:      # reported by the test
                out["error"] = exc
            console.feed(b"echo v3net-done-$((6*7))\n")

        def on_output(data):
            if "started" not in out and READY.encode() in console.captured:
                out["started"] = True
                threading.Thread(target=work, daemon=True).start()
        console.listeners.append(on_output)

    serial = tmp_path / "serial.out"
    result, machine = run(RunOptions(serial=f"file:{serial}", until=done, timeout=timeout, **kw),
                          on_machine=on_machine)
    text = serial.read_bytes().decode("latin-1")
    if "error" in out:
        raise AssertionError(f"host client failed: {out['error']!r}\n{text[-3000:]}")
    assert result.status == 0, text[-3000:]
    return text, out.get("result"), machine


def fetch(url, timeout=120):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read()


CARDS = [("i386", "rtl8139", "8139too"), ("amd64", "rtl8139", "8139too"),
         ("i386", "ne2k_pci", "ne2k-pci"), ("amd64", "ne2k_pci", "ne2k-pci"),
         # the RTL8139C+ in C+ mode, QEMU's rtl8139: Debian's 8139cp with its offloads
         ("i386", "rtl8139,cplus=on", "8139cp"), ("amd64", "rtl8139,cplus=on", "8139cp")]


@pytest.mark.parametrize("arch, model, driver", CARDS)
def test_user_network_dhcp_hostfwd_big_file_and_pcap(tmp_path, net_isos, big_file, require_tool,
                                                     require_built, model, driver, arch):
    tcpdump = require_tool("tcpdump", "tcpdump")
    port = free_port()
    pcap = tmp_path / "wire.pcap"

    def client():
        page = fetch(f"http://127.0.0.1:{port}/")
        big = fetch(f"http://127.0.0.1:{port}/big")
        return page, big

    serial, (page, big), machine = boot_with_client(
        tmp_path, client, cdrom=str(net_isos(arch)), pcap=str(pcap),
        nic=(f"user,model={model},restrict=on,hostfwd=tcp:127.0.0.1:{port}-:80",))
    assert f"{driver} 0000:00:" in serial
    assert f"{LEASE} 10.0.2.15" in serial
    assert page == b"hello from the v3 guest\n"
    assert hashlib.sha256(big).digest() == hashlib.sha256(big_file.read_bytes()).digest()
    dump = subprocess.run([str(tcpdump), "-n", "-r", str(pcap)], capture_output=True, text=True)
    assert dump.returncode == 0, dump.stderr
    for what in ("DHCP, Request", "DHCP, Reply", "10.0.2.15.80 > "):
        assert what in dump.stdout, dump.stdout[:2000]
    if driver == "8139too":
        card = machine.ctx.devices["nic0"]
        fast = card.bars.handlers[1][4]
        require_built(fast is not None, "the RTL8139 fast path (vmm/devices/_rtl8139.c)")
        # 8139too's register reads, acknowledges and CAPR writes went through the register
        # fast path in C: several per frame; its transmits and the frames it received too
        assert fast.done > 2 * (card.stats["tx"] + card.stats["rx"]), (fast.done, card.stats)
        assert fast.frames_sent > card.stats["tx"] // 2, (fast.frames_sent, card.stats)
    card = machine.ctx.devices["nic0"]
    require_built(card.fast_rx is not None, "the cards' frame paths in C")
    # frames into the NE2000's ring, the classic ring or the C+ descriptors were stored in C
    assert card.fast_rx.frames_stored > card.stats["rx"] // 2, (card.fast_rx.frames_stored,
                                                                card.stats)
    if driver == "8139cp":
        assert "(id 10ec:8139 rev 20) is an enhanced 8139C+ chip, use 8139cp" in serial
        # Debian's 8139cp turns scatter-gather, checksum offload and TSO on: the download
        # goes out as large sends, other TCP/UDP with checksum requests
        assert card.stats["tx_large_send"] > 0 and card.stats["tx_checksum"] > 0, card.stats


def test_seed_legacy_line_and_outbound_fetch(tmp_path, i386_parts, require_built):
    """The seeds' line verbatim with a real port, and the guest fetching a page from a server
    on the host's 127.0.0.1 through 10.0.2.2 (NAT; not restricted)."""
    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = b"page-from-the-host"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        host_port = server.server_address[1]
        iso = make_net_iso(tmp_path / "out.iso", i386_parts,
                           append=f"{APPEND} v3net.fetch=http://10.0.2.2:{host_port}/")
        port = free_port()
        serial, page, machine = boot_with_client(
            tmp_path, lambda: fetch(f"http://127.0.0.1:{port}/"), cdrom=str(iso),
            net=("user", "nic,model=rtl8139"), redir=(f"tcp:{port}:10.0.2.15:80",))
    finally:
        server.shutdown()
    assert "v3net: fetched [page-from-the-host]" in serial
    assert page == b"hello from the v3 guest\n"
    # no capture: the card and libslirp exchanged frames C to C (vmm/net/framepath.h)
    glue = machine.ctx.devices["nic0"].port.backend.fast_sender()
    require_built(glue is not None, "libslirp's glue in C (vmm/net/_slirpio.c)")
    counts = glue.counts()
    assert counts["rx_fast"] > 10 and counts["tx_fast"] > 10, counts


def test_tap_in_a_private_network_namespace(tmp_path, i386_parts, require_tool):
    """As root: a namespace of our own with a TAP interface; `v3 run --nic tap,ifname=...`
    runs inside it and a client in the namespace fetches the guest's page over the TAP."""
    import sys
    ip = require_tool("ip", "iproute2")
    if os.geteuid() != 0 and os.environ.get("CI") != "true":
        pytest.skip("the TAP test needs root (a network namespace and a TAP device of its own)")
    ns = f"v3test{os.getpid()}"
    subprocess.run([str(ip), "netns", "add", ns], check=True)
    proc = None
    try:
        inns = [str(ip), "netns", "exec", ns]
        for cmd in (["ip", "tuntap", "add", "v3tap0", "mode", "tap"],
                    ["ip", "addr", "add", "10.9.0.1/24", "dev", "v3tap0"],
                    ["ip", "link", "set", "v3tap0", "up"], ["ip", "link", "set", "lo", "up"]):
            subprocess.run(inns + cmd, check=True)
        iso = make_net_iso(tmp_path / "tap.iso", i386_parts, append=f"{APPEND} v3net.ip=10.9.0.2")
        serial = tmp_path / "serial.out"
        repo = Path(__file__).resolve().parents[2]
        proc = subprocess.Popen(inns + [sys.executable, "-m", "v3tools", "run", "--cdrom",
                                        str(iso), "--serial", f"file:{serial}", "--timeout",
                                        "600", "--nic", "tap,ifname=v3tap0,model=rtl8139",
                                        "--pcap", str(tmp_path / "tap.pcap")],
                                cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        import time
        while proc.poll() is None and READY.encode() not in (serial.read_bytes()
                                                             if serial.exists() else b""):
            time.sleep(0.5)
        assert proc.poll() is None, proc.communicate()[1].decode()
        fetched = subprocess.run(inns + [sys.executable, "-c",
                                         "import urllib.request,sys;sys.stdout.write(urllib."
                                         "request.urlopen('http://10.9.0.2/',timeout=60)."
                                         "read().decode())"],
                                 capture_output=True, text=True, timeout=120)
        assert fetched.stdout == "hello from the v3 guest\n", fetched.stderr
    finally:
        if proc is not None and proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=30)
        subprocess.run([str(ip), "netns", "delete", ns])


def test_guest_image_xml_declares_card_and_user_backend(tmp_path, monkeypatch, v3, i386_parts):
    """Palacios' shape: the card on the PCI bus and a NIC_BRIDGE naming it as its frontend,
    with the user-mode backend and a host forward as children; built by `v3 build-vm`."""
    from guest_creator.init_sample import config_xml
    monkeypatch.chdir(tmp_path)
    make_net_iso(tmp_path / "guest.iso", i386_parts, append=f"{APPEND} v3net.www=from-the-xml")
    port = free_port()
    nic = f"""        <device class="NE2000" id="nic0"><bus>pci0</bus><mac>52:54:00:aa:bb:cc</mac></device>
        <device class="NIC_BRIDGE" id="net0">
            <frontend tag="nic0"/>
            <backend>user</backend>
            <hostfwd>tcp:127.0.0.1:{port}-:80</hostfwd>
            <restrict>on</restrict>
        </device>
    </devices>"""
    Path("config.xml").write_text(config_xml(iso="guest.iso", memory=512)
                                  .replace("    </devices>", nic))
    r = v3("build-vm", "config.xml", "-o", "image.dat")
    assert r.exit_code == 0, r.stderr
    serial, page, _ = boot_with_client(tmp_path, lambda: fetch(f"http://127.0.0.1:{port}/"),
                                       image=str(tmp_path / "image.dat"))
    assert "52:54:00:aa:bb:cc" in serial and f"{LEASE} 10.0.2.15" in serial
    assert page == b"from-the-xml\n"
