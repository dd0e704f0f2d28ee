"""The learner's update over several devices: tf.distribute.MirroredStrategy (issue 11, part 5).

The agent is built under the strategy's scope (its weights and optimizer slots are mirrored). Each
update takes the global batch; replica i computes the loss and gradients of its slice
[i B/R, (i+1) B/R), the gradients are averaged across replicas (all-reduce), then clipped and
applied on every replica alike; the update count and the target update run once, in cross-replica
context. With equal slices this is the single-device update of the whole batch, up to float
rounding (tests/test_mirrored_learner.py checks it on two logical CPU devices). The batch size must
be a multiple of the replica count.
"""
from __future__ import annotations

import tensorflow as tf
from tf_agents.agents import tf_agent


def mirrored_train_function(agent, strategy: tf.distribute.Strategy, signature):
    """A tf.function (batch, weights) -> LossInfo, like `agent.compiled_train` (or
    `compiled_train_segments`, whose records split by segment), over `strategy`'s replicas.
    signature: that function's input signature, batch size first."""
    from rise_tf.agents.rise_agent import RiseLossInfo

    replicas = strategy.num_replicas_in_sync
    batch_size = signature[1].shape[0]
    if batch_size is None or batch_size % replicas:
        raise ValueError(f"batch size {batch_size} does not split over {replicas} learner replicas: use a multiple "
                         f"of {replicas}")
    share = batch_size // replicas

    def replica_update(batch, weights):
        context = tf.distribute.get_replica_context()
        start = context.replica_id_in_sync_group * share
        mine = tf.nest.map_structure(lambda x: x[start:start + share], (batch, weights))
        loss, info, gradients = agent.loss_and_gradients(*mine)
        gradients = context.all_reduce(tf.distribute.ReduceOp.MEAN, gradients)
        agent.apply_gradients(gradients, aggregated=True)
        if info.trainable is not None:  # all-gather takes numbers, not booleans
            info = info._replace(trainable=tf.cast(info.trainable, tf.int32))
        return loss, info

    @tf.function(input_signature=signature, autograph=False)  # as the agent's own (rise_agent.py)
    def train(batch, weights):
        loss, info = strategy.run(replica_update, args=(batch, weights))
        agent.after_update()
        mean = tf.distribute.ReduceOp.MEAN
        trainable = None
        if info.trainable is not None:
            trainable = tf.cast(strategy.gather(info.trainable, axis=0), tf.bool)
        return tf_agent.LossInfo(strategy.reduce(mean, loss, axis=None),
                                 RiseLossInfo(strategy.gather(info.sample_errors, axis=0),
                                              strategy.reduce(mean, info.q_mean, axis=None), trainable))
    return train
