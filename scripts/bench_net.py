#!/usr/bin/env python3
"""Network benchmark: `v3 run` against QEMU TCG in the same invocation.

For each card (rtl8139, ne2k_pci) and each VMM, a `v3 mkguest --net` Debian i386 guest with an
8 MiB file in /www boots with the user-mode network and a host forward on 127.0.0.1:
  - time to the first page: from starting the VMM to the first successful GET / on the forward;
  - throughput: GET /big (8 MiB) through the forward, MB/s (10^6 bytes/s);
  - idle CPU: host CPU time the VMM process uses over IDLE seconds once the guest is idle
    (v3 also without a network, where nothing can arrive and idle time is fast-forwarded).
QEMU's rtl8139 is the C+ chip (revision 0x20; Linux's 8139cp drives it), ours by default the
classic one (8139too): same card name, different drivers. The card `rtl8139-cplus` runs v3's
RTL8139 in C+ mode (`--nic user,model=rtl8139,cplus=on`, 8139cp) against QEMU's rtl8139: the
same chip and driver on both sides.

    python3 scripts/bench_net.py [--idle 10] [--cards rtl8139,rtl8139-cplus,ne2k_pci]
                                 [--downloads N]

With --downloads N each boot serves the 8 MiB file N times in a row; the table shows the
median throughput (single downloads swing by a factor of 1.5 on this machine).

With --exits, v3 runs twice more per card with telemetry (stopped after the first page, and
after the download): the difference is the cost of the 8 MiB download, printed per frame
(8 MiB / 1460-byte TCP segments): port exits by port, MMIO exits by 4 KiB page, interrupts,
engine runs (stops).
"""
import json
import argparse
import hashlib
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def get(url, timeout):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read()


