"""Beyond The Rainbow pieces: quantile Huber and Munchausen by hand, noisy layers, spectral norm,
the IQN head, RISE's gate before the τ product, and BTR learner steps on tiny sizes."""
import numpy as np
import pytest
import tensorflow as tf

from rise_tf.agents.losses import (munchausen_bonus, munchausen_targets, quantile_huber_loss, quantile_targets,
                                   scaled_log_policy)
from rise_tf.networks.encoders import ImpalaCNN
from rise_tf.networks.heads import NoisyDense, quantile_midpoints

from conftest import network_for, spec_for
from test_agent import NUM_ACTIONS, batch_of, make_agent

BTR_NETWORK = dict(learnable_encoder="impala", impala_pool_size=2, spectral_norm=True, head="iqn",
                   head_hidden_units=8, noisy=True)


def test_quantile_huber_loss_by_hand():
    # Two online quantiles Z = [1, 2] at taus [0.25, 0.75]; two target samples T = [1.5, 3.5]; κ = 1.
    # δ_ij = T_j - Z_i:  i=0: [0.5, 2.5]  -> weights |0.25 - 0| = 0.25; Huber 0.125, 2.0 -> ρ 0.03125, 0.5
    #                    i=1: [-0.5, 1.5] -> weights |0.75 - 1| = 0.25 and 0.75; Huber 0.125, 1.0 -> ρ 0.03125, 0.75
    # loss = Σ_i mean_j ρ = (0.03125 + 0.5) / 2 + (0.03125 + 0.75) / 2 = 0.265625 + 0.390625 = 0.65625
    # error = Σ_i mean_j |δ| = (0.5 + 2.5) / 2 + (0.5 + 1.5) / 2 = 2.5
    loss, error = quantile_huber_loss(tf.constant([[1.0, 2.0]]), tf.constant([[1.5, 3.5]]),
                                      tf.constant([[0.25, 0.75]]), kappa=1.0)
    np.testing.assert_allclose(loss, [0.65625], rtol=1e-6)
    np.testing.assert_allclose(error, [2.5], rtol=1e-6)


def test_quantile_huber_gradient_pushes_quantiles_towards_their_taus():
    quantiles = tf.Variable([[0.0, 0.0]])
    with tf.GradientTape() as tape:
        loss, _ = quantile_huber_loss(quantiles, tf.constant([[0.1, 0.1]]), tf.constant([[0.25, 0.75]]), 1.0)
    # Both quantiles sit below all targets: d loss / d Z_i = -τ_i · mean_j δ_ij = -τ_i · 0.1
    np.testing.assert_allclose(tape.gradient(loss, quantiles), [[-0.025, -0.075]], rtol=1e-5)


def test_munchausen_and_quantile_targets_by_hand_two_taus_two_actions():
    # Temperature τ = 1, α = 0.9, clip l0 = -1. Q(s_t) = [1, 2]:
    #   τ log π(·|s_t) = [1, 2] - 2 - log(e^-1 + 1) = [-1.313262, -0.313262]
    #   action 0: clip(-1.313262) = -1 -> bonus -0.9;  action 1: bonus 0.9 · -0.313262 = -0.281935
    q_now = tf.constant([[1.0, 2.0], [1.0, 2.0]])
    np.testing.assert_allclose(scaled_log_policy(q_now[:1], 1.0), [[-1.313262, -0.313262]], rtol=1e-5)
    np.testing.assert_allclose(munchausen_bonus(q_now, tf.constant([0, 1]), 1.0, 0.9, -1.0), [-0.9, -0.281935],
                               rtol=1e-5)
    # Next-state quantiles Z'[tau, action] = [[0, 2], [2, 4]]; mean over taus Q' = [1, 3];
    #   π' = softmax([1, 3]) = [0.119203, 0.880797]; τ log π' = [-2.126928, -0.126928]
    #   soft value per tau j: Σ_a π'(a) (Z'_j(a) - τ log π'(a)) = [2.126928, 4.126928]
    # Target (r = 1, γ^n = 0.5, action 0): 1 - 0.9 + 0.5 · [2.126928, 4.126928] = [1.163464, 2.163464]
    next_quantiles = tf.constant([[[0.0, 2.0], [2.0, 4.0]]])  # [B=1, N'=2, A=2]
    targets = munchausen_targets(q_now[:1], tf.constant([0]), tf.reduce_mean(next_quantiles, 1), next_quantiles,
                                 tf.constant([1.0]), tf.constant([0.5]), temperature=1.0, alpha=0.9,
                                 log_policy_clip=-1.0)
    np.testing.assert_allclose(targets, [[1.163464, 2.163464]], rtol=1e-5)
    # Without Munchausen: a* = argmax Q' = 1, target = 1 + 0.5 · Z'(·, 1) = [2, 3]
    np.testing.assert_allclose(quantile_targets(next_quantiles, tf.constant([1]), tf.constant([1.0]),
                                                tf.constant([0.5])), [[2.0, 3.0]])
    # A terminal bootstrap (discount 0) leaves only reward + bonus: 1 - 0.9 = 0.1 for every tau.
    terminal = munchausen_targets(q_now[:1], tf.constant([0]), tf.reduce_mean(next_quantiles, 1), next_quantiles,
                                  tf.constant([1.0]), tf.constant([0.0]), temperature=1.0, alpha=0.9,
                                  log_policy_clip=-1.0)
    np.testing.assert_allclose(terminal, [[0.1, 0.1]], rtol=1e-5)


