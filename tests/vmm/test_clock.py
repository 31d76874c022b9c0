"""vmm/clock.py: the virtual clock, ManualClock and the Timers deadline queue."""
from vmm.clock import Clock, ManualClock, Timers


def test_manual_clock_moves_only_when_told():
    c = ManualClock(1000)
    assert c.now_ns() == 1000
    c.advance(500)
    assert c.now_ns() == 1500
    assert c.skip_to(2000) == 500
    assert (c.now_ns(), c.skipped_ns) == (2000, 500)


def test_manual_clock_never_skips_backwards():
    c = ManualClock(5000)
    assert c.skip_to(4000) == 0
    assert c.skip_to(5000) == 0
    assert (c.now_ns(), c.skipped_ns) == (5000, 0)


def test_clock_skip_to_forward_and_never_backwards():
    c = Clock()
    target = c.now_ns() + 10_000_000_000            # 10 s ahead, without waiting
    assert c.skip_to(target) > 0
    assert c.now_ns() >= target
    skipped = c.skipped_ns
    assert c.skip_to(0) == 0
    assert c.skipped_ns == skipped
    assert c.now_ns() >= target


def test_host_ns_until():
    c = ManualClock(100)
    assert c.host_ns_until(150) == 50
    assert c.host_ns_until(50) == 0


def make():
    clock = ManualClock()
    return clock, Timers(clock)


def test_timers_run_in_deadline_order_then_scheduling_order():
    clock, timers = make()
    ran = []
    for when, name in ((30, "c"), (10, "a"), (20, "b1"), (20, "b2")):
        timers.schedule(when, lambda w, n=name: ran.append((n, w)), name)
    assert timers.next_deadline() == 10
    clock.advance(25)
    assert timers.run_due() == 3
    assert ran == [("a", 10), ("b1", 20), ("b2", 20)]
    assert timers.next_deadline() == 30


def test_callback_gets_its_deadline_not_now():
    clock, timers = make()
    got = []
    timers.schedule(7, got.append)
    clock.advance(1000)
    timers.run_due()
    assert got == [7]


def test_run_due_with_explicit_now():
    clock, timers = make()
    ran = []
    timers.schedule(50, ran.append)
    assert timers.run_due(now_ns=49) == 0
    assert timers.run_due(now_ns=50) == 1 and ran == [50]


def test_cancel():
    clock, timers = make()
    ran = []
    t = timers.schedule(10, lambda w: ran.append("x"))
    timers.schedule(20, lambda w: ran.append("y"))
    timers.cancel(t)
    timers.cancel(None)                                   # accepted: "no timer armed"
    assert timers.next_deadline() == 20
    clock.advance(100)
    assert timers.run_due() == 1 and ran == ["y"]
    assert timers.next_deadline() is None


def test_each_due_timer_runs_once_per_pass():
    clock, timers = make()
    ran = []

    def periodic(when):
        ran.append(when)
        timers.schedule(when + 10, periodic)           # already due: waits for the next pass

    timers.schedule(10, periodic)
    clock.advance(35)
    assert timers.run_due() == 1 and ran == [10]
    assert timers.run_due() == 1 and ran == [10, 20]
    assert timers.run_due() == 1 and ran == [10, 20, 30]
    assert timers.run_due() == 0
    assert timers.next_deadline() == 40


def test_timer_cancelled_by_an_earlier_callback_of_the_same_pass_does_not_run():
    clock, timers = make()
    ran = []
    later = []
    timers.schedule(10, lambda w: (ran.append("a"), timers.cancel(later[0])))
    later.append(timers.schedule(20, lambda w: ran.append("b")))
    clock.advance(30)
    timers.run_due()
    assert ran == ["a"]


def test_a_timer_runs_only_once():
    clock, timers = make()
    ran = []
    timers.schedule(10, ran.append)
    clock.advance(10)
    timers.run_due()
    clock.advance(10)
    timers.run_due()
    assert ran == [10]


def test_on_change_only_when_earliest_moves_earlier():
    clock, timers = make()
    changes = []
    timers.on_change = changes.append
    timers.schedule(100, lambda w: None)
    timers.schedule(200, lambda w: None)
    timers.schedule(50, lambda w: None)
    assert changes == [100, 50]
