"""Replay: windows across terminals, n-step returns and PER against hand-computed numbers.

Frames and embeddings carry their absolute row index as their value, so every assembled window
can be read back as the list of rows it came from.
"""
import numpy as np
import pytest

from rise_tf.replay.embedding_replay import EmbeddingReplay
from rise_tf.replay.layout import FIRST, LAST, MID, ReplayLayout
from rise_tf.replay.targets import n_step_targets
from rise_tf.replay.sum_tree import SumTree

KEYS = ["frame_stack", "embedding_window", "window_mask"]


def make_replay(capacity=64, lanes=1, **layout):
    defaults = dict(num_lanes=lanes, capacity=capacity, frame_size=4, embedding_size=2, embedding_dtype="float16",
                    frame_stack=2, window_length=4, n_step=3, gamma=0.5, reward_clip=0.0, prioritized=True,
                    priority_exponent=0.5)
    defaults.update(layout)
    return EmbeddingReplay(ReplayLayout(**defaults), KEYS, seed=0)


def write(replay, step_types, discounts, rewards=None, start=0):
    """Writes rows start.. on lane 0; reward of row i is i + 1 unless given."""
    for offset, (step_type, discount) in enumerate(zip(step_types, discounts)):
        row = start + offset
        reward = (row + 1.0) if rewards is None else rewards[offset]
        replay.add_batch(np.array([step_type]), np.full((1, 4, 4), row, np.uint8),
                         np.full((1, 2), row, np.float16), np.array([row]), np.array([reward]),
                         np.array([discount]))


def assemble(replay, rows):
    rows = np.asarray(rows)
    return replay.assemble(np.zeros(len(rows), np.int64), rows)


# An episode that terminates (rows 0-3, LAST at 3), then one that runs on (rows 4-9).
EPISODES = ([FIRST, MID, MID, LAST, FIRST, MID, MID, MID, MID, MID],
            [1, 1, 0, 1, 1, 1, 1, 1, 1, 1])


def test_n_step_targets_by_hand():
    rewards = np.array([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0], [1.0, 2.0, 3.0]])
    discounts = np.array([[1.0, 1.0, 1.0], [1.0, 0.0, 1.0], [1.0, 1.0, 1.0]])
    returns, bootstrap = n_step_targets(rewards, discounts, np.array([3, 3, 1]), gamma=0.5)
    # row 0: 1 + 0.5*2 + 0.25*3 = 2.75, discount 0.5^3 = 0.125
    # row 1: a zero discount after step 2 (life loss): 1 + 0.5*2 = 2.0, then nothing; bootstrap 0
    # row 2: one step only: 1, bootstrap 0.5
    np.testing.assert_allclose(returns, [2.75, 2.0, 1.0])
    np.testing.assert_allclose(bootstrap, [0.125, 0.0, 0.5])


def test_only_rows_with_a_complete_bootstrap_are_sampleable():
    replay = make_replay()
    write(replay, *EPISODES)
    # rows 0-2 ended within 3 steps (LAST at 3); row 3 is LAST (no action); rows 4-6 have t+3 written.
    assert list(np.nonzero(replay.rings.sampleable[0])[0]) == [0, 1, 2, 4, 5, 6]


def test_returns_stop_at_the_terminal():
    replay = make_replay()
    write(replay, *EPISODES)
    batch = assemble(replay, [0, 1, 2, 5])
    # row 0: 1 + 0.5*2 + 0.25*3 = 2.75; the discount stored at row 2 is 0 (termination) -> bootstrap 0
    # row 1: 2 + 0.5*3 = 3.5; row 2: 3.0; row 5 (mid-episode): 6 + 3.5 + 2 = 11.5, bootstrap 0.125
    np.testing.assert_allclose(batch["n_step_return"], [2.75, 3.5, 3.0, 11.5])
    np.testing.assert_allclose(batch["bootstrap_discount"], [0.0, 0.0, 0.0, 0.125])
    np.testing.assert_array_equal(batch["action"], [0, 1, 2, 5])


def test_truncation_bootstraps_from_the_last_frame():
    replay = make_replay()
    write(replay, [FIRST, MID, MID, LAST], [1, 1, 1, 1])  # discount 1 into LAST = truncation
    batch = assemble(replay, [1])
    np.testing.assert_allclose(batch["n_step_return"], [2 + 0.5 * 3])
    np.testing.assert_allclose(batch["bootstrap_discount"], [0.25])  # γ^2, not 0
    assert batch["next_observation"]["frame_stack"][0, 0, 0].tolist() == [2, 3]


