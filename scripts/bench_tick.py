#!/usr/bin/env python3
"""Host CPU per guest timer tick of an idle guest: `v3 run`'s machine against QEMU TCG, in one run.

An idle networked Linux guest (Debian's 686 kernel keeps a 250 Hz tick in idle, under QEMU and
here alike) costs the host one wakeup per tick. This measures that cost with nothing else in
the way: a boot sector programs the 8259A (IRQ 0 only) and the PIT (channel 0, mode 2, 250 Hz),
points vector 8 at a handler that only sends EOI, and halts in a loop. Each VMM runs it for
SECONDS of wall time, in real time (v3: `realtime_idle`, as a run with a network or a terminal
does; QEMU: always), and the host CPU time it used is divided by the ticks.

    python3 scripts/bench_tick.py [--seconds 5] [--rounds 3]

v3 runs in this process (its start-up is not counted); QEMU (`-accel tcg -fda`, SeaBIOS) is a
child whose CPU time is read from /proc after a 2 s settle, so its firmware is not counted
either. Figures go to docs/performance.md ("Idle: the cost of a timer tick").
"""
import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench_net import cpu_seconds                    # noqa: E402 (scripts/ is on sys.path)

HZ = 250
# 7C00: PIC ICW1-4 (vectors 0x08/0x70), IMR master 0xFE (IRQ 0 only), slave 0xFF;
# PIT channel 0 mode 2, count 4773 (1193182 / 250); IVT[8] = 0000:7D00; sp = 0x7000; sti;
# L: hlt; jmp L.   7D00: push ax; mov al, 0x20; out 0x20, al; pop ax; iret
CODE = bytes.fromhex(
    "fa31c08ed8"                                   # cli; xor ax, ax; mov ds, ax
    "b011e620e6a0b008e621b070e6a1b004e621b002e6a1b001e621e6a1b0fee621b0ffe6a1"
    "b034e643b8a512e64088e0e640"
    "c7062000007dc70622000000"                     # mov word [0x20], 0x7d00; [0x22], 0
    "bc0070fbf4ebfd")
HANDLER = bytes.fromhex("50b020e62058cf")


def boot_sector():
    sector = bytearray(512)
    sector[:len(CODE)] = CODE
    sector[0x100:0x100 + len(HANDLER)] = HANDLER
    sector[510:512] = b"\x55\xaa"
    return bytes(sector)


def v3_round(seconds):
    from vmm.config import parse_vm_config
    from vmm.machine import Machine, RunTimeout
    m = Machine(memory_mb=1)
    m.add_devices(parse_vm_config(b'<vm><devices><device class="8259A" id="pic"/>'
                                  b'<device class="8254_PIT" id="pit"/></devices></vm>').devices)
    for dev in m.ctx.devices.values():
        dev.reset()
    m.realtime_idle = True
    m.uc.mem_write(0x7C00, boot_sector())
    m.cpu.reset(cs=0, ip=0x7C00)
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.monotonic()
    try:
        m.run(timeout=seconds)
    except RunTimeout:
        pass
    wall = time.monotonic() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)
    ticks = m.stats.events[("irq", 0x08)]
    m.close()
    return cpu, wall, ticks


def qemu_round(seconds, image):
    proc = subprocess.Popen(["qemu-system-x86_64", "-accel", "tcg", "-m", "16", "-fda", image,
                             "-display", "none", "-serial", "null", "-monitor", "none"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(2)
        c0, t0 = cpu_seconds(proc.pid), time.monotonic()
        time.sleep(seconds)
        cpu, wall = cpu_seconds(proc.pid) - c0, time.monotonic() - t0
    finally:
        proc.kill()
        proc.wait()
    return cpu, wall, wall * HZ              # QEMU's PIT keeps real time: HZ ticks a second


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    if args.rounds < 1 or args.seconds <= 0:
        ap.error("--rounds must be at least 1 and --seconds more than 0")
    print(f"load before: {open('/proc/loadavg').read().strip()}")
    with tempfile.TemporaryDirectory(prefix="v3bench-tick-") as tmp:
        image = os.path.join(tmp, "tick.img")
        with open(image, "wb") as f:
            f.write(boot_sector().ljust(1474560, b"\0"))
        per = {"qemu": [], "v3": []}
        for _ in range(args.rounds):                 # interleaved, so both share the load
            for vmm in ("qemu", "v3"):
                cpu, wall, ticks = qemu_round(args.seconds, image) if vmm == "qemu" \
                    else v3_round(args.seconds)
                per[vmm].append(cpu / ticks * 1e6)
                print(f"{vmm:5} {ticks:6.0f} ticks in {wall:.1f} s: host CPU {cpu / wall * 100:5.1f} %"
                      f", {cpu / ticks * 1e6:6.1f} us per tick", flush=True)
    print(f"load after: {open('/proc/loadavg').read().strip()}")
    q, v = statistics.median(per["qemu"]), statistics.median(per["v3"])
    print(f"\n| VMM | host CPU per tick (median of {args.rounds}) | vs QEMU |")
    print("|---|---|---|")
    print(f"| QEMU TCG | {q:.1f} us | |")
    print(f"| v3 | {v:.1f} us | {v / q:.1f}x QEMU's cost |")


if __name__ == "__main__":
    main()
