"""v3tools.paths: an output never names an input (inode comparison, before anything is written)."""
import os

import pytest

from v3tools.errors import V3Error
from v3tools.paths import inside, refuse_overwrite, same_file


def test_same_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x").write_bytes(b"x")
    (tmp_path / "y").write_bytes(b"x")
    os.link("x", "hard")
    os.symlink("x", "soft")
    assert same_file("x", "./x") and same_file("x", "hard") and same_file("soft", "x")
    assert not same_file("x", "y") and not same_file("x", "missing")
    assert same_file("new", "./new") and not same_file("new", "other")


def test_refuse_overwrite(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in").write_bytes(b"data")
    os.link("in", "hard")
    refuse_overwrite([("-o", "out"), ("--log", None)], [("IN", "in"), ("--x", None)])
    refuse_overwrite([("--log", "/dev/null"), ("--screen", "/dev/null")], [("IN", "/dev/null")])
    with pytest.raises(V3Error, match=r"^-o hard: is the same file as IN in; refusing to overwrite an input$"):
        refuse_overwrite([("-o", "hard")], [("IN", "in")])
    with pytest.raises(V3Error, match=r"^--b x: is the same file as --a ./x; give each output its own file$"):
        refuse_overwrite([("--a", "./x"), ("--b", "x")], [])
    assert (tmp_path / "in").read_bytes() == b"data" and not os.path.exists("out")


def test_inside(tmp_path):
    assert inside(tmp_path / "d" / "x.iso", tmp_path / "d")
    assert not inside(tmp_path / "d", tmp_path / "d") and not inside(tmp_path / "dx", tmp_path / "d")
