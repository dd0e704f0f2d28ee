"""`rise-report`: tables and plots from any directory of runs (rise-tf run dirs or TensorBoard logs).

    rise-report runs/experiments/memory --out results/ --name memory
    rise-report runs/ --out results/ --baseline base
    rise-report runs/experiments/outside_mm2 --baseline btr --reach 0.5   # when each run first scored 0.5
Writes <name>.md (tables), <name>.json (every number), <name>_runs.csv (one row per run),
<name>_curves.png (learning curves) and, with several games, <name>_aggregate.png (IQM, median,
mean with 95 % stratified bootstrap CIs). Scores: greedy-eval success rate on the memory task,
human-normalized score on Atari games, raw return for anything else.
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import math
import os
import sys
import textwrap
from collections import defaultdict
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from rise_tf.analysis import aggregate
from rise_tf.analysis.runs import Run, experiment_records, find_runs
from rise_runtime.envs.memory_task import SOLVED_SUCCESS, is_memory_task
from rise_tf.run_dir import METRICS_FILE

SCORE_TITLES = {"success_rate": "greedy success rate", "human_normalized": "human-normalized score",
                "return": "return"}


def _mean(values) -> Optional[float]:
    values = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(values)) if values else None


def _fmt(value, digits=2, suffix="") -> str:
    return "–" if value is None else f"{value:.{digits}f}{suffix}"


def _order_labels(runs: Sequence[Run], baseline: Optional[str], order: Sequence[str] = ()) -> List[str]:
    """The experiment's own variant order (base, rise, ...) first, then the rest as found."""
    found = {run.label for run in runs}
    labels = [label for label in order if label in found]
    for run in runs:
        if run.label not in labels:
            labels.append(run.label)
    if baseline in labels:
        labels.remove(baseline)
        labels.insert(0, baseline)
    return labels


def _first_eval_reaching(run: Run, score: str, level: float) -> Optional[dict]:
    """The first greedy evaluation whose `score` is >= `level` (frames, wall_seconds when logged)."""
    for record in sorted(run.evals, key=lambda e: e["frames"]):
        if record.get(score) is not None and record[score] >= level:
            return record
    return None


def _reach_stats(runs: Sequence[Run], score_of_game: Dict[str, str], level: float) -> dict:
    """When each run's greedy policy first scored >= `level`: a wall-clock goal ("no later than the
    peer") is read from these, not from the final scores."""
    per_run = []
    for run in sorted(runs, key=lambda r: (r.game, r.seed if r.seed is not None else -1)):
        record = _first_eval_reaching(run, score_of_game[run.game], level)
        per_run.append({"game": run.game, "seed": run.seed, "run_wall_seconds": run.summary.get("wall_seconds"),
                        "agent_steps": record["frames"] / run.frames_per_agent_step if record else None,
                        "wall_seconds": record.get("wall_seconds") if record else None})
    reached = [r for r in per_run if r["agent_steps"] is not None]
    return {"level": level, "reached_runs": len(reached), "runs": len(per_run), "per_run": per_run,
            "agent_steps": _mean(r["agent_steps"] for r in reached),
            "wall_seconds": _mean(r["wall_seconds"] for r in reached)}


