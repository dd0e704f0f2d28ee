"""Segments of consecutive steps (rise_tf/replay/segments.py): the priority rule by hand, and every
position of a sampled segment holding exactly the inputs and targets of that step, with positions that
cannot be trained masked (a LAST row, rows not yet bootstrappable, rows past the newest)."""
import numpy as np
import pytest
import tensorflow as tf

from rise_tf.replay import segments
from rise_tf.replay.layout import FIRST, LAST, MID
from rise_tf.replay.segments import SequenceShape, segment_priority
from rise_tf.replay.sequences import segment_inputs
from test_replay import KEYS, assemble, make_replay, write


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


def _inputs(replay, records, length):
    shape = SequenceShape(replay.layout, tuple(KEYS), length)
    out = segment_inputs(tf.nest.map_structure(tf.constant, records), shape)
    return tf.nest.map_structure(lambda x: x.numpy(), out)


def _sampleable_rows(replay):
    """The rows the in-process replay would sample as single steps (lane 0), from its own bookkeeping."""
    rows = replay.rings.absolute_rows(np.zeros(replay.layout.lane_capacity, np.int64),
                                      np.arange(replay.layout.lane_capacity))
    keep = replay.rings.sampleable[0] & replay.rings.window_intact(np.zeros(len(rows), np.int64), rows) & (rows >= 0)
    return set(rows[keep].tolist())


def _check_positions_are_the_steps(replay, length, draws=64):
    """Every trainable position of sampled segments holds exactly what `sample` assembles for that row,
    and the trainable positions are exactly the rows single-step sampling may draw."""
    records, keys, weights = replay.sample_segments(draws, SequenceShape(replay.layout, tuple(KEYS), length), beta=0.4)
    starts = keys  # one lane: the key is the start row
    out = _inputs(replay, records, length)
    assert out["action"].shape == (draws, length) and weights.shape == (draws,)
    rows = starts[:, None] + np.arange(length)
    sampleable = _sampleable_rows(replay)
    np.testing.assert_array_equal(out["trainable"], np.isin(rows, list(sampleable)))
    assert set(starts.tolist()) <= sampleable  # starts are sampleable steps
    checked = 0
    for b, i in zip(*np.nonzero(out["trainable"])):
        expected = assemble(replay, [rows[b, i]])
        for key in ("action", "n_step_return", "bootstrap_discount"):
            np.testing.assert_array_equal(out[key][b, i], expected[key][0], err_msg=f"{key} at row {rows[b, i]}")
        for key in expected["observation"]:
            np.testing.assert_array_equal(out["observation"][key][b, i], expected["observation"][key][0])
            np.testing.assert_array_equal(out["observation"][key][b, out["bootstrap_index"][b, i]],
                                          expected["next_observation"][key][0])
        checked += 1
    return checked


def test_each_position_is_the_step_itself_and_untrainable_positions_are_masked():
    replay = make_replay()
    _episodes(replay)
    # n = 3: rows 0-3 and 5-8 have their bootstrap; row 4 is LAST; rows 9-11 wait for theirs; 12+ unwritten
    assert _sampleable_rows(replay) == set(range(0, 4)) | set(range(5, 9))
    assert _check_positions_are_the_steps(replay, 5) > 64


def test_positions_that_read_overwritten_rows_are_masked_in_a_wrapped_ring():
    """A ring of 12 rows after 40 written: rows 0-27 are gone. Positions whose window reaches them are
    not trained, positions of the same episode further on are (the records mark the lost rows MISSING)."""
    replay = make_replay(capacity=12)
    types = [FIRST] + [MID] * 19 + [LAST] + [FIRST] + [MID] * 18
    write(replay, types, [1] * 40)
    # window 4 (frame stack 2): rows 31.. read rows >= 28; row 36 is the last with a bootstrap (n = 3)
    assert _sampleable_rows(replay) == set(range(31, 37))
    assert _check_positions_are_the_steps(replay, 3) > 0
    # A record that starts next to the lost rows: row 29 reads rows 26-29, row 30 rows 27-30 (both lost).
    shape = SequenceShape(replay.layout, tuple(KEYS), 4)
    out = _inputs(replay, segments.records(replay.rings, np.array([0]), np.array([29]), shape), 4)
    np.testing.assert_array_equal(out["trainable"][0], [False, False, True, True])  # rows 29-32


