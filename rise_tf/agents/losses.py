"""Pure TD-learning maths, tested against hand-computed numbers; the agent's tf.function wraps them.

Shapes: B batch, A actions, N online taus, N' target taus. Nothing here holds state or weights.

- DQN / double-DQN targets and the Huber TD loss (Mnih et al. 2015; van Hasselt et al. 2016).
- Quantile Huber loss over all pairs of online and target taus (Dabney et al. 2018, IQN).
- Munchausen targets (Vieillard et al. 2020): the scaled log-policy τ log π(a_t|s_t), clipped to
  [l0, 0] and weighted by α, is added to the reward; the bootstrap is the soft value
  Σ_a π(a|s') (Q(s', a) − τ log π(a|s')) with π = softmax(Q / τ). With quantiles, π comes from the
  mean over taus and the soft value is taken per target tau (as Beyond The Rainbow does).
"""
from __future__ import annotations

import tensorflow as tf


def double_dqn_targets(next_q_online, next_q_target, returns, bootstrap_discounts):
    """r^(n) + γ^n ∏d · Q_target(s', argmax_a Q_online(s', a))   (van Hasselt et al. 2016).

    next_q_*: [B, A]; returns, bootstrap_discounts: [B]. Returns [B].
    """
    best = tf.argmax(next_q_online, axis=-1, output_type=tf.int32)
    bootstrap = tf.gather(next_q_target, best, axis=-1, batch_dims=1)
    return returns + bootstrap_discounts * bootstrap


def dqn_targets(next_q_target, returns, bootstrap_discounts):
    """r^(n) + γ^n ∏d · max_a Q_target(s', a)   (Mnih et al. 2015)."""
    return returns + bootstrap_discounts * tf.reduce_max(next_q_target, axis=-1)


def huber(x, delta: float):
    """0.5 x^2 for |x| <= delta, delta (|x| - 0.5 delta) beyond."""
    abs_x = tf.abs(x)
    quadratic = tf.minimum(abs_x, delta)
    return 0.5 * tf.square(quadratic) + delta * (abs_x - quadratic)


def td_loss(q_values, actions, targets, weights, delta: float):
    """Importance-weighted mean Huber loss of Q(s, a) against fixed targets.

    q_values: [B, A]; actions: [B] int; targets, weights: [B]. Returns (loss [], td_errors [B]).
    """
    chosen = tf.gather(q_values, actions, axis=-1, batch_dims=1)
    td_errors = tf.stop_gradient(targets) - chosen
    return tf.reduce_mean(weights * huber(td_errors, delta)), td_errors


# ----------------------------------------------------------------------------- distributional (IQN)


def quantile_targets(next_quantiles, next_actions, returns, bootstrap_discounts):
    """r^(n) + γ^n ∏d · Z_τ'(s', a*) for every target tau.

    next_quantiles: [B, N', A]; next_actions: [B] int (a*); returns, bootstrap_discounts: [B].
    Returns [B, N'].
    """
    chosen = tf.gather(next_quantiles, next_actions, axis=-1, batch_dims=1)  # [B, N']
    return returns[:, None] + bootstrap_discounts[:, None] * chosen


def quantile_huber_loss(quantiles, targets, taus, kappa: float):
    """Quantile Huber loss between N predicted quantiles and N' target samples (all pairs).

    quantiles: [B, N] Z_τi(s, a); targets: [B, N'] (held fixed); taus: [B, N].
    δ_ij = T_j − Z_i;  ρ_ij = |τ_i − 1{δ_ij < 0}| · Huber_κ(δ_ij) / κ.
    Returns (per-sample loss [B] = Σ_i mean_j ρ_ij, per-sample error [B] = Σ_i mean_j |δ_ij|, which
    is what BTR writes back as the PER priority).
    """
    delta = tf.stop_gradient(targets)[:, None, :] - quantiles[:, :, None]  # [B, N, N']
    below = tf.cast(tf.stop_gradient(delta) < 0.0, tf.float32)
    rho = tf.abs(taus[:, :, None] - below) * huber(delta, kappa) / kappa  # [B, N, N']
    per_sample = tf.reduce_sum(tf.reduce_mean(rho, axis=2), axis=1)
    errors = tf.reduce_sum(tf.reduce_mean(tf.abs(tf.stop_gradient(delta)), axis=2), axis=1)
    return per_sample, errors


# ----------------------------------------------------------------------------- Munchausen


def scaled_log_policy(q_values, temperature: float):
    """τ log softmax(Q / τ), computed stably as Q − max Q − τ logsumexp((Q − max Q) / τ). [..., A]"""
    shifted = q_values - tf.reduce_max(q_values, axis=-1, keepdims=True)
    return shifted - temperature * tf.reduce_logsumexp(shifted / temperature, axis=-1, keepdims=True)


def munchausen_bonus(q_values, actions, temperature: float, alpha: float, log_policy_clip: float):
    """α · clip(τ log π(a_t|s_t), l0, 0): the Munchausen term added to the reward. q_values [B, A] -> [B]."""
    log_policy = tf.gather(scaled_log_policy(q_values, temperature), actions, axis=-1, batch_dims=1)
    return alpha * tf.clip_by_value(log_policy, log_policy_clip, 0.0)


def soft_bootstrap_value(next_mean_q, next_values, temperature: float):
    """Σ_a π(a|s') (V(s', a) − τ log π(a|s')), π = softmax(next_mean_q / τ).

    next_mean_q: [B, A] (picks π); next_values: [B, A], or [B, N', A] quantiles (one value per tau).
    Returns [B] or [B, N'].
    """
    policy = tf.nn.softmax(next_mean_q / temperature, axis=-1)  # [B, A]
    log_policy = scaled_log_policy(next_mean_q, temperature)  # [B, A]
    if next_values.shape.rank == 3:
        policy, log_policy = policy[:, None, :], log_policy[:, None, :]
    return tf.reduce_sum(policy * (next_values - log_policy), axis=-1)


def munchausen_targets(q_values, actions, next_mean_q, next_values, returns, bootstrap_discounts, *,
                       temperature: float, alpha: float, log_policy_clip: float):
    """r^(n) + α clip(τ log π(a_t|s_t), l0, 0) + γ^n ∏d · Σ_a π(a|s') (V(s', a) − τ log π(a|s')).

    q_values: [B, A] Q(s_t, ·) that defines π(·|s_t) (held fixed); actions: [B];
    next_mean_q, next_values: see `soft_bootstrap_value`; returns, bootstrap_discounts: [B].
    Returns [B] (next_values [B, A]) or [B, N'] (next_values [B, N', A]).
    """
    bonus = munchausen_bonus(tf.stop_gradient(q_values), actions, temperature, alpha, log_policy_clip)
    bootstrap = soft_bootstrap_value(next_mean_q, next_values, temperature)
    reward = returns + bonus
    if bootstrap.shape.rank == 2:
        reward, bootstrap_discounts = reward[:, None], bootstrap_discounts[:, None]
    return tf.stop_gradient(reward + bootstrap_discounts * bootstrap)