def summarise(runs: Sequence[Run], baseline: Optional[str] = "base", reps: int = 2000, seed: int = 0,
              order: Sequence[str] = (), last_evals: int = 1, reach: Optional[float] = None) -> dict:
    """Every number the report shows, as a JSON-able dict. A run's score: its final greedy evaluation,
    or the mean of its last `last_evals`; with `reach`, when each run first scored at least that."""
    if not runs:
        raise ValueError("no runs found")
    if last_evals < 1:
        raise ValueError(f"--last-evals must be >= 1 (1: the final evaluation), got {last_evals}")
    labels = _order_labels(runs, baseline, order)
    games = sorted({run.game for run in runs})
    score_of_game = {game: next(r.score_name() for r in runs if r.game == game) for game in games}
    scores: Dict[str, Dict[str, List[float]]] = defaultdict(lambda: defaultdict(list))
    for run in runs:
        final = run.final_score(score_of_game[run.game], last_evals)
        if final is not None:
            scores[run.label][run.game].append(final)

    variants = {}
    for label in labels:
        mine = [r for r in runs if r.label == label]
        entry = {"runs": len(mine), "scored_runs": sum(len(v) for v in scores[label].values()),
                 "wall_seconds_per_run": _mean(r.summary.get("wall_seconds") for r in mine),
                 "update_ms": _mean(r.summary.get("update_ms") for r in mine),
                 "sample_ms": _mean(r.summary.get("sample_ms") for r in mine),
                 "frames_per_run": _mean(r.summary.get("frames") or (r.evals[-1]["frames"] if r.evals else None)
                                         for r in mine),
                 "best_mean": _mean(r.best_score(score_of_game[r.game]) for r in mine),
                 "per_game": {game: {"mean": _mean(values), "runs": values}
                              for game, values in sorted(scores[label].items())}}
        if scores[label]:
            entry["aggregate"] = {
                metric: dataclasses.asdict(aggregate.interval_estimate(scores[label], metric, reps, seed=seed))
                for metric in aggregate.METRICS}
        if any(is_memory_task(g) for g in games):
            entry.update(_solve_stats([r for r in mine if r.is_memory_task]))
            entry["solve_per_game"] = {game: _solve_stats([r for r in mine if r.game == game])
                                       for game in games if is_memory_task(game)}
        if reach is not None:
            entry["reach"] = _reach_stats(mine, score_of_game, reach)
        variants[label] = entry

    base = variants.get(baseline) if baseline else None
    for label, entry in variants.items():
        if base is None or label == baseline:
            continue
        if entry.get("update_ms") and base.get("update_ms"):
            entry["update_cost_vs_baseline"] = entry["update_ms"] / base["update_ms"]
        if entry.get("wall_seconds_per_run") and base.get("wall_seconds_per_run"):
            entry["wall_clock_vs_baseline"] = entry["wall_seconds_per_run"] / base["wall_seconds_per_run"]
        try:
            change = aggregate.relative_change(scores[label], scores[baseline], "IQM", reps, seed=seed)
            entry["iqm_change_vs_baseline"] = dataclasses.asdict(change)
        except ValueError:
            pass  # no common game, or a zero baseline IQM
        try:
            improvement = aggregate.probability_of_improvement(scores[label], scores[baseline], reps, seed=seed)
        except ValueError:
            improvement = None  # no common game
        if improvement is not None:
            entry["p_improvement_vs_baseline"] = dataclasses.asdict(improvement)

    unfinished = [r.path for r in runs if r.source == METRICS_FILE and not r.summary.get("completed")]
    return {"games": games, "score": score_of_game, "last_evals": last_evals, "reach": reach, "variants": variants,
            "baseline": baseline if base else None,
            "unfinished_runs": unfinished,
            "bootstrap_reps": reps, "confidence": 0.95,
            "runs": [{"label": r.label, "game": r.game, "seed": r.seed, "path": r.path, "source": r.source,
                      "score_name": score_of_game[r.game],
                      "final_score": r.final_score(score_of_game[r.game], last_evals),
                      "best_score": r.best_score(score_of_game[r.game]),
                      "curve": r.curve(score_of_game[r.game]),
                      "agent_step_curve": r.curve_against("agent_steps", score_of_game[r.game]),
                      "wall_curve": r.curve_against("wall_seconds", score_of_game[r.game]),
                      **{k: r.summary.get(k) for k in (
                          "frames", "wall_seconds", "update_ms", "sample_ms", "fps", "final_return")}}
                     for r in runs]}


def _solve_stats(runs: Sequence[Run]) -> dict:
    solved = [e for e in (_first_eval_reaching(r, "success_rate", SOLVED_SUCCESS) for r in runs) if e is not None]
    return {"solved_runs": len(solved), "memory_runs": len(runs), "frames_to_solve": _mean(e["frames"] for e in solved),
            "seconds_to_solve": _mean(e.get("wall_seconds") for e in solved),
            # logged since 2026-12-05: a mean over only some of the solved runs would mislead
            "td_targets_to_solve": (_mean(e["td_targets"] for e in solved)
                                    if all("td_targets" in e for e in solved) else None)}


