"""The serial engine: every lane steps once, then the learner makes the updates the replay ratio owes,
then the milestones; the reproducible engine (with --deterministic-ops, bit for bit)."""
from __future__ import annotations

from rise_tf.parts.collector import Collector
from rise_tf.parts.run import Run


def run_serial(run: Run, collector: Collector) -> None:
    while not run.done():
        new_steps = run.collect(collector)
        if run.earn_updates(new_steps, run.learner.replay.num_stored):
            run.learn_owed()
        run.show_progress()
        if run.milestones() == "solved":
            break  # experiments: a solved run need not spend the rest of its budget
