"""Cross-session batching: one thread owns the model and steps every waiting session in one call.

A request's frame waits at most `window_seconds` for company (up to `max_batch` sessions), and only
while more requests are on their way than have arrived (`expected()`: the server counts the act
requests it is handling): a lone client never waits for company that is not coming. Then the frames
and states of all waiting sessions are stacked into one step-model call and each session's state is
written back. No HTTP here; callers get a concurrent.futures.Future per step. The caller
keeps each session's steps in order (one in flight per session): the batcher does not reorder, but
it also does not serialise two steps of one session.
"""
from __future__ import annotations

import concurrent.futures
import dataclasses
import queue
import threading
import time
from typing import Callable, List, Optional

import numpy as np

from rise_runtime.sessions import Session


@dataclasses.dataclass
class StepResult:
    action: int
    q_values: List[float]
    step: int  # the session's step count after this step


class _Job:
    __slots__ = ("session", "frame", "future")

    def __init__(self, session: Session, frame: np.ndarray):
        self.session, self.frame = session, frame
        self.future: concurrent.futures.Future = concurrent.futures.Future()


_STOP = object()


class Batcher:
    def __init__(self, policy, window_seconds: float, max_batch: int,
                 on_batch: Optional[Callable[[int], None]] = None, expected: Callable[[], int] = lambda: 1 << 30):
        """on_batch(size) is called from the inference thread after each model call (metrics);
        expected() is how many steps are on their way now, this one included (default: always wait)."""
        if window_seconds < 0:
            raise ValueError(f"the batch window must be >= 0 ms, got {window_seconds * 1000:g}")
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        self.policy, self.window_seconds, self.max_batch = policy, window_seconds, max_batch
        self._jobs: "queue.Queue" = queue.Queue()
        self._on_batch = on_batch
        self._expected = expected
        self._thread = threading.Thread(target=self._loop, daemon=True, name="rise-inference")
        self._thread.start()

    def submit(self, session: Session, frame: np.ndarray) -> concurrent.futures.Future:
        job = _Job(session, frame)
        self._jobs.put(job)
        return job.future

    def stop(self, timeout: Optional[float] = 10.0) -> None:
        """Finishes the steps already submitted, then ends the thread."""
        self._jobs.put(_STOP)
        self._thread.join(timeout)

    def _collect(self) -> tuple:
        first = self._jobs.get()
        if first is _STOP:
            return [], True
        jobs, stop = [first], False
        deadline = time.perf_counter() + self.window_seconds
        while len(jobs) < self.max_batch:
            if len(jobs) >= self._expected() and self._jobs.empty():
                break  # every request in the server is in this batch: nobody to wait for
            remaining = deadline - time.perf_counter()
            try:
                job = self._jobs.get(timeout=remaining) if remaining > 0 else self._jobs.get_nowait()
            except queue.Empty:
                break
            if job is _STOP:
                stop = True
                break
            jobs.append(job)
        return jobs, stop

    def _loop(self) -> None:
        while True:
            jobs, stop = self._collect()
            if jobs:
                try:
                    results = self._run(jobs)
                except Exception as error:  # reported to each waiting request; the thread keeps serving
                    for job in jobs:
                        job.future.set_exception(error)
                else:
                    for job, result in zip(jobs, results):
                        job.future.set_result(result)
            if stop:
                return

    def _run(self, jobs: List[_Job]) -> List[StepResult]:
        frames = np.stack([job.frame for job in jobs])
        reset = np.array([job.session.first for job in jobs])
        names = list(jobs[0].session.state)
        state = {name: np.concatenate([job.session.state[name] for job in jobs]) for name in names}
        actions, q_values, new_state = self.policy.run_step(frames, reset, state)
        results = []
        for index, job in enumerate(jobs):
            job.session.state = {name: value[index:index + 1] for name, value in new_state.items()}
            job.session.first = False
            job.session.steps += 1
            results.append(StepResult(int(actions[index]), q_values[index].tolist(), job.session.steps))
        if self._on_batch is not None:
            self._on_batch(len(jobs))
        return results
