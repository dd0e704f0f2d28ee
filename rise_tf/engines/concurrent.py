"""The concurrent engine: collection and learning at the same time, without changing what is learned.

    collector thread   envs + batched policy (the TF-Agents driver) -> replay, as in the serial loop
    sampler thread     writes the learner's priorities, then replay -> batches (numpy assembly, host ->
                       tensor copy), `prefetch_batches` ahead
    learner thread     one update at a time; never waits for numpy; hands its priorities to the sampler
    main thread        progress, and the milestones (log, evaluate, checkpoint) with all threads parked

A RateLimiter holds the replay ratio: the learner makes exactly the serial loop's number of updates
for the same agent steps, and collection waits when the learner falls more than `max_update_backlog`
updates behind. TF ops, onnxruntime-free numpy and the emulator release the GIL for most of their
time, so the two threads overlap (threads rather than processes: the policy and the learner share
the network's variables, which is what keeps acting within a few updates of learning).
Replay is guarded by one lock: a sampled batch is a copy, assembled under it.
Milestones park the threads at their loop boundary, so an evaluation or a checkpoint sees one
consistent state (counters agree with replay and weights). Ctrl-C or SIGTERM (KeyboardInterrupt in
the main thread) stops the threads the same way before the trainer saves its checkpoint. A batch
sampled ahead may name steps overwritten before its update returns; replay keys name absolute rows,
so those priorities are dropped rather than written onto newer steps.
Deviation to note: acting reads the variables while an update may be writing them (no copy of the
weights for the actor); the serial engine stays for runs that must be exactly reproducible.
"""
from __future__ import annotations

import queue
import threading
from typing import Optional

from rise_tf.engines.rate_limiter import RateLimiter, RateLimiterClosed
from rise_tf.parts.collector import Collector
from rise_tf.parts.run import Run

POLL_SECONDS = 0.05  # how often waiting threads look at the stop and park requests


class _Park:
    """Lets the main thread stop both workers at their loop boundary and let them go again."""

    def __init__(self, workers: int):
        self._workers = workers
        self._requested = False
        self._parked = 0
        self._condition = threading.Condition()

    @property
    def requested(self) -> bool:
        return self._requested

    def here(self, stop: threading.Event) -> None:
        """Called by a worker at its loop boundary: waits while a park is requested."""
        with self._condition:
            if not self._requested:
                return
            self._parked += 1
            self._condition.notify_all()
            self._condition.wait_for(lambda: not self._requested or stop.is_set())
            self._parked -= 1

    def request(self, stop: threading.Event, alive) -> None:
        """Returns once every live worker is parked (a worker that ended counts as parked)."""
        with self._condition:
            self._requested = True
            while self._parked < alive() and not stop.is_set():
                self._condition.wait(POLL_SECONDS)

    def release(self) -> None:
        with self._condition:
            self._requested = False
            self._condition.notify_all()


