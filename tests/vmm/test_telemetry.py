"""vmm/telemetry.py: exit counters, the recent-exit ring and the JSON form."""
import io
import json

from vmm.telemetry import Telemetry


def test_as_dict_counts_ports_events_and_bios():
    t = Telemetry()
    t.port_writes[0x64] += 1
    t.port_reads[0x60] += 2
    t.port_reads[0x3F8] += 1
    t.port_writes[0x3F8] += 3
    t.mmio[0xFEE00000] += 4
    t.count_event("irq", 0x20)
    t.count_event("irq", 0x20)
    t.count_event("software-int", 0x10)
    t.count_event("exception", 6)
    t.count_bios("INT 10h AH=0Eh")
    t.halts, t.preemptions, t.runs = 2, 3, 5
    t.skipped_ns = 1_500_000_000
    d = t.as_dict(virtual_ns=2_000_000_000)
    assert d["exits"]["port_io"] == {"0x0060": {"reads": 2, "writes": 0},
                                     "0x0064": {"reads": 0, "writes": 1},
                                     "0x03f8": {"reads": 1, "writes": 3}}
    assert d["exits"]["mmio"] == {"0xfee00000": 4}
    assert d["exits"]["interrupts"] == {"0x20": 2}
    assert d["exits"]["software_interrupts"] == {"0x10": 1}
    assert d["exits"]["exceptions"] == {"0x06": 1}
    assert d["exits"]["bios"] == {"INT 10h AH=0Eh": 1}
    assert (d["exits"]["halts"], d["exits"]["preemptions"], d["guest_runs"]) == (2, 3, 5)
    assert d["virtual_time_s"] == 2.0 and d["fast_forwarded_s"] == 1.5
    assert d["wall_time_s"] > 0
    assert (d["sysenter"], d["cpuid"]) == (0, 0)
    json.dumps(d)                                      # serialisable as is


def test_as_dict_reads_cpu_counters_and_final_wall_time():
    class Cpu:
        sysenter_count, cpuid_count = 7, 9

    t = Telemetry()
    t.wall_s, t.guest_s = 2.0, 1.25
    d = t.as_dict(cpu=Cpu())
    assert (d["sysenter"], d["cpuid"]) == (7, 9)
    assert d["wall_time_s"] == 2.0 and d["time_in_vmm_loop_s"] == 0.75


def test_recent_text_formats_each_kind():
    t = Telemetry()
    t.recent.append(("in", 0x60, 1, 0xFA))
    t.recent.append(("out", 0x64, 1, 0xFE))
    t.count_bios("INT 13h AH=02h")
    t.count_event("exception", 13)
    assert t.recent_text() == ["in 0x0060/1 -> 0xfa", "out 0x0064/1 <- 0xfe",
                               "bios INT 13h AH=02h", "exception 0x0d"]
    assert t.recent_text(2) == ["bios INT 13h AH=02h", "exception 0x0d"]


def test_recent_ring_keeps_the_last_exits():
    t = Telemetry()
    for port in range(100):
        t.recent.append(("out", port, 1, 0))
    assert len(t.recent) == Telemetry.RING
    assert t.recent_text(1) == ["out 0x0063/1 <- 0x0"]


def test_render_table():
    from rich.console import Console
    out = io.StringIO()
    t = Telemetry()
    t.port_writes[0x64] = 1
    t.render(Console(file=out, width=200), 0)
    text = out.getvalue()
    assert "v3 run telemetry" in text and "0x0064" in text and "0 in / 1 out" in text
