"""Environments: Atari (ALE v5 with our own preprocessing) and the built-in memory task.

Kept import-free: `atari_preprocessing` is imported by the TensorFlow-free runner, so importing
this package must not pull in TensorFlow or TF-Agents.
"""
