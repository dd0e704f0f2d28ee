"""Quiet start-up for the command-line tools; imports nothing heavy, so call it before TensorFlow loads."""
from __future__ import annotations

import contextlib
import io
import os
import warnings


def quiet_third_party_startup() -> None:
    """Silences start-up noise of the pinned stack that is not ours to act on: TensorFlow's C++
    plugin-registration lines (set TF_CPP_MIN_LOG_LEVEL yourself to see them), the deprecation
    notice gym 0.23 prints on import (TF-Agents 0.19 imports gym; rise-tf uses gymnasium), and the
    SyntaxWarning autograph raises on every trace of TF-Agents' Network.__call__."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    warnings.filterwarnings("ignore", category=SyntaxWarning)
    with contextlib.redirect_stderr(io.StringIO()):
        import gym  # noqa: F401
