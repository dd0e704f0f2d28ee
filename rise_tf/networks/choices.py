"""The choice lists of every pluggable network part, TensorFlow-free.

The config validates against these and `rise-train --help` lists them, so neither has to load
TensorFlow; the network modules import them from here (one list per choice, in one place).
"""

MEMORIES = ("none", "rise", "full_recurrent")  # frame stack only | RISE | R2D2-style full recurrence
LEARNABLE_ENCODERS = ("nature", "impala")
import os
from typing import Tuple

FROZEN_ENCODERS = ("random_projection", "random_cnn", "pooled_pixels")  # built in, drawn from the seed
# ϑ from elsewhere: "snapshot:RUN_DIR" (φ of an earlier run, frozen) or "keras:NAME" (a pretrained
# tf.keras.applications model's pooled penultimate layer, weights from the user's Keras cache).
SNAPSHOT_PREFIX, KERAS_PREFIX = "snapshot:", "keras:"
# The pretrained models rise-tf knows how to find in the Keras cache: name -> (weights file as Keras
# caches it, the tf.keras.applications module holding the model's preprocess_input).
KERAS_APPLICATIONS = {
    "MobileNetV2": ("mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5", "mobilenet_v2"),
    "ResNet50": ("resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5", "resnet50"),
    "EfficientNetB0": ("efficientnetb0_notop.h5", "efficientnet"),
}
CORES = ("lstm", "gru")
CORE_GATE_INITS = ("keras", "chrono")  # Keras' defaults | chrono initialisation (Tallec & Ollivier 2018)
FUSIONS = ("gate", "concat")
HEADS = ("linear", "dueling", "iqn")
# Heads that output a return distribution (quantiles at sampled taus) rather than one Q per action.
DISTRIBUTIONAL_HEADS = ("iqn",)


def parse_frozen_encoder(value: str) -> Tuple[str, str]:
    """'random_projection' -> ('random_projection', ''); 'snapshot:runs/a' -> ('snapshot', 'runs/a');
    'keras:MobileNetV2' -> ('keras', 'MobileNetV2'). Raises ValueError naming what would work."""
    for prefix in (SNAPSHOT_PREFIX, KERAS_PREFIX):
        if value.startswith(prefix):
            argument = value[len(prefix):]
            if not argument:
                raise ValueError(f"frozen encoder {value!r} needs {'a run directory' if prefix == SNAPSHOT_PREFIX else 'a model name'} "
                                 f"after {prefix!r}")
            if prefix == KERAS_PREFIX and argument not in KERAS_APPLICATIONS:
                raise ValueError(f"unknown Keras application {argument!r}; rise-tf knows {', '.join(KERAS_APPLICATIONS)}")
            return prefix[:-1], argument
    if value not in FROZEN_ENCODERS:
        raise ValueError(f"unknown frozen_encoder {value!r}; choose one of {', '.join(FROZEN_ENCODERS)}, "
                         f"{SNAPSHOT_PREFIX}RUN_DIR or {KERAS_PREFIX}NAME ({', '.join(KERAS_APPLICATIONS)})")
    return value, ""


def keras_weights_path(name: str) -> str:
    """Where Keras caches `name`'s ImageNet weights ($KERAS_HOME/models, default ~/.keras/models)."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return os.path.join(home, "models", KERAS_APPLICATIONS[name][0])