def test_noisy_layer_noise_changes_per_training_call_none_at_evaluation_and_initial_sigma():
    layer = NoisyDense(units=3, sigma0=0.5, name="noisy")
    x = tf.constant(np.random.default_rng(0).standard_normal((5, 4)), tf.float32)
    layer(x, training=False)
    np.testing.assert_allclose(layer.kernel_sigma.numpy(), 0.25)  # σ0 / sqrt(fan_in) = 0.5 / 2
    np.testing.assert_allclose(layer.bias_sigma.numpy(), 0.25)
    assert np.all(np.abs(layer.kernel_mu.numpy()) <= 0.5)  # μ ~ U(±1/sqrt(4))
    first, second = layer(x, training=True), layer(x, training=True)
    assert not np.allclose(first, second)
    evaluation = layer(x, training=False)
    np.testing.assert_array_equal(evaluation, layer(x, training=False))
    np.testing.assert_allclose(evaluation, x @ layer.kernel_mu + layer.bias_mu, rtol=1e-6)


def test_spectral_norm_bounds_the_largest_singular_value_of_residual_convolutions():
    cnn = ImpalaCNN(width_scale=1, pool_size=2, spectral_norm=True)
    frames = tf.constant(np.random.default_rng(0).integers(0, 256, (2, 36, 36, 4)), tf.uint8)
    cnn(frames)
    conv = cnn.stages[0][2].conv_a  # first residual block's first convolution, wrapped
    conv.kernel.assign(conv.kernel * 5.0)  # far above 1 to start with

    def largest_singular_value():
        kernel = conv.kernel.numpy()
        return np.linalg.svd(kernel.reshape(-1, kernel.shape[-1]), compute_uv=False)[0]

    assert largest_singular_value() > 2.0
    for _ in range(100):  # one power iteration per training call; converges as (σ2/σ1)^2 per call
        cnn(frames, training=True)
    assert largest_singular_value() == pytest.approx(1.0, abs=1e-2)
    stage_conv = cnn.stages[0][0]  # a stage's first convolution is not normalised (as in BTR)
    assert not hasattr(stage_conv, "vector_u")


def test_iqn_head_shapes_midpoint_taus_and_mean_over_taus_action():
    spec = spec_for("none", frame_size=36)
    net = network_for(spec, 3, memory="none", head="iqn", head_hidden_units=8, noisy=True, num_taus=4)
    observation = {"frame_stack": tf.constant(np.random.default_rng(1).integers(0, 256, (2, 36, 36, 4)), tf.uint8)}
    quantiles, taus = net.quantile_values(observation, training=True)
    assert quantiles.shape == (2, 4, 3) and taus.shape == (2, 4)  # [B, N, A], [B, N]
    assert np.all((taus.numpy() > 0) & (taus.numpy() < 1))
    fixed, fixed_taus = net.quantile_values(observation, training=False)
    np.testing.assert_allclose(fixed_taus[0], quantile_midpoints(4))  # (2i + 1) / 8
    np.testing.assert_allclose(quantile_midpoints(4), [0.125, 0.375, 0.625, 0.875])
    q_values, _ = net(observation, training=False)
    np.testing.assert_allclose(q_values, tf.reduce_mean(fixed, axis=1), rtol=1e-6)  # Q = mean over taus
    np.testing.assert_array_equal(net(observation)[0], q_values)  # deterministic: no noise, fixed taus
    assert not np.allclose(net(observation, training=True)[0], q_values)  # noise and sampled taus


