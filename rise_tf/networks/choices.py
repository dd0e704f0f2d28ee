"""The choice lists of every pluggable network part, TensorFlow-free.

The config validates against these and `rise-train --help` lists them, so neither has to load
TensorFlow; the network modules import them from here (one list per choice, in one place).
"""

MEMORIES = ("none", "rise", "full_recurrent")  # frame stack only | RISE | R2D2-style full recurrence
LEARNABLE_ENCODERS = ("nature", "impala")
FROZEN_ENCODERS = ("random_projection", "random_cnn", "pooled_pixels")
CORES = ("lstm", "gru")
FUSIONS = ("gate", "concat")
HEADS = ("linear", "dueling", "iqn")
# Heads that output a return distribution (quantiles at sampled taus) rather than one Q per action.
DISTRIBUTIONAL_HEADS = ("iqn",)
