"""Short versions of scripts/soak_console.py (the long ones are benchmarks): the Debian shell
guest driven through a pipe while two host processes burn CPU, and `reboot -f` / `poweroff -f`
under the same load. Every command's answer comes back, no guest fault appears, and each
shutdown ends the run."""
import importlib.util
from pathlib import Path

import pytest


SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "soak_console.py"


def _load_script():
    spec = importlib.util.spec_from_file_location("soak_console", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


soak_console = _load_script()


def test_soak_under_host_load(linux_iso):
    r = soak_console.soak(str(linux_iso), seconds=40, interval=2, burners=2)
    details = f"\n--- stderr ---\n{r.get('stderr')}\n--- output tail ---\n{r.get('output_tail')}"
    assert r["sent"] >= len(soak_console.COMMANDS), details
    assert r["missing"] == [], details
    assert r["answered"] == r["sent"], details
    assert r["faults"] == [], details
    assert r["end_status"] == 0, details          # reboot -f


@pytest.mark.parametrize("command, statuses", [
    ("reboot -f", {0}),            # the keyboard controller's reset line
    ("poweroff -f", {0}),          # ACPI S5
])
def test_shutdown_under_host_load_ends_the_run(linux_iso, command, statuses):
    results = soak_console.shutdown_runs(str(linux_iso), command, runs=1, burners=2, log=lambda s: None)
    for status, seconds, faults in results:
        assert status in statuses, results
        assert faults == [], results
