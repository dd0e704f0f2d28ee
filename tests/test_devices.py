"""The learner's device: memory growth on every GPU and the device batches are copied to (logic tested
on CPU; the project has no GPU)."""
import tensorflow as tf

from rise_tf.parts import devices


def test_cpu_host_learns_on_the_cpu():
    assert devices.configure_learner_device() == ("/GPU:0" if tf.config.list_physical_devices("GPU") else "/CPU:0")


def test_gpu_host_turns_memory_growth_on_for_every_gpu(monkeypatch):
    fake_gpus = ["gpu0", "gpu1"]
    grown = []
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind: fake_gpus if kind == "GPU" else [])
    monkeypatch.setattr(tf.config.experimental, "set_memory_growth", lambda gpu, on: grown.append((gpu, on)))
    assert devices.configure_learner_device() == "/GPU:0"
    assert grown == [("gpu0", True), ("gpu1", True)]


def test_a_batch_is_copied_once_to_the_learners_device_on_a_real_second_device(tmp_path):
    """The learner's sample() puts every tensor of a batch (and its importance weights) on the learner's
    device, here a real second logical CPU device (a GPU's code path; logical devices must be set
    before TensorFlow starts, hence the subprocess)."""
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent('''
        import threading
        from types import SimpleNamespace
        import numpy as np
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        from rise_tf.parts.counters import Counters
        from rise_tf.parts.learner import Learner

        class Replay:  # the replay's sample(): a nest of numpy arrays, keys and weights
            def sample(self, batch_size, beta):
                batch = {"frame_stack": np.zeros((batch_size, 4, 4, 2), np.uint8),
                         "reward": np.ones(batch_size, np.float32)}
                return batch, np.arange(batch_size), np.full(batch_size, beta, np.float32)

        for device in ("/CPU:0", "/device:CPU:1"):
            learner = Learner(None, Replay(), batch_size=3, sequence_shape=SimpleNamespace(segment_length=1),
                              segment_priority_eta=0.9, device=device,
                              strategy=None, counters=Counters(),
                              importance_beta=lambda: 0.5, replay_lock=threading.Lock())
            sampled = learner.sample()
            places = {t.device.split("/")[-1] for t in tf.nest.flatten(sampled.batch) + [sampled.weights]}
            print(device, sorted(places), float(sampled.weights[0]))
    ''')
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.strip().splitlines()
    assert lines == ["/CPU:0 ['device:CPU:0'] 0.5", "/device:CPU:1 ['device:CPU:1'] 0.5"], result.stdout
