"""The segment update (issue 20) against the single-step one, on steps a real policy collected:
- same meaning as acting: with the same weights, the Q of every trainable position of a segment
  equals the single-step learner's Q for that step (1e-5), for RISE on the DQN and the BTR body;
- one segment update equals one single-step update over the same trainable steps (loss, priorities
  and the weights it leaves, DQN body: the double-DQN argmax reused from the online pass);
- TF-Agents' own data path: steps a driver wrote to a `TFUniformReplayBuffer` train RISE through
  `as_dataset(num_steps=T)` -> `agent.train`, and one update on its Trajectory equals ours on the
  same rows of our replay.
"""
import threading

import numpy as np
import pytest
import tensorflow as tf
from tf_agents.replay_buffers import tf_uniform_replay_buffer
from tf_agents.trajectories import trajectory as trajectories

from rise_tf import builder
from rise_tf.config import make_config
from rise_tf.parts.collector import Collector, ReplaySink
from rise_tf.replay import segments
from rise_tf.replay.sequences import segment_inputs

SEGMENTS, LENGTH = 4, 6


def _config(algo="rise-dqn", **agent):
    return make_config(algo, "MemoryCorridor", env={"num_envs": 2}, replay={"capacity": 2_000},
                       agent={"batch_size": SEGMENTS, "segment_length": LENGTH, **agent},
                       train={"frames": 1_000, "warmup_frames": 100, "eval_every_frames": 0})


def _collected(config, steps, observers=()):
    """(agent, replay, env) after `steps` collect steps of every lane with a fresh agent's collect policy."""
    env = builder.make_env(config)
    agent = builder.make_agent(config, env.time_step_spec(), env.action_spec())
    replay = builder.make_replay(config)
    sink = ReplaySink(lambda: replay, threading.Lock())

    def write(trajectory):
        sink(trajectory)
        for observer in observers:
            observer(trajectory)
    collector = Collector(env, agent.collect_policy, write, epsilon_variable=agent.epsilon, epsilon=lambda: 0.5)
    for _ in range(steps):
        collector.step()
    return agent, replay, collector


def _trainable_rows(replay, shape, draws=8):
    records, keys, weights = replay.sample_segments(draws, shape, beta=0.4)
    records = tf.nest.map_structure(tf.constant, records)
    out = segment_inputs(records, shape)
    lanes, starts = keys % replay.layout.num_lanes, keys // replay.layout.num_lanes
    return records, weights, out, lanes, starts


@pytest.mark.parametrize("algo", ["rise-dqn", "rise-btr"])
def test_every_position_has_the_single_step_learners_q(algo):
    overrides = {"network": {"width_scale": 1}} if algo == "rise-btr" else {}
    config = _config(algo)
    if overrides:
        config = config.replace(**overrides)
    agent, replay, collector = _collected(config, 120)
    collector.close()
    shape = builder.sequence_shape(config)
    records, _, out, lanes, starts = _trainable_rows(replay, shape)
    trainable = out["trainable"].numpy()
    assert trainable.sum() > SEGMENTS * 2  # most positions are trained (episodes of ~10 steps cross segments)
    b, i = np.nonzero(trainable)
    flat = {key: tf.constant(value.numpy()[b, i]) for key, value in out["observation"].items()}
    segment_q = agent.q_network(flat, training=False)[0].numpy()
    single = replay.assemble(lanes[b], starts[b] + i)
    step_q = agent.q_network(tf.nest.map_structure(tf.constant, single["observation"]), training=False)[0].numpy()
    np.testing.assert_allclose(segment_q, step_q, atol=1e-5)
    boot = out["bootstrap_index"].numpy()[b, i]
    flat_next = {key: tf.constant(value.numpy()[b, boot]) for key, value in out["observation"].items()}
    np.testing.assert_allclose(agent.q_network(flat_next, training=False)[0].numpy(),
                               agent.q_network(tf.nest.map_structure(tf.constant, single["next_observation"]),
                                               training=False)[0].numpy(), atol=1e-5)