def test_windows_are_zeroed_and_masked_before_the_episode_start():
    replay = make_replay()
    write(replay, *EPISODES)
    batch = assemble(replay, [5])
    observation = batch["observation"]
    # Row 5 is the second step of the episode that began at row 4: k=4 window = rows 2,3,4,5.
    np.testing.assert_array_equal(observation["window_mask"][0], [0, 0, 1, 1])
    np.testing.assert_array_equal(observation["embedding_window"][0, :, 0], [0, 0, 4, 5])
    np.testing.assert_array_equal(observation["frame_stack"][0, 0, 0], [4, 5])
    # The bootstrap step (row 8) reads the same episode: rows 5..8, all real.
    np.testing.assert_array_equal(batch["next_observation"]["window_mask"][0], [1, 1, 1, 1])
    np.testing.assert_array_equal(batch["next_observation"]["embedding_window"][0, :, 0], [5, 6, 7, 8])
    # The first step of an episode sees only itself.
    first = assemble(replay, [4])["observation"]
    np.testing.assert_array_equal(first["window_mask"][0], [0, 0, 0, 1])
    np.testing.assert_array_equal(first["frame_stack"][0, 0, 0], [0, 4])


def test_reward_clipping_applies_per_step():
    replay = make_replay(reward_clip=1.0)
    write(replay, [FIRST, MID, MID, MID], [1, 1, 1, 1], rewards=[5.0, -7.0, 0.5, 0.0])
    np.testing.assert_allclose(assemble(replay, [0])["n_step_return"], [1 - 0.5 + 0.25 * 0.5])


def test_ring_buffer_overwrites_and_drops_windows_that_reach_overwritten_rows():
    replay = make_replay(capacity=12)
    write(replay, [FIRST] + [MID] * 19, [1] * 20)  # one long episode, 20 rows in 12 slots
    assert replay.num_stored == 12
    # Rows 8..16 are sampleable by the n-step rule; their windows need rows t-3..t >= 8.
    batch, keys, weights = replay.sample(64, beta=0.4)
    rows = keys  # one lane: a key is its absolute row
    assert rows.min() >= 11 and rows.max() <= 16
    assert set(np.nonzero(replay.rings.sampleable[0])[0] % 12) == {row % 12 for row in range(11, 17)}
    np.testing.assert_array_equal(weights, np.ones(64, np.float32))


def test_prioritized_sampling_and_importance_weights_by_hand():
    replay = make_replay(capacity=32, priority_exponent=1.0)
    write(replay, [FIRST] + [MID] * 5, [1] * 6)  # rows 0, 1, 2 sampleable
    keys = np.array([0, 1, 2])
    replay.update_priorities(keys, np.array([1.0, 1.0, 2.0]))  # priorities 1, 1, 2 (α = 1)
    counts = np.zeros(3)
    for _ in range(200):
        _, drawn, _ = replay.sample(4, beta=1.0)
        counts += np.bincount(drawn, minlength=3)
    np.testing.assert_allclose(counts / counts.sum(), [0.25, 0.25, 0.5], atol=0.03)
    _, drawn, weights = replay.sample(8, beta=1.0)
    # w_i = (N P_i)^-β / max w: P = 1/4 -> (3/4)^-1 = 4/3; P = 1/2 -> 2/3; max is 4/3.
    expected = np.where(drawn == 2, (2 / 3) / (4 / 3), 1.0)
    np.testing.assert_allclose(weights, expected, rtol=1e-6)


def test_new_steps_get_the_max_priority_and_nan_priorities_are_refused():
    replay = make_replay(capacity=32, priority_exponent=1.0)
    write(replay, [FIRST] + [MID] * 4, [1] * 5)
    replay.update_priorities(np.array([0]), np.array([7.0]))
    write(replay, [MID], [1], start=5)  # makes row 2 sampleable
    assert replay.sampler.tree.get(np.array([2]))[0] == pytest.approx(7.0, rel=1e-6)  # (7 + 1e-6)^1
    with pytest.raises(ValueError, match="NaN"):
        replay.update_priorities(np.array([0]), np.array([np.nan]))


def test_lanes_are_independent():
    replay = make_replay(capacity=64, lanes=2)
    for row in range(6):
        step_type = np.array([FIRST if row == 0 else MID, FIRST if row in (0, 3) else MID])
        replay.add_batch(step_type, np.stack([np.full((4, 4), row), np.full((4, 4), 100 + row)]).astype(np.uint8),
                         np.zeros((2, 2)), np.array([row, row]), np.ones(2), np.ones(2))
    batch = replay.assemble(np.array([0, 1]), np.array([2, 4]))
    np.testing.assert_array_equal(batch["observation"]["frame_stack"][:, 0, 0], [[1, 2], [103, 104]])
    np.testing.assert_array_equal(batch["observation"]["window_mask"], [[0, 1, 1, 1], [0, 0, 1, 1]])


def test_save_and_restore_round_trip(tmp_path):
    replay = make_replay()
    write(replay, EPISODES[0] + [LAST], EPISODES[1] + [1])  # every episode closed: restored as saved
    replay.update_priorities(np.array([1]), np.array([3.0]))
    replay.save(str(tmp_path))
    copy = make_replay()
    copy.restore(str(tmp_path))
    np.testing.assert_array_equal(copy.rings.frames, replay.rings.frames)
    np.testing.assert_array_equal(copy.sampler.tree.nodes, replay.sampler.tree.nodes)
    assert copy.sample(4, beta=0.4)[1].tolist() == replay.sample(4, beta=0.4)[1].tolist()  # same RNG state
    other = make_replay(n_step=2)
    with pytest.raises(ValueError, match="another layout"):
        other.restore(str(tmp_path))


