"""The mirrored learner (MirroredStrategy) against the single-device one, on two logical CPU devices.

Logical devices must be set before TensorFlow initialises, so the comparison runs in a fresh process."""
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent('''
    import numpy as np
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from rise_tf.agents.mirrored import mirrored_train_function
    from rise_tf.replay.embedding_replay import EmbeddingReplay
    from rise_tf import builder
    from rise_tf.config import make_config, replay_layout

    config = make_config("rise-dqn", "MemoryCorridor", env={"num_envs": 2}, replay={"capacity": 2000},
                         agent={"batch_size": 8, "gradient_clip_norm": 1.0})
    env = builder.make_env(config)
    tf.keras.utils.set_random_seed(0)
    single = builder.make_agent(config, env.time_step_spec(), env.action_spec(), tf.Variable(0, dtype=tf.int64))
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        mirrored = builder.make_agent(config, env.time_step_spec(), env.action_spec(), tf.Variable(0, dtype=tf.int64))
    for a, b in zip(mirrored.q_network.variables, single.q_network.variables):
        a.assign(b)
    mirrored.initialize()
    replay = EmbeddingReplay(replay_layout(config), list(builder.network_spec(config)), seed=0)
    rng = np.random.default_rng(0)
    for t in range(60):
        first = t % 10 == 0
        replay.add_batch(np.full(2, 0 if first else (2 if t % 10 == 9 else 1)), rng.integers(0, 256, (2, 84, 84), np.uint8),
                         rng.normal(size=(2, 64)).astype(np.float16), rng.integers(0, 2, 2), rng.normal(size=2).astype(np.float32),
                         np.ones(2, np.float32))
    train = mirrored_train_function(mirrored, strategy, mirrored.compiled_train.input_signature)
    for update in range(3):
        batch, keys, weights = replay.sample(8, 0.4)
        batch = tf.nest.map_structure(tf.constant, batch)
        weights = tf.constant(weights)
        one = single.compiled_train(batch, weights)
        two = train(batch, weights)
        np.testing.assert_allclose(two.loss.numpy(), one.loss.numpy(), rtol=1e-5)
        np.testing.assert_allclose(two.extra.sample_errors.numpy(), one.extra.sample_errors.numpy(), rtol=1e-4, atol=1e-6)
    for a, b in zip(mirrored.q_network.trainable_variables, single.q_network.trainable_variables):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-6)
    assert int(mirrored.train_step_counter.numpy()) == int(single.train_step_counter.numpy()) == 3
    assert len(mirrored.q_network.trainable_variables[0].values) == 2  # mirrored on both devices

    # Segments split by segment: 4 segments of 3 steps, 2 per replica.
    config = config.replace(agent={"batch_size": 4, "segment_length": 3})
    single = builder.make_agent(config, env.time_step_spec(), env.action_spec(), tf.Variable(0, dtype=tf.int64))
    mirrored = builder.make_agent(config, env.time_step_spec(), env.action_spec(), tf.Variable(0, dtype=tf.int64),
                                  strategy=strategy)
    for a, b in zip(mirrored.q_network.variables, single.q_network.variables):
        a.assign(b)
    mirrored.initialize()
    single.initialize()
    for update in range(2):
        records, keys, weights = replay.sample_segments(4, builder.sequence_shape(config), 0.4)
        records = tf.nest.map_structure(tf.constant, records)
        one = single.train(records, tf.constant(weights))
        two = mirrored.train(records, tf.constant(weights))
        np.testing.assert_allclose(two.extra.sample_errors.numpy(), one.extra.sample_errors.numpy(), rtol=1e-4, atol=1e-6)
        np.testing.assert_array_equal(two.extra.trainable.numpy(), one.extra.trainable.numpy())
    for a, b in zip(mirrored.q_network.trainable_variables, single.q_network.trainable_variables):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-6)
    print("MIRRORED OK")
''')


def test_two_replica_updates_equal_the_single_device_update():
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=600)
    assert "MIRRORED OK" in done.stdout, done.stderr[-4000:]


TRAINER_SCRIPT = textwrap.dedent('''
    import sys
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from rise_tf.config import make_config
    from rise_tf.train.trainer import Trainer
    config = make_config("rise-dqn", "MemoryCorridor", env={"num_envs": 2}, replay={"capacity": 2000},
                         train={"frames": 300, "warmup_frames": 100, "eval_every_frames": 0, "learner_replicas": 2})
    trainer = Trainer(config, sys.argv[1], progress=False)
    trainer.run()
    assert trainer.strategy.num_replicas_in_sync == 2 and trainer.counters.updates > 0
    updates = trainer.counters.updates
    trainer.close()
    resumed = Trainer(config.replace(train={"frames": 400}), sys.argv[1], resume=True, progress=False)
    resumed.run()
    assert resumed.counters.updates > updates
    print("TRAINER OK")
''')


@pytest.mark.slow
def test_a_run_with_two_learner_replicas_trains_and_resumes(tmp_path):
    done = subprocess.run([sys.executable, "-c", TRAINER_SCRIPT, str(tmp_path / "run")], capture_output=True,
                          text=True, timeout=600)
    assert "TRAINER OK" in done.stdout, done.stderr[-4000:]


def test_more_learner_replicas_than_devices_is_refused_with_the_count(tmp_path):
    from rise_tf.config import make_config
    from rise_tf.train.trainer import Trainer, TrainingError

    config = make_config("rise-dqn", "MemoryCorridor", env={"num_envs": 2}, replay={"capacity": 2000},
                         train={"learner_replicas": 4})
    with pytest.raises(TrainingError, match="needs 4 GPUs; this host has 0"):
        Trainer(config, str(tmp_path / "run"), progress=False)
    assert not (tmp_path / "run").exists()  # refused before anything was written
    with pytest.raises(ValueError, match="does not split over --learner-replicas 3"):
        make_config("rise-dqn", "MemoryCorridor", train={"learner_replicas": 3})
