"""The training loop, top to bottom: collect with a TF-Agents driver, learn at a replay ratio,
evaluate, log, checkpoint. Ctrl-C (or SIGTERM) saves a checkpoint and exits cleanly; `resume=True`
continues the counters from the latest checkpoint to the run's frame budget.

Units: `frames` are emulator frames (agent steps x action_repeat on Atari, 1:1 on the memory task);
`agent_steps` count one step of one lane; `updates` count learner updates.
Deviation to know: the environments restart on resume (emulator state is not checkpointed), and
the replay restarts empty unless `save_replay` is on; learning then waits until `warmup_frames`
worth of steps are back in replay.
"""
from __future__ import annotations

import collections
import contextlib
import dataclasses
import math
import os
import signal
import sys
import threading
import time
import zipfile
from typing import Callable, Dict, Optional

import numpy as np
import tensorflow as tf
from tf_agents.drivers import py_driver
from tf_agents.metrics import py_metrics
from tf_agents.policies import py_tf_eager_policy

from rise_runtime.envs.atari_scores import human_normalized_score
from rise_tf.run_dir import (CONFIG_FILE, SUMMARY_FILE, TENSORBOARD_DIR, append_metrics, load_run_config, write_env_info,
                             write_json_atomic, write_run_config)
from rise_tf.train import builder, checkpoints
from rise_tf.train.config import RunConfig, TrainConfig, resolve_engine
from rise_tf.train.devices import configure_learner_device, learner_strategy
from rise_tf.train.engine import ConcurrentEngine
from rise_tf.train.evaluation import EvalResult, evaluate

EVAL_SEED_OFFSET = 10_000  # eval lanes never share seeds with training lanes
MAX_EVAL_LANES = 16


class TrainingError(RuntimeError):
    """Training cannot go on; the message names the cause and the fix."""


@dataclasses.dataclass
class Counters:
    """A run's progress, saved in every checkpoint (state.json) and continued on --resume. The
    seconds add up over resumes: experiments report a run's whole cost."""

    frames: int = 0  # emulator frames
    agent_steps: int = 0
    updates: int = 0
    episodes: int = 0
    update_credit: float = 0.0  # replay_ratio x agent steps not yet spent on updates
    solved_at_frames: int = -1  # --stop-at-success: the frames of the evaluation that passed
    wall_seconds: float = 0.0
    update_seconds: float = 0.0
    sample_seconds: float = 0.0
    timed_updates: int = 0  # updates in the timings (the first of each process traces the graph)

    def to_dict(self) -> Dict[str, float]:
        return dataclasses.asdict(self)

    def load(self, state: Dict) -> None:
        """From a checkpoint's state; keys it lacks (older checkpoints) keep their start values."""
        for field in dataclasses.fields(self):
            if field.name in state:
                setattr(self, field.name, type(getattr(self, field.name))(state[field.name]))


def linear_schedule(start: float, end: float, duration: float, t: float) -> float:
    fraction = min(max(t / duration, 0.0), 1.0) if duration > 0 else 1.0
    return start + fraction * (end - start)


def exploration_epsilon(train: TrainConfig, frames: int) -> float:
    """ε of the collect policy after `frames`: linear or geometric decay, and 0 once the ε-greedy
    part of the budget (epsilon_greedy_fraction) is over (BTR: noisy nets explore after half)."""
    if frames >= train.epsilon_greedy_fraction * train.frames:
        return 0.0
    if train.epsilon_schedule == "exponential":
        return train.epsilon_end + (train.epsilon_start - train.epsilon_end) * math.exp(-frames / train.epsilon_decay_frames)
    return linear_schedule(train.epsilon_start, train.epsilon_end, train.epsilon_decay_frames, frames)


