"""Ctrl-C and SIGTERM for a training process: the run ends in a checkpoint, and a lane step is never
half counted."""
from __future__ import annotations

import contextlib
import signal
import threading


class StopSignals:
    """Ctrl-C and SIGTERM raise KeyboardInterrupt (the run then ends in a checkpoint), but never inside
    `atomic()` on the main thread: there the interrupt waits for the section's end. So a lane step is
    never half counted (its rows in replay, not yet in the counters) in the checkpoint that follows.
    SIGINT is set explicitly: a process started in the background by a non-interactive shell inherits
    SIGINT as ignored, and `kill -INT` must still work."""

    def __init__(self):
        self._depth = 0  # atomic sections open on the main thread (the only one signals reach)
        self._pending = False

    def _handle(self, signum, frame):
        if self._depth:
            self._pending = True
            return
        raise KeyboardInterrupt

    @contextlib.contextmanager
    def installed(self):
        self._pending = False  # one left by a section that ended in another exception is stale
        previous = {sig: signal.signal(sig, self._handle) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    @contextlib.contextmanager
    def atomic(self):
        if threading.current_thread() is not threading.main_thread():
            yield  # signals run on the main thread; the concurrent engine stops its threads itself
            return
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
        if not self._depth and self._pending:
            self._pending = False
            raise KeyboardInterrupt


STOP_SIGNALS = StopSignals()  # one per process: signal handlers are process-wide
