"""One run's parts and what every engine does between steps: milestones (log, evaluate, checkpoint on
frame multiples), learning what the replay ratio owes, and the finish (final evaluation, checkpoint,
summary). The serial and concurrent engines and the distributed learner each hold a Run; none
subclasses it. Units: frames are emulator frames, agent steps one step of one lane."""
from __future__ import annotations

import math
import sys
import time
from typing import Callable, Dict, List, Optional

import numpy as np

from rise_runtime.envs.atari_scores import human_normalized_score
from rise_tf.parts import updates
from rise_tf.parts.checkpointer import Checkpointer
from rise_tf.parts.collector import EpisodeStats
from rise_tf.parts.counters import Counters, DamagedCounters
from rise_tf.parts.evaluator import EvalResult, Evaluator, final_evaluation_due, success_record
from rise_tf.parts.learner import Learner, NonFiniteLoss
from rise_tf.parts.run_log import RunLog
from rise_tf.parts.signals import STOP_SIGNALS
from rise_tf.parts import checkpoints
from rise_tf.run_dir import trim_metrics


class TrainingError(RuntimeError):
    """Training cannot go on; the message names the cause and the fix."""


class Run:
    def __init__(self, *, config, run_dir: str, engine: str, agent, counters: Counters, learner: Learner,
                 evaluator: Evaluator, checkpointer: Checkpointer, run_log: RunLog,
                 episode_stats: EpisodeStats, tf_agents_metrics: List, log_prefix: str, resume_command: str,
                 save_replay: bool, checkpoint_state: Callable[[], Dict] = dict,
                 before_checkpoint: Callable[[], None] = lambda: None):
        """checkpoint_state(): extra state saved beside the counters; before_checkpoint(): called first
        (the distributed learner asks its replay server for a checkpoint there)."""
        self.config, self.run_dir, self.engine, self.agent = config, run_dir, engine, agent
        self.counters, self.learner, self.evaluator = counters, learner, evaluator
        self.checkpointer, self.run_log, self.episode_stats = checkpointer, run_log, episode_stats
        self.tf_agents_metrics, self.log_prefix, self.resume_command = tf_agents_metrics, log_prefix, resume_command
        self.save_replay = save_replay
        self._checkpoint_state, self._before_checkpoint = checkpoint_state, before_checkpoint
        self.frames_per_step = config.frames_per_agent_step
        self._wall_base, self._wall_started = counters.wall_seconds, time.time()
        self.last_eval: Optional[EvalResult] = None
        self._last_eval_frames = -1
        self.next_log = self.next_eval = self.next_checkpoint = math.inf
        self.started, self.started_frames = time.time(), counters.frames

    # ------------------------------------------------------------------ restore and save
    def restore(self, restore_replay: Optional[Callable[[str], None]] = None,
                load_extra: Callable[[Dict], None] = lambda state: None) -> Optional[str]:
        """The newest good checkpoint: variables, counters (damaged ones fall back too), replay
        (restore_replay(dir) when the checkpoint has one), extra state. Returns its path."""
        def restore_rest(path: str, state: Dict) -> None:
            saved_algo = state.get("config", {}).get("algo")
            if saved_algo is not None and saved_algo != self.config.algo:
                raise TrainingError(
                    f"{path} was written by a {saved_algo} run, but {self.run_dir}/config.json says "
                    f"{self.config.algo}: a {saved_algo} checkpoint cannot be resumed as {self.config.algo}. Restore "
                    f"the run's config.json, or start a new --run-dir for {self.config.algo}.")
            try:
                Counters.check(state)
            except DamagedCounters as error:
                raise checkpoints.CheckpointError(f"checkpoint {path} is damaged: {error}") from None
            if restore_replay is not None:
                restore_replay(path)  # may still find damage: the counters change only after it
            self.counters.load(state, self.config.train.replay_ratio)
            load_extra(state)

        restored = self.checkpointer.restore_newest(restore_rest)
        # What was logged or kept after that checkpoint belongs to steps that now run again.
        dropped = trim_metrics(self.run_dir, self.counters.frames)
        if dropped:
            print(f"{self.log_prefix} dropped {dropped} metrics.jsonl records past {self.counters.frames:,} frames "
                  f"(logged after the checkpoint it resumes from; those steps run again)")
        best_frames = checkpoints.drop_best_after(self.run_dir, self.counters.frames)
        if best_frames is not None:
            self.counters.forget_best()
            print(f"{self.log_prefix} removed checkpoints/best (saved at {best_frames:,} frames, past the resume "
                  f"point); the evaluations from here on choose the best again")
        if restored is None:
            print(f"{self.log_prefix} {self.run_dir} has no checkpoint yet; starting from step 0 with its config.")
            return None
        self._wall_base = self.counters.wall_seconds
        self.started_frames = self.counters.frames
        print(f"{self.log_prefix} resumed from {restored[0]} at {self.counters.frames:,} frames "
              f"({self.counters.updates:,} updates)")
        return restored[0]

    def wall_seconds(self) -> float:
        return self._wall_base + time.time() - self._wall_started

    def save_checkpoint(self) -> str:
        self._before_checkpoint()
        return self.checkpointer.save(self.counters.frames, self._state(),
                                      self.learner.replay if self.save_replay else None)

    def _state(self) -> Dict:
        self.counters.wall_seconds = self.wall_seconds()
        return dict(self.counters.to_dict(), config=self.config.to_dict(), saved_at=time.time(),
                    **self._checkpoint_state())

    # ------------------------------------------------------------------ between steps
    def start(self) -> None:
        """A new run() call: milestones from the current frames on, the progress bar, the fps clock."""
        train = self.config.train
        self.next_log = self._next_multiple(train.log_every_frames)
        self.next_eval = self._next_multiple(train.eval_every_frames) if train.eval_every_frames else math.inf
        self.next_checkpoint = self._next_multiple(train.checkpoint_every_frames)
        self.started, self.started_frames = time.time(), self.counters.frames
        self.run_log.open_bar(self.counters.frames)

    def collect(self, collector) -> int:
        """One step of every lane, counted: replay rows and counters move together (a stop signal
        waits for the end of this section). Returns the agent steps it added."""
        with STOP_SIGNALS.atomic():
            new_steps = collector.step()
            self.count_collected(new_steps, collector.stats.take_finished())
        return new_steps

    def drive(self, loop: Callable[[], None]) -> bool:
        """Runs an engine's `loop()` with the stop signals installed (call start() first). Returns True
        when Ctrl-C or SIGTERM ended it; a NaN/inf loss becomes a TrainingError naming the fix."""
        with STOP_SIGNALS.installed():
            try:
                loop()
            except KeyboardInterrupt:
                return True
            except NonFiniteLoss as error:
                raise self.nonfinite_loss_error(error) from None
            finally:
                self.run_log.close_bar()
        return False

    def done(self) -> bool:
        return self.counters.frames >= self.config.train.frames or self.counters.solved_at_frames >= 0

    def count_collected(self, new_steps: int, finished_episodes: int) -> None:
        self.counters.agent_steps += new_steps
        self.counters.frames += new_steps * self.frames_per_step
        self.counters.episodes += finished_episodes

    def earn_updates(self, new_steps: int, stored_steps: int) -> bool:
        """Counts steps collected once replay holds the warm-up; True when warm."""
        train = self.config.train
        if not updates.is_warm(stored_steps, train.warmup_frames, self.frames_per_step):
            return False
        self.counters.earning_steps += new_steps
        return True

    def updates_owed(self) -> int:
        return updates.updates_owed(self.config.train.replay_ratio, self.counters.earning_steps, self.counters.updates)

    def learn_owed(self) -> None:
        """Serial learning: every update the ratio owes now."""
        for _ in range(self.updates_owed()):
            self.learner.learn_once()

    def milestone_due(self) -> bool:
        return self.counters.frames >= min(self.next_log, self.next_eval, self.next_checkpoint)

    def milestones(self) -> Optional[str]:
        """Log, evaluate and checkpoint on frame milestones; 'solved' when --stop-at-success is met."""
        train, frames = self.config.train, self.counters.frames
        if frames >= self.next_log:
            self.log_train()
            self.next_log = self._next_multiple(train.log_every_frames)
        if frames >= self.next_eval:
            result = self.evaluate()
            self.next_eval = self._next_multiple(train.eval_every_frames)
            if train.stop_at_success and result.success_rate >= train.stop_at_success:
                self.counters.solved_at_frames = frames
                return "solved"
        if frames >= self.next_checkpoint:
            self.save_checkpoint()
            self.next_checkpoint = self._next_multiple(train.checkpoint_every_frames)
        return None

    def show_progress(self) -> None:
        if self.run_log.bar is None:
            return  # no progress bar: nothing to compute
        self.run_log.show(self.counters.frames, {
            "fps": f"{self.fps():.0f}", "return": f"{self.episode_stats.recent_return():.2f}",
            "loss": f"{self.learner.last_loss:.4f}", "eps": f"{self.epsilon():.3f}"})

    def nonfinite_loss_error(self, error: NonFiniteLoss) -> TrainingError:
        where = self.checkpointer.last_checkpoint or "no checkpoint yet"
        return TrainingError(
            f"the loss became NaN/inf at update {self.counters.updates:,} ({self.counters.frames:,} frames); the "
            f"weights were not changed by that update. Last good checkpoint: {where}. Lower --learning-rate or set "
            f"--gradient-clip-norm, then --resume {self.run_dir}.")

    # ------------------------------------------------------------------ records
    def epsilon(self) -> float:
        """The collect policy's ε now (read_value: a mirrored learner's ε is a MirroredVariable)."""
        return float(self.agent.epsilon.read_value())

    def _next_multiple(self, every: int) -> int:
        return (self.counters.frames // every + 1) * every

    def fps(self) -> float:
        return (self.counters.frames - self.started_frames) / max(time.time() - self.started, 1e-9)

    def log_train(self) -> None:
        frames = self.counters.frames
        recent = self.episode_stats.recent_return()
        record = {"kind": "train", "frames": frames, "updates": self.counters.updates,
                  "episodes": self.counters.episodes, "return": recent, "loss": self.learner.last_loss,
                  "q_mean": self.learner.last_q, "epsilon": self.epsilon(),
                  "fps": self.fps(), "wall_seconds": self.wall_seconds()}
        hns = human_normalized_score(self.config.env_name, recent) if self.episode_stats.recent else None
        if hns is not None:
            record["human_normalized"] = hns
        self.run_log.train(record, self.tf_agents_metrics, self.counters.updates)

    def evaluate(self) -> EvalResult:
        result = self.evaluator.evaluate()
        record = {"kind": "eval", "frames": self.counters.frames, "return": result.mean_return,
                  "returns": result.returns, **success_record(self.config, result),
                  "episode_steps": float(np.mean(result.lengths)), "wall_seconds": self.wall_seconds(),
                  "updates": self.counters.updates,
                  "td_targets": self.counters.updates * self.config.targets_per_update}
        if result.human_normalized is not None:
            record["human_normalized"] = result.human_normalized
        self.run_log.evaluation(record)
        self.last_eval, self._last_eval_frames = result, self.counters.frames
        counters = self.counters
        if counters.best_eval_frames < 0 or result.mean_return > counters.best_eval_return:
            # The greedy policy's quality swings between evaluations: its best weights are kept apart.
            counters.best_eval_frames, counters.best_eval_return = counters.frames, result.mean_return
            self.checkpointer.save_best(counters.frames, self._state())
        return result

    # ------------------------------------------------------------------ the end
    def finish(self, interrupted: bool) -> Dict[str, float]:
        """The final evaluation (unless interrupted), checkpoint and summary."""
        self.run_log.close_bar()
        due = final_evaluation_due(self.config.train.eval_every_frames, self._last_eval_frames, self.counters.frames)
        final_eval = None if due else self.last_eval
        if not interrupted and due:
            final_eval = self.evaluate()
        path = self.save_checkpoint()
        summary = self.summary(final_eval)
        self.run_log.summary(summary)
        if interrupted:
            print(f"\n{self.log_prefix} interrupted at {self.counters.frames:,} frames; checkpoint saved to {path}.\n"
                  f"{self.log_prefix} continue with: {self.resume_command}", file=sys.stderr)
            summary["interrupted"] = True
        else:
            print(f"{self.log_prefix} done: {self.counters.frames:,} frames, {self.counters.updates:,} updates; "
                  f"checkpoint {path}")
            if "warning" in summary:
                print(f"{self.log_prefix} warning: {summary['warning']}", file=sys.stderr)
        self.run_log.flush()
        return summary

    def close(self) -> None:
        """Releases the evaluation lanes and the replay (a Reverb replay's connections)."""
        self.evaluator.close()
        self.learner.replay.close()

    def summary(self, final_eval: Optional[EvalResult]) -> Dict[str, float]:
        counters, train = self.counters, self.config.train
        timed = max(counters.timed_updates, 1)
        summary = {"algo": self.config.algo, "game": self.config.env_name, "seed": train.seed,
                   "frames": counters.frames, "budget_frames": train.frames,
                   "completed": counters.frames >= train.frames or counters.solved_at_frames >= 0,
                   "stopped_solved": counters.solved_at_frames >= 0,
                   "updates": counters.updates, "episodes": counters.episodes, "engine": self.engine,
                   "recent_return": self.episode_stats.recent_return(), "fps": self.fps(),
                   "wall_seconds": counters.wall_seconds,
                   "update_ms": 1000 * counters.update_seconds / timed,  # mean, tracing excluded
                   "sample_ms": 1000 * counters.sample_seconds / timed,
                   "checkpoint": self.checkpointer.last_checkpoint}
        if final_eval is not None:
            summary.update(final_return=final_eval.mean_return, final_human_normalized=final_eval.human_normalized,
                           **success_record(self.config, final_eval, prefix="final_"))
        if counters.best_eval_frames >= 0:  # the best evaluation, whose weights are checkpoints/best
            summary.update(best_return=counters.best_eval_return, best_frames=counters.best_eval_frames,
                           best_checkpoint=checkpoints.best_checkpoint(self.run_dir))
        if summary["completed"] and counters.updates == 0 and train.replay_ratio > 0:
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
