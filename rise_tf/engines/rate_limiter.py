"""Holds the replay ratio when collection and learning run at the same time.

Reverb's SampleToInsertRatio, counted in the units the trainer uses: learner updates per agent step
(one agent step = one row per lane). After `warmup_steps` agent steps, update u may start only when
u < ratio x (agent steps - warmup_steps) (rise_tf/parts/updates.py, the serial loop's rule), so both engines
make the same number of updates for the same steps. The collector waits while the learner is more than
`max_lead_updates` behind. The learner therefore acts as a brake and never starves:
- learning is exact: after the last insert, the learner catches up to the same count;
- acting uses weights at most max_lead_updates updates old, give or take one collection step.
`close()` releases every waiter (shutdown, Ctrl-C).
"""
from __future__ import annotations

import math
import threading
from typing import Optional

from rise_tf.parts.updates import updates_allowed


class RateLimiterClosed(Exception):
    """The limiter was closed while a thread waited on it."""


class RateLimiter:
    def __init__(self, ratio: float, warmup_steps: int, max_lead_updates: int):
        if not ratio > 0 or not math.isfinite(ratio):
            raise ValueError(f"the replay ratio must be a finite number > 0, got {ratio}")
        if warmup_steps < 0:
            raise ValueError(f"warmup_steps must be >= 0, got {warmup_steps}")
        if max_lead_updates < 1:
            raise ValueError(f"max_lead_updates must be >= 1, got {max_lead_updates}")
        self.ratio, self.warmup_steps, self.max_lead_updates = ratio, warmup_steps, max_lead_updates
        self.steps = 0
        self.updates = 0
        self._closed = False
        self._changed = threading.Condition()

    def allowed_updates(self, steps: Optional[int] = None) -> int:
        """Updates the ratio allows after `steps` agent steps (default: those inserted so far)."""
        steps = self.steps if steps is None else steps
        return updates_allowed(self.ratio, steps - self.warmup_steps)

    def resume_at(self, steps: int, updates: int) -> None:
        """Continues the counts of a resumed run."""
        with self._changed:
            self.steps, self.updates = steps, updates
            self._changed.notify_all()

    # -- collector
    def backlog(self) -> int:
        """Updates the ratio allows now that the learner has not made yet."""
        return self.allowed_updates() - self.updates

    def wait_to_insert(self, timeout: Optional[float] = None) -> bool:
        """Blocks while the learner is more than max_lead_updates behind. Checked before an insert, so
        the wait can never outlast the learner: a blocked collector means a backlog the learner can work
        off. False on timeout; RateLimiterClosed if closed."""
        with self._changed:
            ready = self._changed.wait_for(lambda: self._closed or self.backlog() <= self.max_lead_updates, timeout)
            if self._closed:
                raise RateLimiterClosed()
            return ready

    def inserted(self, new_steps: int) -> None:
        with self._changed:
            self.steps += new_steps
            self._changed.notify_all()

    # -- learner
    def wait_to_update(self, timeout: Optional[float] = None) -> bool:
        """Blocks until the ratio allows one more update. False on timeout; RateLimiterClosed if closed."""
        with self._changed:
            ready = self._changed.wait_for(lambda: self._closed or self.updates < self.allowed_updates(), timeout)
            if self._closed:
                raise RateLimiterClosed()
            return ready

    def updated(self) -> None:
        with self._changed:
            self.updates += 1
            self._changed.notify_all()

    def close(self) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify_all()
