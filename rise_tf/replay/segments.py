"""Segments: m consecutive agent steps of one lane, sampled together (issue 20, in progress).

RISE stores every step's frozen embedding, so the history before a segment costs nothing to read: each
position's inputs are exactly what the actor read there (its frame stack and its k-embedding window,
zeros and mask before its episode's first step), assembled from the stored rows as for one step.
Position i of a segment started at row t is row t + i. A position is trained when it is a sampleable
step (its bootstrap row is stored, it is not an episode's LAST row) whose inputs were not overwritten;
the others are masked. A segment may cross an episode end: the LAST row is masked, and the next
episode's rows are trained with windows that start at their own episode's first step, exactly as the
actor saw them.

Priority (R2D2, Kapturowski et al. 2019): a segment's is η·max + (1−η)·mean of its valid positions'
|TD errors|, written to the segment's start step; segment starts are drawn in proportion to it.
"""
from __future__ import annotations

import numpy as np

R2D2_ETA = 0.9  # R2D2's mix of the max and the mean error in a sequence's priority


def segment_priority(errors: np.ndarray, valid: np.ndarray, eta: float) -> np.ndarray:
    """[B] η·max + (1−η)·mean over each segment's valid positions of errors [B, m]; 0 for a segment
    with no valid position."""
    errors = np.abs(np.asarray(errors, np.float64))
    valid = np.asarray(valid, bool)
    count = valid.sum(axis=1)
    largest = np.where(valid, errors, 0.0).max(axis=1)
    mean = np.where(valid, errors, 0.0).sum(axis=1) / np.maximum(count, 1)
    return np.where(count > 0, eta * largest + (1.0 - eta) * mean, 0.0)


def segment_rows(starts: np.ndarray, length: int) -> np.ndarray:
    """[B, m] absolute rows of segments starting at `starts` [B]."""
    return starts[:, None] + np.arange(length)[None, :]
