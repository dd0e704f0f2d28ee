"""Sessions of the HTTP server: one game each, with its own recurrent state. No HTTP here.

A store holds at most `max_sessions`; a session unused for `idle_seconds` expires (checked whenever
the store is used, so no timer thread is needed). When the store is full, a new session takes the
place of the least recently used one if that one has been idle for `evict_idle_seconds`: a client
that opens sessions and leaves them cannot lock the others out for `idle_seconds`, while sessions
in play (used more recently than that) are never taken. Thread-safe: the event loop creates and looks up
sessions while the inference thread writes their states.
"""
from __future__ import annotations

import threading
import time
import uuid
from typing import Callable, Dict, Optional

import numpy as np


class SessionError(Exception):
    """Base of the store's refusals; `status` is the HTTP status that fits."""

    status = 400


class UnknownSession(SessionError):
    status = 404


class TooManySessions(SessionError):
    status = 429

    def __init__(self, message: str, retry_after: float):
        super().__init__(message)
        self.retry_after = retry_after  # seconds until the least recently used session may be taken


class Session:
    """One game: its recurrent state, whether its next frame starts an episode, and a step count."""

    def __init__(self, session_id: str, state: Dict[str, np.ndarray], now: float):
        self.id = session_id
        self.state = state
        self.first = True
        self.steps = 0
        self.previous_screen: Optional[np.ndarray] = None  # the last screen this session sent (max-pooling)
        self.last_used = now


class SessionStore:
    def __init__(self, zero_state: Callable[[], Dict[str, np.ndarray]], max_sessions: int, idle_seconds: float,
                 evict_idle_seconds: float, clock: Callable[[], float] = time.monotonic):
        if max_sessions < 1:
            raise ValueError(f"max_sessions must be >= 1, got {max_sessions}")
        if idle_seconds <= 0:
            raise ValueError(f"idle_seconds must be > 0, got {idle_seconds}")
        if not 0 < evict_idle_seconds <= idle_seconds:
            raise ValueError(f"evict_idle_seconds must be in (0, idle_seconds {idle_seconds:g}], got {evict_idle_seconds}")
        self.evict_idle_seconds = evict_idle_seconds
        self.evicted = 0  # sessions taken over by new ones at the cap, for the metrics
        self._zero_state = zero_state
        self.max_sessions = max_sessions
        self.idle_seconds = idle_seconds
        self._clock = clock
        self._sessions: Dict[str, Session] = {}
        self._lock = threading.Lock()
        self.expired = 0  # sessions removed for idleness, for the metrics

    def __len__(self) -> int:
        with self._lock:
            self._expire(self._clock())
            return len(self._sessions)

    def _expire(self, now: float) -> None:
        stale = [key for key, session in self._sessions.items() if now - session.last_used > self.idle_seconds]
        for key in stale:
            del self._sessions[key]
        self.expired += len(stale)

    def create(self) -> Session:
        now = self._clock()
        with self._lock:
            self._expire(now)
            if len(self._sessions) >= self.max_sessions:
                oldest = min(self._sessions.values(), key=lambda s: s.last_used)
                idle = now - oldest.last_used
                if idle < self.evict_idle_seconds:
                    raise TooManySessions(
                        f"{self.max_sessions} sessions are open (the server's --max-sessions) and all were used in "
                        f"the last {self.evict_idle_seconds:g} s; retry later (the least recently used one may be "
                        f"taken over once it has idled that long), or delete finished ones with DELETE "
                        f"/sessions/<id>", retry_after=self.evict_idle_seconds - idle)
                del self._sessions[oldest.id]
                self.evicted += 1
            session = Session(uuid.uuid4().hex, self._zero_state(), now)
            self._sessions[session.id] = session
            return session

    def get(self, session_id: str) -> Session:
        """The session, marked as used now; UnknownSession if it never existed, was deleted or expired."""
        now = self._clock()
        with self._lock:
            self._expire(now)
            session = self._sessions.get(session_id)
            if session is None:
                raise UnknownSession(f"unknown session {session_id[:64]!r} (never created, deleted, or idle for "
                                     f"more than {self.idle_seconds:g} s); create one with POST /sessions")
            session.last_used = now
            return session

    def delete(self, session_id: str) -> None:
        with self._lock:
            if self._sessions.pop(session_id, None) is None:
                raise UnknownSession(f"unknown session {session_id[:64]!r}")

    def find(self, session_id: str) -> Optional[Session]:
        with self._lock:
            return self._sessions.get(session_id)
