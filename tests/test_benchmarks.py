"""The benchmarks run on every game they accept (smoke-sized; the figures come from `make bench`)."""
import math

from benchmarks import learner_cost


def test_learner_cost_fills_replay_with_the_games_own_actions():
    # MemoryCorridor has 2 actions: a filler writing Atari's 6 would index past the Q-values.
    result = learner_cost.measure(game="MemoryCorridor", rounds=1, updates_per_round=1, batch_size=4,
                                  models=(("base", "dqn"), ("rise", "rise-dqn")))
    assert math.isfinite(result["base_update_ms"]) and result["base_update_ms"] > 0
    assert math.isfinite(result["rise_over_base"]) and result["batch_size"] == 4
