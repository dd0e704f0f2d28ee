"""Finds runs under a directory and reads what they logged.

A rise-tf run dir holds config.json, metrics.jsonl and (when finished) summary.json; an experiment
dir adds experiment.json, which names each run's variant. Directories that only hold TensorBoard
event files (a user's own runs, or a rise-tf run whose metrics.jsonl is gone) are read from the
events' `eval/*` scalars. Labels: the experiment's variant name, else the algorithm plus the
network/agent/replay settings that differ among the runs of that algorithm (e.g. `rise-dqn[core=gru]`).
"""
from __future__ import annotations

import dataclasses
import glob
import json
import os
import re
from typing import Any, Dict, List, Optional

import numpy as np

from rise_runtime.envs.atari_scores import human_normalized_score
from rise_runtime.envs.gym_image import parse_reset_options, task_name
from rise_runtime.envs.memory_task import is_memory_task
from rise_tf.run_dir import CONFIG_FILE, EXPERIMENT_FILE, METRICS_FILE, SUMMARY_FILE, TENSORBOARD_DIR

_EVENTS = "events.out.tfevents.*"


@dataclasses.dataclass
class Run:
    path: str
    label: str
    game: str
    seed: Optional[int]
    algo: Optional[str]
    evals: List[Dict[str, Any]]  # {"frames", "return", "success_rate", "human_normalized"?, "wall_seconds"?}
    summary: Dict[str, Any]
    source: str  # "metrics.jsonl" or "tensorboard"
    env_kind: Optional[str] = None  # the run config's env kind; None for plain TensorBoard runs
    frames_per_agent_step: int = 1  # the env's action repeat (1 on the memory tasks)

    @property
    def is_memory_task(self) -> bool:
        return self.env_kind == "memory" if self.env_kind else is_memory_task(self.game)

    def score_name(self) -> str:
        """The score a report compares: success on the memory task, HNS on Atari games with
        reference scores, raw return otherwise."""
        if self.is_memory_task:
            return "success_rate"
        if human_normalized_score(self.game, 0.0) is not None:
            return "human_normalized"
        return "return"

    def curve(self, score: Optional[str] = None):
        """[(frames, score)] of the greedy evaluations, in frame order."""
        score = score or self.score_name()
        points = [(e["frames"], e[score]) for e in self.evals if e.get(score) is not None]
        return sorted(points)

    def final_score(self, score: Optional[str] = None, last_evals: int = 1) -> Optional[float]:
        """The final greedy evaluation, or the mean of the last `last_evals` (one evaluation of a few
        episodes is a noisy score; Machado et al. 2018 average the end of training)."""
        points = self.curve(score)
        return float(np.mean([value for _, value in points[-last_evals:]])) if points else None

    def best_score(self, score: Optional[str] = None) -> Optional[float]:
        """The best greedy evaluation (what `checkpoints/best` holds for rise-train runs)."""
        points = self.curve(score)
        return float(max(value for _, value in points)) if points else None

    def curve_against(self, x: str, score: Optional[str] = None):
        """[(x, score)] with x = "agent_steps" or "wall_seconds" (evaluations that logged it)."""
        score = score or self.score_name()
        points = []
        for e in sorted(self.evals, key=lambda e: e["frames"]):
            if e.get(score) is None:
                continue
            if x == "agent_steps":
                points.append((e["frames"] / self.frames_per_agent_step, e[score]))
            elif e.get("wall_seconds") is not None:
                points.append((e["wall_seconds"], e[score]))
        return points


def _frames_per_agent_step(env: Dict[str, Any], game: str) -> int:
    """1 on the memory tasks; else the config's action repeat (configs that do not record it: Atari's 4
    for a game, 1 for a gymnasium id)."""
    if env.get("env_kind") == "memory" or (not env.get("env_kind") and is_memory_task(game)):
        return 1
    return int(env.get("action_repeat") or (1 if env.get("env_id") or env.get("env_kind") == "gym" else 4))


def _read_json(path: str) -> Optional[dict]:
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _read_metrics(path: str) -> List[Dict[str, Any]]:
    evals = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                record = json.loads(line)
            except ValueError:
                continue  # a line cut by a crash mid-write
            if record.get("kind") == "eval":
                evals.append(record)
    # A run resumed by an older rise-tf (which did not trim metrics.jsonl to the checkpoint) may hold an
    # evaluation twice: the last one is the history that went on.
    return list({e["frames"]: e for e in evals}.values())


def event_dirs(directory: str) -> List[str]:
    """Directories at or under `directory` that hold TensorBoard event files."""
    return sorted({os.path.dirname(p) for p in glob.glob(os.path.join(directory, "**", _EVENTS), recursive=True)})


