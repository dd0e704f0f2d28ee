"""`rise-learner`: trains a run from its replay server while actors (other processes, other machines)
collect.

    rise-learner --replay host:8008 --run-dir runs/pong

The learner is the trainer (rise_tf/train/trainer.py) without collection: the same agent, loss,
evaluation, logging (TensorBoard, metrics.jsonl, progress bar) and atomic checkpoints. Its batches come
from Reverb (a tf.data pipeline with prefetch, reverb_store.py) at the pace the table's rate limiter
allows, which holds the run's replay ratio; its frame count is the sum of the actors' progress messages
(each counted once, tables.py). It publishes the weights, its frame count and the largest priority
every `--push-every` updates, and done=1 when the budget is spent. At each of its checkpoints the
server writes a Reverb checkpoint too. A learner started again continues from its newest checkpoint
(`--resume` is implied: the run directory's config.json is the run's).
"""
from __future__ import annotations

import argparse
import sys
import time
from typing import Dict, List, Optional

from rise_tf.startup import quiet_third_party_startup

quiet_third_party_startup()

from rise_tf.run_dir import RunDirError  # noqa: E402

MAX_UPDATES_PER_ROUND = 16  # updates between two looks at progress messages and milestones
SAMPLE_TIMEOUT_MS = 500  # the rate limiter may hold a sample back this long before the loop looks around
IDLE_SLEEP_S = 0.05


def make_learner_class():
    """The Learner class (built on first use: the trainer module loads TensorFlow)."""
    import numpy as np
    from tf_agents.experimental.distributed.reverb_variable_container import ReverbVariableContainer

    from rise_tf.distributed import tables
    from rise_tf.distributed.weights import DONE, FRAMES, MAX_PRIORITY, make_learner_state, variable_nest
    from rise_tf.replay.reverb_store import NoBatchYet, ReverbReplay
    from rise_tf.train import builder
    from rise_tf.config import replay_layout
    from rise_tf.train.trainer import Trainer, TrainingError, _Loop, exploration_epsilon

    class Learner(Trainer):
        log_prefix = "[rise-learner]"

        def __init__(self, config, run_dir: str, address: str, *, progress: bool = True, push_every: int = 20,
                     reconnect_seconds: float = 120.0, launched: bool = False):
            """launched: started by `rise-train --distributed`, which is then what resumes the run."""
            import reverb

            self.address, self.push_every, self.reconnect_seconds = address, push_every, reconnect_seconds
            self.launched = launched
            self.learner_state = make_learner_state()
            self._actor_seen: Dict[str, List[int]] = {}  # actor -> [incarnation, seq] of its newest message
            tables.check_identity(reverb.Client(address), config, address)
            super().__init__(config, run_dir, resume=True, progress=progress)
            self.engine = "distributed"
            self.variables = variable_nest(self.agent, self.learner_state)
            self.container = ReverbVariableContainer(address, table_names=[tables.VARIABLES_TABLE])
            self._pushed_at = None
            self._idle = False

        # --- Trainer hooks
        def _make_training_env(self):
            # One lane, for the specs and the action names; the actors hold the training envs.
            return builder.make_env(self.config, num_envs=1, training=False, parallel="serial",
                                    env_factory=self.env_factory)

        def _make_replay(self):
            return ReverbReplay(replay_layout(self.config), list(builder.network_spec(self.config)),
                                batch_size=self.config.agent.batch_size, prefetch=self.config.train.prefetch_batches,
                                address=self.address, lane_ids=[], sample_timeout_ms=SAMPLE_TIMEOUT_MS)

        def _write_tf_agents_metrics(self) -> None:
            """Those observe a driver; the actors run the drivers (the progress messages carry ours)."""

        def _checkpoint_state(self) -> Dict:
            return {"actor_messages": self._actor_seen}

        def _load_checkpoint_state(self, state: Dict) -> None:
            self._actor_seen = {str(k): list(v) for k, v in state.get("actor_messages", {}).items()}

        def _start_loop(self):
            train = self.config.train
            self.publish()  # actors wait for the first weights
            return _Loop(driver=None, time_step=None, policy_state=None, bar=self._progress_bar(),
                         next_log=self._next_multiple(train.log_every_frames),
                         next_eval=self._next_multiple(train.eval_every_frames) if train.eval_every_frames else np.inf,
                         next_checkpoint=self._next_multiple(train.checkpoint_every_frames),
                         started=time.time(), started_frames=self.counters.frames)

        def _act(self, loop) -> int:
            """Takes the actors' progress messages (instead of collecting); publishes when due."""
            return self._with_server(self._take_progress_and_publish)

        def _learn(self, new_steps: int) -> None:
            self._with_server(self._learn_while_allowed)

        def _with_server(self, call):
            """`call`, reconnecting when the server was lost (it restarts from its checkpoint)."""
            while True:
                try:
                    return call()
                except (NoBatchYet, TrainingError, KeyboardInterrupt):
                    raise
                except Exception as error:  # noqa: BLE001 - Reverb raises several types for a lost connection
                    if not tables.is_connection_error(error):
                        raise
                    self._reconnect(error)

        def _reconnect(self, error: Exception) -> None:
            print(f"\n[rise-learner] lost the replay server at {self.address} ({type(error).__name__}); "
                  f"retrying for {self.reconnect_seconds:.0f} s", file=sys.stderr, flush=True)

            def connect():
                replay = self._make_replay()
                tables.check_identity(replay.client, self.config, self.address)
                return replay, ReverbVariableContainer(self.address, table_names=[tables.VARIABLES_TABLE])
            try:
                replay, container = tables.retry_until_back(connect, self.reconnect_seconds)
            except TimeoutError:
                raise TrainingError(f"the replay server at {self.address} did not come back within "
                                    f"{self.reconnect_seconds:.0f} s. Restart it (rise-replay-server --run-dir "
                                    f"{self.run_dir}), then this learner (rise-learner --replay {self.address} "
                                    f"--run-dir {self.run_dir}): it continues from its newest checkpoint.") from None
            replay.max_priority = self.replay.max_priority
            self.replay, self.container = replay, container
            self.publish()
            print(f"[rise-learner] reconnected to {self.address}", file=sys.stderr, flush=True)

        def _take_progress_and_publish(self) -> int:
            steps = self.drain_progress()
            self.agent.epsilon.assign(exploration_epsilon(self.config.train, self.counters.frames))  # as actors see it
            if self._pushed_at is None or self.counters.updates - self._pushed_at >= self.push_every:
                self.publish()
            if steps == 0 and self._idle:
                time.sleep(IDLE_SLEEP_S)
            return steps

        def _learn_while_allowed(self) -> None:
            """As many updates as the rate limiter allows, up to MAX_UPDATES_PER_ROUND."""
            self._idle = True
            for _ in range(MAX_UPDATES_PER_ROUND):
                try:
                    self._learn_once()
                except NoBatchYet:
                    return
                self._idle = False

        def resume_command(self) -> str:
            if self.launched:
                return f"rise-train --resume {self.run_dir} --distributed [--actors N]"
            return f"rise-learner --replay {self.address} --run-dir {self.run_dir}"

        def save_checkpoint(self) -> str:
            # The server's checkpoint first: once a learner checkpoint is on disk, the replay's contents
            # are saved too, so a kill -9 of both right after it still restarts the server with data.
            try:
                self.replay.client.checkpoint()
            except Exception as error:  # noqa: BLE001 - the learner's own checkpoint is what counts here
                print(f"\n[rise-learner] warning: the replay server could not write a checkpoint "
                      f"({type(error).__name__}); the learner's is saved next", file=sys.stderr)
            return super().save_checkpoint()

        def _finish(self, loop, interrupted: bool):
            if not interrupted:
                self.learner_state[DONE].assign(1.0)
            try:
                self.publish()
            except Exception as error:  # noqa: BLE001 - the server may be gone; the checkpoint comes next
                print(f"[rise-learner] warning: could not tell the actors ({type(error).__name__})", file=sys.stderr)
            return super()._finish(loop, interrupted)

        # --- distributed
        def publish(self) -> None:
            self.learner_state[FRAMES].assign(float(self.counters.frames))
            self.learner_state[MAX_PRIORITY].assign(self.replay.max_priority)
            self.container.push(self.variables)
            self._pushed_at = self.counters.updates

        def drain_progress(self) -> int:
            """Counts each actor message once; returns the agent steps they add."""
            client = self.replay.client
            waiting = int(client.server_info()[tables.PROGRESS_TABLE].current_size)
            if waiting == 0:
                return 0
            added = 0
            messages = tables.take(client, tables.PROGRESS_TABLE, tables.PROGRESS_SPEC, waiting)
            for message in tables.new_progress(self._actor_seen, messages):
                steps, episodes = int(message["agent_steps"]), int(message["episodes"])
                added += steps
                self.counters.agent_steps += steps
                self.counters.frames += steps * self.frames_per_step
                self.counters.episodes += episodes
                if episodes:
                    self._stats.recent.extend([float(message["return_sum"]) / episodes] * episodes)
            return added

    return Learner


