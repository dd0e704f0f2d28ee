"""Sessions of the HTTP server: one game each, with its own recurrent state. No HTTP here.

A store holds at most `max_sessions`; a session unused for `idle_seconds` expires (checked whenever
the store is used, so no timer thread is needed). Thread-safe: the event loop creates and looks up
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


class Session:
    """One game: its recurrent state, whether its next frame starts an episode, and a step count."""

    def __init__(self, session_id: str, state: Dict[str, np.ndarray], now: float):
        self.id = session_id
        self.state = state
        self.first = True
        self.steps = 0
        self.last_used = now


class SessionStore:
    def __init__(self, zero_state: Callable[[], Dict[str, np.ndarray]], max_sessions: int, idle_seconds: float,
                 clock: Callable[[], float] = time.monotonic):
        if max_sessions < 1:
            raise ValueError(f"max_sessions must be >= 1, got {max_sessions}")
        if idle_seconds <= 0:
            raise ValueError(f"idle_seconds must be > 0, got {idle_seconds}")
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
                raise TooManySessions(
                    f"{self.max_sessions} sessions are open (the server's --max-sessions); delete finished ones "
                    f"with DELETE /sessions/<id>, or wait: sessions idle for {self.idle_seconds:g} s expire")
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