def prepare_run_dir(run_dir: str, config: RunConfig, resume: bool) -> RunConfig:
    """Writes config.json for a new run, or checks it for a resumed one. Returns the run's config."""
    if resume:
        return load_run_config(run_dir)
    if os.path.exists(os.path.join(run_dir, CONFIG_FILE)):
        existing = load_run_config(run_dir)
        if existing.algo != config.algo:
            raise TrainingError(
                f"{run_dir} holds a {existing.algo} run; it cannot continue as {config.algo}. Continue it with "
                f"--resume {run_dir} (as {existing.algo}), or choose a new --run-dir for {config.algo}.")
        differences = existing.differences(config)
        if differences:
            raise TrainingError(
                f"{run_dir} holds a run with another config ({'; '.join(differences[:6])}"
                f"{' ...' if len(differences) > 6 else ''}). Continue it with --resume {run_dir}, or choose "
                f"a new --run-dir for this config.")
        raise TrainingError(f"{run_dir} already holds this run. Continue it with --resume {run_dir}, or "
                            f"choose a new --run-dir.")
    write_run_config(run_dir, config)
    return config


class EpisodeStats:
    """Observer: raw per-lane returns of finished episodes (whole games: life loss is not an end)."""

    def __init__(self, lanes: int, window: int = 100):
        self.running = np.zeros(lanes)
        self.recent = collections.deque(maxlen=window)
        self.finished = 0  # since the trainer last took them
        self.agent_steps = 0
        self.episodes = 0  # all, with the sum of their returns (actors report differences of these)
        self.return_sum = 0.0

    def __call__(self, trajectory):
        is_last = trajectory.step_type == 2
        # A LAST row's reward belongs to the reset that follows: the episode's return is complete.
        for value in self.running[is_last]:
            self.recent.append(float(value))
            self.return_sum += float(value)
        self.finished += int(is_last.sum())
        self.episodes += int(is_last.sum())
        self.running = np.where(is_last, 0.0, self.running + trajectory.reward)
        self.agent_steps += int((~trajectory.is_boundary()).sum())


