"""The Python API of one training run on this machine: builds the parts (through the builder) and runs
them with the serial or the concurrent engine. Ctrl-C (or SIGTERM) saves a checkpoint and exits
cleanly; `resume=True` continues the counters from the newest good checkpoint to the run's budget.

Units: `frames` are emulator frames (agent steps x action_repeat on Atari, 1:1 otherwise);
`agent_steps` count one step of one lane; `updates` count learner updates.
Deviation to know: the environments restart on resume (emulator state is not checkpointed), and
the replay restarts empty unless `save_replay` is on; learning then waits until `warmup_frames`
worth of steps are back in replay.
"""
from __future__ import annotations

import os
import threading
import zipfile
from typing import Dict, Optional

import tensorflow as tf

from rise_tf import builder
from rise_tf.config import RunConfig, resolve_engine
from rise_tf.engines.concurrent import ConcurrentEngine
from rise_tf.engines.serial import run_serial
from rise_tf.parts import checkpoints
from rise_tf.parts.collector import ReplaySink
from rise_tf.parts.counters import Counters
from rise_tf.parts.process import prepare_run_dir, start_training_process
from rise_tf.parts.run import Run, TrainingError
from rise_tf.run_dir import REPLAY_DATA_FILE, checkpoint_replay_dir, write_env_info

__all__ = ["Trainer", "TrainingError", "prepare_run_dir"]

LOG_PREFIX = "[rise-train]"


class Trainer:
    """Trains one run. `env_factory` (Python API): a callable returning one gymnasium env (or TF-Agents
    PyEnvironment) with image observations and discrete actions, called once per lane; the config's
    env.env_id names it (make_config(algo, env={"env_id": "MyGame"}))."""

    def __init__(self, config: RunConfig, run_dir: str, resume: bool = False, progress: bool = True,
                 env_factory: Optional[builder.EnvFactory] = None):
        self.run_dir = run_dir
        process = start_training_process(config, run_dir, resume, LOG_PREFIX)
        self._config, self.learner_device, self.strategy = process.config, process.device, process.strategy
        self.engine = resolve_engine(self.config, learner_on_gpu=self.learner_device != "/CPU:0")

        self.env = builder.make_env(self.config, training=True, env_factory=env_factory)
        write_env_info(run_dir, self.config, self.env.envs[0].action_meanings)
        self.train_step = tf.Variable(0, dtype=tf.int64, name="train_step")
        self.agent = builder.make_agent(self.config, self.env.time_step_spec(), self.env.action_spec(),
                                        self.train_step, strategy=self.strategy)
        self.counters = Counters()
        replay_lock = threading.Lock()  # the concurrent engine's learner samples while collection writes
        self.learner = builder.make_learner(lambda: self.config, self.agent, builder.make_replay(self.config),
                                            self.counters, device=self.learner_device, strategy=self.strategy,
                                            replay_lock=replay_lock)
        sink = ReplaySink(lambda: self.learner.replay, replay_lock)
        self.collector = builder.make_collector(lambda: self.config, self.env, self.agent, sink, self.counters)
        self.checkpointer = builder.make_checkpointer(self.config, run_dir, self.agent, self.train_step)
        self.run_state = Run(
            config=self.config, run_dir=run_dir, engine=self.engine, agent=self.agent, counters=self.counters,
            learner=self.learner, evaluator=builder.make_evaluator(self.config, self.agent, env_factory),
            checkpointer=self.checkpointer, run_log=builder.make_run_log(self.config, run_dir, progress),
            episode_stats=self.collector.stats, tf_agents_metrics=self.collector.metrics, log_prefix=LOG_PREFIX,
            resume_command=f"rise-train --resume {run_dir}", save_replay=self.config.replay.save_replay)
        stale = self.checkpointer.remove_stale_temporaries()
        if stale:
            print(f"{LOG_PREFIX} removed {len(stale)} half-written checkpoint director"
                  f"{'y' if len(stale) == 1 else 'ies'} left by a killed run: {', '.join(stale)}")
        if resume:
            self.run_state.restore(restore_replay=self._restore_replay)

    @property
    def config(self) -> RunConfig:
        return self._config

    @config.setter
    def config(self, config: RunConfig) -> None:
        """A new config for the next run(), e.g. a larger frame budget (benchmarks train in stages); the
        schedules follow it. Settings that shaped what was built (networks, replay) cannot change here."""
        self._config = self.run_state.config = config

    @property
    def replay(self):
        return self.learner.replay

    def _restore_replay(self, checkpoint: str) -> None:
        """The replay a checkpoint saved (--save-replay), into a fresh replay: a damaged newer file may
        have half-filled the current one. CheckpointError when it is damaged."""
        replay_dir = checkpoint_replay_dir(checkpoint)
        if not os.path.isdir(replay_dir):
            return
        self.learner.replay.close()
        self.learner.replay = builder.make_replay(self.config)
        try:
            self.learner.replay.restore(replay_dir)
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
            raise checkpoints.CheckpointError(
                f"checkpoint {checkpoint} has a damaged replay ({os.path.join(replay_dir, REPLAY_DATA_FILE)}: "
                f"{type(error).__name__}: {str(error)[:200]})") from None

    def save_checkpoint(self) -> str:
        return self.run_state.save_checkpoint()

    @property
    def last_checkpoint(self) -> Optional[str]:
        return self.checkpointer.last_checkpoint

    def run(self) -> Dict[str, float]:
        """Collects and learns to the frame budget (or until solved), then saves, evaluates and
        summarises. Ctrl-C and SIGTERM end it with a checkpoint."""
        run = self.run_state
        run.start()
        self.collector.start()
        if self.engine == "concurrent":
            interrupted = run.drive(ConcurrentEngine(run, self.collector).run)
        else:
            interrupted = run.drive(lambda: run_serial(run, self.collector))
        return run.finish(interrupted)

    def close(self) -> None:
        self.collector.close()
        self.run_state.close()
