"""Which engine is loaded, and what an unusable engine library gives: one line, no ctypes crash."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from vmm import engine

ROOT = Path(__file__).resolve().parents[3]

CHECK = """
import os, sys
from pathlib import Path
from vmm import engine
engine.LIB_DIR = Path(sys.argv[1])
os.environ["LIBUNICORN_PATH"] = sys.argv[1]
try:
    engine.check()
except engine.EngineError as e:
    print("ERROR", e)
else:
    print("OK")
"""


def _check_with_library(tmp_path, content):
    (tmp_path / engine.LIBNAME).write_bytes(content)
    env = dict(os.environ, V3_ENGINE="stock", PYTHONPATH=str(ROOT))
    env.pop("LIBUNICORN_PATH", None)
    return subprocess.run([sys.executable, "-c", CHECK, str(tmp_path)], env=env,
                          capture_output=True, text=True, timeout=60)


def test_a_corrupted_engine_library_is_one_line(tmp_path):
    out = _check_with_library(tmp_path, b"\x7fELF not really a library")
    assert out.returncode == 0 and "Traceback" not in out.stderr
    line = out.stdout.strip()
    assert line.startswith("ERROR the v3 engine ") and "does not load" in line
    assert "reinstall v3tools" in line and "\n" not in line


def test_an_engine_library_without_the_patch_marker_is_one_line(tmp_path):
    import unicorn
    stock = Path(unicorn.__file__).parent / "lib" / "libunicorn.so.2"
    if not stock.exists():
        pytest.skip("the unicorn wheel carries no library of its own")
    out = _check_with_library(tmp_path, stock.read_bytes())
    line = out.stdout.strip()
    assert line.startswith("ERROR the v3 engine ") and "uc_code_page_tracking" in line, out


def test_version_names_the_engine():
    from click.testing import CliRunner
    from v3tools.cli import cli
    res = CliRunner().invoke(cli, ["--version"])
    assert res.exit_code == 0
    assert f"engine: {engine.info().describe()}" in res.output
    assert "unicorn 2.1.4" in res.output


def test_telemetry_names_the_engine():
    from vmm.telemetry import Telemetry
    d = Telemetry().as_dict()
    assert d["engine"] == engine.info().describe()


@pytest.mark.slow
def test_a_clean_clone_installed_as_the_readme_says_runs_the_v3_engine(tmp_path):
    """git clone, a fresh venv, `python3 -m pip install -e '.[test]'`: the patched engine loads."""
    if not (ROOT / ".git").exists() or not shutil.which("git"):
        pytest.skip("not a git checkout")
    if os.environ.get("CI") != "true" and not shutil.which("cmake"):
        pytest.skip("cmake is not installed")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python3"
    inst = subprocess.run([str(py), "-m", "pip", "install", "-q", "-e", ".[test]"], cwd=clone,
                          capture_output=True, text=True, timeout=1200)
    assert inst.returncode == 0, inst.stderr[-2000:]
    assert (clone / "vmm" / "engine" / "lib" / engine.LIBNAME).exists()
    env = {k: v for k, v in os.environ.items() if k not in ("LIBUNICORN_PATH", "PYTHONPATH")}
    ver = subprocess.run([str(venv / "bin" / "v3"), "--version"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120)
    assert ver.returncode == 0, ver.stderr
    assert "engine: unicorn 2.1.4 + v3 code-page tracking" in ver.stdout
