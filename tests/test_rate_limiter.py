"""The rate limiter of the concurrent engine: the serial loop's update count, a bounded lead, no deadlock."""
import threading
import time

import pytest

from rise_tf.engines.rate_limiter import RateLimiter, RateLimiterClosed


def test_allowed_updates_follow_the_serial_credit():
    limiter = RateLimiter(ratio=0.25, warmup_steps=100, max_lead_updates=4)
    assert [limiter.allowed_updates(s) for s in (0, 100, 103, 104, 108, 140)] == [0, 0, 0, 1, 2, 10]
    assert RateLimiter(ratio=1 / 3, warmup_steps=0, max_lead_updates=1).allowed_updates(9) == 3  # no float drift


@pytest.mark.parametrize("collector_delay, learner_delay", [(0.0, 0.002), (0.002, 0.0)])
def test_threads_make_exactly_the_ratios_updates_with_a_bounded_lead(collector_delay, learner_delay):
    """A fast collector against a slow learner and the reverse: the learner ends with exactly
    floor(ratio x steps after warm-up) updates, and the collector never runs further ahead than allowed
    (plus the one batch it inserts after its check)."""
    lanes, total_steps, ratio, lead = 8, 800, 0.5, 6
    limiter = RateLimiter(ratio=ratio, warmup_steps=40, max_lead_updates=lead)
    worst_backlog = [0]
    done = threading.Event()

    def collect():
        while limiter.steps < total_steps:
            limiter.wait_to_insert()
            time.sleep(collector_delay)
            limiter.inserted(lanes)
            worst_backlog[0] = max(worst_backlog[0], limiter.backlog())
        done.set()

    def learn():
        while not (done.is_set() and limiter.backlog() == 0):
            if limiter.wait_to_update(timeout=0.05):
                time.sleep(learner_delay)
                limiter.updated()

    threads = [threading.Thread(target=collect), threading.Thread(target=learn)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert limiter.steps == total_steps
    assert limiter.updates == int(ratio * (total_steps - 40)) == 380
    assert worst_backlog[0] <= lead + ratio * lanes


def test_close_releases_waiters_and_bad_settings_are_refused():
    limiter = RateLimiter(ratio=1.0, warmup_steps=10, max_lead_updates=1)
    errors = []

    def wait():
        try:
            limiter.wait_to_update()
        except RateLimiterClosed:
            errors.append("closed")

    thread = threading.Thread(target=wait)
    thread.start()
    time.sleep(0.05)
    limiter.close()
    thread.join(5)
    assert errors == ["closed"] and not thread.is_alive()
    for bad in (dict(ratio=0.0), dict(ratio=float("inf")), dict(warmup_steps=-1), dict(max_lead_updates=0)):
        with pytest.raises(ValueError):
            RateLimiter(**{**dict(ratio=1.0, warmup_steps=0, max_lead_updates=1), **bad})