def test_save_writes_only_the_slots_in_use(tmp_path):
    big = make_replay(capacity=4096, lanes=2)
    for _ in range(10):
        big.add_batch(np.array([MID, MID]), np.ones((2, 4, 4), np.uint8), np.ones((2, 2), np.float16),
                      np.zeros(2), np.ones(2), np.ones(2))
    big.save(str(tmp_path / "big"))
    # The whole buffer would take > 2 x 4096 x 38 bytes plus a 16,384-leaf tree (~0.6 MB); 10 rows take little.
    assert (tmp_path / "big" / "replay.npz").stat().st_size < 20_000
    copy = make_replay(capacity=4096, lanes=2)
    copy.restore(str(tmp_path / "big"))
    np.testing.assert_array_equal(copy.rings.rows_written, [10, 10])
    np.testing.assert_array_equal(copy.rings.frames, big.rings.frames)
    np.testing.assert_array_equal(copy.rings.step_types[:, 9], [LAST, LAST])  # the open episodes were closed
    empty = make_replay()
    empty.save(str(tmp_path / "empty"))
    make_replay().restore(str(tmp_path / "empty"))  # nothing written yet: restores to nothing


def test_restore_closes_open_episodes_so_nothing_reads_into_the_next_one(tmp_path):
    """Resuming with saved replay: the envs restart with a FIRST. The open episode (rows 4-9) ends at
    row 9 as a truncation; its last rows bootstrap from row 9, never from the new episode's rows."""
    replay = make_replay()
    write(replay, *EPISODES)
    assert not replay.rings.sampleable[0, 7] and not replay.rings.sampleable[0, 8]  # their bootstrap is not written yet
    replay.save(str(tmp_path))
    restored = make_replay()
    restored.restore(str(tmp_path))
    assert restored.rings.step_types[0, 9] == LAST and not restored.rings.sampleable[0, 9]
    assert restored.rings.sampleable[0, 7] and restored.rings.sampleable[0, 8]  # bootstrap: the truncation row 9
    write(restored, [FIRST, MID, MID, MID, MID], [1] * 5, start=10)  # the restarted env's episode
    batch = assemble(restored, [6, 7, 8, 11])
    # Rows 7 and 8 stop at row 9: 8 + 0.5*9 = 12.5 and 9; bootstrap γ^2 and γ from row 9's frames.
    np.testing.assert_allclose(batch["n_step_return"], [7 + 0.5 * 8 + 0.25 * 9, 8 + 0.5 * 9, 9, 12 + 6.5 + 3.5])
    np.testing.assert_allclose(batch["bootstrap_discount"], [0.125, 0.25, 0.5, 0.125])
    for index in range(3):  # the old episode's windows end at row 9 and never read rows 10+
        np.testing.assert_array_equal(batch["next_observation"]["embedding_window"][index, :, 0], [6, 7, 8, 9])
        np.testing.assert_array_equal(batch["next_observation"]["frame_stack"][index, 0, 0], [8, 9])
    # The new episode's row 11 sees only rows 10 and 11.
    np.testing.assert_array_equal(batch["observation"]["window_mask"][3], [0, 0, 1, 1])


def test_bad_layouts_and_empty_sampling_are_clear():
    with pytest.raises(ValueError, match="window_length"):
        make_replay(window_length=0)
    with pytest.raises(ValueError, match="too small"):
        make_replay(capacity=4)
    with pytest.raises(RuntimeError, match="warm-up"):
        make_replay().sample(2, beta=0.4)


def test_sum_tree_finds_leaves_by_cumulative_mass():
    tree = SumTree(5)
    tree.set(np.arange(5), np.array([1.0, 0.0, 2.0, 0.0, 1.0]))
    assert tree.total == 4.0
    np.testing.assert_array_equal(tree.find(np.array([0.0, 0.99, 1.0, 2.99, 3.0, 3.99])), [0, 0, 2, 2, 4, 4])


def test_a_priority_for_an_overwritten_step_never_lands_on_the_step_that_took_its_slot():
    """A batch sampled ahead (prefetch) holds keys of steps that may be overwritten before its update
    returns: their priorities are dropped, not written onto the newer steps in those slots."""
    replay = make_replay(capacity=12, priority_exponent=1.0)
    write(replay, [FIRST] + [MID] * 9, [1] * 10)
    _, keys, _ = replay.sample(8, beta=0.4)
    write(replay, [MID] * 12, [1] * 12, start=10)  # every old step overwritten; new ones sampleable
    before = replay.sampler.tree.nodes.copy()
    replay.update_priorities(keys, np.full(len(keys), 50.0))
    np.testing.assert_array_equal(replay.sampler.tree.nodes, before)
    _, fresh, _ = replay.sample(4, beta=0.4)
    replay.update_priorities(fresh, np.full(4, 50.0))  # keys of steps still stored do land
    assert replay.sampler.tree.get(np.asarray(fresh) % 12).tolist() == [pytest.approx(50.0)] * 4
