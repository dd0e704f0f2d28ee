"""The Reverb-backed replay (issue 11) against the in-process one: the same stream of steps gives the
same learner batches, item for item; the items are exactly the sampleable steps; priorities, weights
and checkpoints work."""
import numpy as np
import pytest

pytest.importorskip("reverb")

from rise_tf.replay import reverb_items  # noqa: E402
from rise_tf.replay.embedding_replay import EmbeddingReplay  # noqa: E402
from rise_tf.replay.layout import FIRST, LAST, MID, ReplayLayout  # noqa: E402
from rise_tf.replay.reverb_store import ReverbReplay, importance_weights  # noqa: E402

INPUTS = ("frame_stack", "embedding_window", "window_mask")


def layout(prioritized=False, lanes=3, capacity=3 * 200):
    return ReplayLayout(num_lanes=lanes, capacity=capacity, frame_size=6, embedding_size=4, embedding_dtype="float16",
                        frame_stack=4, window_length=6, n_step=3, gamma=0.9, reward_clip=1.0, prioritized=prioritized,
                        priority_exponent=1.0)


def stream(num_steps, lanes, seed=0):
    """Steps as the driver writes them: episodes of 2..12 rows (FIRST, MID.., LAST), some ended by a
    termination (discount 0 on the row before LAST), some truncated, life losses (discount 0 mid-episode)."""
    rng = np.random.default_rng(seed)
    remaining = np.zeros(lanes, int)
    for _ in range(num_steps):
        step_type = np.empty(lanes, np.uint8)
        discount = np.ones(lanes, np.float32)
        for lane in range(lanes):
            if remaining[lane] == 0:
                step_type[lane], remaining[lane] = FIRST, rng.integers(1, 12)
            else:
                remaining[lane] -= 1
                step_type[lane] = LAST if remaining[lane] == 0 else MID
            if step_type[lane] != LAST and rng.random() < 0.15:
                discount[lane] = 0.0
        yield dict(step_type=step_type, frame=rng.integers(0, 256, (lanes, 6, 6), dtype=np.uint8),
                   embedding=rng.normal(size=(lanes, 4)).astype(np.float16), action=rng.integers(0, 5, lanes),
                   reward=rng.normal(scale=2.0, size=lanes).astype(np.float32), discount=discount)


def feed(stores, steps):
    for step in steps:
        for store in stores:
            store.add_batch(**step)


def test_items_are_the_sampleable_steps_and_their_batches_equal_the_in_process_replay():
    spec = layout()
    in_process = EmbeddingReplay(spec, INPUTS, seed=0)
    reverb_replay = ReverbReplay(spec, INPUTS, batch_size=16)
    try:
        feed([in_process, reverb_replay], stream(60, spec.num_lanes))
        written = reverb_replay.writers.rows_written
        # Every sampleable step whose n following rows are written is an item, and nothing else is.
        lanes, slots = np.nonzero(in_process.rings.sampleable)
        rows = in_process.rings.absolute_rows(lanes, slots)
        expected = {(int(a), int(r)) for a, r in zip(lanes, rows) if r + spec.n_step <= written[a] - 1}
        assert reverb_replay.num_sampleable == len(expected) > 100
        seen = set()
        for _ in range(40):
            batch, keys, sample_lanes, sample_rows = reverb_replay.sample_with_rows(beta=0.4)
            assert {(int(a), int(r)) for a, r in zip(sample_lanes, sample_rows)} <= expected
            seen |= set(zip(sample_lanes.tolist(), sample_rows.tolist()))
            reference = in_process.assemble(sample_lanes.astype(np.int64), sample_rows)
            for part in ("observation", "next_observation"):
                for name in INPUTS:
                    np.testing.assert_array_equal(batch[part][name].numpy(), reference[part][name], err_msg=f"{part}/{name}")
            for name in ("action", "n_step_return", "bootstrap_discount"):
                np.testing.assert_array_equal(batch[name].numpy(), reference[name], err_msg=name)
        assert len(seen) > 0.8 * len(expected)  # the comparison covered most items, episode edges included
    finally:
        reverb_replay.close()


