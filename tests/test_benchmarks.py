"""The benchmarks run on every game they accept (smoke-sized; the figures come from `make bench`)."""
import math

from benchmarks import learner_cost


def test_learner_cost_fills_replay_with_the_games_own_actions():
    # MemoryCorridor has 2 actions: a filler writing Atari's 6 would index past the Q-values.
    result = learner_cost.measure(game="MemoryCorridor", rounds=1, updates_per_round=1, batch_size=4,
                                  models=(("base", "dqn"), ("rise", "rise-dqn")))
    assert math.isfinite(result["base_update_ms"]) and result["base_update_ms"] > 0
    assert math.isfinite(result["rise_over_base"]) and result["batch_size"] == 4


def test_frozen_encoder_cost_covers_every_encoder():
    from benchmarks import frozen_encoders

    result = frozen_encoders.measure(repeats=2, frame_size=42)
    assert list(result["encoders"]) == list(frozen_encoders.ENCODERS)
    for name, row in result["encoders"].items():
        assert row["batch1_ms_per_frame"] > 0 and row["batch8_ms_per_frame"] > 0 and row["weights"] > 0, name
    assert result["encoders"]["keras:ResNet50"]["weights"] > 10 * result["encoders"]["random_cnn"]["weights"]
