#!/usr/bin/env python3
"""Soak the console under host CPU contention: a Debian shell guest driven through a pipe.

    python3 scripts/soak_console.py [--seconds 300] [--interval 2] [--burners 2]
    python3 scripts/soak_console.py --shutdown reboot --runs 20 [--burners 2]
    python3 scripts/soak_console.py --shutdown poweroff --runs 20

Soak: `--burners` host processes spin on the CPU while `v3 run --cdrom guest.iso` (Debian's
i386 kernel and busybox, `v3 mkguest`) gets a shell command on its standard input every
`--interval` seconds for `--seconds`: plain echoes, fork and exec, /proc reads, shell
arithmetic loops, pipes, exit statuses, `sleep` (timers). Every command prints a token computed
by the guest; each must come back, and the guest's output must hold no fault (segmentation
fault, Oops, BUG, panic, general protection, invalid opcode, illegal instruction). The guest
is then rebooted with `reboot -f`, which must end the run.

Shutdown: `--runs` boots, each ended by `reboot -f` or `poweroff -f` typed at the shell, under
the same load; every run must end (no hang) within `--end-timeout` seconds. `reboot -f` ends
with status 0 (the keyboard controller's reset line). `poweroff -f` ends with status 0 when the
machine has a power-off device; without one Linux halts the CPU ("reboot: System halted"),
which ends the run with status 5.

Exit status 0 when everything held, 1 otherwise; a summary goes to stdout. Run from the
repository root (it starts `python3 -m v3tools run` from there).
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROMPT_READY = b"Enter 'help' for a list of built-in commands."
FAULTS = re.compile(rb"Segmentation fault|segfault at|Oops|BUG:|Kernel panic|general protection"
                    rb"|invalid opcode|Illegal instruction|Bus error|traps: |Unable to handle")

# (command template, expected suffix); {t} is the token the guest computes, N and N*7
COMMANDS = (
    ("echo soak-{n}-$(({n}*7))", ""),
    ("ls -l /bin /sbin /proc > /dev/null; echo soak-{n}-$(({n}*7))", ""),
    ("cat /proc/interrupts /proc/meminfo /proc/self/maps > /dev/null; echo soak-{n}-$(({n}*7))", ""),
    ("i=0; while [ $i -lt 300 ]; do i=$((i+1)); done; echo soak-{n}-$(({n}*7))-$i", "-300"),
    ("sh -c 'exit 3'; echo soak-{n}-$(({n}*7))-$?", "-3"),
    ("dd if=/dev/zero bs=1k count=512 2>/dev/null | md5sum | cut -c1-8; echo soak-{n}-$(({n}*7))", ""),
    ("sleep 1; echo soak-{n}-$(({n}*7))", ""),
    ("ps | wc -l > /dev/null; uname -m > /dev/null; echo soak-{n}-$(({n}*7))", ""),
)


def guest_iso(path=None):
    """The Debian shell guest: `path`, or one made with `v3 mkguest` into a temporary dir."""
    if path:
        return path
    sys.path.insert(0, str(ROOT))
    from guest_creator.mkguest import mkguest
    from v3tools import artefacts
    out = os.path.join(tempfile.mkdtemp(prefix="soak-"), "guest.iso")
    mkguest(out, kernel=artefacts.debian_kernel("i386"), busybox=artefacts.busybox_static("i386"),
            append="console=ttyS0")
    return out


class Burners:
    """`n` host processes spinning on the CPU."""

    def __init__(self, n):
        self.procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
                      for _ in range(n)]

    def stop(self):
        for p in self.procs:
            p.kill()
            p.wait()


class Guest:
    """`v3 run --cdrom ISO` with a pipe on its standard input and its output collected."""

    def __init__(self, iso, extra=()):
        self.proc = subprocess.Popen([sys.executable, "-m", "v3tools", "run", "--cdrom", iso,
                                      *extra], cwd=ROOT, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.out = bytearray()
        self.err = bytearray()
        self.threads = [threading.Thread(target=self._read, args=(s, b), daemon=True)
                        for s, b in ((self.proc.stdout, self.out), (self.proc.stderr, self.err))]
        for t in self.threads:
            t.start()

    @staticmethod
    def _read(stream, buf):
        while True:
            chunk = stream.read1(4096)
            if not chunk:
                return
            buf += chunk

    def send(self, line):
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()

    def wait_for(self, marker, timeout, start=0):
        """True once `marker` (bytes) is in the output after offset `start`."""
        deadline = time.monotonic() + timeout
        while marker not in self.out[start:]:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                time.sleep(0.3)
                return marker in self.out[start:]
            time.sleep(0.05)
        return True

    def end(self, timeout):
        """The exit status, or None if it did not end within `timeout` seconds (then killed)."""
        try:
            status = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            status = None
        self.kill()
        for t in self.threads:
            t.join(5)
        return status

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def faults(self):
        return sorted({m.group(0).decode() for m in FAULTS.finditer(bytes(self.out))})


def soak(iso, seconds, interval, burners, answer_timeout=90, boot_timeout=600, log=print):
    """Returns a dict: sent, answered, missing (commands), faults, latencies, reboot status."""
    load = Burners(burners)
    guest = Guest(iso)
    report = {"sent": 0, "answered": 0, "missing": [], "faults": [], "latencies": [],
              "end_status": None}
    try:
        if not guest.wait_for(PROMPT_READY, boot_timeout):
            report["missing"].append("boot: no shell prompt")
            return report
        start = time.monotonic()
        n = 0
        while time.monotonic() - start < seconds:
            n += 1
            template, suffix = COMMANDS[n % len(COMMANDS)]
            token = f"soak-{n}-{n * 7}{suffix}".encode()
            mark = len(guest.out)
            sent = time.monotonic()
            guest.send(template.format(n=n))
            report["sent"] += 1
            # the guest echoes the command line itself: look for the token at a line start
            if guest.wait_for(b"\n" + token, answer_timeout, mark):
                report["answered"] += 1
                report["latencies"].append(time.monotonic() - sent)
            else:
                report["missing"].append(template.format(n=n))
                if guest.proc.poll() is not None:
                    break
            rest = interval - (time.monotonic() - sent)
            if rest > 0:
                time.sleep(rest)
        guest.send("reboot -f")
        report["end_status"] = guest.end(120)
    finally:
        guest.kill()
        load.stop()
    report["faults"] = guest.faults()
    report["stderr"] = bytes(guest.err[-2000:]).decode(errors="replace")
    report["output_tail"] = bytes(guest.out[-3000:]).decode("latin-1")
    return report


def shutdown_runs(iso, command, runs, burners, end_timeout=120, boot_timeout=600, log=print):
    """`runs` boots each ended by `command`; returns a list of (status, seconds to end)."""
    load = Burners(burners)
    results = []
    try:
        for i in range(runs):
            guest = Guest(iso)
            try:
                if not guest.wait_for(PROMPT_READY, boot_timeout):
                    results.append(("no prompt", None, guest.faults()))
                    continue
                t0 = time.monotonic()
                guest.send(command)
                status = guest.end(end_timeout)
                results.append((status, time.monotonic() - t0, guest.faults()))
                log(f"run {i + 1}/{runs}: {command}: status {status} after "
                    f"{results[-1][1]:.1f} s{' faults ' + str(guest.faults()) if guest.faults() else ''}")
            finally:
                guest.kill()
    finally:
        load.stop()
    return results


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iso", help="the guest CD (default: made with v3 mkguest)")
    ap.add_argument("--seconds", type=float, default=300)
    ap.add_argument("--interval", type=float, default=2)
    ap.add_argument("--burners", type=int, default=2)
    ap.add_argument("--shutdown", choices=("reboot", "poweroff"))
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--end-timeout", type=float, default=120)
    args = ap.parse_args()
    iso = guest_iso(args.iso)
    if args.shutdown:
        results = shutdown_runs(iso, f"{args.shutdown} -f", args.runs, args.burners,
                                end_timeout=args.end_timeout)
        ended = [r for r in results if r[0] is not None and r[0] != "no prompt"]
        ok = {0} if args.shutdown == "reboot" else {0, 5}
        good = [r for r in ended if r[0] in ok and not r[2]]
        times = sorted(r[1] for r in ended)
        print(f"{args.shutdown} -f: {len(good)}/{len(results)} runs ended as expected "
              f"(statuses {sorted({str(r[0]) for r in results})}); time to end "
              f"median {times[len(times) // 2]:.1f} s, max {times[-1]:.1f} s" if times else
              f"{args.shutdown} -f: no run ended")
        return 0 if len(good) == len(results) else 1
    r = soak(iso, args.seconds, args.interval, args.burners)
    lat = sorted(r["latencies"])
    print(f"soak {args.seconds:.0f} s, {args.burners} burners: {r['answered']}/{r['sent']} "
          f"commands answered; latency median {lat[len(lat) // 2] if lat else 0:.2f} s, "
          f"max {lat[-1] if lat else 0:.2f} s; faults: {r['faults'] or 'none'}; "
          f"reboot -f status {r['end_status']}")
    for m in r["missing"]:
        print(f"  no answer: {m}")
    if r["missing"] or r["faults"] or r["end_status"] != 0:
        print("--- stderr ---\n" + r["stderr"] + "\n--- output tail ---\n" + r["output_tail"])
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