class Trainer:
    """Trains one run. `env_factory` (Python API): a callable returning one gymnasium env (or TF-Agents
    PyEnvironment) with image observations and discrete actions, called once per lane; the config's
    env.env_id names it (make_config(algo, env={"env_id": "MyGame"}))."""

    log_prefix = "[rise-train]"  # the program the user started, in every message

    def __init__(self, config: RunConfig, run_dir: str, resume: bool = False, progress: bool = True,
                 env_factory: Optional[builder.EnvFactory] = None):
        self.run_dir = run_dir
        self.env_factory = env_factory
        # First, before any TF op initialises a GPU: memory growth can only be set before that.
        self.learner_device = configure_learner_device()
        planned = load_run_config(run_dir) if resume and os.path.exists(os.path.join(run_dir, CONFIG_FILE)) else config
        try:  # before anything is written: a host without the devices asked for
            self.strategy = learner_strategy(planned.train.learner_replicas)
        except ValueError as error:
            raise TrainingError(str(error)) from None
        self.config = prepare_run_dir(run_dir, config, resume)
        if resume and config.train.frames != self.config.train.frames:
            # The only setting a resume may change; persisted so a later plain --resume keeps it.
            self.config = self.config.replace(train={"frames": config.train.frames})
            write_run_config(run_dir, self.config)
        self.show_progress = progress
        train = self.config.train
        if train.mixed_precision and self.learner_device == "/CPU:0":
            print(f"{self.log_prefix} warning: --mixed-precision on a host without a GPU: CPUs have no fast float16, so "
                  "the learner runs many times slower (bench.md: ~24x on this project's CPU). It is meant for GPUs "
                  "with tensor cores; drop the flag here.", file=sys.stderr)
        self.engine = resolve_engine(self.config, learner_on_gpu=self.learner_device != "/CPU:0")
        tf.keras.utils.set_random_seed(train.seed)  # Python, numpy and TF: Keras initializers draw from Python's random
        if train.deterministic_ops:
            tf.config.experimental.enable_op_determinism()
        self.frames_per_step = self.config.frames_per_agent_step

        self.env = self._make_training_env()
        write_env_info(run_dir, self.config.env_name, self.env.envs[0].action_meanings)
        self.train_step = tf.Variable(0, dtype=tf.int64, name="train_step")
        self.agent = builder.make_agent(self.config, self.env.time_step_spec(), self.env.action_spec(),
                                        self.train_step, strategy=self.strategy)
        self.replay = self._make_replay()
        self._replay_lock = threading.Lock()
        self.counters = Counters()
        self.last_checkpoint: Optional[str] = None
        stale = checkpoints.remove_stale_temporaries(run_dir)
        if stale:
            print(f"{self.log_prefix} removed {len(stale)} half-written checkpoint director"
                  f"{'y' if len(stale) == 1 else 'ies'} left by a killed run: {', '.join(stale)}")
        if resume:
            self._restore()
        self._wall_base, self._wall_started = self.counters.wall_seconds, time.time()
        self._updates_this_process = 0  # the first one traces the tf.function: kept out of update timings
        self._stats = EpisodeStats(self.config.env.num_envs)
        # TF-Agents' own episode metrics, logged under their standard TensorBoard names beside ours.
        lanes = self.config.env.num_envs
        self._tf_agents_metrics = [py_metrics.NumberOfEpisodes(), py_metrics.EnvironmentSteps(),
                                   py_metrics.AverageReturnMetric(batch_size=lanes),
                                   py_metrics.AverageEpisodeLengthMetric(batch_size=lanes)]
        self._writer = tf.summary.create_file_writer(os.path.join(run_dir, TENSORBOARD_DIR))
        self._eval_env = None
        self._last_loss = float("nan")
        self._last_q = float("nan")
        self._last_eval: Optional[EvalResult] = None
        self._last_eval_frames = -1

    # ------------------------------------------------------------------ state

    def _trackables(self) -> Dict[str, tf.Module]:
        return {"q_network": self.agent.q_network, "target_q_network": self.agent.target_q_network,
                "optimizer": self.agent.optimizer, "train_step": self.train_step,
                "target_update": self.agent.target_update_schedule}

    def resume_command(self) -> str:
        """What continues this run after an interruption."""
        return f"rise-train --resume {self.run_dir}"

    def _restore(self) -> None:
        restored, path = checkpoints.restore_newest_good(self.run_dir, self._restore_from)
        if path is None:
            print(f"{self.log_prefix} {self.run_dir} has no checkpoint yet; starting from step 0 with its config.")
            return
        self.last_checkpoint = path
        print(f"{self.log_prefix} resumed from {path} at {self.counters.frames:,} frames "
              f"({self.counters.updates:,} updates)")

    def _restore_from(self, path: str) -> None:
        """Variables, counters and (when saved) replay from one checkpoint; CheckpointError if damaged."""
        saved_algo = checkpoints.load_state(path).get("config", {}).get("algo")
        if saved_algo is not None and saved_algo != self.config.algo:
            raise TrainingError(
                f"{path} was written by a {saved_algo} run, but {self.run_dir}/config.json says {self.config.algo}: "
                f"a {saved_algo} checkpoint cannot be resumed as {self.config.algo}. Restore the run's config.json, "
                f"or start a new --run-dir for {self.config.algo}.")
        state = checkpoints.restore(path, self._trackables())
        replay_dir = os.path.join(path, "replay")
        if os.path.isdir(replay_dir):
            self.replay.close()
            self.replay = self._make_replay()  # fresh: a damaged newer file may have half-filled it
            try:
                self.replay.restore(replay_dir)
            except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
                raise checkpoints.CheckpointError(
                    f"checkpoint {path} has a damaged replay ({os.path.join(replay_dir, 'replay.npz')}: "
                    f"{type(error).__name__}: {str(error)[:200]})") from None
        self.counters.load(state)
        self._load_checkpoint_state(state)

    # Hooks for a learner without collection (rise_tf/distributed/learner.py).
    def _make_training_env(self):
        return builder.make_env(self.config, training=True, env_factory=self.env_factory)

    def _make_replay(self):
        return builder.make_replay(self.config)

    def _checkpoint_state(self) -> Dict:
        """State saved beside the counters in each checkpoint."""
        return {}

    def _load_checkpoint_state(self, state: Dict) -> None:
        """Reads what _checkpoint_state saved."""

    def _wall_seconds(self) -> float:
        return self._wall_base + time.time() - self._wall_started

    def save_checkpoint(self) -> str:
        self.counters.wall_seconds = self._wall_seconds()
        state = dict(self.counters.to_dict(), config=self.config.to_dict(), saved_at=time.time(),
                     **self._checkpoint_state())
        writer = None
        if self.config.replay.save_replay:
            writer = lambda directory: self.replay.save(os.path.join(directory, "replay"))  # noqa: E731
        self.last_checkpoint = checkpoints.save(self.run_dir, self.counters.frames, self._trackables(), state,
                                                self.config.train.keep_checkpoints, writer)
        return self.last_checkpoint

    # ------------------------------------------------------------------ loop

    def run(self) -> Dict[str, float]:
        """Collects and learns to the frame budget (or until solved), then saves, evaluates and
        summarises. Ctrl-C and SIGTERM end it with a checkpoint."""
        loop = self._start_loop()
        interrupted = False
        with _STOP_SIGNALS.installed():
            try:
                if self.engine == "concurrent":
                    ConcurrentEngine(self, loop).run()
                else:
                    self._run_serial(loop)
            except KeyboardInterrupt:
                interrupted = True
            finally:
                if loop.bar is not None:
                    loop.bar.close()
        return self._finish(loop, interrupted)

    def _run_serial(self, loop: "_Loop") -> None:
        """Act, then learn, in turn: the reproducible engine."""
        while self.counters.frames < self.config.train.frames and self.counters.solved_at_frames < 0:
            new_steps = self._act(loop)
            self._learn(new_steps)
            self._show_progress(loop)
            if self._on_milestones(loop) == "solved":
                break  # experiments: a solved run need not spend the rest of its budget

    def _start_loop(self) -> "_Loop":
        train, lanes = self.config.train, self.config.env.num_envs
        collect_policy = py_tf_eager_policy.PyTFEagerPolicy(
            self.agent.collect_policy, use_tf_function=True, batch_time_steps=False)
        driver = py_driver.PyDriver(self.env, collect_policy, [self._observe_replay, self._stats, *self._tf_agents_metrics],
                                    max_steps=lanes)
        return _Loop(driver=driver, time_step=self.env.reset(), policy_state=collect_policy.get_initial_state(lanes),
                     bar=self._progress_bar(), next_log=self._next_multiple(train.log_every_frames),
                     next_eval=self._next_multiple(train.eval_every_frames) if train.eval_every_frames else math.inf,
                     next_checkpoint=self._next_multiple(train.checkpoint_every_frames),
                     started=time.time(), started_frames=self.counters.frames)

    def _act(self, loop: "_Loop") -> int:
        """Every lane steps once (policy -> env -> replay and statistics); ε decays with frames."""
        self.agent.epsilon.assign(exploration_epsilon(self.config.train, self.counters.frames))
        with _STOP_SIGNALS.atomic():  # replay rows and counters move together
            steps_before = self._stats.agent_steps
            loop.time_step, loop.policy_state = loop.driver.run(loop.time_step, loop.policy_state)
            new_steps = self._stats.agent_steps - steps_before
            self.counters.agent_steps += new_steps
            self.counters.frames += new_steps * self.frames_per_step
            self.counters.episodes += self._stats.finished
            self._stats.finished = 0
        return new_steps

    def _learn(self, new_steps: int) -> None:
        """replay_ratio updates per agent step, once replay holds the warm-up."""
        train = self.config.train
        if self.replay.num_stored * self.frames_per_step < max(train.warmup_frames, 1):
            return
        self.counters.update_credit += new_steps * train.replay_ratio
        while self.counters.update_credit >= 1.0:
            self._learn_once()
            self.counters.update_credit -= 1.0

    def _show_progress(self, loop: "_Loop") -> None:
        if loop.bar is not None:
            loop.bar.update(self.counters.frames - loop.bar.n)
            loop.bar.set_postfix(self._postfix(loop.started, loop.started_frames), refresh=False)

    def _on_milestones(self, loop: "_Loop") -> Optional[str]:
        """Log, evaluate and checkpoint on frame milestones; 'solved' when --stop-at-success is met."""
        train, frames = self.config.train, self.counters.frames
        if frames >= loop.next_log:
            self._log_scalars(loop.started, loop.started_frames)
            loop.next_log = self._next_multiple(train.log_every_frames)
        if frames >= loop.next_eval:
            result = self._evaluate_and_log()
            loop.next_eval = self._next_multiple(train.eval_every_frames)
            if train.stop_at_success and result.success_rate >= train.stop_at_success:
                self.counters.solved_at_frames = frames
                return "solved"
        if frames >= loop.next_checkpoint:
            self.save_checkpoint()
            loop.next_checkpoint = self._next_multiple(train.checkpoint_every_frames)
        return None

    def _finish(self, loop: "_Loop", interrupted: bool) -> Dict[str, float]:
        """The final evaluation (unless interrupted), checkpoint and summary."""
        final_eval = self._last_eval if self._last_eval_frames == self.counters.frames else None
        if not interrupted and self.config.train.eval_every_frames and final_eval is None:
            final_eval = self._evaluate_and_log()
        path = self.save_checkpoint()
        summary = self._summary(loop.started, loop.started_frames, final_eval)
        self._write_summary(summary)
        if interrupted:
            print(f"\n{self.log_prefix} interrupted at {self.counters.frames:,} frames; checkpoint saved to {path}.\n"
                  f"{self.log_prefix} continue with: {self.resume_command()}", file=sys.stderr)
            summary["interrupted"] = True
        else:
            print(f"{self.log_prefix} done: {self.counters.frames:,} frames, {self.counters.updates:,} updates; "
                  f"checkpoint {path}")
            if "warning" in summary:
                print(f"{self.log_prefix} warning: {summary['warning']}", file=sys.stderr)
        self._writer.flush()
        return summary

    def close(self) -> None:
        for env in (self.env, self._eval_env):
            if env is not None:
                env.close()
        self.replay.close()

    def _observe_replay(self, trajectory) -> None:
        embedding = trajectory.policy_info.get("embedding") if isinstance(trajectory.policy_info, dict) else None
        with self._replay_lock:  # the concurrent engine's learner samples meanwhile
            self.replay.add_batch(trajectory.step_type, trajectory.observation, embedding, trajectory.action,
                                  trajectory.reward, trajectory.discount)

    def write_priorities(self, keys: np.ndarray, errors: np.ndarray) -> None:
        with self._replay_lock:
            self.replay.update_priorities(keys, errors)

    def _learn_once(self) -> None:
        self._update(self._sample_batch())

    def _sample_batch(self) -> "_Sampled":
        """A batch from replay, as tensors, with its keys and importance weights."""
        beta = linear_schedule(self.config.replay.importance_beta_start, self.config.replay.importance_beta_end,
                               self.config.train.frames, self.counters.frames)
        started = time.perf_counter()
        with self._replay_lock:  # the batch is a copy: collection may write on once it is assembled
            batch, keys, weights = self.replay.sample(self.config.agent.batch_size, beta)
        tensors = tf.nest.map_structure(tf.convert_to_tensor, batch)
        weights = tf.convert_to_tensor(weights)
        # One host -> device copy per batch, made here, off the learner's path (a mirrored learner's
        # strategy places each replica's slice itself).
        if self.learner_device != "/CPU:0" and self.strategy is None:
            with tf.device(self.learner_device):
                tensors, weights = tf.nest.map_structure(tf.identity, (tensors, weights))
        return _Sampled(tensors, keys, weights, time.perf_counter() - started)

    def _update(self, sampled: "_Sampled", write_priorities: Optional[Callable[[np.ndarray, np.ndarray], None]] = None) -> None:
        """One learner update on a sampled batch, then its priorities (written here, or handed to
        `write_priorities`: the concurrent engine's sampler writes them, off the learner's path)."""
        updating = time.perf_counter()
        try:
            loss_info = self.agent.train(sampled.batch, sampled.weights)
        except tf.errors.InvalidArgumentError as error:
            if "NaN or inf" not in str(error):
                raise
            where = self.last_checkpoint or "no checkpoint yet"
            raise TrainingError(
                f"the loss became NaN/inf at update {self.counters.updates:,} ({self.counters.frames:,} "
                f"frames); the weights were not changed by that update. Last good checkpoint: {where}. Lower "
                f"--learning-rate or set --gradient-clip-norm, then --resume {self.run_dir}.") from None
        errors = loss_info.extra.sample_errors.numpy()  # .numpy() waits for the update
        if write_priorities is not None:
            write_priorities(sampled.keys, errors)
        else:
            self.write_priorities(sampled.keys, errors)
        if self._updates_this_process > 0:
            self.counters.update_seconds += time.perf_counter() - updating
            self.counters.sample_seconds += sampled.seconds
            self.counters.timed_updates += 1
        self._updates_this_process += 1
        self.counters.updates += 1
        self._last_loss = float(loss_info.loss)
        self._last_q = float(loss_info.extra.q_mean)

    # ------------------------------------------------------------------ reporting

    def _next_multiple(self, every: int) -> int:
        return (self.counters.frames // every + 1) * every

    def _fps(self, started: float, started_frames: int) -> float:
        return (self.counters.frames - started_frames) / max(time.time() - started, 1e-9)

    def _recent_return(self) -> float:
        recent = list(self._stats.recent)  # a copy: the collector thread may append meanwhile
        return float(np.mean(recent)) if recent else float("nan")

    def _postfix(self, started, started_frames) -> Dict[str, str]:
        return {"fps": f"{self._fps(started, started_frames):.0f}", "return": f"{self._recent_return():.2f}",
                "loss": f"{self._last_loss:.4f}", "eps": f"{float(self.agent.epsilon):.3f}"}

    def _progress_bar(self):
        if not self.show_progress:
            return None
        from tqdm import tqdm

        return tqdm(total=self.config.train.frames, initial=self.counters.frames, unit="frame",
                    unit_scale=True, dynamic_ncols=True, desc=f"{self.config.algo} {self.config.env_name}",
                    mininterval=1.0 if sys.stderr.isatty() else 30.0)

    def _log_scalars(self, started, started_frames) -> None:
        frames = self.counters.frames
        recent = self._recent_return()
        record = {"kind": "train", "frames": frames, "updates": self.counters.updates,
                  "episodes": self.counters.episodes, "return": recent, "loss": self._last_loss,
                  "q_mean": self._last_q, "epsilon": float(self.agent.epsilon),
                  "fps": self._fps(started, started_frames), "wall_seconds": self._wall_seconds()}
        hns = human_normalized_score(self.config.env_name, recent) if self._stats.recent else None
        if hns is not None:
            record["human_normalized"] = hns
        with self._writer.as_default(step=frames):
            for key, value in record.items():
                if key not in ("kind", "frames") and value is not None and math.isfinite(value):
                    tf.summary.scalar(f"train/{key}", value)
        self._write_tf_agents_metrics()
        self._append_metrics(record)

    def _write_tf_agents_metrics(self) -> None:
        """TF-Agents' tags (py_metric.tf_summaries): Metrics/<name> against the train step, and
        Metrics_vs_EnvironmentSteps/<name> and Metrics_vs_NumberOfEpisodes/<name> against those."""
        step_metrics = self._tf_agents_metrics[:2]
        with self._writer.as_default():
            for metric in self._tf_agents_metrics:
                value = float(metric.result())
                tf.summary.scalar(f"{metric.prefix}/{metric.name}", value, step=self.counters.updates)
                for step_metric in step_metrics:
                    if step_metric.name != metric.name:
                        tf.summary.scalar(f"{metric.prefix}_vs_{step_metric.name}/{metric.name}", value,
                                          step=int(step_metric.result()))

    def _evaluate_and_log(self) -> EvalResult:
        episodes = self.config.train.eval_episodes
        if self._eval_env is None:
            self._eval_env = builder.make_env(self.config, num_envs=min(episodes, MAX_EVAL_LANES),
                                              seed_offset=EVAL_SEED_OFFSET, training=False, parallel="serial",
                                              env_factory=self.env_factory)
        result = evaluate(self.agent.evaluation_policy, self._eval_env, episodes, self.config.env_name)
        record = {"kind": "eval", "frames": self.counters.frames, "return": result.mean_return,
                  "returns": result.returns, "success_rate": result.success_rate,
                  "episode_steps": float(np.mean(result.lengths)), "wall_seconds": self._wall_seconds()}
        if result.human_normalized is not None:
            record["human_normalized"] = result.human_normalized
        with self._writer.as_default(step=self.counters.frames):
            tf.summary.scalar("eval/return", result.mean_return)
            tf.summary.scalar("eval/success_rate", result.success_rate)
            if result.human_normalized is not None:
                tf.summary.scalar("eval/human_normalized", result.human_normalized)
        self._append_metrics(record)
        self._last_eval, self._last_eval_frames = result, self.counters.frames
        return result

    def _append_metrics(self, record) -> None:
        append_metrics(self.run_dir, record)

    def _summary(self, started, started_frames, final_eval: Optional[EvalResult]) -> Dict[str, float]:
        counters = self.counters
        timed = max(counters.timed_updates, 1)
        summary = {"algo": self.config.algo, "game": self.config.env_name, "seed": self.config.train.seed,
                   "frames": counters.frames, "budget_frames": self.config.train.frames,
                   "completed": counters.frames >= self.config.train.frames or counters.solved_at_frames >= 0,
                   "stopped_solved": counters.solved_at_frames >= 0,
                   "updates": counters.updates, "episodes": counters.episodes, "engine": self.engine,
                   "recent_return": self._recent_return(), "fps": self._fps(started, started_frames),
                   "wall_seconds": counters.wall_seconds,
                   "update_ms": 1000 * counters.update_seconds / timed,  # mean, tracing excluded
                   "sample_ms": 1000 * counters.sample_seconds / timed,
                   "checkpoint": self.last_checkpoint}
        if final_eval is not None:
            summary.update(final_return=final_eval.mean_return, final_success_rate=final_eval.success_rate,
                           final_human_normalized=final_eval.human_normalized)
        if summary["completed"] and counters.updates == 0 and self.config.train.replay_ratio > 0:
            summary["warning"] = self._no_learning_reason()
        return summary

    def _no_learning_reason(self) -> str:
        train = self.config.train
        why = (f"the replay never held --warmup-frames {train.warmup_frames:,} frames of experience before the "
               f"budget of {train.frames:,} was spent")
        if not self.config.replay.save_replay:
            why += ("; the replay restarts empty on each --resume (without --save-replay), so resuming before "
                    "warm-up finishes starts the warm-up again")
        return f"no learning update was made: {why}. Raise --frames, lower --warmup-frames, or use --save-replay."

    def _write_summary(self, summary) -> None:
        """summary.json: the run's totals, rewritten atomically each time run() ends."""
        write_json_atomic(os.path.join(self.run_dir, SUMMARY_FILE), summary)


class _StopSignals:
    """Ctrl-C and SIGTERM raise KeyboardInterrupt (the run then ends in a checkpoint), but never inside
    `atomic()` on the main thread: there the interrupt waits for the section's end. So a lane step is
    never half counted (its rows in replay, not yet in the counters) in the checkpoint that follows.
    SIGINT is set explicitly: a process started in the background by a non-interactive shell inherits
    SIGINT as ignored, and `kill -INT` must still work."""

    def __init__(self):
        self._depth = 0  # atomic sections open on the main thread (the only one signals reach)
        self._pending = False

    def _handle(self, signum, frame):
        if self._depth:
            self._pending = True
            return
        raise KeyboardInterrupt

    @contextlib.contextmanager
    def installed(self):
        self._pending = False  # one left by a section that ended in another exception is stale
        previous = {sig: signal.signal(sig, self._handle) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    @contextlib.contextmanager
    def atomic(self):
        if threading.current_thread() is not threading.main_thread():
            yield  # signals run on the main thread; the concurrent engine stops its threads itself
            return
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
        if not self._depth and self._pending:
            self._pending = False
            raise KeyboardInterrupt


_STOP_SIGNALS = _StopSignals()


@dataclasses.dataclass
class _Sampled:
    batch: object  # nest of tensors
    keys: np.ndarray
    weights: object  # tensor [B]
    seconds: float  # time to sample and assemble it


@dataclasses.dataclass
class _Loop:
    """The collection loop's moving parts within one run() call."""

    driver: object
    time_step: object
    policy_state: object
    bar: object
    next_log: float
    next_eval: float
    next_checkpoint: float
    started: float
    started_frames: int
