"""Environments as the agent sees them (gymnasium level, TensorFlow-free): Atari (ALE v5 with our own
preprocessing), the MemoryCorridor family, any gymnasium image env, and flicker. Training wraps them
for TF-Agents (rise_tf.envs.py_env); rise-play runs them directly. Needs the `play` extra.

Importing this package registers the memory tasks with gymnasium as rise_tf/<task>-v0 (the package
roots `rise_tf` and `rise_runtime` import nothing heavy, so they do not). Without importing anything,
gymnasium's module prefix does it: gym.make("rise_runtime.envs:rise_tf/MemoryCorridor-v0")."""

from rise_runtime.envs import memory_task as _registers_the_memory_tasks  # noqa: F401
