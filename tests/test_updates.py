"""The one "warm up, then hold the replay ratio" rule (rise_tf/parts/updates.py), by hand."""
import pytest

from rise_tf.parts import updates


def test_warm_up_is_counted_in_agent_steps_rounded_up():
    # 80,000 Atari frames at 4 frames per agent step: 20,000 agent steps; 10 frames at 4: 3 steps (2.5 up)
    assert updates.warmup_agent_steps(80_000, 4) == 20_000
    assert updates.warmup_agent_steps(10, 4) == 3
    assert updates.warmup_agent_steps(0, 1) == 1  # never before the first step is stored
    assert not updates.is_warm(2, 10, 4) and updates.is_warm(3, 10, 4)


def test_updates_owed_hold_the_ratio_by_hand():
    # ratio 0.25: 8 lanes x 1 step = 8 steps earn 2 updates; 10 steps earn floor(2.5) = 2
    assert updates.updates_allowed(0.25, 8) == 2 and updates.updates_allowed(0.25, 10) == 2
    assert updates.updates_owed(0.25, 10, updates_made=1) == 1
    assert updates.updates_owed(0.25, 10, updates_made=2) == 0
    assert updates.updates_owed(0.25, 10, updates_made=5) == 0  # never negative
    # BTR: 1/64 with 64 lanes is one update per vector step, exactly (the float sum lands a hair below 1)
    ratio = 1 / 64
    assert updates.updates_allowed(ratio, 64) == 1 and updates.updates_allowed(ratio, 63) == 0
    assert updates.updates_allowed(ratio, 64 * 1000) == 1000
    # ratio 0.1 over 8-step collections: 8, 16, 24, ... steps earn 0, 1, 2, 3, 3, 4, ... updates
    assert [updates.updates_allowed(0.1, 8 * k) for k in range(1, 8)] == [0, 1, 2, 3, 4, 4, 5]
    assert updates.updates_allowed(0.5, -4) == 0


def test_the_serial_loop_and_the_rate_limiter_count_the_same_updates():
    """The concurrent engine's limiter allows exactly what the serial loop makes after each collection."""
    from rise_tf.engines.rate_limiter import RateLimiter

    limiter = RateLimiter(0.1, warmup_steps=0, max_lead_updates=8)
    made = 0
    for _ in range(50):
        limiter.inserted(8)
        made += updates.updates_owed(0.1, limiter.steps, made)
        assert limiter.allowed_updates() == made
    assert made == 40  # 0.1 x 400 steps


@pytest.mark.parametrize("ratio, credit, steps_to_the_next", [(0.25, 0.75, 1), (1 / 64, 0.5, 32), (1.0, 0.0, 1)])
def test_counters_from_before_the_rule_keep_their_update_credit(ratio, credit, steps_to_the_next):
    """Old checkpoints saved the fraction of an update earned (update_credit); they resume with the
    agent steps that earned their updates."""
    from rise_tf.parts.counters import Counters

    counters = Counters()
    counters.load({"frames": 400, "agent_steps": 400, "updates": 50, "episodes": 3, "update_credit": credit}, ratio)
    assert updates.updates_owed(ratio, counters.earning_steps, counters.updates) == 0
    assert updates.updates_owed(ratio, counters.earning_steps + steps_to_the_next - 1, counters.updates) == 0
    assert updates.updates_owed(ratio, counters.earning_steps + steps_to_the_next, counters.updates) == 1
