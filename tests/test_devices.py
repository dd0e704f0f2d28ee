"""The learner's device: memory growth on every GPU and the device batches are copied to (logic tested
on CPU; the project has no GPU)."""
import tensorflow as tf

from rise_tf.train import devices


def test_cpu_host_learns_on_the_cpu():
    assert devices.configure_learner_device() == ("/GPU:0" if tf.config.list_physical_devices("GPU") else "/CPU:0")


def test_gpu_host_turns_memory_growth_on_for_every_gpu(monkeypatch):
    fake_gpus = ["gpu0", "gpu1"]
    grown = []
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind: fake_gpus if kind == "GPU" else [])
    monkeypatch.setattr(tf.config.experimental, "set_memory_growth", lambda gpu, on: grown.append((gpu, on)))
    assert devices.configure_learner_device() == "/GPU:0"
    assert grown == [("gpu0", True), ("gpu1", True)]
