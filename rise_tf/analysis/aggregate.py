"""Aggregate metrics over runs x tasks, with stratified bootstrap confidence intervals.

The protocol of Agarwal et al. 2021 ("Deep RL at the edge of the statistical precipice"), computed
by their library, rliable:
- per task (game), a run contributes one score (e.g. its final human-normalized score);
- IQM: mean of the middle 50 % of all run x task scores (25 % trimmed from each end);
  median / mean: of the per-task mean scores;
- confidence intervals: percentile bootstrap where each replicate resamples runs with replacement
  *within each task* (stratified), so every task keeps its weight;
- probability of improvement P(X > Y) (Mann-Whitney per task, averaged over tasks) and performance
  profiles (fraction of runs above each score threshold), with CIs.

Where rliable cannot serve, our own code stays (and a test proves both agree where both apply):
rliable takes a runs x tasks matrix, so a set of tasks with *different* numbers of runs (an
experiment cut short, a task added later) is bootstrapped here with the same stratified resampling.
"""

from __future__ import annotations

import contextlib
import dataclasses
import warnings
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


def _matrix(scores: Mapping[str, Sequence[float]]) -> Optional[np.ndarray]:
    """{task: run scores} -> [runs, tasks] when every task has the same number of runs, else None."""
    counts = {len(list(values)) for values in scores.values()}
    if len(counts) != 1 or 0 in counts:
        return None
    return np.stack([np.asarray(list(values), np.float64) for values in scores.values()], axis=1)


def _rliable_metric(metric: str):
    from rliable import metrics

    return {"IQM": metrics.aggregate_iqm, "Median": metrics.aggregate_median, "Mean": metrics.aggregate_mean}[metric]


@contextlib.contextmanager
def _rliable_call(seed: int):
    """Around every rliable call, two workarounds for rliable 1.2. Its stratified bootstraps draw their
    resamples from numpy's global generator (`np.random.choice` in `update_indices`), not from the
    `random_state` they are given: seeded here, and put back afterwards, a report's intervals are the
    same on every run. And it seeds arch through a keyword arch has deprecated: that warning is silenced."""
    saved = np.random.get_state()
    np.random.seed(seed)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="random_state is deprecated", category=FutureWarning)
            yield
    finally:
        np.random.set_state(saved)


def _rliable_interval(score_dict, func, reps: int, confidence: float, seed: int) -> Estimate:
    from rliable import library as rly

    with _rliable_call(seed):
        points, intervals = rly.get_interval_estimates(
            score_dict, lambda *matrices: np.array([func(*matrices)]), reps=reps,
            confidence_interval_size=confidence, random_state=np.random.RandomState(seed))
    (key,) = points
    return Estimate(float(points[key][0]), float(intervals[key][0, 0]), float(intervals[key][1, 0]))


def interval_estimate(scores: Mapping[str, Sequence[float]], metric: str, reps: int = 2000,
                      confidence: float = 0.95, seed: int = 0) -> Estimate:
    """`metric` with its stratified-bootstrap CI: rliable when every task has the same number of
    runs, our resampling otherwise."""
    _as_tasks(scores)  # the same errors on empty input either way
    matrix = _matrix(scores)
    if matrix is not None:
        return _rliable_interval({"scores": matrix}, _rliable_metric(metric), reps, confidence, seed)
    return own_interval_estimate(scores, metric, reps, confidence, seed)


def own_interval_estimate(scores: Mapping[str, Sequence[float]], metric: str, reps: int = 2000,
                          confidence: float = 0.95, seed: int = 0) -> Estimate:
    """Our stratified bootstrap, for tasks with unequal numbers of runs (rliable needs a matrix)."""
    replicates = bootstrap_replicates(scores, metric, reps, np.random.default_rng(seed))
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(replicates, [tail, 100 - tail])
    return Estimate(point_estimate(scores, metric), float(low), float(high))


def _common(candidate, baseline):
    common = [task for task in candidate if task in baseline]
    if not common:
        raise ValueError("candidate and baseline share no task")
    return {t: candidate[t] for t in common}, {t: baseline[t] for t in common}


def relative_change(candidate: Mapping[str, Sequence[float]], baseline: Mapping[str, Sequence[float]],
                    metric: str = "IQM", reps: int = 2000, confidence: float = 0.95, seed: int = 0) -> Estimate:
    """(metric(candidate) - metric(baseline)) / |metric(baseline)|, CI from independent stratified
    resamples of both (rliable's two-algorithm bootstrap). Tasks are matched by name; only common
    tasks count."""
    cand, base = _common(candidate, baseline)
    b_point = point_estimate(base, metric)
    if b_point == 0:
        raise ValueError(f"the baseline's {metric} is 0: a relative change is undefined")
    c_matrix, b_matrix = _matrix(cand), _matrix(base)
    if c_matrix is not None and b_matrix is not None:
        func = _rliable_metric(metric)

        def change(x, y):
            with np.errstate(divide="ignore", invalid="ignore"):
                return (func(x) - func(y)) / abs(func(y))

        return _rliable_interval({"change": [c_matrix, b_matrix]}, change, reps, confidence, seed)
    rng = np.random.default_rng(seed)
    c_reps, b_reps = bootstrap_replicates(cand, metric, reps, rng), bootstrap_replicates(base, metric, reps, rng)
    c_point = point_estimate(cand, metric)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = (c_reps - b_reps) / np.abs(b_reps)
    ratios = ratios[np.isfinite(ratios)]
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(ratios, [tail, 100 - tail]) if ratios.size else (np.nan, np.nan)
    return Estimate((c_point - b_point) / abs(b_point), float(low), float(high))


def probability_of_improvement(candidate: Mapping[str, Sequence[float]], baseline: Mapping[str, Sequence[float]],
                               reps: int = 2000, confidence: float = 0.95, seed: int = 0) -> Optional[Estimate]:
    """P(candidate > baseline) over common tasks (rliable), with its CI; None when the run counts
    differ between tasks (rliable needs matrices)."""
    from rliable import metrics

    cand, base = _common(candidate, baseline)
    c_matrix, b_matrix = _matrix(cand), _matrix(base)
    if c_matrix is None or b_matrix is None:
        return None
    return _rliable_interval({"poi": [c_matrix, b_matrix]}, metrics.probability_of_improvement, reps, confidence,
                             seed)


def performance_profiles(scores_by_variant: Mapping[str, Mapping[str, Sequence[float]]], thresholds: np.ndarray,
                         reps: int = 2000, seed: int = 0):
    """rliable's score distributions: {variant: fraction of runs with score > τ for each τ} and their CIs,
    over the variants whose tasks all have the same number of runs."""
    from rliable import library as rly

    matrices = {label: _matrix(scores) for label, scores in scores_by_variant.items()}
    matrices = {label: m for label, m in matrices.items() if m is not None}
    if not matrices:
        return {}, {}
    with _rliable_call(seed):
        return rly.create_performance_profile(matrices, thresholds, reps=reps)
