"""Segments of consecutive steps (rise_tf/replay/segments.py): the priority rule by hand, and every
position of a sampled segment holding exactly the inputs and targets of that step, with positions that
cannot be trained masked (a LAST row, rows not yet bootstrappable, rows past the newest)."""
import numpy as np
import pytest

from rise_tf.replay.layout import FIRST, LAST, MID
from rise_tf.replay.segments import segment_priority
from test_replay import assemble, make_replay, write


def test_segment_priority_is_r2d2s_mix_of_max_and_mean_by_hand():
    errors = np.array([[1.0, 3.0, 2.0], [4.0, -9.0, 7.0], [5.0, 5.0, 5.0]])
    valid = np.array([[True, True, True], [True, False, False], [False, False, False]])
    # 0.9 x 3 + 0.1 x (1 + 3 + 2) / 3 = 2.9; one valid position: 4; none: 0 (|-9| and 7 are masked)
    np.testing.assert_allclose(segment_priority(errors, valid, eta=0.9), [2.9, 4.0, 0.0])
    np.testing.assert_allclose(segment_priority(errors[:1], valid[:1], eta=0.0), [2.0])  # the mean alone


def _episodes(replay):
    # rows 0-4: an episode ending in a termination (LAST at 4); rows 5-11: the next, still open
    types = [FIRST, MID, MID, MID, LAST, FIRST, MID, MID, MID, MID, MID, MID]
    discounts = [1, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1]
    write(replay, types, discounts)


def test_each_position_is_the_step_itself_and_untrainable_positions_are_masked():
    replay = make_replay()
    _episodes(replay)
    batch, keys, weights, valid = replay.sample_segments(64, 5, beta=0.4)
    starts = keys // 1  # one lane: the key is the start row
    assert batch["action"].shape == (64 * 5,) and valid.shape == (64, 5) and weights.shape == (64,)
    rows = starts[:, None] + np.arange(5)
    # n = 3: rows 0-3 and 5-8 have their bootstrap; row 4 is LAST; rows 9-11 wait for theirs; 12+ unwritten
    trainable = set(range(0, 4)) | set(range(5, 9))
    np.testing.assert_array_equal(valid, np.isin(rows, list(trainable)))
    assert set(starts.tolist()) <= trainable  # starts are sampleable steps
    flat_rows = rows.reshape(-1)
    for index in np.flatnonzero(valid.reshape(-1)):
        expected = assemble(replay, [flat_rows[index]])
        for key in ("action", "n_step_return", "bootstrap_discount"):
            np.testing.assert_array_equal(batch[key][index], expected[key][0], err_msg=f"{key} at row {flat_rows[index]}")
        for part in ("observation", "next_observation"):
            for key in expected[part]:
                np.testing.assert_array_equal(batch[part][key][index], expected[part][key][0])


def test_a_segment_crossing_an_episode_end_restarts_the_window_there():
    replay = make_replay()
    _episodes(replay)
    for _ in range(20):
        batch, keys, _, valid = replay.sample_segments(16, 6, beta=0.4)
        crossing = np.flatnonzero(keys == 3)  # rows 3..8: the terminal step, LAST, then the next episode
        if crossing.size:
            break
    else:
        pytest.fail("no segment started at row 3 in 320 draws")
    b = crossing[0]
    np.testing.assert_array_equal(valid[b], [True, False, True, True, True, True])
    masks = batch["observation"]["window_mask"].reshape(16, 6, -1)[b]
    np.testing.assert_array_equal(masks[0], [1, 1, 1, 1])  # row 3: rows 0-3 of its episode
    np.testing.assert_array_equal(masks[2], [0, 0, 0, 1])  # row 5: its episode's first step
    windows = batch["observation"]["embedding_window"].reshape(16, 6, 4, 2)[b]
    np.testing.assert_array_equal(windows[3, :, 0], [0, 0, 5, 6])  # row 6 reads rows 5, 6 only


def test_segment_lengths_must_be_positive():
    replay = make_replay()
    _episodes(replay)
    with pytest.raises(ValueError, match="at least 1 step"):
        replay.sample_segments(4, 0, beta=0.4)


def test_the_learner_trains_segments_and_writes_one_priority_per_segment(tmp_path):
    """A short run with --segment-length 4: every update trains batch_size x 4 positions, the loss is
    finite, and the priorities written are one per segment, each R2D2's mix over its valid positions."""
    from rise_tf.config import make_config
    from rise_tf.train.trainer import Trainer

    config = make_config("rise-dqn", "MemoryCorridor", env={"num_envs": 2}, replay={"capacity": 2_000},
                         agent={"batch_size": 4, "segment_length": 4},
                         train={"frames": 300, "warmup_frames": 100, "eval_every_frames": 0})
    assert config.targets_per_update == 16
    trainer = Trainer(config, str(tmp_path), progress=False)
    written = []
    write = trainer.learner.write_priorities
    trainer.learner.write_priorities = lambda keys, errors: written.append((keys, errors)) or write(keys, errors)
    try:
        summary = trainer.run()
        sampled = trainer.learner.sample()
    finally:
        trainer.close()
    assert summary["updates"] > 0 and np.isfinite(trainer.learner.last_loss)
    assert all(len(keys) == 4 and len(errors) == 4 for keys, errors in written) and len(written) == summary["updates"]
    assert sampled.batch["action"].shape == (16,) and sampled.valid.shape == (4, 4)
    # each position weighs its segment's importance weight, masked and rescaled to a mean over valid ones
    weights = sampled.weights.numpy().reshape(4, 4)
    assert np.all(weights[~sampled.valid] == 0) and weights.sum() == pytest.approx(16.0 * weights[sampled.valid].mean()
                                                                                   * sampled.valid.mean())


@pytest.mark.parametrize("updates, message", [
    ({"agent": {"segment_length": 0}}, "segment_length must be >= 1"),
    ({"agent": {"segment_length": -3}}, "segment_length must be >= 1"),
    ({"agent": {"segment_length": 7000}}, "does not fit in a lane of the replay"),  # 50,000 over 8 lanes
    ({"agent": {"segment_length": 8}, "replay": {"replay_backend": "reverb"}}, "in-process replay only"),
])
def test_bad_segment_lengths_are_refused_with_the_fix(updates, message):
    from rise_tf.config import make_config

    with pytest.raises(ValueError, match=message):
        make_config("rise-dqn", "MemoryCorridor", **updates)


def test_segments_need_a_model_with_memory_and_one_process():
    from rise_tf.config import make_config

    with pytest.raises(ValueError, match="needs a model with memory"):
        make_config("dqn", "MemoryCorridor", agent={"segment_length": 8})
    with pytest.raises(ValueError, match="not served by the Reverb replay yet"):
        make_config("rise-dqn", "MemoryCorridor", agent={"segment_length": 8}).check_distributable()
