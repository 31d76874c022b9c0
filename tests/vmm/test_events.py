"""vmm/events.py: one poll over the open sources; the poll object is kept while the sources'
descriptors stay the same and rebuilt when they change."""
import os

from vmm.events import EventSources, Reader


def test_poll_follows_changing_descriptors():
    ev = EventSources()
    got = []
    r1, w1 = os.pipe()
    r2, w2 = os.pipe()
    try:
        ev.add(Reader("a", r1, lambda d: got.append(("a", d))))
        assert ev.poll(0) is False
        first = ev._poller
        assert ev.poll(0) is False
        assert ev._poller is first                      # same descriptors: kept
        os.write(w1, b"x")
        assert ev.poll(0) is True
        ev.add(Reader("b", r2, lambda d: got.append(("b", d))))
        os.write(w2, b"y")
        assert ev.poll(0) is True                       # the new source is polled too
        assert ev._poller is not first
        assert got == [("a", b"x"), ("b", b"y")]
    finally:
        for fd in (r1, w1, r2, w2):
            os.close(fd)
        ev.close()