def _estimate_text(entry: Optional[dict], digits=3, percent=False) -> str:
    if not entry:
        return "–"
    scale, unit = (100, " %") if percent else (1, "")
    return (f"{entry['point'] * scale:+.{digits}f}{unit} [{entry['low'] * scale:+.{digits}f}, "
            f"{entry['high'] * scale:+.{digits}f}]" if percent else
            f"{entry['point']:.{digits}f} [{entry['low']:.{digits}f}, {entry['high']:.{digits}f}]")


def markdown(summary: dict, title: str, notes: Dict[str, str]) -> str:
    games, variants, baseline = summary["games"], summary["variants"], summary["baseline"]
    score_names = sorted(set(summary["score"].values()))
    score_title = " / ".join(SCORE_TITLES.get(s, s) for s in score_names)
    last = summary.get("last_evals", 1)
    scored = "final greedy evaluation" if last == 1 else f"mean of the last {last} greedy evaluations"
    lines = [f"# {title}", "",
             f"Runs: {len(summary['runs'])}; games: {', '.join(games)}; score: {scored} "
             f"({score_title}); \"best eval\" is each run's best greedy evaluation (rise-train keeps its "
             f"checkpoint as `checkpoints/best`), averaged over runs; every other figure uses the score. Brackets: 95 % stratified bootstrap CI over runs ({summary['bootstrap_reps']} "
             f"resamples).", ""]
    memory = any(is_memory_task(g) for g in games)
    header = ["variant", "runs", "score mean [95% CI]", "IQM [95% CI]", "best eval (mean)"]
    if memory:
        header += [f"runs solved (≥{SOLVED_SUCCESS:.0%})", "frames to solve (mean of solved)",
                   "wall-clock to solve (s)", "TD targets trained to solve"]
    header += ["wall-clock / run (s)", "update (ms)"]
    if baseline:
        header += [f"update cost / {baseline}", f"wall-clock / {baseline}"]
    header.append("what it is")
    lines += ["| " + " | ".join(header) + " |", "|" + "|".join("---" if i in (0, len(header) - 1) else "---:"
                                                              for i in range(len(header))) + "|"]
    for label, entry in variants.items():
        agg = entry.get("aggregate", {})
        row = [label, str(entry["runs"]), _estimate_text(agg.get("Mean")), _estimate_text(agg.get("IQM")),
               _fmt(entry.get("best_mean"), 3)]
        if memory:
            row += [f"{entry.get('solved_runs', 0)}/{entry['runs']}", _fmt(entry.get("frames_to_solve"), 0),
                    _fmt(entry.get("seconds_to_solve"), 0), _fmt(entry.get("td_targets_to_solve"), 0)]
        row += [_fmt(entry.get("wall_seconds_per_run"), 0), _fmt(entry.get("update_ms"), 1)]
        if baseline:
            row += [_fmt(entry.get("update_cost_vs_baseline"), 2, "×") if label != baseline else "1.00×",
                    _fmt(entry.get("wall_clock_vs_baseline"), 2, "×") if label != baseline else "1.00×"]
        row.append(notes.get(label, ""))
        lines.append("| " + " | ".join(row) + " |")
    memory_games = [g for g in games if is_memory_task(g)]
    if len(memory_games) > 1:
        lines += ["", f"## Per memory task: runs solved (≥{SOLVED_SUCCESS:.0%}), mean frames / wall-clock seconds "
                      f"to solve (of the solved runs)", "",
                  "| task | " + " | ".join(variants) + " |", "|---|" + "---:|" * len(variants)]
        for game in memory_games:
            cells = []
            for entry in variants.values():
                stats = entry["solve_per_game"][game]
                cells.append(f"{stats['solved_runs']}/{stats['memory_runs']}" + (
                    f", {_fmt(stats['frames_to_solve'], 0)} fr, {_fmt(stats['seconds_to_solve'], 0)} s"
                    if stats["solved_runs"] else ""))
            lines.append(f"| {game} | " + " | ".join(cells) + " |")
    if summary.get("reach") is not None:
        lines += _reach_table(summary["reach"], variants, several_games=len(games) > 1)
    if baseline and any("p_improvement_vs_baseline" in e for e in variants.values()):
        lines += ["", f"Probability of improvement over {baseline} (rliable; P(X > Y) per task, averaged): " + "; ".join(
            f"{label} {_estimate_text(e['p_improvement_vs_baseline'], 2)}"
            for label, e in variants.items() if "p_improvement_vs_baseline" in e)]
    missing = [label for label, e in variants.items()
               if baseline and label != baseline and "p_improvement_vs_baseline" not in e and e.get("per_game")]
    if missing and baseline in variants:
        lines += ["", f"Probability of improvement over {baseline} not computed for {', '.join(missing)}: rliable "
                  "needs the same number of runs on every task they share (rerun the missing seeds, or report the "
                  "tasks separately)."]
    if len(games) > 1:
        lines += ["", "## Per game (mean score over seeds)", "",
                  "| game | " + " | ".join(variants) + " |", "|---|" + "---:|" * len(variants)]
        for game in games:
            lines.append(f"| {game} | " + " | ".join(_fmt(v["per_game"].get(game, {}).get("mean"), 3)
                                                      for v in variants.values()) + " |")
        lines += ["", "## Aggregates over games", "", "| variant | IQM | Median | Mean | IQM change vs "
                  f"{baseline or '–'} |", "|---|---:|---:|---:|---:|"]
        for label, entry in variants.items():
            agg = entry.get("aggregate", {})
            lines.append(f"| {label} | {_estimate_text(agg.get('IQM'))} | {_estimate_text(agg.get('Median'))} | "
                         f"{_estimate_text(agg.get('Mean'))} | "
                         f"{_estimate_text(entry.get('iqm_change_vs_baseline'), 1, percent=True)} |")
    elif baseline and any("iqm_change_vs_baseline" in e for e in variants.values()):
        lines += ["", f"IQM change vs {baseline}: " + "; ".join(
            f"{label} {_estimate_text(e['iqm_change_vs_baseline'], 1, percent=True)}"
            for label, e in variants.items() if "iqm_change_vs_baseline" in e)]
    if summary.get("unfinished_runs"):
        lines += ["", f"**{len(summary['unfinished_runs'])} run(s) have not finished** (no completed summary.json); "
                  "their scores are from their latest evaluation: " + ", ".join(summary["unfinished_runs"])]
    lines += ["", "Update cost: mean learner update time logged by each run (the first, tracing update "
              "excluded); runs that shared the machine with other work are noisier than `make bench`.", ""]
    return "\n".join(lines)


