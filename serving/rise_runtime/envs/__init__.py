"""Environments as the agent sees them (gymnasium level, TensorFlow-free): Atari (ALE v5 with our own
preprocessing), the MemoryCorridor family, any gymnasium image env, and flicker. Training wraps them
for TF-Agents (rise_tf.envs.py_env); rise-play runs them directly. Needs the `play` extra."""