def test_segment_items_give_the_in_process_segments_inputs_at_every_trainable_position():
    """With segments (issue 20) an item is a segment's record. Built into learner inputs, every position
    the Reverb record trains is trained by the in-process record of the same (lane, start) too, with
    the same inputs and targets; the in-process record trains no more (its rows are all written)."""
    import tensorflow as tf

    from rise_tf.replay import segments
    from rise_tf.replay.segments import SequenceShape
    from rise_tf.replay.sequences import cast_record, segment_inputs

    spec, length = layout(), 5
    shape = SequenceShape(spec, INPUTS, length)
    in_process = EmbeddingReplay(spec, INPUTS, seed=0)
    reverb_replay = ReverbReplay(spec, INPUTS, batch_size=8, segment_length=length)
    try:
        feed([in_process, reverb_replay], stream(60, spec.num_lanes))
        written = reverb_replay.writers.rows_written
        # An item per sampleable start whose last row (t + m-1 + n) is written.
        lanes, slots = np.nonzero(in_process.rings.sampleable)
        rows = in_process.rings.absolute_rows(lanes, slots)
        expected = {(int(a), int(r)) for a, r in zip(lanes, rows) if r + length - 1 + spec.n_step <= written[a] - 1}
        assert reverb_replay.num_sampleable == len(expected) > 80
        with pytest.raises(ValueError, match="segments of 5 step"):
            reverb_replay.sample(8, 0.4)
        checked = 0
        for _ in range(10):
            records, keys, sample_lanes, sample_rows = reverb_replay.sample_with_rows(beta=0.4)
            assert {(int(a), int(r)) for a, r in zip(sample_lanes, sample_rows)} <= expected
            theirs = segment_inputs(cast_record(records, shape), shape)
            ours = segment_inputs(tf.nest.map_structure(tf.constant, segments.records(
                in_process.rings, sample_lanes.astype(np.int64), sample_rows, shape)), shape)
            np.testing.assert_array_equal(theirs["trainable"].numpy(), ours["trainable"].numpy())
            for key in ("action", "n_step_return", "bootstrap_discount", "bootstrap_index"):
                np.testing.assert_array_equal(np.where(ours["trainable"], theirs[key], 0),
                                              np.where(ours["trainable"], ours[key], 0), err_msg=key)
            for key in INPUTS:
                b, i = np.nonzero(ours["trainable"].numpy())
                for index in (i, ours["bootstrap_index"].numpy()[b, i]):
                    np.testing.assert_array_equal(theirs["observation"][key].numpy()[b, index],
                                                  ours["observation"][key].numpy()[b, index], err_msg=key)
            checked += int(ours["trainable"].numpy().sum())
        assert checked > 200
    finally:
        reverb_replay.close()


def test_learner_inputs_mask_before_the_episode_and_stop_at_its_end():
    """One item by hand: t is the 2nd row of an episode that ends 1 row later (m = 1 < n)."""
    import tensorflow as tf
    spec = layout()
    length = reverb_items.item_length(spec)  # R + n = 6 + 3
    t = reverb_items.reach(spec) - 1  # position 5
    step_types = np.full(length, MID, np.uint8)
    step_types[t - 1], step_types[t + 1], step_types[t + 2] = FIRST, LAST, FIRST
    item = {"frame": np.arange(length, dtype=np.uint8)[:, None, None] * np.ones((1, 6, 6), np.uint8) + 1,
            "embedding": np.tile(np.arange(1, length + 1, dtype=np.float16)[:, None], (1, 4)),
            "action": np.arange(length, dtype=np.int32), "reward": np.full(length, 5.0, np.float32),
            "discount": np.ones(length, np.float32), "step_type": step_types,
            "lane": np.zeros(length, np.int32), "row": np.arange(length, dtype=np.int64)}
    out = reverb_items.learner_inputs(tf.nest.map_structure(tf.constant, item), spec, INPUTS)
    assert out["action"].numpy() == t
    assert out["n_step_return"].numpy() == pytest.approx(1.0)  # one reward, clipped to 1
    assert out["bootstrap_discount"].numpy() == pytest.approx(0.9)
    np.testing.assert_array_equal(out["observation"]["window_mask"].numpy(), [0, 0, 0, 0, 1, 1])
    np.testing.assert_array_equal(out["observation"]["frame_stack"].numpy()[0, 0], [0, 0, t, t + 1])
    np.testing.assert_array_equal(out["next_observation"]["window_mask"].numpy(), [0, 0, 0, 1, 1, 1])
    np.testing.assert_array_equal(out["next_observation"]["embedding_window"].numpy()[:, 0], [0, 0, 0, t, t + 1, t + 2])