def _reach_table(level: float, variants: dict, several_games: bool) -> List[str]:
    lines = ["", f"## First greedy evaluation scoring ≥ {level:g}", "",
             "Per run (by seed): agent steps and wall-clock seconds into the run at that evaluation, or "
             "\"never\" with the run's whole wall-clock.", "",
             "| variant | runs that reached it | per run | mean agent steps / wall-clock (s) of those |",
             "|---|---:|---|---:|"]
    for label, entry in variants.items():
        stats = entry["reach"]
        cells = []
        for run in stats["per_run"]:
            name = (f"{run['game']} " if several_games else "") + f"seed {run['seed']}"
            if run["agent_steps"] is None:
                cells.append(f"{name}: never ({_fmt(run['run_wall_seconds'], 0)} s)")
            else:
                cells.append(f"{name}: {run['agent_steps']:,.0f} @ {_fmt(run['wall_seconds'], 0)} s")
        means = (f"{stats['agent_steps']:,.0f} / {_fmt(stats['wall_seconds'], 0)}" if stats["reached_runs"] else "–")
        lines.append(f"| {label} | {stats['reached_runs']}/{stats['runs']} | {'; '.join(cells)} | {means} |")
    return lines


# The x axes of the learning curves: the key of each run's curve in the summary, and its axis title.
CURVE_AXES = (("agent_step_curve", "agent steps"), ("wall_curve", "wall-clock (s)"))


