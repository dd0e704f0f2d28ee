"""What the learner publishes to actors through the variables table (TF-Agents' ReverbVariableContainer):
the Q-network's variables (ϑ included: an actor computes embeddings with exactly the learner's), the
train step, and the learner's state [frames, largest priority, done]. Actors read their ε from the
frames, give new items the largest priority, and stop when done is 1."""
from __future__ import annotations

from typing import Dict

import tensorflow as tf
from tf_agents.experimental.distributed import reverb_variable_container

POLICY_KEY = reverb_variable_container.POLICY_KEY
TRAIN_STEP_KEY = reverb_variable_container.TRAIN_STEP_KEY
LEARNER_STATE_KEY = "learner_state"
FRAMES, MAX_PRIORITY, DONE = 0, 1, 2  # positions in the learner state


def make_learner_state() -> tf.Variable:
    return tf.Variable([0.0, 1.0, 0.0], dtype=tf.float64, trainable=False, name="learner_state")


def variable_nest(agent, learner_state: tf.Variable) -> Dict[str, object]:
    return {POLICY_KEY: agent.q_network.variables, TRAIN_STEP_KEY: agent.train_step_counter,
            LEARNER_STATE_KEY: learner_state}


def variable_specs(nest) -> Dict[str, object]:
    return tf.nest.map_structure(lambda variable: tf.TensorSpec(variable.shape, variable.dtype), nest)