def measure(cmd, port, big_sha, idle_s, serial, downloads=1):
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL)
    try:
        first = None
        while time.monotonic() - t0 < 600:
            if proc.poll() is not None:
                raise RuntimeError(f"{cmd[0]} ended: {proc.stderr.read().decode()[-500:]}")
            try:
                get(f"http://127.0.0.1:{port}/", 5)
                first = time.monotonic() - t0
                break
            except OSError:
                time.sleep(0.2)
        if first is None:
            raise RuntimeError("no page within 600 s")
        rates, cpus = [], []
        for _ in range(downloads):
            t1 = time.monotonic()
            c1 = cpu_seconds(proc.pid)
            data = get(f"http://127.0.0.1:{port}/big", 300)
            dt = time.monotonic() - t1
            cpus.append(cpu_seconds(proc.pid) - c1)
            if hashlib.sha256(data).hexdigest() != big_sha:
                raise RuntimeError("the 8 MiB file arrived damaged")
            rates.append(len(data) / dt / 1e6)
        time.sleep(2)
        c0 = cpu_seconds(proc.pid)
        time.sleep(idle_s)
        idle = (cpu_seconds(proc.pid) - c0) / idle_s
        return first, statistics.median(rates), idle, rates, statistics.median(cpus)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def download_exits(cmd, port, big_sha, tmp, big):
    """Telemetry of a v3 run stopped after the first page (big=False) or after the 8 MiB
    download (big=True)."""
    out = Path(tmp) / f"tele-{big}.json"
    proc = subprocess.Popen(cmd + ["--telemetry-json", str(out)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            stdin=subprocess.DEVNULL)
    try:
        t0 = time.monotonic()
        while True:
            if proc.poll() is not None or time.monotonic() - t0 > 600:
                raise RuntimeError("v3 ended or gave no page")
            try:
                get(f"http://127.0.0.1:{port}/", 5)
                break
            except OSError:
                time.sleep(0.2)
        if big and hashlib.sha256(get(f"http://127.0.0.1:{port}/big", 300)).hexdigest() \
                != big_sha:
            raise RuntimeError("the 8 MiB file arrived damaged")
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    return json.loads(out.read_text())


def print_exits(card, base, full):
    frames = (8 << 20) / 1460
    def flat(d):
        e = d["exits"]
        out = {f"port {p}": v["reads"] + v["writes"] for p, v in e["port_io"].items()}
        out.update({f"mmio page {a}": n for a, n in e["mmio"].items()})
        out.update({f"irq {v}": n for v, n in e["interrupts"].items()})
        out["engine runs (stops)"] = d["guest_runs"]
        out["preemptions"] = e["preemptions"]
        out["halts"] = e["halts"]
        return out
    a, b = flat(base), flat(full)
    print(f"{card}: per frame of the 8 MiB download ({frames:.0f} frames of 1460 bytes)")
    total = mmio = 0
    for k in sorted(b, key=lambda k: -(b[k] - a.get(k, 0))):
        n = (b[k] - a.get(k, 0)) / frames
        if n >= 0.05:
            print(f"  {k:24} {n:8.2f}")
        if k.startswith("port"):
            total += n
        elif k.startswith("mmio"):
            mmio += n
    print(f"  {'port exits in all':24} {total:8.2f}")
    print(f"  {'MMIO exits in all':24} {mmio:8.2f}")


def idle_without_network(iso, idle_s, tmp):
    """v3 with no input source: the idle guest's CPU use once it printed its banner."""
    serial = Path(tmp) / "nonet.serial"
    proc = subprocess.Popen([sys.executable, "-m", "v3tools", "run", "--cdrom", str(iso),
                             "--serial", f"file:{serial}", "--timeout", "900"], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            stdin=subprocess.DEVNULL)
    try:
        t0 = time.monotonic()
        while b"v3net: ready" not in (serial.read_bytes() if serial.exists() else b""):
            if proc.poll() is not None or time.monotonic() - t0 > 600:
                return None
            time.sleep(0.5)
        time.sleep(2)
        c0 = cpu_seconds(proc.pid)
        time.sleep(idle_s)
        return (cpu_seconds(proc.pid) - c0) / idle_s
    finally:
        proc.terminate()
        proc.wait(timeout=20)


# --cards name -> (QEMU's and v3's model, v3's extra --nic options)
CARDS = {"rtl8139": ("rtl8139", ""), "rtl8139-cplus": ("rtl8139", ",cplus=on"),
         "ne2k_pci": ("ne2k_pci", "")}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--idle", type=float, default=10.0, help="seconds of idle CPU measurement")
    ap.add_argument("--cards", default="rtl8139,ne2k_pci",
                    help=f"comma-separated, of: {', '.join(CARDS)} (default rtl8139,ne2k_pci)")
    ap.add_argument("--skip-qemu", action="store_true")
    ap.add_argument("--downloads", type=int, default=1,
                    help="downloads per boot; the table shows their median (all are printed)")
    ap.add_argument("--exits", action="store_true",
                    help="also count v3's exits per frame of the download (two more runs)")
    args = ap.parse_args()
    if args.downloads < 1:
        ap.error(f"--downloads must be at least 1 (got {args.downloads})")
    cards = args.cards.split(",")
    for card in cards:
        if card not in CARDS:
            ap.error(f"--cards: unknown card {card!r} (known: {', '.join(CARDS)})")
    from guest_creator.mkguest import mkguest
    from v3tools import artefacts
    kernel = artefacts.debian_kernel("i386")
    busybox = artefacts.busybox_static("i386")
    with tempfile.TemporaryDirectory(prefix="v3bench-net-") as tmp:
        big = Path(tmp) / "big"
        big.write_bytes(random.Random(8).randbytes(8 << 20))
        sha = hashlib.sha256(big.read_bytes()).hexdigest()
        iso = Path(tmp) / "net.iso"
        mkguest(iso, kernel=kernel, busybox=busybox, net=True, add=[(str(big), "/www/big")])
        rows = []
        for card in cards:
            model, v3_opts = CARDS[card]
            for vmm in (["v3"] if args.skip_qemu else ["qemu", "v3"]):
                port = free_port()
                serial = Path(tmp) / f"{vmm}-{card}.serial"
                nic = f"user,model={model},restrict=on,hostfwd=tcp:127.0.0.1:{port}-:80"
                if vmm == "v3":
                    cmd = [sys.executable, "-m", "v3tools", "run", "--cdrom", str(iso),
                           "--serial", f"file:{serial}", "--timeout", "900", "--nic",
                           nic + v3_opts]
                else:
                    cmd = ["qemu-system-x86_64", "-accel", "tcg", "-m", "1024", "-cdrom",
                           str(iso), "-display", "none", "-serial", f"file:{serial}",
                           "-monitor", "none", "-nic", nic]
                first, mbs, idle, rates, cpu = measure(cmd, port, sha, args.idle, serial,
                                                       args.downloads)
                rows.append((card, vmm, first, mbs, idle, cpu))
                each = f" (each: {', '.join(f'{r:.2f}' for r in rates)})" if len(rates) > 1 \
                    else ""
                print(f"{card:13} {vmm:5} first page {first:6.1f} s  8 MiB at {mbs:6.2f} MB/s  "
                      f"(host CPU {cpu:.2f} s)  idle CPU {idle * 100:5.1f} %{each}", flush=True)
                if vmm == "v3" and args.exits:
                    base = download_exits(cmd, port, sha, tmp, False)
                    full = download_exits(cmd, port, sha, tmp, True)
                    print_exits(card, base, full)
        nonet = idle_without_network(iso, args.idle, tmp)
        print(f"v3 idle guest without a network: idle CPU "
              f"{'n/a' if nonet is None else f'{nonet * 100:.1f} %'}")
        print("\n| card | VMM | first page | 8 MiB download | VMM's host CPU per download "
              "| idle CPU |")
        print("|---|---|---|---|---|---|")
        by = {(c, v): (f, m, i, u) for c, v, f, m, i, u in rows}
        for card, vmm, first, mbs, idle, cpu in rows:
            ratio = cpu_ratio = ""
            q = by.get((card, "qemu"))
            if vmm == "v3" and q:
                ratio = f" ({mbs / q[1]:.2f}x QEMU)"
                cpu_ratio = f" ({cpu / q[3]:.2f}x QEMU's)" if q[3] else ""
            print(f"| {card} | {vmm} | {first:.1f} s | {mbs:.2f} MB/s{ratio} | "
                  f"{cpu:.2f} s{cpu_ratio} | {idle * 100:.1f} % |")


if __name__ == "__main__":
    main()