def test_one_segment_update_equals_the_single_step_update_over_the_same_steps():
    config = _config()
    agent, replay, collector = _collected(config, 120)
    collector.close()
    shape = builder.sequence_shape(config)
    records, weights, out, lanes, starts = _trainable_rows(replay, shape, draws=SEGMENTS)
    trainable = out["trainable"].numpy()
    b, i = np.nonzero(trainable)
    single = tf.nest.map_structure(tf.constant, replay.assemble(lanes[b], starts[b] + i))
    single_agent = builder.make_agent(config.replace(agent={"batch_size": len(b), "segment_length": 1}),
                                      agent.time_step_spec, agent.action_spec)
    for mine, theirs in zip(single_agent.q_network.variables + single_agent.target_q_network.variables,
                            agent.q_network.variables + agent.target_q_network.variables):
        mine.assign(theirs)
    before = [v.numpy() for v in agent.q_network.trainable_variables]
    segment_info = agent.train(records, tf.constant(weights, tf.float32))
    # The segment loss divides by all B·m positions, the single-step one by its batch (the trainable ones).
    step_info = single_agent.train(single, tf.constant(weights[b] * len(b) / trainable.size, tf.float32))
    np.testing.assert_allclose(segment_info.loss.numpy(), step_info.loss.numpy(), rtol=1e-5)
    np.testing.assert_allclose(segment_info.extra.sample_errors.numpy()[b, i], step_info.extra.sample_errors.numpy(),
                               rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(segment_info.extra.q_mean.numpy(), step_info.extra.q_mean.numpy(), rtol=1e-5)
    moved = 0
    for old, mine, theirs in zip(before, agent.q_network.trainable_variables, single_agent.q_network.trainable_variables):
        np.testing.assert_allclose(mine.numpy(), theirs.numpy(), rtol=1e-4, atol=1e-6)
        moved += int(not np.allclose(old, mine.numpy()))
    assert moved > 0  # the update did change the weights


def test_tf_agents_uniform_replay_buffer_trains_rise_with_the_same_update_as_ours():
    config = _config()
    env_probe = builder.make_env(config)
    probe = builder.make_agent(config, env_probe.time_step_spec(), env_probe.action_spec())
    env_probe.close()
    buffer = tf_uniform_replay_buffer.TFUniformReplayBuffer(probe.collect_data_spec, batch_size=config.env.num_envs,
                                                            max_length=1_000)
    agent, replay, collector = _collected(config, 80, observers=[
        lambda trajectory: buffer.add_batch(tf.nest.map_structure(tf.convert_to_tensor, trajectory))])
    collector.close()
    shape = builder.sequence_shape(config)
    assert agent.train_sequence_length == shape.record_length
    # Our replay's record for (lane 1, start 30) equals the buffer's rows 30-R+1 .. 30+m-1+n of lane 1.
    start, lane = 30, 1
    ours = segments.records(replay.rings, np.array([lane]), np.array([start]), shape)
    everything = buffer.gather_all()  # [lanes, time, ...]
    window = slice(start - shape.reach + 1, start + shape.segment_length + config.agent.n_step)
    theirs = tf.nest.map_structure(lambda x: x[lane:lane + 1, window], everything)
    assert isinstance(theirs, trajectories.Trajectory)
    as_record = agent.as_training_data(theirs)
    for key, value in ours.items():
        np.testing.assert_array_equal(as_record[key].numpy(), value, err_msg=key)
    # The same update from either: two copies of one agent, one trained on each.
    twin = builder.make_agent(config.replace(agent={"batch_size": 1}), agent.time_step_spec, agent.action_spec)
    single = builder.make_agent(config.replace(agent={"batch_size": 1}), agent.time_step_spec, agent.action_spec)
    for a, b_, c in zip(twin.q_network.variables, single.q_network.variables, agent.q_network.variables):
        a.assign(c)
        b_.assign(c)
    for a, b_, c in zip(twin.target_q_network.variables, single.target_q_network.variables,
                        agent.target_q_network.variables):
        a.assign(c)
        b_.assign(c)
    loss_before = twin.loss(theirs).loss.numpy()  # TFAgent.loss takes the Trajectory too (no update)
    loss_theirs = twin.train(theirs).loss.numpy()
    assert loss_before == pytest.approx(loss_theirs, rel=1e-6)
    loss_ours = single.train(tf.nest.map_structure(tf.constant, ours)).loss.numpy()
    assert loss_theirs == pytest.approx(loss_ours, rel=1e-6)
    # TF-Agents' pipeline as a user writes it: as_dataset(num_steps=T) -> agent.train, unchanged.
    dataset = buffer.as_dataset(sample_batch_size=SEGMENTS, num_steps=shape.record_length, num_parallel_calls=1)
    experience, _ = next(iter(dataset))
    info = agent.train(experience)
    assert np.isfinite(info.loss.numpy()) and info.extra.sample_errors.shape == (SEGMENTS, LENGTH)


def test_a_trajectory_of_the_wrong_length_is_refused_with_the_length_to_sample():
    config = _config()
    env = builder.make_env(config)
    agent = builder.make_agent(config, env.time_step_spec(), env.action_spec())
    env.close()
    shape = builder.sequence_shape(config)
    spec = agent.collect_data_spec
    short = tf.nest.map_structure(lambda s: tf.zeros([SEGMENTS, 5] + s.shape.as_list(), s.dtype), spec)
    with pytest.raises(ValueError, match=f"sample num_steps={shape.record_length}"):
        agent.train(short)


def test_tf_agents_reverb_replay_buffer_and_observer_train_rise_unchanged():
    """The other TF-Agents pipeline: ReverbAddTrajectoryObserver(sequence_length=T) writes what the driver
    collects, ReverbReplayBuffer.as_dataset(num_steps=T) samples it, agent.train takes it as it comes.
    TF-Agents' observer writes only sequences inside one episode, so T must fit in an episode (~10 steps
    on MemoryCorridor): here k = 4, m = 2, n = 1, T = 3 + 2 + 1 = 6."""
    reverb = pytest.importorskip("reverb")
    from tf_agents.replay_buffers import reverb_replay_buffer, reverb_utils
    from tf_agents.specs import tensor_spec

    config = _config(segment_length=2, n_step=1).replace(network={"window_length": 4})
    env_probe = builder.make_env(config)
    probe = builder.make_agent(config, env_probe.time_step_spec(), env_probe.action_spec())
    env_probe.close()
    length = builder.sequence_shape(config).record_length
    signature = tensor_spec.add_outer_dim(tensor_spec.from_spec(probe.collect_data_spec))
    table = reverb.Table("experience", max_size=10_000, sampler=reverb.selectors.Uniform(),
                         remover=reverb.selectors.Fifo(), rate_limiter=reverb.rate_limiters.MinSize(1),
                         signature=signature)
    server = reverb.Server([table])
    try:
        buffer = reverb_replay_buffer.ReverbReplayBuffer(probe.collect_data_spec, "experience",
                                                         sequence_length=length, local_server=server)
        # One observer per lane: TF-Agents' observer writes unbatched trajectories.
        observers = [reverb_utils.ReverbAddTrajectoryObserver(buffer.py_client, "experience", sequence_length=length,
                                                              stride_length=1) for _ in range(config.env.num_envs)]

        def write(trajectory):
            for lane, observer in enumerate(observers):
                observer(tf.nest.map_structure(lambda x, lane=lane: x[lane], trajectory))
        agent, _, collector = _collected(config, 60, observers=[write])
        collector.close()
        for observer in observers:
            observer.flush()
        experience, _ = next(iter(buffer.as_dataset(sample_batch_size=SEGMENTS, num_steps=length)))
        assert isinstance(experience, trajectories.Trajectory) and experience.step_type.shape == (SEGMENTS, length)
        info = agent.train(experience)
        assert np.isfinite(info.loss.numpy()) and info.extra.trainable.shape == (SEGMENTS, 2)
        assert info.extra.trainable.numpy().all()  # inside one episode, and no LAST among the trained steps
        for observer in observers:
            observer.close()
    finally:
        server.stop()
