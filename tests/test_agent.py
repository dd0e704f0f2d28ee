import numpy as np
import pytest
import tensorflow as tf
from tf_agents.specs import tensor_spec
from tf_agents.trajectories import time_step as ts

from rise_tf.agents.losses import double_dqn_targets, dqn_targets, huber, td_loss
from rise_tf.agents.rise_agent import RiseAgent

from conftest import network_for, spec_for

NUM_ACTIONS = 2
SPEC = spec_for("rise", frame_size=36, window_length=3, embedding_size=4)


def make_agent(period=1000, double_dqn=True, lr=1e-3, loss="huber", munchausen=False, **network):
    time_step_spec = ts.time_step_spec(tf.TensorSpec([36, 36], tf.uint8, "frame"))
    action_spec = tensor_spec.BoundedTensorSpec([], tf.int32, 0, NUM_ACTIONS - 1)
    net = network_for(SPEC, NUM_ACTIONS, **{"core_units": 4, "head": "linear", **network})
    agent = RiseAgent(time_step_spec, action_spec, net, tf.keras.optimizers.Adam(lr), embedding_dtype="float16",
                      loss=loss, double_dqn=double_dqn, huber_delta=1.0, munchausen=munchausen,
                      munchausen_temperature=0.03, munchausen_alpha=0.9, munchausen_log_policy_clip=-1.0,
                      target_update_period=period, target_update_tau=1.0, gradient_clip_norm=10.0,
                      eval_epsilon=0.0, train_step_counter=tf.Variable(0, dtype=tf.int64))
    agent.initialize()
    return agent


def batch_of(size, seed=0):
    rng = np.random.default_rng(seed)

    def observation():
        return {"frame_stack": tf.constant(rng.integers(0, 256, (size, 36, 36, 4)), tf.uint8),
                "embedding_window": tf.constant(rng.standard_normal((size, 3, 4)), tf.float32),
                "window_mask": tf.ones((size, 3))}
    return {"observation": observation(), "action": tf.constant(rng.integers(0, NUM_ACTIONS, size), tf.int32),
            "n_step_return": tf.constant(rng.standard_normal(size), tf.float32),
            "bootstrap_discount": tf.fill([size], 0.9), "next_observation": observation()}


def set_constant_q(network, bias):
    """Zero every trainable weight and set the linear head's bias: then Q(s, ·) = bias for all s."""
    for variable in network.trainable_variables:
        variable.assign(tf.zeros_like(variable))
    network.head.q.out.bias.assign(bias)


def test_huber_and_targets_by_hand():
    np.testing.assert_allclose(huber(tf.constant([0.5, -2.0, 1.0]), 1.0), [0.125, 1.5, 0.5])
    online = tf.constant([[1.0, 2.0]])
    target = tf.constant([[4.0, 3.0]])
    # double DQN picks action 1 by the online net, valued 3 by the target: 1 + 0.5 * 3 = 2.5
    np.testing.assert_allclose(double_dqn_targets(online, target, tf.constant([1.0]), tf.constant([0.5])), [2.5])
    np.testing.assert_allclose(dqn_targets(target, tf.constant([1.0]), tf.constant([0.5])), [3.0])
    loss, td = td_loss(tf.constant([[1.0, 2.0]]), tf.constant([1]), tf.constant([5.0]), tf.constant([2.0]), 1.0)
    np.testing.assert_allclose(td, [3.0])
    np.testing.assert_allclose(loss, 2.0 * 2.5)  # weight 2 x huber(3) = 2 x (3 - 0.5)


@pytest.mark.parametrize("double_dqn, expected", [(True, 0.875), (False, 1.125)])
def test_loss_on_a_fixed_weight_network_matches_the_hand_computed_value(double_dqn, expected):
    agent = make_agent(double_dqn=double_dqn)
    set_constant_q(agent.q_network, [1.0, 2.0])  # online Q = [1, 2] everywhere
    set_constant_q(agent.target_q_network, [4.0, 3.0])  # target Q = [4, 3] everywhere
    batch = batch_of(2)
    batch.update(action=tf.constant([0, 1]), n_step_return=tf.constant([1.0, 0.0]),
                 bootstrap_discount=tf.constant([0.5, 0.0]))
    # Row 0: target = 1 + 0.5 * Q_target(s', a*) with a* = argmax online = 1 -> 1 + 1.5 = 2.5;
    #        td = 2.5 - Q(s, 0) = 1.5 -> huber 1.0.   (plain DQN: 1 + 0.5 * 4 = 3 -> td 2 -> huber 1.5)
    # Row 1: terminal, target 0; td = 0 - Q(s, 1) = -2 -> huber 1.5, weighted by 0.5 -> 0.75.
    # loss = mean(1.0, 0.75) = 0.875   (plain DQN: mean(1.5, 0.75) = 1.125)
    loss_info = agent.loss(batch, weights=tf.constant([1.0, 0.5]))
    np.testing.assert_allclose(loss_info.loss, expected, rtol=1e-6)