def read_tensorboard_evals(directories: List[str]) -> List[Dict[str, Any]]:
    """eval/{return,success_rate,human_normalized} scalars of the event files in `directories`."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.util.tensor_util import make_ndarray

    by_frames: Dict[int, Dict[str, Any]] = {}
    for events_dir in directories:
        accumulator = EventAccumulator(events_dir, size_guidance={"scalars": 0, "tensors": 0})
        accumulator.Reload()
        tags = accumulator.Tags()
        series = {}
        for tag in tags.get("scalars", []):
            series[tag] = [(e.step, float(e.value)) for e in accumulator.Scalars(tag)]
        for tag in tags.get("tensors", []):  # TF2 tf.summary.scalar writes tensors
            series[tag] = [(e.step, float(make_ndarray(e.tensor_proto))) for e in accumulator.Tensors(tag)]
        for tag, points in series.items():
            if not tag.startswith("eval/"):
                continue
            for step, value in points:
                by_frames.setdefault(int(step), {"frames": int(step)})[tag[len("eval/"):]] = value
    return [by_frames[k] for k in sorted(by_frames)]


def experiment_records(root: str) -> List[Dict[str, Any]]:
    """The experiment.json records at or under `root` (each with its "root" directory added)."""
    records = []
    for path in sorted(glob.glob(os.path.join(root, "**", EXPERIMENT_FILE), recursive=True)):
        record = _read_json(path)
        if isinstance(record, dict):
            records.append(dict(record, root=os.path.dirname(path)))
    return records


def _experiment_labels(root: str) -> Dict[str, Dict[str, Any]]:
    """{absolute run dir: experiment.json entry} for every experiment under root."""
    labels = {}
    for record in experiment_records(root):
        for entry in record.get("runs", []):
            if isinstance(entry, dict) and "dir" in entry:
                labels[os.path.abspath(os.path.join(record["root"], entry["dir"]))] = entry
    return labels


_LABEL_SECTIONS = ("network", "agent", "replay")


def _config_labels(configs: List[Dict[str, Any]]) -> List[str]:
    """algo, plus the network/agent/replay settings that differ among runs of that algo."""
    flat = [{f"{section}.{key}": value for section in _LABEL_SECTIONS
             for key, value in (config.get(section) or {}).items()} for config in configs]
    labels = []
    for config, settings in zip(configs, flat):
        algo = config.get("algo", "?")
        peers = [other for c, other in zip(configs, flat) if c.get("algo", "?") == algo]
        varying = sorted(key for key in settings if len({json.dumps(p.get(key)) for p in peers}) > 1)
        changed = ",".join(f"{key.split('.', 1)[1]}={settings[key]}" for key in varying)
        labels.append(f"{algo}[{changed}]" if changed else algo)
    return labels


def find_runs(root: str) -> List[Run]:
    """Every run under `root` (which may itself be a run dir), sorted by label, game, seed."""
    root = os.path.abspath(root)
    if not os.path.isdir(root):
        raise FileNotFoundError(f"{root} is not a directory of runs")
    labels = _experiment_labels(root)
    runs, taken, configs = [], [], []
    for config_path in sorted(glob.glob(os.path.join(root, "**", CONFIG_FILE), recursive=True)):
        run_dir = os.path.dirname(config_path)
        config = _read_json(config_path)
        if not isinstance(config, dict) or "network" not in config:
            continue  # not a rise-tf run config
        metrics = os.path.join(run_dir, METRICS_FILE)
        if os.path.exists(metrics):
            evals, source = _read_metrics(metrics), METRICS_FILE
        else:
            evals, source = read_tensorboard_evals(event_dirs(run_dir)), TENSORBOARD_DIR
        entry = labels.get(os.path.abspath(run_dir), {})
        configs.append(config)
        env = config.get("env", {})
        game = (task_name(env["env_id"], parse_reset_options(env.get("reset_options"))) if env.get("env_id")
                else env.get("game", "?"))
        runs.append(Run(path=run_dir, label=entry.get("variant") or "",
                        game=game, seed=config.get("train", {}).get("seed"),
                        algo=config.get("algo"), evals=evals,
                        summary=_read_json(os.path.join(run_dir, SUMMARY_FILE)) or {}, source=source,
                        env_kind=env.get("env_kind"), frames_per_agent_step=_frames_per_agent_step(env, game)))
        taken.append(run_dir + os.sep)
    for run, label in zip(runs, _config_labels(configs)):
        run.label = run.label or label
    # Plain TensorBoard runs: event files outside any rise-tf run dir. One run per directory that holds
    # events; label = its path relative to root (minus a trailing seed part), game = unknown.
    for events_dir in event_dirs(root):
        if any((events_dir + os.sep).startswith(t) for t in taken):
            continue
        relative = os.path.relpath(events_dir, root)
        parts = [p for p in relative.split(os.sep) if p not in (".", TENSORBOARD_DIR, "eval", "train")]
        seed_part = parts[-1] if parts and re.fullmatch(r"seed[_-]?\d+", parts[-1]) else None
        label_parts = parts[:-1] if seed_part else parts
        evals = read_tensorboard_evals([events_dir])
        if not evals:
            continue
        runs.append(Run(path=events_dir, label="/".join(label_parts) or os.path.basename(root), game="unknown",
                        seed=int(re.sub(r"\D", "", seed_part)) if seed_part else None, algo=None, evals=evals,
                        summary={}, source="tensorboard"))
        taken.append(events_dir + os.sep)
    return sorted(runs, key=lambda r: (r.label, r.game, r.seed if r.seed is not None else -1, r.path))
