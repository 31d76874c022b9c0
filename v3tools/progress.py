"""A progress bar on stderr for a long job that runs elsewhere (a download by apt-get), drawn
only when stderr is a terminal: tests, CI and pipes see nothing.

    with progress.watch("linux-image-6.1.0-13-amd64", total=size, measure=bytes_so_far):
        subprocess.run(...)

`measure()` is called a few times a second from a helper thread and says how far the job is
(bytes written so far); `total` may be None (then only the bytes and the speed are shown).
The bar is erased when the block ends, however it ends.
"""
import contextlib
import os
import sys
import threading

INTERVAL_S = 0.25


def is_terminal(stream=None):
    """Whether `stream` (default stderr) is a terminal."""
    stream = sys.stderr if stream is None else stream
    try:
        return os.isatty(stream.fileno())
    except (AttributeError, ValueError, OSError):
        return False


def directory_bytes(path):
    """The bytes of every file under `path` (a download's files as they grow)."""
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass                    # renamed or removed meanwhile
    return total


@contextlib.contextmanager
def watch(description, total=None, measure=None, stream=None, interval=None):
    """Show a transient progress bar for the block on `stream` (default stderr) if it is a
    terminal; otherwise do nothing at all (`measure` is then never called)."""
    stream = sys.stderr if stream is None else stream
    interval = INTERVAL_S if interval is None else interval
    if measure is None or not is_terminal(stream):
        yield
        return
    from rich.console import Console
    from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn,
                               TransferSpeedColumn)
    bar = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                   TransferSpeedColumn(), console=Console(file=stream), transient=True,
                   auto_refresh=False)
    task = bar.add_task(description, total=total)
    done = threading.Event()

    def update():
        try:
            bar.update(task, completed=measure())
            bar.refresh()
        except Exception:                 # a progress display never breaks the job
            pass

    def loop():
        while not done.wait(interval):
            update()

    thread = threading.Thread(target=loop, name="v3-progress", daemon=True)
    bar.start()
    update()
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
        bar.stop()