def test_train_steps_give_finite_losses_and_change_only_trainable_weights():
    agent = make_agent(period=1000)
    frozen_before = [v.numpy().copy() for v in agent.q_network.frozen_encoder.variables]
    trainable_before = [v.numpy().copy() for v in agent.q_network.trainable_variables]
    target_before = [v.numpy().copy() for v in agent.target_q_network.variables]
    for step in range(3):
        loss_info = agent.train(batch_of(8, seed=step), tf.ones(8))
        assert np.isfinite(loss_info.loss.numpy())
        assert loss_info.extra.sample_errors.shape == (8,)
    assert int(agent.train_step_counter) == 3
    for before, variable in zip(frozen_before, agent.q_network.frozen_encoder.variables):
        np.testing.assert_array_equal(before, variable.numpy())
    changed = [not np.array_equal(b, v.numpy()) for b, v in zip(trainable_before, agent.q_network.trainable_variables)]
    assert sum(changed) >= len(changed) - 1  # every trainable tensor moves (a dead ReLU unit may not)
    for before, variable in zip(target_before, agent.target_q_network.variables):
        np.testing.assert_array_equal(before, variable.numpy())  # target waits for its period


def test_target_network_copies_online_weights_every_period():
    agent = make_agent(period=2)
    agent.train(batch_of(4), None)
    agent.train(batch_of(4, seed=1), None)
    for online, target in zip(agent.q_network.variables, agent.target_q_network.variables):
        np.testing.assert_array_equal(online.numpy(), target.numpy())


def test_nan_loss_stops_before_changing_weights():
    agent = make_agent()
    before = [v.numpy().copy() for v in agent.q_network.trainable_variables]
    batch = batch_of(4)
    batch["n_step_return"] = tf.constant([np.nan, 0.0, 0.0, 0.0], tf.float32)
    with pytest.raises(tf.errors.InvalidArgumentError, match="NaN or inf"):
        agent.train(batch, None)
    for b, v in zip(before, agent.q_network.trainable_variables):
        np.testing.assert_array_equal(b, v.numpy())


def _builder_agent(**train):
    """The agent as rise-train builds it (small sizes), with these train settings."""
    from rise_tf import builder
    from rise_tf.config import make_config

    config = make_config("rise-dqn", "MemoryCorridor", train=train, agent={"batch_size": 4},
                         network={"embedding_size": 8, "core_units": 8, "window_length": 4})
    tf.keras.utils.set_random_seed(0)
    time_step_spec = ts.time_step_spec(tf.TensorSpec([84, 84], tf.uint8, "frame"))
    action_spec = tensor_spec.BoundedTensorSpec([], tf.int32, 0, 1)
    return builder.make_agent(config, time_step_spec, action_spec)


def _spec_batch(agent, size=4, seed=0):
    """A batch of the agent's training structure: random frames, unit-normal embeddings, returns."""
    rng = np.random.default_rng(seed)

    def like(spec):
        shape = [size] + spec.shape.as_list()
        if spec.dtype == tf.uint8:
            return tf.constant(rng.integers(0, 256, shape), tf.uint8)
        if spec.dtype == tf.int32:  # the action, of a 2-action game
            return tf.constant(rng.integers(0, 2, shape), tf.int32)
        values = np.ones(shape) if "mask" in spec.name else rng.uniform(0, 1, shape)
        return tf.constant(values, spec.dtype)
    return tf.nest.map_structure(like, agent.training_data_spec)


def test_update_is_traced_once_and_refuses_another_batch_shape():
    agent = _builder_agent()
    for seed in range(3):
        agent.train(_spec_batch(agent, seed=seed), tf.fill([4], 0.5))
    agent.train(_spec_batch(agent, seed=3))  # no weights: uniform, still the same trace
    assert agent.compiled_train.experimental_get_tracing_count() == 1
    with pytest.raises((ValueError, TypeError)):  # a batch of another size is an error, not a retrace
        agent.train(_spec_batch(agent, size=5))


def test_xla_and_mixed_precision_updates_agree_with_the_plain_one():
    batch = None
    losses = {}
    for name, train in (("plain", {}), ("xla", {"xla": True}), ("mixed", {"mixed_precision": True})):
        agent = _builder_agent(**train)  # same seed: same initial weights
        batch = batch if batch is not None else _spec_batch(agent)
        losses[name] = float(agent.train(batch).loss)
        if name == "mixed":
            dense = [layer for layer in agent.q_network.submodules if isinstance(layer, tf.keras.layers.Dense)]
            assert dense and all(layer.compute_dtype == "float16" for layer in dense)
            assert all(v.dtype == tf.float32 for v in agent.q_network.trainable_variables)  # float32 weights
            assert agent.q_network.frozen_encoder.compute_dtype == "float32"  # ϑ stays the export's
            assert isinstance(agent.optimizer, tf.keras.mixed_precision.LossScaleOptimizer)
    assert tf.keras.mixed_precision.global_policy().name == "float32"  # nothing else in the process changed
    assert np.isfinite(list(losses.values())).all()
    assert losses["xla"] == pytest.approx(losses["plain"], rel=1e-4)
    assert losses["mixed"] == pytest.approx(losses["plain"], rel=2e-2)
