"""The engine build step (vmm/engine/build.py): strict patching, pinned source, clean fallback."""
from pathlib import Path

import pytest

from vmm.engine import build as B

PATCH = """header text is ignored
--- a/dir/f.c\t2026-01-01
+++ b/dir/f.c\t2026-01-01
@@ -2,3 +2,3 @@
 two
-three
+THREE
 four
"""


def test_a_patch_applies_exactly(tmp_path):
    (tmp_path / "dir").mkdir()
    f = tmp_path / "dir" / "f.c"
    f.write_text("one\ntwo\nthree\nfour\nfive\n")
    B.apply_patch(PATCH, tmp_path)
    assert f.read_text() == "one\ntwo\nTHREE\nfour\nfive\n"


def test_a_patch_with_changed_context_is_refused(tmp_path):
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "f.c").write_text("one\ntwo\n3\nfour\n")
    with pytest.raises(B.BuildError, match="does not apply to dir/f.c"):
        B.apply_patch(PATCH, tmp_path)


def test_every_shipped_patch_parses_and_adds_a_marker():
    patches = B.patches()
    assert patches
    text = "".join(p.read_text() for p in patches)
    assert all(B.parse_patch(p.read_text()) for p in patches)
    for marker in B.MARKERS:
        assert f"const unsigned int {marker}" in text


def test_the_source_is_pinned():
    assert B.SDIST_URL.endswith(f"unicorn-{B.UNICORN_VERSION}.tar.gz")
    assert len(B.SDIST_SHA256) == 64


def test_without_cmake_the_build_falls_back_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr(B.shutil, "which", lambda name: None)
    monkeypatch.delenv("CC", raising=False)
    said = []
    assert B.build(tmp_path / "lib", log=said.append) is None
    assert len(said) == 1 and "cmake" in said[0] and "stock" in said[0]
    assert not (tmp_path / "lib").exists()


def test_a_library_that_fails_its_check_is_never_put_in_place(tmp_path, monkeypatch):
    """A bad download is refused by its SHA-256; nothing is left behind."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(B, "SDIST_SHA256", "0" * 64)
    if B.missing_tools():
        pytest.skip("build tools missing")
    said = []
    try:
        result = B.build(tmp_path / "lib", log=said.append)
    except OSError:
        pytest.skip("no network to the package index")
    assert result is None
    assert "SHA-256" in said[-1] or "cannot download" in said[-1]
    assert not (tmp_path / "lib" / B.LIBNAME).exists()
    assert not list((tmp_path / "cache" / "v3tools" / "engine").glob("*.tar.gz"))
