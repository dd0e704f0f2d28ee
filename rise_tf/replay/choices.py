"""Where replay lives, TensorFlow-free (the config validates against it, `--help` lists it)."""

# memory: the in-process EmbeddingReplay (the default) | reverb: a Reverb server (reverb_store.py),
# embedded in the trainer's process, or shared by actors and a learner (the distributed engine).
REPLAY_BACKENDS = ("memory", "reverb")
