"""Aggregate metrics over runs x tasks, with stratified bootstrap confidence intervals.

The protocol of Agarwal et al. 2021 ("Deep RL at the edge of the statistical precipice", rliable):
- per task (game), a run contributes one score (e.g. its final human-normalized score);
- IQM: mean of the middle 50 % of all run x task scores (25 % trimmed from each end);
  median / mean: of the per-task mean scores;
- confidence intervals: percentile bootstrap where each replicate resamples runs with replacement
  *within each task* (stratified), so every task keeps its weight.
Tasks may have different numbers of runs. Written here rather than imported from rliable, whose
dependencies (arch, pandas) do not import together under our pinned set; tests pin the maths.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Dict, Mapping, Optional, Sequence

import numpy as np

# Each aggregate takes per-task score arrays of shape [replicates, runs_of_task] -> [replicates].
TaskScores = Sequence[np.ndarray]


def _trimmed_mean(values: np.ndarray, proportion: float = 0.25) -> np.ndarray:
    """Mean over the last axis after cutting floor(proportion * n) values from each end (scipy's trim_mean)."""
    n = values.shape[-1]
    cut = int(proportion * n)
    ordered = np.sort(values, axis=-1)
    return ordered[..., cut:n - cut].mean(axis=-1)


def iqm(task_scores: TaskScores) -> np.ndarray:
    return _trimmed_mean(np.concatenate(task_scores, axis=-1), 0.25)


def median_of_task_means(task_scores: TaskScores) -> np.ndarray:
    return np.median(np.stack([s.mean(axis=-1) for s in task_scores], axis=-1), axis=-1)


def mean_of_task_means(task_scores: TaskScores) -> np.ndarray:
    return np.stack([s.mean(axis=-1) for s in task_scores], axis=-1).mean(axis=-1)


METRICS: Dict[str, Callable[[TaskScores], np.ndarray]] = {
    "IQM": iqm, "Median": median_of_task_means, "Mean": mean_of_task_means}


@dataclasses.dataclass(frozen=True)
class Estimate:
    point: float
    low: float
    high: float

    def format(self, digits: int = 3) -> str:
        return f"{self.point:.{digits}f} [{self.low:.{digits}f}, {self.high:.{digits}f}]"


def _as_tasks(scores: Mapping[str, Sequence[float]]) -> list:
    tasks = [np.asarray(list(values), dtype=np.float64) for values in scores.values()]
    if not tasks or any(t.size == 0 for t in tasks):
        raise ValueError("every task needs at least one run score")
    return [t[None, :] for t in tasks]  # a leading replicate axis of 1: the point estimate


def point_estimate(scores: Mapping[str, Sequence[float]], metric: str) -> float:
    """`scores`: {task: run scores}. The metric on the data itself."""
    return float(METRICS[metric](_as_tasks(scores))[0])


def bootstrap_replicates(scores: Mapping[str, Sequence[float]], metric: str, reps: int = 2000,
                         rng: Optional[np.random.Generator] = None) -> np.ndarray:
    """[reps] values of `metric` on stratified resamples: each task's runs resampled on their own."""
    rng = rng or np.random.default_rng(0)
    resampled = []
    for task in _as_tasks(scores):
        runs = task.shape[-1]
        resampled.append(task[0][rng.integers(0, runs, size=(reps, runs))])
    return METRICS[metric](resampled)


def interval_estimate(scores: Mapping[str, Sequence[float]], metric: str, reps: int = 2000,
                      confidence: float = 0.95, seed: int = 0) -> Estimate:
    replicates = bootstrap_replicates(scores, metric, reps, np.random.default_rng(seed))
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(replicates, [tail, 100 - tail])
    return Estimate(point_estimate(scores, metric), float(low), float(high))


def relative_change(candidate: Mapping[str, Sequence[float]], baseline: Mapping[str, Sequence[float]],
                    metric: str = "IQM", reps: int = 2000, confidence: float = 0.95, seed: int = 0) -> Estimate:
    """(metric(candidate) - metric(baseline)) / |metric(baseline)|, CI from independent stratified
    resamples of both. Tasks are matched by name; only common tasks count."""
    common = [task for task in candidate if task in baseline]
    if not common:
        raise ValueError("candidate and baseline share no task")
    cand = {t: candidate[t] for t in common}
    base = {t: baseline[t] for t in common}
    rng = np.random.default_rng(seed)
    c_reps, b_reps = bootstrap_replicates(cand, metric, reps, rng), bootstrap_replicates(base, metric, reps, rng)
    c_point, b_point = point_estimate(cand, metric), point_estimate(base, metric)
    if b_point == 0:
        raise ValueError(f"the baseline's {metric} is 0: a relative change is undefined")
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = (c_reps - b_reps) / np.abs(b_reps)
    ratios = ratios[np.isfinite(ratios)]
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(ratios, [tail, 100 - tail]) if ratios.size else (np.nan, np.nan)
    return Estimate((c_point - b_point) / abs(b_point), float(low), float(high))