def test_priorities_steer_sampling_and_weights_follow_the_probabilities():
    spec = layout(prioritized=True, lanes=1, capacity=200)
    replay = ReverbReplay(spec, INPUTS, batch_size=8)
    try:
        feed([replay], stream(30, 1, seed=3))
        _, keys, _, _ = replay.sample_with_rows(beta=1.0)
        favourite = int(keys[0])
        replay.update_priorities(np.array([favourite]), np.array([1e6]))
        replay._iterator = None  # drop batches prefetched under the old priorities
        drawn = np.concatenate([replay.sample(8, beta=1.0)[1] for _ in range(5)])
        assert np.mean(drawn == favourite) > 0.9
        assert replay.max_priority == pytest.approx(1e6, rel=1e-6)  # new items start there
    finally:
        replay.close()
    # (N P)^-β normalised by the batch's largest: hand-computed.
    weights = importance_weights(np.array([0.5, 0.25, 0.25]), np.array([4, 4, 4]), beta=1.0, prioritized=True)
    np.testing.assert_allclose(weights, [0.5, 1.0, 1.0])


def test_a_checkpoint_brings_back_the_items_and_the_counters(tmp_path):
    spec = layout(lanes=2, capacity=2 * 200)
    replay = ReverbReplay(spec, INPUTS, batch_size=4)
    feed([replay], stream(25, 2, seed=5))
    size = replay.num_sampleable
    replay.save(str(tmp_path / "ckpt"))
    rows = replay.writers.rows_written.copy()
    replay.close()
    restarted = ReverbReplay(spec, INPUTS, batch_size=4)
    try:
        assert restarted.num_sampleable == 0
        restarted.restore(str(tmp_path / "ckpt"))
        assert restarted.num_sampleable == size > 0
        np.testing.assert_array_equal(restarted.writers.rows_written, rows)
        # The first n rows after the restart make no item: their windows would reach into rows the
        # new writers never saw.
        steps = list(stream(spec.n_step, 2, seed=6))
        feed([restarted], steps)
        assert restarted.num_sampleable == size
    finally:
        restarted.close()


@pytest.mark.slow  # ~50 s; the fast suite keeps batch parity and the launcher's Reverb run
def test_the_trainer_runs_on_reverb_replay_and_resumes_with_its_contents(tmp_path):
    """The same tiny run on both backends: the same frames, episodes and updates, finite losses; with
    --save-replay the Reverb contents come back on --resume."""
    from rise_tf.config import make_config
    from rise_tf.train.trainer import Trainer

    def config(backend):
        return make_config("rise-dqn", "MemoryCorridor", env={"num_envs": 2},
                           replay={"capacity": 2_000, "replay_backend": backend, "save_replay": True},
                           train={"frames": 300, "warmup_frames": 100, "eval_every_frames": 0})
    counters = {}
    for backend in ("memory", "reverb"):
        trainer = Trainer(config(backend), str(tmp_path / backend), progress=False)
        try:
            trainer.run()
            counters[backend] = trainer.counters
            assert np.isfinite(trainer.learner.last_loss)
            if backend == "reverb":
                items = trainer.replay.num_sampleable
        finally:
            trainer.close()
    memory, reverb_run = counters["memory"], counters["reverb"]
    assert (reverb_run.frames, reverb_run.episodes, reverb_run.updates) == (memory.frames, memory.episodes,
                                                                            memory.updates) and memory.updates > 0
    resumed = Trainer(config("reverb").replace(train={"frames": 400}), str(tmp_path / "reverb"), resume=True,
                      progress=False)
    try:
        assert resumed.replay.num_sampleable == items > 0
        resumed.run()
        assert resumed.counters.frames == 400 and resumed.counters.updates > reverb_run.updates
    finally:
        resumed.close()
