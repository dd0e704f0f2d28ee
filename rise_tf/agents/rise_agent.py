"""RiseAgent: one value-based TF-Agents agent for every model rise-tf trains (DQN and BTR bases,
with or without RISE, and the full-recurrent comparison).

A TF-Agents `TFAgent`: `agent.policy` (greedy), `agent.evaluation_policy` (ε_eval-greedy, the
deterministic network) and `agent.collect_policy` (ε-greedy on the stochastic network: noise and
sampled taus) plug into TF-Agents drivers; `agent.train(experience, weights)` runs one update as a
single tf.function. The learner reads stored embeddings and never calls the frozen encoder.
`experience` is one of:
- a batch of single steps, as `EmbeddingReplay.sample` builds it (network inputs at t and at the
  bootstrap step, n-step return, bootstrap discount, action), weights [B];
- segments (issue 20): a TF-Agents `Trajectory` [B, T] as a replay buffer's `as_dataset(num_steps=T)`
  gives it (the embedding in `policy_info`), or the same fields as a record dict
  (replay/sequences.py), T = R-1+m+n; weights [B], one per segment. Each of the m positions is a TD
  target; the loss is the weighted sum over the trainable ones divided by B·m.

Shared passes per segment: φ and ψ run once per position (online, with the gradient, at the m
trained positions; the target network at the m bootstrap positions). Double-DQN's argmax reuses the
online pass where the bootstrap position is a trained one, when the network computes the same Q with
and without `training` (no noise, spectral norm or sampled taus); only the n positions after the
segment then take an extra forward pass. Otherwise the argmax takes its own deterministic pass, as
for single steps.

Losses, picked by `loss` and checked against the head:
- "huber": (double) DQN or Munchausen-DQN targets, Huber TD loss, for one-Q-per-action heads.
- "quantile_huber": IQN quantile targets (or Munchausen-IQN, Beyond The Rainbow's), quantile Huber
  loss over all pairs of online and target taus, for the IQN head.

Deliberate deviations from Beyond The Rainbow's code (Clark et al. 2025):
- Munchausen's log-policy at s_t is read from the online network's own forward pass of this update
  (held fixed), not from a second online forward pass with fresh taus: same network, same noise,
  one pass fewer.
- Noise is drawn afresh in every forward pass with training=True (acting, the online and the target
  passes of an update); BTR redraws the online noise once per acting step and reuses it in the
  update that follows.
"""
from __future__ import annotations

import collections
from typing import Optional

import tensorflow as tf
from tf_agents.agents import tf_agent
from tf_agents.trajectories import trajectory as trajectories
from tf_agents.utils import common

from rise_tf.agents.choices import DISTRIBUTIONAL_LOSSES, LOSSES
from rise_tf.agents.losses import (double_dqn_targets, dqn_targets, munchausen_targets, quantile_huber_loss,
                                   quantile_targets, td_loss)
from rise_tf.policies.rise_policy import RiseQPolicy
from rise_tf.replay import sequences
from rise_tf.replay.segments import SequenceShape

# sample_errors: the per-sample error written back as PER priority (|TD| or Σ_i mean_j |δ_ij|), [B] for
# single steps, [B, m] for segments; trainable: [B, m] the segment positions that were trained (None
# for single steps).
RiseLossInfo = collections.namedtuple("RiseLossInfo", ("sample_errors", "q_mean", "trainable"), defaults=(None,))


def training_batch_spec(network_input_spec):
    """The structure `EmbeddingReplay.sample` returns (without the batch axis)."""
    return {
        "observation": network_input_spec,
        "action": tf.TensorSpec([], tf.int32, "action"),
        "n_step_return": tf.TensorSpec([], tf.float32, "n_step_return"),
        "bootstrap_discount": tf.TensorSpec([], tf.float32, "bootstrap_discount"),
        "next_observation": network_input_spec,
    }


