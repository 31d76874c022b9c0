"""The bad-input check every command's table uses.

    def test_bad_input(v3, workdir, bad_input):
        bad_input(["build-vm", "cfg.xml", "-o", "cfg.xml"], 1, "-o cfg.xml: is the same file as ...")

runs the command in this process in the current directory (the test's tmp_path) and asserts:
the exit status, stderr is exactly `v3: error: MESSAGE` on one line, stdout is empty, no
traceback, and every file under the directory is byte-identical before and after, with none
created or removed (so no input changed and no partial output is left behind).
"""
import hashlib
import os

import pytest


def snapshot(top):
    """{relative path: sha256} of every file under `top` (symlinks as their target text)."""
    found = {}
    for root, dirs, files in os.walk(top):
        for name in dirs + files:
            path = os.path.join(root, name)
            rel = os.path.relpath(path, top)
            if os.path.islink(path):
                found[rel] = "link:" + os.readlink(path)
            elif os.path.isfile(path):
                with open(path, "rb") as f:
                    found[rel] = hashlib.sha256(f.read()).hexdigest()
            elif os.path.isdir(path):
                found[rel] = "dir"
    return found


@pytest.fixture
def bad_input(v3):
    def check(args, code, message, top="."):
        before = snapshot(top)
        result = v3(*args)
        assert "Traceback" not in result.stderr, result
        assert (result.exit_code, result.stdout, result.stderr) == \
            (code, "", f"v3: error: {message}\n"), result
        assert snapshot(top) == before
        return result
    return check
