import numpy as np
import tensorflow as tf
from tf_agents.specs import tensor_spec
from tf_agents.trajectories import time_step as ts

from rise_tf.policies.rise_policy import RiseQPolicy

from conftest import network_for, spec_for

FRAME = tf.TensorSpec([36, 36], tf.uint8, "frame")
ACTIONS = tensor_spec.BoundedTensorSpec([], tf.int32, 0, 3)


def make_policy(memory="rise", epsilon=None, stochastic=False, **network):
    spec = spec_for(memory, frame_size=36, window_length=3, embedding_size=4)
    net = network_for(spec, 4, memory=memory, core_units=4, **network)
    return RiseQPolicy(ts.time_step_spec(FRAME), ACTIONS, net, embedding_dtype="float16", epsilon=epsilon,
                       stochastic_network=stochastic), net


def step(step_type, frames):
    batch = frames.shape[0]
    return ts.TimeStep(tf.fill([batch], step_type), tf.zeros([batch]), tf.ones([batch]), tf.constant(frames))


def frames_of(value, batch=2):
    return np.full((batch, 36, 36), value, np.uint8)


def test_state_resets_on_first_and_windows_shift():
    policy, net = make_policy()
    state = policy.get_initial_state(2)
    out = policy.action(step(ts.StepType.FIRST, frames_of(10)), state)
    np.testing.assert_array_equal(out.state["window_mask"], [[0, 0, 1], [0, 0, 1]])
    out = policy.action(step(ts.StepType.MID, frames_of(20)), out.state)
    np.testing.assert_array_equal(out.state["window_mask"], [[0, 1, 1], [0, 1, 1]])
    np.testing.assert_array_equal(out.state["frame_stack"][0, 0, 0], [0, 0, 10, 20])
    # Lane 1 starts a new episode: its memory is wiped, lane 0's is kept.
    mixed = ts.TimeStep(tf.constant([ts.StepType.MID, ts.StepType.FIRST]), tf.zeros([2]), tf.ones([2]),
                        tf.constant(frames_of(30)))
    out = policy.action(mixed, out.state)
    np.testing.assert_array_equal(out.state["window_mask"], [[1, 1, 1], [0, 0, 1]])
    np.testing.assert_array_equal(out.state["frame_stack"][:, 0, 0], [[0, 10, 20, 30], [0, 0, 0, 30]])


def test_embedding_goes_out_as_info_rounded_like_replay_stores_it():
    policy, net = make_policy()
    frames = np.random.default_rng(0).integers(0, 256, (2, 36, 36)).astype(np.uint8)
    out = policy.action(step(ts.StepType.FIRST, frames), policy.get_initial_state(2))
    expected = net.embed_frames(tf.constant(frames)).numpy().astype(np.float16).astype(np.float32)
    np.testing.assert_array_equal(out.info["embedding"], expected)
    np.testing.assert_array_equal(out.state["embedding_window"][:, -1], expected)
    assert policy.info_spec["embedding"].shape == (4,)


def test_greedy_action_is_the_argmax_and_epsilon_one_explores():
    policy, net = make_policy()
    state = policy.get_initial_state(2)
    out = policy.action(step(ts.StepType.FIRST, frames_of(5)), state)
    q_values, _ = net(out.state)
    np.testing.assert_array_equal(out.action, np.argmax(q_values, axis=-1))
    explorer, _ = make_policy(epsilon=tf.Variable(1.0))
    actions = set()
    for _ in range(20):
        actions.update(explorer.action(step(ts.StepType.FIRST, frames_of(5)), state).action.numpy().tolist())
    assert len(actions) >= 3 and actions <= {0, 1, 2, 3}


def test_base_policy_keeps_only_a_frame_stack_and_emits_no_embedding():
    policy, _ = make_policy(memory="none")
    out = policy.action(step(ts.StepType.FIRST, frames_of(1)), policy.get_initial_state(2))
    assert set(out.state) == {"frame_stack"} and out.info == {}