class RiseAgent(tf_agent.TFAgent):
    def __init__(self, time_step_spec, action_spec, q_network, optimizer, *, embedding_dtype: str, loss: str,
                 double_dqn: bool, huber_delta: float, munchausen: bool, munchausen_temperature: float,
                 munchausen_alpha: float, munchausen_log_policy_clip: float, target_update_period: int,
                 target_update_tau: float, gradient_clip_norm: float, eval_epsilon: float,
                 train_step_counter: Optional[tf.Variable] = None, batch_size: Optional[int] = None,
                 sequence_shape: Optional[SequenceShape] = None, xla: bool = False, name: str = "RiseAgent"):
        """
        Args:
          loss: one of LOSSES; quantile_huber needs a distributional (IQN) network and vice versa.
          huber_delta: Huber threshold; κ of the quantile Huber loss.
          munchausen*: Munchausen targets (temperature τ, α, log-policy clip l0); replaces double-DQN.
          target_update_period: learner updates between target-network updates.
          target_update_tau: 1.0 = hard copy every period; < 1 = Polyak averaging with this τ.
          gradient_clip_norm: clip gradients to this global norm; 0 disables.
          eval_epsilon: ε of `evaluation_policy`.
          batch_size: fixes the update's input signature to this batch size, in steps or segments (None:
            any); the update is traced once, and a batch of another shape or dtype is an error, not a retrace.
          sequence_shape: the replay layout and segment length m that segments (records, Trajectories)
            are read with; None: single steps only. With m > 1, `training_data_spec` is a record.
          xla: compile the update with XLA (jit_compile).

        Mixed precision is the global Keras policy (set before the network is built, see
        `rise_tf.builder`); with a LossScaleOptimizer the loss is scaled for the gradients.
        """
        tf.Module.__init__(self, name=name)
        if loss not in LOSSES:
            raise ValueError(f"unknown loss {loss!r}; choose one of {LOSSES}")
        if (loss in DISTRIBUTIONAL_LOSSES) != q_network.distributional:
            raise ValueError(f"loss {loss!r} does not fit the network's {'distributional' if q_network.distributional else 'one-Q-per-action'} "
                             f"head: use quantile_huber with head iqn, huber with linear or dueling")
        if munchausen and double_dqn:
            raise ValueError("Munchausen targets replace double-DQN's argmax; turn double_dqn off")
        if target_update_period < 1:
            raise ValueError(f"target_update_period must be >= 1, got {target_update_period}")
        if not 0.0 < target_update_tau <= 1.0:
            raise ValueError(f"target_update_tau must be in (0, 1], got {target_update_tau}")
        self._q_network = q_network
        self._target_q_network = q_network.copy(name="TargetQNetwork")
        self._target_q_network.create_variables(q_network.input_tensor_spec)
        self._optimizer = optimizer
        self._loss_scaled = isinstance(optimizer, tf.keras.mixed_precision.LossScaleOptimizer)
        self._loss_kind = loss
        self._double_dqn = double_dqn
        self._huber_delta = huber_delta
        self._munchausen = dict(temperature=munchausen_temperature, alpha=munchausen_alpha,
                                log_policy_clip=munchausen_log_policy_clip) if munchausen else None
        self._gradient_clip_norm = gradient_clip_norm or None
        self.epsilon = tf.Variable(1.0, trainable=False, dtype=tf.float32, name="collect_epsilon")
        policy = RiseQPolicy(time_step_spec, action_spec, q_network, embedding_dtype=embedding_dtype,
                             epsilon=None, stochastic_network=False, name="greedy")
        self._evaluation_policy = RiseQPolicy(time_step_spec, action_spec, q_network, embedding_dtype=embedding_dtype,
                                              epsilon=eval_epsilon or None, stochastic_network=False,
                                              name="evaluation")
        collect_policy = RiseQPolicy(time_step_spec, action_spec, q_network, embedding_dtype=embedding_dtype,
                                     epsilon=self.epsilon, stochastic_network=True, name="collect")
        self._sequence_shape = sequence_shape
        segments = sequence_shape is not None and sequence_shape.segment_length > 1
        super().__init__(time_step_spec, action_spec, policy, collect_policy,
                         train_sequence_length=sequence_shape.record_length if segments else None,
                         training_data_spec=(sequences.record_spec(sequence_shape) if segments
                                             else training_batch_spec(q_network.input_tensor_spec)),
                         train_step_counter=train_step_counter)
        self._update_target = self._make_target_update(target_update_period, target_update_tau)
        # TFAgent only compiles _train under TF1 (`function_in_tf1`); in TF2 it would run eagerly, op
        # by op. One compiled function per update, traced once, is what makes the learner fast.
        # (`compiled_train` and `compiled_train_segments` are replaced by the mirrored learner's when used.)
        # No AutoGraph (TF-Agents' `common.function` default too): _train's branches are on Python
        # values, and converting it cost ~2 s of every run's first update (issue 20's wall-clock).
        self.compiled_train = tf.function(self._train, jit_compile=xla or None, autograph=False,
                                          input_signature=update_signature(training_batch_spec(
                                              q_network.input_tensor_spec), batch_size))
        self.compiled_train_segments = None
        if sequence_shape is not None:
            self.compiled_train_segments = tf.function(self._train, jit_compile=xla or None, autograph=False,
                                                       input_signature=update_signature(
                                                           sequences.record_spec(sequence_shape), batch_size))

        def train_fn(experience, weights=None):  # what TFAgent.train calls; no weights = uniform
            experience = self.as_training_data(experience)
            if is_record(experience):
                weights = tf.ones([tf.shape(experience["step_type"])[0]]) if weights is None else weights
                return self.compiled_train_segments(experience, weights)
            weights = tf.ones_like(experience["n_step_return"], tf.float32) if weights is None else weights
            return self.compiled_train(experience, weights)
        self._train_fn = train_fn

    def as_training_data(self, experience):
        """A Trajectory [B, T] becomes a record; records and single-step batches pass as they are."""
        if isinstance(experience, trajectories.Trajectory) or is_record(experience):
            if self._sequence_shape is None:
                raise ValueError("this agent was built without a sequence shape, so it trains on single-step batches "
                                 "only: build it with sequence_shape (rise_tf.builder.make_agent does) to train on "
                                 "Trajectories or segment records")
            if isinstance(experience, trajectories.Trajectory):
                return sequences.from_trajectory(experience, self._sequence_shape)
            return sequences.cast_record(experience, self._sequence_shape)
        return experience

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
    def evaluation_policy(self) -> RiseQPolicy:
        """The deterministic network, acting ε_eval-greedily (ε_eval = 0 makes it `policy`)."""
        return self._evaluation_policy

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

    # ------------------------------------------------------------------ one update, in pieces
    # (the mirrored learner, agents/mirrored.py, runs the first two on every replica)

    def loss_and_gradients(self, experience, weights):
        """(loss, RiseLossInfo, the unscaled gradients of the trainable weights) of single steps or of
        segment records."""
        if is_record(experience):
            return self._segment_loss_and_gradients(experience, weights)
        variables = self._q_network.trainable_variables
        bootstrap = self._bootstrap(experience)  # outside the tape: nothing to differentiate
        with tf.GradientTape() as tape:
            loss, errors, q_mean = self._online_loss(experience, bootstrap, weights, training=True)
            scaled = self._checked_and_scaled(loss)
        return loss, RiseLossInfo(errors, q_mean), self._unscaled(tape.gradient(scaled, variables))

    def _checked_and_scaled(self, loss):
        # A NaN/inf loss stops here, before any weight changes.
        loss = tf.debugging.check_numerics(loss, "RISE loss is NaN or inf")
        return self._optimizer.get_scaled_loss(loss) if self._loss_scaled else loss

    def _unscaled(self, gradients):
        return self._optimizer.get_unscaled_gradients(gradients) if self._loss_scaled else gradients

    def _segment_loss_and_gradients(self, record, weights):
        """One update's loss over B segments of m positions (the module docstring's shared passes)."""
        online_loss = self._segment_loss(record, weights)  # the bootstrap passes run here, outside the tape
        with tf.GradientTape() as tape:
            loss, info = online_loss(training=True)
            scaled = self._checked_and_scaled(loss)
        return loss, info, self._unscaled(tape.gradient(scaled, self._q_network.trainable_variables))

    def _segment_loss(self, record, weights):
        """Builds the positions' inputs and the bootstrap side of B segments; returns online_loss(training)
        -> (loss, RiseLossInfo), the part to run under a gradient tape."""
        shape = self._sequence_shape
        m = shape.segment_length
        inputs = sequences.segment_inputs(record, shape)
        observation, index = inputs["observation"], inputs["bootstrap_index"]
        trained = tf.nest.map_structure(lambda x: merge_batch_and_time(x[:, :m]), observation)  # [B·m, ...]
        bootstraps = tf.nest.map_structure(lambda x: merge_batch_and_time(tf.gather(x, index, batch_dims=1)),
                                           observation)
        batch = {"observation": trained, "next_observation": bootstraps}
        batch.update({key: tf.reshape(inputs[key], [-1]) for key in ("action", "n_step_return", "bootstrap_discount")})
        # Each position weighs its segment's weight, untrainable ones 0; the loss is the mean over all B·m
        # positions (a fixed divisor: replicas that split the segments then average to the same loss).
        mask = tf.cast(inputs["trainable"], tf.float32)  # [B, m]
        if weights is None:
            weights = tf.ones_like(mask[:, 0])
        position_weights = tf.reshape(tf.cast(weights, tf.float32)[:, None] * mask, [-1])
        reuse = self._double_dqn and not self._munchausen and self._q_network.training_is_deterministic
        bootstrap = self._bootstrap(batch, chooser=not reuse)
        chooser_from_online = None
        if reuse:
            after = tf.nest.map_structure(lambda x: merge_batch_and_time(x[:, m:]), observation)  # the n positions after
            after_q = tf.cast(self._q_network(after, training=False)[0], tf.float32)

            def chooser_from_online(q_values):  # Q at every position (the trained ones from this pass), gathered
                every = tf.concat([tf.reshape(q_values, [-1, m, q_values.shape[-1]]),
                                   tf.reshape(after_q, [-1, shape.layout.n_step, after_q.shape[-1]])], axis=1)
                return merge_batch_and_time(tf.gather(every, index, batch_dims=1))

        def online_loss(training):
            loss, errors, q_mean = self._online_loss(batch, bootstrap, position_weights, training=training,
                                                     chooser_from_online=chooser_from_online,
                                                     position_mask=tf.reshape(mask, [-1]))
            return loss, RiseLossInfo(tf.reshape(errors, tf.shape(mask)), q_mean, inputs["trainable"])
        return online_loss

    def apply_gradients(self, gradients, aggregated: bool = False):
        """Clips and applies; `aggregated`: the replicas' gradients were already averaged."""
        if self._gradient_clip_norm:
            gradients, _ = tf.clip_by_global_norm(gradients, self._gradient_clip_norm)
        pairs = zip(gradients, self._q_network.trainable_variables)
        if aggregated:
            self._optimizer.apply_gradients(pairs, skip_gradients_aggregation=True)
        else:
            self._optimizer.apply_gradients(pairs)

    def after_update(self):
        """Counts the update and runs the periodic target update."""
        self.train_step_counter.assign_add(1)
        self._update_target()

    # ------------------------------------------------------------------ losses

    def _bootstrap(self, batch, chooser: bool = True):
        """Everything the targets need from s_{t+n}, computed outside the gradient tape (the tape
        would otherwise record the target network's forward pass: its variables are trainable).
        chooser=False: double-DQN's argmax comes from the online pass instead (`_online_loss`)."""
        next_observation = batch["next_observation"]
        if self._loss_kind == "quantile_huber":
            next_values, _ = self._target_q_network.quantile_values(next_observation, training=True)  # [B, N', A]
            next_values = tf.cast(next_values, tf.float32)  # float16 under mixed precision: targets in float32
            next_mean_q = tf.reduce_mean(next_values, axis=1)  # [B, A]
        else:
            next_values, _ = self._target_q_network(next_observation, training=True)  # [B, A]
            next_values = tf.cast(next_values, tf.float32)
            next_mean_q = next_values
        bootstrap = {"values": tf.stop_gradient(next_values), "mean_q": tf.stop_gradient(next_mean_q),
                     "chooser": tf.stop_gradient(next_mean_q)}  # Q(s', ·) whose argmax is a* without double-DQN
        if self._double_dqn and chooser:
            bootstrap["chooser"] = tf.stop_gradient(tf.cast(self._q_network(next_observation, training=False)[0],
                                                            tf.float32))
        return bootstrap

    def _targets(self, batch, bootstrap, q_values):
        """n-step targets: [B] for Huber, [B, N'] for quantiles. q_values = Q(s_t, ·) (Munchausen's π)."""
        returns, discounts = batch["n_step_return"], batch["bootstrap_discount"]
        if self._munchausen:
            return munchausen_targets(q_values, batch["action"], bootstrap["mean_q"], bootstrap["values"], returns,
                                      discounts, **self._munchausen)
        if self._loss_kind == "quantile_huber":
            next_actions = tf.argmax(bootstrap["chooser"], axis=-1, output_type=tf.int32)
            return quantile_targets(bootstrap["values"], next_actions, returns, discounts)
        if self._double_dqn:
            return double_dqn_targets(bootstrap["chooser"], bootstrap["values"], returns, discounts)
        return dqn_targets(bootstrap["values"], returns, discounts)

    def _online_loss(self, batch, bootstrap, weights, training, chooser_from_online=None, position_mask=None):
        """(weighted mean loss [], per-sample errors [B], mean Q []) from the online pass over s_t.
        chooser_from_online(Q(s_t, ·)) gives double-DQN's argmax values from this pass (segments);
        position_mask [B]: the samples the mean Q is taken over (all when None)."""
        if weights is None:
            weights = tf.ones_like(batch["n_step_return"])

        def mean_q(q_values):
            if position_mask is None:
                return tf.reduce_mean(q_values)
            per_sample = tf.reduce_mean(q_values, axis=-1)
            return tf.reduce_sum(per_sample * position_mask) / tf.maximum(tf.reduce_sum(position_mask), 1.0)

        if self._loss_kind == "quantile_huber":
            quantiles, taus = self._q_network.quantile_values(batch["observation"], training=training)  # [B, N, A]
            quantiles, taus = tf.cast(quantiles, tf.float32), tf.cast(taus, tf.float32)
            q_values = tf.reduce_mean(quantiles, axis=1)  # [B, A]
            targets = tf.stop_gradient(self._targets(batch, bootstrap, q_values))  # [B, N']
            chosen = tf.gather(quantiles, batch["action"], axis=-1, batch_dims=1)  # [B, N]
            per_sample, errors = quantile_huber_loss(chosen, targets, taus, self._huber_delta)
            return tf.reduce_mean(weights * per_sample), errors, mean_q(q_values)
        q_values, _ = self._q_network(batch["observation"], training=training)  # [B, A]
        q_values = tf.cast(q_values, tf.float32)
        if chooser_from_online is not None:
            bootstrap = dict(bootstrap, chooser=tf.stop_gradient(chooser_from_online(tf.stop_gradient(q_values))))
        targets = tf.stop_gradient(self._targets(batch, bootstrap, q_values))  # [B]
        loss, td_errors = td_loss(q_values, batch["action"], targets, weights, self._huber_delta)
        return loss, tf.abs(td_errors), mean_q(q_values)

    def _loss(self, experience, weights=None, training=False):
        experience = self.as_training_data(experience)
        if is_record(experience):
            return tf_agent.LossInfo(*self._segment_loss(experience, weights)(training))
        loss, errors, q_mean = self._online_loss(experience, self._bootstrap(experience), weights, training)
        return tf_agent.LossInfo(loss, RiseLossInfo(errors, q_mean))

    def _train(self, experience, weights=None):
        loss, info, gradients = self.loss_and_gradients(experience, weights)
        self.apply_gradients(gradients)
        self.after_update()
        return tf_agent.LossInfo(loss, info)


def is_record(experience) -> bool:
    """Segment records carry step types; single-step batches carry n-step returns instead."""
    return isinstance(experience, dict) and "step_type" in experience


def merge_batch_and_time(x):
    """[B, P, ...] -> [B·P, ...] (the trailing shape kept static: layers read their input's channels)."""
    return tf.reshape(x, [-1] + x.shape[2:].as_list())


def update_signature(batch_spec, batch_size: Optional[int]):
    """The compiled update's input signature: the batch (or records) and the weights, batch_size first."""
    batched = tf.nest.map_structure(lambda spec: tf.TensorSpec([batch_size] + spec.shape.as_list(), spec.dtype,
                                                               spec.name), batch_spec)
    return [batched, tf.TensorSpec([batch_size], tf.float32, "weights")]