def build_parser() -> argparse.ArgumentParser:
    from rise_tf.distributed.actor import add_connection_flags

    parser = argparse.ArgumentParser(prog="rise-learner", description=__doc__.split("\n\n")[0],
                                     epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_connection_flags(parser, "the run's directory: config.json (written from the server's when missing), "
                                 "checkpoints, logs")
    parser.add_argument("--push-every", type=int, default=20, help="updates between weight pushes [default: 20]")
    parser.add_argument("--frames", default=None, help="raise the run's frame budget (as rise-train --resume --frames)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--launched", action="store_true", help=argparse.SUPPRESS)  # by rise-train --distributed
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    from rise_tf.counts import parse_count
    from rise_tf.distributed.actor import check_address, connect_config

    args = build_parser().parse_args(argv)
    try:
        check_address(args.replay)
        if args.push_every < 1:
            raise ValueError(f"--push-every must be >= 1, got {args.push_every}")
        frames = parse_count(args.frames) if args.frames is not None else None
    except ValueError as error:
        print(f"rise-learner: error: {error}", file=sys.stderr)
        return 2
    from rise_tf.distributed.tables import ServerMismatch
    from rise_tf.train.checkpoints import CheckpointError
    from rise_tf.train.trainer import TrainingError
    try:
        config = connect_config(args.replay, args.run_dir, "rise-learner")
        if frames is not None:
            config = config.replace(train={"frames": frames}).validate()
        learner = make_learner_class()(config, args.run_dir, args.replay, progress=not args.no_progress,
                                       push_every=args.push_every, launched=args.launched)
    except (ConnectionError, ServerMismatch, RunDirError, ValueError, TrainingError, CheckpointError) as error:
        print(f"rise-learner: error: {error}", file=sys.stderr)
        return 2
    try:
        summary = learner.run()
    except TrainingError as error:
        print(f"rise-learner: error: {error}", file=sys.stderr)
        return 2
    finally:
        learner.close()
    return 130 if summary.get("interrupted") else 0


if __name__ == "__main__":
    sys.exit(main())
