"""RISE-DQN: (double) DQN with n-step returns and PER weights over RISE's sampled windows.

A TF-Agents `TFAgent`: `agent.policy` (greedy) and `agent.collect_policy` (ε-greedy) plug into
TF-Agents drivers; `agent.train(batch, weights)` runs one update as a single tf.function. The batch
is what `EmbeddingReplay.sample` builds (network inputs at t and at the bootstrap step, n-step
return, bootstrap discount, action), not a raw Trajectory: the learner reads stored embeddings and
never calls the frozen encoder. The same agent trains the base and the full-recurrent models.
"""
from __future__ import annotations

import collections
from typing import Optional

import tensorflow as tf
from tf_agents.agents import tf_agent
from tf_agents.utils import common

from rise_tf.agents.losses import double_dqn_targets, dqn_targets, td_loss
from rise_tf.policies.rise_policy import RiseQPolicy

RiseDqnLossInfo = collections.namedtuple("RiseDqnLossInfo", ("td_errors", "q_mean"))


def training_batch_spec(network_input_spec):
    """The structure `EmbeddingReplay.sample` returns (without the batch axis)."""
    return {
        "observation": network_input_spec,
        "action": tf.TensorSpec([], tf.int32, "action"),
        "n_step_return": tf.TensorSpec([], tf.float32, "n_step_return"),
        "bootstrap_discount": tf.TensorSpec([], tf.float32, "bootstrap_discount"),
        "next_observation": network_input_spec,
    }


class RiseDqnAgent(tf_agent.TFAgent):
    def __init__(self, time_step_spec, action_spec, q_network, optimizer, *,
                 embedding_dtype: str = "float16", double_dqn: bool = True, huber_delta: float = 1.0,
                 target_update_period: int = 2000, target_update_tau: float = 1.0,
                 gradient_clip_norm: Optional[float] = 10.0,
                 train_step_counter: Optional[tf.Variable] = None, name: str = "RiseDqnAgent"):
        """
        Args:
          target_update_period: learner updates between target-network updates.
          target_update_tau: 1.0 = hard copy every period; < 1 = Polyak averaging with this τ.
          gradient_clip_norm: clip gradients to this global norm; None or 0 disables.
        """
        tf.Module.__init__(self, name=name)
        if target_update_period < 1:
            raise ValueError(f"target_update_period must be >= 1, got {target_update_period}")
        if not 0.0 < target_update_tau <= 1.0:
            raise ValueError(f"target_update_tau must be in (0, 1], got {target_update_tau}")
        self._q_network = q_network
        self._target_q_network = q_network.copy(name="TargetQNetwork")
        self._target_q_network.create_variables(q_network.input_tensor_spec)
        self._optimizer = optimizer
        self._double_dqn = double_dqn
        self._huber_delta = huber_delta
        self._gradient_clip_norm = gradient_clip_norm or None
        self.epsilon = tf.Variable(1.0, trainable=False, dtype=tf.float32, name="collect_epsilon")
        policy = RiseQPolicy(time_step_spec, action_spec, q_network, embedding_dtype, name="greedy")
        collect_policy = RiseQPolicy(time_step_spec, action_spec, q_network, embedding_dtype,
                                     epsilon=self.epsilon, name="epsilon_greedy")
        super().__init__(time_step_spec, action_spec, policy, collect_policy,
                         train_sequence_length=None,
                         training_data_spec=training_batch_spec(q_network.input_tensor_spec),
                         train_step_counter=train_step_counter)
        self._update_target = self._make_target_update(target_update_period, target_update_tau)
        # TFAgent only compiles _train under TF1 (`function_in_tf1`); in TF2 it would run eagerly, op
        # by op. One compiled function per update is what makes the learner fast.
        self._train_fn = tf.function(self._train)

    @property
    def q_network(self):
        return self._q_network

    @property
    def target_q_network(self):
        return self._target_q_network

    @property
    def optimizer(self):
        return self._optimizer

    @property
    def target_update_schedule(self) -> tf.Module:
        """Holds the counter of the periodic target update (checkpoint it to resume the phase)."""
        return self._update_target

    def _make_target_update(self, period: int, tau: float):
        def update():
            return common.soft_variables_update(
                self._q_network.variables, self._target_q_network.variables, tau=tau,
                tau_non_trainable=1.0)
        return common.Periodically(update, period, "target_update")

    def _initialize(self):
        # Start the target from the online weights (ϑ included, though only the online ϑ is used).
        return common.soft_variables_update(self._q_network.variables, self._target_q_network.variables,
                                            tau=1.0)

    def _targets(self, batch):
        """n-step double-DQN (or DQN) targets; no gradients flow through them."""
        next_q_target, _ = self._target_q_network(batch["next_observation"], training=False)
        if self._double_dqn:
            next_q_online, _ = self._q_network(batch["next_observation"], training=False)
            targets = double_dqn_targets(next_q_online, next_q_target, batch["n_step_return"],
                                         batch["bootstrap_discount"])
        else:
            targets = dqn_targets(next_q_target, batch["n_step_return"], batch["bootstrap_discount"])
        return tf.stop_gradient(targets)

    def _td(self, batch, targets, weights, training=False):
        q_values, _ = self._q_network(batch["observation"], training=training)  # [B, A]
        if weights is None:
            weights = tf.ones_like(targets)
        loss, td_errors = td_loss(q_values, batch["action"], targets, weights, self._huber_delta)
        return loss, td_errors, tf.reduce_mean(q_values)

    def _loss(self, experience, weights=None, training=False):
        loss, td_errors, q_mean = self._td(experience, self._targets(experience), weights, training)
        return tf_agent.LossInfo(loss, RiseDqnLossInfo(td_errors, q_mean))

    def _train(self, experience, weights=None):
        variables = self._q_network.trainable_variables
        targets = self._targets(experience)  # outside the tape: nothing to differentiate
        with tf.GradientTape() as tape:
            loss, td_errors, q_mean = self._td(experience, targets, weights, training=True)
            # A NaN/inf loss stops here, before any weight changes.
            loss = tf.debugging.check_numerics(loss, "RISE-DQN loss is NaN or inf")
        gradients = tape.gradient(loss, variables)
        if self._gradient_clip_norm:
            gradients, _ = tf.clip_by_global_norm(gradients, self._gradient_clip_norm)
        self._optimizer.apply_gradients(zip(gradients, variables))
        self.train_step_counter.assign_add(1)
        self._update_target()
        return tf_agent.LossInfo(loss, RiseDqnLossInfo(td_errors, q_mean))