def test_tf_agents_greedy_and_epsilon_greedy_wrappers_act_like_the_policy():
    """RiseQPolicy's distribution serves TF-Agents' own wrappers (issue 11): GreedyPolicy acts as the
    greedy RiseQPolicy (same action, state and embedding info); EpsilonGreedyPolicy at ε = 1 explores
    every action; the distribution of an ε-policy spreads exactly ε over the actions."""
    from tf_agents.policies import epsilon_greedy_policy, greedy_policy

    policy, _ = make_policy()
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (8, 36, 36), dtype=np.uint8)
    first = step(ts.StepType.FIRST, frames)
    direct = policy.action(first, policy.get_initial_state(8))
    wrapped = greedy_policy.GreedyPolicy(policy).action(first, policy.get_initial_state(8))
    np.testing.assert_array_equal(wrapped.action, direct.action)
    np.testing.assert_array_equal(wrapped.info["embedding"], direct.info["embedding"])
    tf.nest.map_structure(np.testing.assert_array_equal, wrapped.state, direct.state)
    explorer = epsilon_greedy_policy.EpsilonGreedyPolicy(policy, epsilon=1.0)
    seen = set()
    for _ in range(10):
        seen |= set(explorer.action(first, policy.get_initial_state(8)).action.numpy().tolist())
    assert seen == {0, 1, 2, 3}
    noisy, _ = make_policy(epsilon=0.2)
    probs = noisy.distribution(first, noisy.get_initial_state(8)).action.probs_parameter().numpy()
    np.testing.assert_allclose(np.sort(probs, axis=1)[:, :3], 0.05, rtol=1e-6)
    np.testing.assert_allclose(probs.max(axis=1), 0.85, rtol=1e-6)


def test_short_memory_reads_only_the_newest_steps_and_leaves_the_frame_stack():
    """ShortMemory (issue 21's memory ablation): with a cut to 2 steps of a window of k = 3, the network
    reads each step's window with only the previous and the current embedding (older ones zeroed and
    masked, as at an episode's start), acts on exactly that window, keeps the whole frame stack, and
    does not touch the caller's state. A frame-stack policy and a cut that is no cut are refused."""
    import pytest
    from rise_tf.experiments.short_memory import ShortMemory
    from rise_tf.parts.evaluator import as_py_policy

    policy, net = make_policy()
    short = ShortMemory(as_py_policy(policy), steps=2)
    state = short.get_initial_state(2)
    embeddings, fed = [], []
    rng = np.random.default_rng(3)
    for number in range(4):
        frames = rng.integers(0, 256, (2, 36, 36)).astype(np.uint8)
        fed.append(frames)
        step_type = ts.StepType.FIRST if number == 0 else ts.StepType.MID
        time_step = ts.TimeStep(np.full([2], step_type, np.int32), np.zeros([2], np.float32),
                                np.ones([2], np.float32), frames)
        before = {key: np.array(value) for key, value in state.items()}
        out = short.action(time_step, state)
        for key in state:  # the caller's state is left as it was
            np.testing.assert_array_equal(state[key], before[key])
        embeddings.append(out.info["embedding"])
        read = out.state  # the window after the push: what the network read this step
        if number == 0:
            np.testing.assert_array_equal(read["window_mask"], [[0, 0, 1]] * 2)
        else:
            np.testing.assert_array_equal(read["window_mask"], [[0, 1, 1]] * 2)
            np.testing.assert_array_equal(read["embedding_window"][:, 0], 0.0)
            np.testing.assert_array_equal(read["embedding_window"][:, 1], embeddings[-2])
        np.testing.assert_array_equal(read["embedding_window"][:, 2], embeddings[-1])
        q_values, _ = net({key: tf.constant(value) for key, value in read.items()})
        np.testing.assert_array_equal(out.action, np.argmax(q_values, axis=-1))
        state = out.state
    np.testing.assert_array_equal(state["frame_stack"], np.stack(fed, axis=-1))  # all four frames, none cut
    with pytest.raises(ValueError, match="no memory window"):
        ShortMemory(as_py_policy(make_policy(memory="none")[0]), steps=2)
    for steps in (0, 3):
        with pytest.raises(ValueError, match="no cut of a window of k = 3"):
            ShortMemory(as_py_policy(policy), steps=steps)