def plot_curves(summary: dict, path: str) -> None:
    """Per game, the greedy evaluations against agent steps (top) and wall-clock (bottom): mean over
    seeds with markers (a run evaluated once is a dot, not nothing), min–max band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    games = summary["games"]
    columns = min(len(games), 3)
    rows = math.ceil(len(games) / columns)
    many = len(summary["variants"]) > 4
    figure, axes = plt.subplots(2 * rows, columns, figsize=(5.2 * columns + (2.6 if many else 0), 3.4 * 2 * rows),
                                squeeze=False)
    styles = ("-", "--", ":", "-.")  # identical curves (e.g. chance before learning) stay distinguishable
    markers = ("o", "s", "^", "D", "v", "P")
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for index, game in enumerate(games):
        for row_offset, (key, x_title) in enumerate(CURVE_AXES):
            axis = axes[2 * (index // columns) + row_offset][index % columns]
            for number, label in enumerate(summary["variants"]):
                curves = [r.get(key) for r in summary["runs"] if r["label"] == label and r["game"] == game and r.get(key)]
                if not curves:
                    continue
                grid, mean, low, high = seed_band(curves)
                colour = colours[number % len(colours)]
                axis.plot(grid, mean, color=colour, linestyle=styles[number % len(styles)],
                          marker=markers[number % len(markers)], markersize=4, linewidth=1.8, alpha=0.9,
                          label=f"{label} ({len(curves)})")
                if len(curves) > 1:
                    axis.fill_between(grid, low, high, color=colour, alpha=0.15)
            axis.set_title(plot_title(game), fontsize=10)
            axis.set_xlabel(x_title)
            axis.set_ylabel(SCORE_TITLES.get(summary["score"][game], "score"))
            axis.grid(alpha=0.3)
            if many:
                axis.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), title="variant (runs)",
                            title_fontsize=8)
            else:
                axis.legend(fontsize=8, title="variant (runs)", title_fontsize=8)
    for index in range(len(games), rows * columns):
        for row_offset in range(2):
            axes[2 * (index // columns) + row_offset][index % columns].axis("off")
    figure.suptitle("Greedy evaluations against agent steps and wall-clock\n(line: mean over seeds; band: min–max)",
                    fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def plot_title(game: str, width: int = 56) -> str:
    """A task named with its reset options gets them on lines of their own, broken after commas: a
    title wider than its plot is cut."""
    if len(game) <= width or "[" not in game:
        return game
    name, options = game.split("[", 1)
    return name + "\n" + textwrap.fill("[" + options.replace(",", ", "), width).replace(", ", ",")


def seed_band(curves: List[List[Tuple[float, float]]]):
    """One variant's runs as (x, mean, min, max) arrays for a curve and its band. Runs evaluated on one
    schedule (as many evaluations each) are taken evaluation by evaluation: the i-th point sits at the
    runs' mean x (their logged agent steps differ by a few, their wall-clock by more) with the mean and
    range of their i-th scores. Otherwise every run is read step-wise (its latest evaluation so far) on
    the union of their x values."""
    if len({len(curve) for curve in curves}) == 1:
        points = np.array(curves, dtype=float)  # [runs, evaluations, (x, score)]
        return (points[..., 0].mean(axis=0), points[..., 1].mean(axis=0), points[..., 1].min(axis=0),
                points[..., 1].max(axis=0))
    grid = sorted({x for curve in curves for x, _ in curve})
    values = np.array([[_value_at(curve, x) for x in grid] for curve in curves], dtype=float)
    return np.array(grid, float), np.nanmean(values, axis=0), np.nanmin(values, axis=0), np.nanmax(values, axis=0)


def _value_at(curve, frames):
    value = math.nan
    for x, y in curve:
        if x > frames:
            break
        value = y
    return value


def plot_aggregates(summary: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    labels = [label for label, e in summary["variants"].items() if "aggregate" in e]
    metrics = list(aggregate.METRICS)
    figure, axes = plt.subplots(1, len(metrics), figsize=(3.6 * len(metrics), 0.5 * len(labels) + 1.4),
                                squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for axis, metric in zip(axes[0], metrics):
        for row, label in enumerate(labels):
            est = summary["variants"][label]["aggregate"][metric]
            axis.barh(row, est["high"] - est["low"], left=est["low"], height=0.6,
                      color=colours[row % len(colours)], alpha=0.6)
            axis.plot([est["point"]] * 2, [row - 0.3, row + 0.3], color="black", linewidth=1.5)
            axis.plot(est["point"], row, "o", color=colours[row % len(colours)], markersize=5)  # seen even at zero width
        axis.xaxis.set_major_locator(MaxNLocator(4))
        estimates = [summary["variants"][label]["aggregate"][metric] for label in labels]
        low, high = min(e["low"] for e in estimates), max(e["high"] for e in estimates)
        pad = max(0.12 * (high - low), 0.02 * max(abs(low), abs(high)), 1e-3)  # bars' sticky edges defeat margins
        axis.set_xlim(low - pad, high + pad)
        axis.set_yticks(range(len(labels)), labels if axis is axes[0][0] else [""] * len(labels))
        axis.set_title(metric)
        axis.grid(axis="x", alpha=0.3)
    score = " / ".join(sorted({SCORE_TITLES.get(s, s) for s in summary["score"].values()}))
    figure.supxlabel(f"{score} (95 % stratified bootstrap CI)", fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def plot_profiles(summary: dict, path: str, reps: int) -> bool:
    """rliable's performance profiles (fraction of runs above each score); False when no variant has
    the same number of runs on every game."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from rliable import plot_utils

    scores: Dict[str, Dict[str, List[float]]] = defaultdict(lambda: defaultdict(list))
    for run in summary["runs"]:
        if run["final_score"] is not None:
            scores[run["label"]][run["game"]].append(run["final_score"])
    values = [v for by_game in scores.values() for runs in by_game.values() for v in runs]
    if not values:
        return False
    low, high = min(0.0, min(values)), max(values)
    thresholds = np.linspace(low, high if high > low else low + 1.0, 41)
    profiles, intervals = aggregate.performance_profiles(scores, thresholds, reps)
    if not profiles:
        return False
    figure, axis = plt.subplots(figsize=(6.5, 4))
    plot_utils.plot_performance_profiles(profiles, thresholds, performance_profile_cis=intervals, ax=axis,
                                         xlabel=" / ".join(sorted({SCORE_TITLES.get(s, s) for s in
                                                                   summary["score"].values()})) + " (τ)",
                                         ylabel="fraction of runs with score > τ", labelsize="medium",
                                         ticklabelsize="small")
    axis.legend(loc="lower left", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True


def plot_improvement(summary: dict, path: str) -> bool:
    """rliable's probability-of-improvement plot of every variant over the baseline."""
    baseline = summary["baseline"]
    pairs = {label: e["p_improvement_vs_baseline"] for label, e in summary["variants"].items()
             if "p_improvement_vs_baseline" in e}
    if not baseline or not pairs:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from rliable import plot_utils

    estimates = {f"{label},{baseline}": e["point"] for label, e in pairs.items()}
    intervals = {f"{label},{baseline}": np.array([e["low"], e["high"]]) for label, e in pairs.items()}
    figure, axis = plt.subplots(figsize=(5.5, 0.6 * len(pairs) + 1.2))
    plot_utils.plot_probability_of_improvement(estimates, intervals, ax=axis, labelsize="medium",
                                               ticklabelsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True


def _experiment_notes(roots: Sequence[str]):
    """({variant: one-line description}, [variant order]) from the experiments' experiment.json."""
    notes, order = {}, []
    for record in (record for root in roots for record in experiment_records(root)):
        order += [v for v in record.get("variants", []) if v not in order]
        for entry in record.get("runs", []):
            notes.setdefault(entry.get("variant"), entry.get("note", ""))
    return notes, order


def write_report(roots, out: str, name: str = "report", baseline: Optional[str] = "base",
                 reps: int = 2000, title: Optional[str] = None, last_evals: int = 1,
                 reach: Optional[float] = None) -> List[str]:
    """Reads every run under `roots`, writes the report files into `out`, returns their paths."""
    roots = [roots] if isinstance(roots, str) else list(roots)
    # Runs are named relative to the folder above each root ("flicker-pong/dqn/Pong/seed0"): a
    # report names no machine's paths.
    runs = [dataclasses.replace(run, path=os.path.relpath(run.path, os.path.dirname(os.path.abspath(root))))
            for root in roots for run in find_runs(root)]
    if not runs:
        raise ValueError(f"no runs found under {', '.join(roots)} (a run dir holds config.json, or "
                         f"TensorBoard event files with eval/* scalars)")
    notes, order = _experiment_notes(roots)
    summary = summarise(runs, baseline, reps, order=order, last_evals=last_evals, reach=reach)
    os.makedirs(out, exist_ok=True)
    paths = {key: os.path.join(out, f"{name}{suffix}") for key, suffix in
             (("md", ".md"), ("json", ".json"), ("csv", "_runs.csv"), ("curves", "_curves.png"),
              ("aggregate", "_aggregate.png"), ("profiles", "_profiles.png"), ("improvement", "_improvement.png"))}
    with open(paths["json"], "w") as f:
        json.dump(summary, f, indent=2)
    with open(paths["csv"], "w", newline="") as f:
        columns = ["label", "game", "seed", "score_name", "final_score", "frames", "wall_seconds", "update_ms",
                   "sample_ms", "fps", "final_return", "source", "path"]
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(summary["runs"])
    text = markdown(summary, title or f"rise-tf report: {name}", notes)
    written = [paths["md"], paths["json"], paths["csv"]]
    if any(r["curve"] for r in summary["runs"]):
        plot_curves(summary, paths["curves"])
        written.append(paths["curves"])
        text += f"\n![learning curves]({os.path.basename(paths['curves'])})\n"
    if len(summary["games"]) > 1:
        plot_aggregates(summary, paths["aggregate"])
        written.append(paths["aggregate"])
        text += f"\n![aggregate metrics]({os.path.basename(paths['aggregate'])})\n"
    if plot_profiles(summary, paths["profiles"], reps):
        written.append(paths["profiles"])
        text += f"\n![performance profiles (rliable)]({os.path.basename(paths['profiles'])})\n"
    if plot_improvement(summary, paths["improvement"]):
        written.append(paths["improvement"])
        text += f"\n![probability of improvement (rliable)]({os.path.basename(paths['improvement'])})\n"
    with open(paths["md"], "w") as f:
        f.write(text)
    return written


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="rise-report", description=__doc__.split("\n\n")[0].replace("`", ""),
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("runs", nargs="+", help="directories holding runs (searched recursively)")
    parser.add_argument("--out", default="results", help="directory for the report files [default: results]")
    parser.add_argument("--name", default="report", help="file name stem of the report [default: report]")
    parser.add_argument("--baseline", default="base",
                        help="label the others are compared with (cost ratios, IQM change) [default: base]")
    parser.add_argument("--reps", type=int, default=2000, help="bootstrap resamples [default: 2000]")
    parser.add_argument("--title", default=None, help="report title")
    parser.add_argument("--last-evals", type=int, default=1,
                        help="a run's score is the mean of its last N greedy evaluations (1: the final one) "
                             "[default: 1]")
    parser.add_argument("--reach", type=float, default=None, metavar="LEVEL",
                        help="also tabulate when each run's greedy evaluation first scored >= LEVEL (agent "
                             "steps and wall-clock), e.g. a level only the memory agents reach")
    args = parser.parse_args(argv)
    if args.reach is not None and not math.isfinite(args.reach):
        parser.error(f"--reach must be a finite score, got {args.reach}")
    if args.reps < 100:
        parser.error(f"--reps must be >= 100 for a usable 95 % interval, got {args.reps}")
    for root in args.runs:
        if not os.path.isdir(root):
            parser.error(f"{root} is not a directory (give the folder that holds your run directories)")
    try:
        written = write_report(args.runs, args.out, args.name, args.baseline, args.reps, args.title, args.last_evals,
                               args.reach)
    except ValueError as error:
        print(f"rise-report: error: {error}", file=sys.stderr)
        return 2
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
