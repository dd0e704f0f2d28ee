"""Pure TD-learning maths, tested against hand-computed numbers; the agent's tf.function wraps them."""
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


def huber(x, delta: float = 1.0):
    """0.5 x^2 for |x| <= delta, delta (|x| - 0.5 delta) beyond."""
    abs_x = tf.abs(x)
    quadratic = tf.minimum(abs_x, delta)
    return 0.5 * tf.square(quadratic) + delta * (abs_x - quadratic)


def td_loss(q_values, actions, targets, weights, delta: float = 1.0):
    """Importance-weighted mean Huber loss of Q(s, a) against fixed targets.

    q_values: [B, A]; actions: [B] int; targets, weights: [B]. Returns (loss [], td_errors [B]).
    """
    chosen = tf.gather(q_values, actions, axis=-1, batch_dims=1)
    td_errors = tf.stop_gradient(targets) - chosen
    return tf.reduce_mean(weights * huber(td_errors, delta)), td_errors
