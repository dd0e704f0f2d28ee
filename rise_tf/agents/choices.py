"""Loss choices of the value-based agent, TensorFlow-free (the config validates against them)."""

LOSSES = ("huber", "quantile_huber")
# The loss each kind of head needs: one Q per action -> Huber on TD errors; quantiles -> quantile Huber.
DISTRIBUTIONAL_LOSSES = ("quantile_huber",)