class ConcurrentEngine:
    def __init__(self, run: Run, collector: Collector):
        self.loop, self.collector, self.learner = run, collector, run.learner
        self.train = run.config.train
        self.stop = threading.Event()
        self.collection_done = threading.Event()
        self.error: Optional[BaseException] = None
        self.limiter = None
        if self.train.replay_ratio > 0:
            # Counts continue the run's (a resumed run owes what it earned before): the same rule as serial.
            self.limiter = RateLimiter(self.train.replay_ratio, warmup_steps=0,
                                       max_lead_updates=self.train.max_update_backlog)
            self.limiter.resume_at(steps=run.counters.earning_steps, updates=run.counters.updates)
        self._warm = False
        self._threads = []
        self._park = _Park(workers=3 if self.limiter else 1)
        self._batches: "queue.Queue" = queue.Queue(maxsize=self.train.prefetch_batches)
        self._priorities: "queue.SimpleQueue" = queue.SimpleQueue()  # (keys, errors) of finished updates
        self.learning_done = threading.Event()

    def _collect(self) -> None:
        run = self.loop
        try:
            while not self.stop.is_set() and not run.done():
                self._park.here(self.stop)
                if self.limiter is not None and self._warm and not self.limiter.wait_to_insert(timeout=POLL_SECONDS):
                    continue
                new_steps = run.collect(self.collector)
                if self.limiter is None:
                    continue
                # Credit starts with the step that completed the warm-up, as in the serial loop.
                if run.earn_updates(new_steps, self.learner.replay.num_stored):
                    self._warm = True
                    self.limiter.inserted(new_steps)
        except RateLimiterClosed:
            pass
        except BaseException as error:  # reported in the main thread
            self.error = self.error or error
            self.stop.set()
        finally:
            self.collection_done.set()

    def _sample(self) -> None:
        """Keeps up to prefetch_batches batches ready once the warm-up is collected."""
        try:
            while not self.stop.is_set() and not self.learning_done.is_set():
                self._park.here(self.stop)
                self._write_priorities()
                if not self._warm or self._batches.full():
                    self.stop.wait(POLL_SECONDS / 10)
                    continue
                sampled = self.learner.sample()
                while not (self.stop.is_set() or self.learning_done.is_set()):
                    try:
                        self._batches.put(sampled, timeout=POLL_SECONDS)
                        break
                    except queue.Full:
                        self._park.here(self.stop)
        except BaseException as error:
            self.error = self.error or error
            self.stop.set()

    def _learn(self) -> None:
        try:
            while not self.stop.is_set():
                self._park.here(self.stop)
                if self.collection_done.is_set() and self.limiter.backlog() <= 0:
                    return  # collection ended and every update it earned is made
                if not self.limiter.wait_to_update(timeout=POLL_SECONDS):
                    continue
                try:
                    sampled = self._batches.get(timeout=POLL_SECONDS)
                except queue.Empty:
                    continue  # the sampler is a moment behind; the update is still owed
                self.learner.update(sampled, write_priorities=lambda keys, errors: self._priorities.put((keys, errors)))
                self.limiter.updated()
        except RateLimiterClosed:
            pass
        except BaseException as error:
            self.error = self.error or error
            self.stop.set()
        finally:
            self.learning_done.set()

    def _write_priorities(self) -> None:
        """Writes every priority the learner has handed over (sampler thread, or main with all parked)."""
        while True:
            try:
                keys, errors = self._priorities.get_nowait()
            except queue.Empty:
                return
            self.learner.write_priorities(keys, errors)

    def _alive_workers(self) -> int:
        return sum(thread.is_alive() for thread in self._threads)

    def run(self) -> None:
        """Until the budget is spent (or the run is solved); KeyboardInterrupt stops it cleanly."""
        self._threads = [threading.Thread(target=self._collect, name="rise-collector", daemon=True)]
        if self.limiter is not None:
            self._threads.append(threading.Thread(target=self._learn, name="rise-learner", daemon=True))
            self._threads.append(threading.Thread(target=self._sample, name="rise-sampler", daemon=True))
        for thread in self._threads:
            thread.start()
        try:
            while any(thread.is_alive() for thread in self._threads):
                self.stop.wait(POLL_SECONDS)
                if self.error is not None:
                    break
                self.loop.show_progress()
                if self.loop.milestone_due():
                    self._park.request(self.stop, self._alive_workers)
                    self._write_priorities()  # a checkpoint saves every finished update's priorities
                    try:
                        self.loop.milestones()
                    finally:
                        self._park.release()
        finally:
            self._shut_down()
        if self.error is not None:
            raise self.error

    def _shut_down(self) -> None:
        """Stops and joins both threads: after this, replay, weights and counters are at rest."""
        if any(thread.is_alive() for thread in self._threads):
            interrupted = not self.collection_done.is_set()
            if interrupted:
                self.stop.set()
            self._park.release()
            if self.limiter is not None and interrupted:
                self.limiter.close()
        for thread in self._threads:
            thread.join()
        self._write_priorities()
