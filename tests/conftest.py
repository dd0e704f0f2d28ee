import contextlib
import io
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")  # tests compare CPU numbers, even on a GPU host

with contextlib.redirect_stderr(io.StringIO()):
    import gym  # noqa: F401  (TF-Agents imports gym 0.23, which prints a deprecation banner)
