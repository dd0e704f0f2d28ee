"""The run log: TensorBoard scalars, metrics.jsonl records, the progress bar and summary.json."""
from __future__ import annotations

import math
import os
import sys
from typing import Dict, List

import tensorflow as tf

from rise_tf.run_dir import SUMMARY_FILE, TENSORBOARD_DIR, append_metrics, write_json_atomic


class RunLog:
    def __init__(self, run_dir: str, *, show_progress: bool, total_frames: int, description: str):
        self.run_dir, self.show_progress = run_dir, show_progress
        self.total_frames, self.description = total_frames, description
        self.writer = tf.summary.create_file_writer(os.path.join(run_dir, TENSORBOARD_DIR))
        self.bar = None

    # -- progress bar (stderr; a long interval when stderr is not a terminal)
    def open_bar(self, frames: int) -> None:
        if not self.show_progress:
            return
        from tqdm import tqdm

        self.bar = tqdm(total=self.total_frames, initial=frames, unit="frame", unit_scale=True, dynamic_ncols=True,
                        desc=self.description, mininterval=1.0 if sys.stderr.isatty() else 30.0)

    def show(self, frames: int, postfix: Dict[str, str]) -> None:
        if self.bar is not None:
            self.bar.update(frames - self.bar.n)
            self.bar.set_postfix(postfix, refresh=False)

    def close_bar(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    # -- records
    def train(self, record: Dict, tf_agents_metrics: List, updates: int) -> None:
        """A training record: TensorBoard train/<key> against frames, TF-Agents' metrics under their
        own tags, and a metrics.jsonl line."""
        with self.writer.as_default(step=record["frames"]):
            for key, value in record.items():
                if key not in ("kind", "frames") and value is not None and math.isfinite(value):
                    tf.summary.scalar(f"train/{key}", value)
        self._tf_agents_metrics(tf_agents_metrics, updates)
        append_metrics(self.run_dir, record)

    def _tf_agents_metrics(self, metrics: List, updates: int) -> None:
        """TF-Agents' tags (py_metric.tf_summaries): Metrics/<name> against the train step, and
        Metrics_vs_EnvironmentSteps/<name> and Metrics_vs_NumberOfEpisodes/<name> against those."""
        step_metrics = metrics[:2]
        with self.writer.as_default():
            for metric in metrics:
                value = float(metric.result())
                tf.summary.scalar(f"{metric.prefix}/{metric.name}", value, step=updates)
                for step_metric in step_metrics:
                    if step_metric.name != metric.name:
                        tf.summary.scalar(f"{metric.prefix}_vs_{step_metric.name}/{metric.name}", value,
                                          step=int(step_metric.result()))

    def evaluation(self, record: Dict) -> None:
        with self.writer.as_default(step=record["frames"]):
            tf.summary.scalar("eval/return", record["return"])
            if "success_rate" in record:  # the memory tasks only
                tf.summary.scalar("eval/success_rate", record["success_rate"])
            if record.get("human_normalized") is not None:
                tf.summary.scalar("eval/human_normalized", record["human_normalized"])
        append_metrics(self.run_dir, record)

    def summary(self, summary: Dict) -> None:
        """summary.json: the run's totals, rewritten atomically each time a run ends."""
        write_json_atomic(os.path.join(self.run_dir, SUMMARY_FILE), summary)

    def flush(self) -> None:
        self.writer.flush()