def test_n_step_targets_of_a_hand_made_segment():
    """rows 0-4 (LAST at 4, terminal discount at row 3), rewards = row + 1, γ = 0.5, n = 3: by hand."""
    replay = make_replay()
    _episodes(replay)
    records = segments.records(replay.rings, np.array([0]), np.array([1]), SequenceShape(replay.layout, tuple(KEYS), 4))
    out = _inputs(replay, records, 4)
    # row 1: 2 + 0.5·3 + 0.25·4 = 4.5, bootstraps from row 4 with 0.125·1·1·0 = 0 (row 3's discount is 0)
    # row 2: LAST at 4 is 2 steps on: 3 + 0.5·4 = 5, discount 0.25·1·0 = 0
    # row 3: 4, discount 0.5·0 = 0; row 4 (LAST): not trained
    np.testing.assert_allclose(out["n_step_return"][0, :3], [4.5, 5.0, 4.0])
    np.testing.assert_allclose(out["bootstrap_discount"][0, :3], [0.0, 0.0, 0.0])
    np.testing.assert_array_equal(out["bootstrap_index"][0, :3], [3, 3, 3])  # positions: rows 1..7 -> row 4
    np.testing.assert_array_equal(out["trainable"][0], [True, True, True, False])
    records = segments.records(replay.rings, np.array([0]), np.array([5]), SequenceShape(replay.layout, tuple(KEYS), 2))
    out = _inputs(replay, records, 2)
    # row 5: 6 + 0.5·7 + 0.25·8 = 11.5, bootstrap row 8 with 0.125; row 6: 7 + 3.5·... = 7 + 4 + 2.25 = 13.25
    np.testing.assert_allclose(out["n_step_return"][0], [11.5, 13.25])
    np.testing.assert_allclose(out["bootstrap_discount"][0], [0.125, 0.125])
    np.testing.assert_array_equal(out["bootstrap_index"][0], [3, 4])


def test_a_segment_crossing_an_episode_end_restarts_the_window_there():
    replay = make_replay()
    _episodes(replay)
    records = segments.records(replay.rings, np.array([0]), np.array([3]), SequenceShape(replay.layout, tuple(KEYS), 6))
    out = _inputs(replay, records, 6)  # rows 3..8: the terminal step, LAST, then the next episode
    np.testing.assert_array_equal(out["trainable"][0], [True, False, True, True, True, True])
    masks = out["observation"]["window_mask"][0]
    np.testing.assert_array_equal(masks[0], [1, 1, 1, 1])  # row 3: rows 0-3 of its episode
    np.testing.assert_array_equal(masks[2], [0, 0, 0, 1])  # row 5: its episode's first step
    windows = out["observation"]["embedding_window"][0]
    np.testing.assert_array_equal(windows[3, :, 0], [0, 0, 5, 6])  # row 6 reads rows 5, 6 only


def test_segment_lengths_must_be_positive():
    replay = make_replay()
    _episodes(replay)
    with pytest.raises(ValueError, match="at least 1 step"):
        replay.sample_segments(4, SequenceShape(replay.layout, tuple(KEYS), 0), beta=0.4)


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
    # records of T = R-1 + m + n rows, R = max(k, frame stack)
    reach = max(config.network.window_length, config.network.frame_stack)
    assert sampled.batch["step_type"].shape == (4, reach - 1 + 4 + config.agent.n_step)
    assert sampled.weights.shape == (4,)
    info = trainer.agent.train(sampled.batch, sampled.weights).extra
    assert info.sample_errors.shape == (4, 4) and info.trainable.shape == (4, 4)
    # the priority written for a segment is R2D2's mix over its trainable positions
    errors, trainable = info.sample_errors.numpy(), info.trainable.numpy()
    b = int(np.argmax(trainable.sum(axis=1)))
    mine = np.abs(errors[b][trainable[b]])
    assert segment_priority(errors, trainable, 0.9)[b] == pytest.approx(0.9 * mine.max() + 0.1 * mine.mean())


@pytest.mark.parametrize("updates, message", [
    ({"agent": {"segment_length": 0}}, "segment_length must be >= 1"),
    ({"agent": {"segment_length": -3}}, "segment_length must be >= 1"),
    ({"agent": {"segment_length": 7000}}, "does not fit in a lane of the replay"),  # 50,000 over 8 lanes
])
def test_bad_segment_lengths_are_refused_with_the_fix(updates, message):
    from rise_tf.config import make_config

    with pytest.raises(ValueError, match=message):
        make_config("rise-dqn", "MemoryCorridor", **updates)


def test_segments_need_a_model_with_memory_and_split_whole_over_learner_replicas():
    from rise_tf.config import make_config

    with pytest.raises(ValueError, match="needs a model with memory"):
        make_config("dqn", "MemoryCorridor", agent={"segment_length": 8})
    with pytest.raises(ValueError, match="batch_size 3 does not split over --learner-replicas 2"):
        make_config("rise-dqn", "MemoryCorridor", agent={"segment_length": 8, "batch_size": 3},
                    train={"learner_replicas": 2})
    # Reverb serves segments (its items are then segment records): the distributed engine trains them too.
    config = make_config("rise-dqn", "MemoryCorridor", agent={"segment_length": 8}, replay={"replay_backend": "reverb"})
    assert config.targets_per_update == 8 * config.agent.batch_size