def test_rise_gates_phi_before_the_tau_product():
    spec = spec_for("rise", frame_size=36, window_length=3, embedding_size=4)
    net = network_for(spec, 2, head="iqn", head_hidden_units=8, num_taus=2, learnable_encoder="impala",
                      impala_pool_size=2)
    rng = np.random.default_rng(2)
    observation = {"frame_stack": tf.constant(rng.integers(0, 256, (2, 36, 36, 4)), tf.uint8),
                   "embedding_window": tf.constant(rng.standard_normal((2, 3, 4)), tf.float32),
                   "window_mask": tf.ones((2, 3))}
    phi = net.learnable_encoder(observation["frame_stack"])  # [B, F]
    gate = net.gate(net.core(observation["embedding_window"], observation["window_mask"]))  # σ(Ω(ψ)) [B, F]
    taus = tf.constant([[0.25, 0.75]] * 2)
    expected = net.head.quantiles(gate * phi, taus)  # ω((σ ⊙ φ) ⊙ τ-embedding)
    quantiles, used_taus = net.quantile_values(observation, training=False)
    np.testing.assert_allclose(used_taus, taus)
    np.testing.assert_allclose(quantiles, expected, rtol=1e-5, atol=1e-6)
    ungated = net.head.quantiles(phi, taus)
    assert not np.allclose(quantiles, ungated)  # the memory reaches the quantiles through the gate


@pytest.mark.parametrize("munchausen", [True, False])
def test_btr_train_steps_give_finite_losses_and_change_only_trainable_weights(munchausen):
    agent = make_agent(loss="quantile_huber", munchausen=munchausen, double_dqn=False, **BTR_NETWORK)
    net = agent.q_network
    frozen_before = [v.numpy().copy() for v in net.frozen_encoder.variables]
    trainable_before = [v.numpy().copy() for v in net.trainable_variables]
    for step in range(3):
        loss_info = agent.train(batch_of(8, seed=step), tf.ones(8))
        assert np.isfinite(loss_info.loss.numpy()) and loss_info.loss.numpy() > 0
        assert loss_info.extra.sample_errors.shape == (8,) and np.all(loss_info.extra.sample_errors.numpy() >= 0)
    for before, variable in zip(frozen_before, net.frozen_encoder.variables):
        np.testing.assert_array_equal(before, variable.numpy())  # ϑ never moves
    changed = [not np.array_equal(b, v.numpy()) for b, v in zip(trainable_before, net.trainable_variables)]
    assert sum(changed) >= len(changed) - 1
    # Non-trainable state besides ϑ: only the spectral-norm power-iteration vectors (u), never trained.
    non_trainable = {v.name for v in net.variables} - {v.name for v in net.trainable_variables}
    others = non_trainable - {v.name for v in net.frozen_encoder.variables}
    assert others and all("vector_u" in name for name in others)


def test_loss_and_head_must_fit_and_munchausen_excludes_double_dqn():
    with pytest.raises(ValueError, match="does not fit"):
        make_agent(loss="quantile_huber", double_dqn=False)  # linear head
    with pytest.raises(ValueError, match="does not fit"):
        make_agent(loss="huber", head="iqn")
    with pytest.raises(ValueError, match="double_dqn"):
        make_agent(munchausen=True, double_dqn=True)


def test_munchausen_dqn_on_a_one_q_head_trains():
    agent = make_agent(munchausen=True, double_dqn=False)
    loss_info = agent.train(batch_of(8), tf.ones(8))
    assert np.isfinite(loss_info.loss.numpy()) and loss_info.extra.sample_errors.shape == (8,)


def test_collect_policy_is_stochastic_and_evaluation_policy_is_not():
    from tf_agents.trajectories import time_step as ts

    # σ0 = 10: the noise dominates an untrained head, so noisy acting visibly changes actions.
    agent = make_agent(loss="quantile_huber", double_dqn=False, munchausen=True, head="iqn", noisy=True,
                       head_hidden_units=8, noisy_sigma0=10.0)
    frames = tf.constant(np.random.default_rng(3).integers(0, 256, (64, 36, 36)), tf.uint8)
    time_step = ts.TimeStep(tf.fill([64], ts.StepType.FIRST), tf.zeros([64]), tf.ones([64]), frames)
    agent.epsilon.assign(0.0)
    state = agent.collect_policy.get_initial_state(64)
    greedy = [agent.evaluation_policy.action(time_step, state).action.numpy() for _ in range(2)]
    np.testing.assert_array_equal(greedy[0], greedy[1])
    q_values, _ = agent.q_network(agent.evaluation_policy.action(time_step, state).state)
    np.testing.assert_array_equal(greedy[0], np.argmax(q_values, axis=-1))
    # One noise draw is shared by the batch, so lanes tend to agree within a step; across 16 steps
    # the actions must change (all 16 alike by chance: ~2^-15 with two actions).
    collected = [agent.collect_policy.action(time_step, state).action.numpy() for _ in range(16)]
    assert NUM_ACTIONS == 2 and any(not np.array_equal(collected[0], other) for other in collected[1:])
