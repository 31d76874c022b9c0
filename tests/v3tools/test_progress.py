"""v3tools/progress.py: a transient progress bar on a terminal, nothing elsewhere."""
import io
import time

import pytest

from v3tools import progress


def test_nothing_when_not_a_terminal():
    out = io.StringIO()
    calls = []
    with progress.watch("downloading x", total=10, measure=lambda: calls.append(1) or 5,
                        stream=out, interval=0.01):
        time.sleep(0.05)
    assert out.getvalue() == "" and calls == []


def test_a_bar_on_a_terminal_that_is_erased_at_the_end(pty_stream):
    stream, read = pty_stream
    done = [0]

    def measure():
        done[0] += 400_000
        return done[0]
    with progress.watch("downloading pkg", total=2_000_000, measure=measure, stream=stream,
                        interval=0.01):
        time.sleep(0.1)
    text = read()
    assert "downloading pkg" in text
    assert "/2.0 MB" in text                                # bytes done of the total
    assert text.rstrip("\r\n").endswith("\x1b[2K")          # the bar erased at the end
    assert done[0] >= 800_000                               # measured repeatedly


def test_erased_when_the_block_raises(pty_stream):
    stream, read = pty_stream
    with pytest.raises(RuntimeError):
        with progress.watch("downloading pkg", total=None, measure=lambda: 1, stream=stream):
            raise RuntimeError("apt-get failed")
    assert read().rstrip("\r\n").endswith("\x1b[2K")


def test_a_failing_measure_does_not_break_the_job(pty_stream):
    stream, _ = pty_stream

    def measure():
        raise OSError("gone")
    with progress.watch("downloading pkg", total=1, measure=measure, stream=stream,
                        interval=0.01):
        time.sleep(0.03)


def test_directory_bytes(tmp_path):
    (tmp_path / "a").write_bytes(b"x" * 10)
    (tmp_path / "partial").mkdir()
    (tmp_path / "partial" / "b").write_bytes(b"y" * 5)
    assert progress.directory_bytes(tmp_path) == 15
    assert progress.directory_bytes(tmp_path / "missing") == 0


def test_is_terminal(pty_stream):
    stream, _ = pty_stream
    assert progress.is_terminal(stream)
    assert not progress.is_terminal(io.StringIO())
