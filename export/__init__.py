"""Checkpoint -> ONNX step model (installed as rise_tf.export). `contract` is TensorFlow-free."""
