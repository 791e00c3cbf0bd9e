import random
import time

import numpy as np
import pytest

from vrae_live.live.clock import FrameClock, Tick
from vrae_live.testing.fake_time import FakeTime


def fake_clock(period=0.05, **kwargs):
    fake = FakeTime(1000.0, **{k: kwargs.pop(k) for k in ("overshoot", "per_call") if k in kwargs})
    return fake, FrameClock(period, now=fake.now, sleep=fake.sleep, spin_s=kwargs.pop("spin_s", 0.0), **kwargs)


def test_ticks_are_due_on_absolute_deadlines():
    fake, clock = fake_clock(0.05)
    clock.start()
    t0 = fake.t
    assert clock.wait() == Tick(0, 0.0)
    assert clock.wait().index == 1
    assert fake.t == pytest.approx(t0 + 0.05)
    assert clock.deadline(7) == pytest.approx(t0 + 7 * 0.05)


def test_no_drift_over_10k_ticks_with_overshooting_sleeps_and_work():
    rng = random.Random(0)
    period = 0.01
    fake, clock = fake_clock(period, overshoot=lambda: rng.uniform(0, 0.0003))
    clock.start()
    t0 = fake.t
    worst = 0.0
    for k in range(10_000):
        tick = clock.wait()
        assert tick.index == k
        worst = max(worst, fake.t - (t0 + k * period))
        fake.work(rng.uniform(0, 0.006))  # decoding between ticks
    assert worst <= 0.0003 + 1e-9, "lateness stays within one sleep overshoot: nothing accumulates"
    assert clock.deadline(10_000) == pytest.approx(t0 + 10_000 * period, abs=1e-9)
    assert clock.late_ticks == 0 and clock.resyncs == 0


def test_spinning_reaches_the_deadline_with_sub_millisecond_accuracy():
    # sleep overshoots by 0.8 ms; spinning from 2 ms before the deadline absorbs it
    fake, clock = fake_clock(0.05, overshoot=lambda: 0.0008, per_call=1e-6, spin_s=0.002)
    clock.start()
    lateness = [clock.wait().lateness for _ in range(50)]
    assert max(lateness) < 1e-5
    assert all(s <= 0.05 - 0.002 + 1e-9 for s in fake.sleeps), "never sleeps into the spin window"


def test_late_ticks_are_counted_and_caught_up_without_resync():
    fake, clock = fake_clock(0.1, resync_after_periods=3)
    clock.start()
    clock.wait()
    fake.work(0.25)  # tick 1 due at 0.1 and tick 2 at 0.2: both overdue, by less than 3 periods
    assert clock.wait() == Tick(1, pytest.approx(0.15))
    assert clock.wait() == Tick(2, pytest.approx(0.05))
    assert clock.late_ticks == 2  # 0.15 and 0.05 are both over a quarter period (0.025)
    t_before = fake.t
    assert clock.wait().lateness == 0.0 and fake.t == pytest.approx(t_before + 0.05), "back on the grid"
    assert list(clock.lateness) == pytest.approx([0, 0.15, 0.05, 0])  # every tick's, for the summary
    assert clock.resyncs == 0


def test_slightly_late_tick_within_tolerance_is_not_counted():
    fake, clock = fake_clock(0.1, late_tolerance_s=0.01)
    clock.start()
    clock.wait()
    fake.work(0.105)
    assert clock.wait().lateness == pytest.approx(0.005)
    assert clock.late_ticks == 0


def test_far_behind_reanchors_instead_of_bursting():
    fake, clock = fake_clock(0.1, resync_after_periods=3)
    clock.start()
    t0 = fake.t
    clock.wait()
    fake.work(1.0)  # ten periods stalled
    stalled_until = fake.t
    tick = clock.wait()
    assert tick.index == 1 and tick.lateness == pytest.approx(0.9)
    assert clock.resyncs == 1 and clock.late_ticks == 1
    assert fake.t == stalled_until, "the resynced tick fires now"
    tick = clock.wait()
    assert tick == Tick(2, 0.0)
    assert fake.t == pytest.approx(stalled_until + 0.1), "the next tick is a full period later, not a burst"
    assert clock.deadline(3) == pytest.approx(stalled_until + 0.2)
    assert clock.deadline(3) != pytest.approx(t0 + 0.3)


def test_real_time_ticks_are_never_early():
    """On the real clock: a tick never comes before its deadline (how late is a benchmark's business)."""
    period = 0.005
    clock = FrameClock(period)
    clock.start()
    t0 = clock.deadline(0)
    errors = []
    for k in range(200):  # one second
        clock.wait()
        errors.append(time.monotonic() - (t0 + k * period))
    errors = np.array(errors[1:])
    print(f"\nlateness p50 {np.median(errors) * 1e3:.3f} ms, max {errors.max() * 1e3:.3f} ms")
    assert errors.min() >= 0


def test_bad_periods_and_a_deadline_before_start():
    for bad in (0, -1, float("inf"), float("nan")):
        with pytest.raises(ValueError):
            FrameClock(bad)
    with pytest.raises(RuntimeError):
        FrameClock(0.1).deadline(0)
