"""RiseQPolicy: greedy / ε-greedy acting with {frame stack, embedding window} as policy state.

Each call takes one new frame per lane. On a FIRST step the state is zeroed (the episode's memory
starts empty, exactly like the replay's zero-padded windows); then the frame is pushed into the
stack, ϑ embeds it once, and the embedding is pushed into the window. The embedding goes out as
policy info so the replay observer stores it and the learner never recomputes it. It is rounded to
the replay's storage dtype before entering the window so that acting and learning read identical
numbers.

`stochastic_network=True` (the collect policy) runs the network with training=True: fresh noise in
noisy layers and sampled IQN taus on every step, as Beyond The Rainbow acts. Otherwise (greedy and
evaluation policies, export) the network is deterministic. `epsilon` (a variable, a number, or None
for none) adds ε-greedy exploration on top.
"""
from __future__ import annotations

from typing import Optional, Union

import tensorflow as tf
from tf_agents.distributions import shifted_categorical
from tf_agents.policies import tf_policy
from tf_agents.trajectories import policy_step


class RiseQPolicy(tf_policy.TFPolicy):
    def __init__(self, time_step_spec, action_spec, q_network, *, embedding_dtype: str,
                 epsilon: Optional[Union[tf.Variable, float]], stochastic_network: bool, name: Optional[str] = None):
        self._q_network = q_network
        self._epsilon = epsilon
        self._stochastic_network = stochastic_network
        self._embedding_dtype = tf.as_dtype(embedding_dtype)
        self._num_actions = int(action_spec.maximum - action_spec.minimum + 1)
        self._emits_embedding = q_network.memory == "rise"
        info_spec = {}
        if self._emits_embedding:
            embedding_size = q_network.input_tensor_spec["embedding_window"].shape[-1]
            info_spec = {"embedding": tf.TensorSpec([embedding_size], tf.float32, "embedding")}
        super().__init__(time_step_spec, action_spec, policy_state_spec=q_network.input_tensor_spec,
                         info_spec=info_spec, name=name)

    def _variables(self):
        return self._q_network.variables

    def _distribution(self, time_step, policy_state):
        """The action distribution TF-Agents' wrappers read (GreedyPolicy takes its mode,
        EpsilonGreedyPolicy mixes that with uniform actions): all mass on the greedy action, spread by
        this policy's own ε when it has one. `action()` samples the same policy without building it."""
        new_state, embedding = self.next_state(time_step.observation, time_step.is_first(), policy_state)
        q_values, _ = self._q_network(new_state, training=self._stochastic_network)  # [B, A]
        probs = tf.one_hot(tf.argmax(q_values, axis=-1), self._num_actions, dtype=tf.float32)
        if self._epsilon is not None:
            epsilon = tf.cast(self._epsilon, tf.float32)
            probs = (1.0 - epsilon) * probs + epsilon / self._num_actions
        distribution = shifted_categorical.ShiftedCategorical(probs=probs, dtype=self.action_spec.dtype,
                                                              shift=self.action_spec.minimum)
        info = {"embedding": embedding} if self._emits_embedding else {}
        return policy_step.PolicyStep(distribution, new_state, info)

    def next_state(self, frame, is_first, policy_state):
        """The policy state after seeing `frame` ([B, H, W] uint8), and ϑ(frame) or None."""
        keep = 1.0 - tf.cast(is_first, tf.float32)  # [B]

        def reset(tensor):
            mask = tf.reshape(keep, [-1] + [1] * (tensor.shape.rank - 1))
            return tensor * tf.cast(mask, tensor.dtype)

        state = tf.nest.map_structure(reset, policy_state)

        def push(window, item):  # drop the oldest step, append the newest
            return tf.concat([window[:, 1:], tf.expand_dims(item, 1)], axis=1)

        new_state = {}
        embedding = None
        if "frame_stack" in state:
            new_state["frame_stack"] = tf.concat(
                [state["frame_stack"][..., 1:], frame[..., None]], axis=-1)  # [B, H, W, S]
        if "embedding_window" in state:
            stored = tf.cast(self._q_network.embed_frames(frame), self._embedding_dtype)  # [B, E], ϑ once per frame
            # The window is shifted in the stored dtype (exact: it holds only stored values), so the
            # rounding is an op of its own in an exported graph: tf2onnx's optimizer drops a
            # float32 -> float16 -> float32 cast pair as if it were lossless.
            window = tf.cast(state["embedding_window"], self._embedding_dtype)
            new_state["embedding_window"] = tf.cast(push(window, stored), tf.float32)  # [B, k, E]
            embedding = tf.cast(stored, tf.float32)
        if "frame_window" in state:
            new_state["frame_window"] = push(state["frame_window"], frame)  # [B, k, H, W]
        if "window_mask" in state:
            ones = tf.ones_like(state["window_mask"][:, 0])
            new_state["window_mask"] = push(state["window_mask"], ones)  # [B, k]
        return new_state, embedding

    def _action(self, time_step, policy_state, seed=None):
        new_state, embedding = self.next_state(time_step.observation, time_step.is_first(), policy_state)
        q_values, _ = self._q_network(new_state, training=self._stochastic_network)  # [B, A]
        action = tf.argmax(q_values, axis=-1, output_type=tf.int32)
        if self._epsilon is not None:
            batch = tf.shape(action)[0]
            explore = tf.random.uniform([batch], seed=seed) < self._epsilon
            random_action = tf.random.uniform([batch], 0, self._num_actions, tf.int32, seed=seed)
            action = tf.where(explore, random_action, action)
        action = action + tf.cast(self.action_spec.minimum, tf.int32)
        info = {"embedding": embedding} if self._emits_embedding else {}
        return policy_step.PolicyStep(action, new_state, info)
