"""`rise-learner`: trains a run from its replay server while actors (other processes, other machines)
collect.

    rise-learner --replay host:8008 --run-dir runs/pong

The learner assembles the same parts as the in-process trainer (rise_tf/parts: learner, evaluator,
checkpointer, run log) without a collector: the same agent, loss, evaluation, logging (TensorBoard,
metrics.jsonl, progress bar) and atomic checkpoints. Its batches come
from Reverb (a tf.data pipeline with prefetch, reverb_store.py) at the pace the table's rate limiter
allows, which holds the run's replay ratio; its frame count is the sum of the actors' progress messages
(each counted once, tables.py). It publishes the weights, its frame count and the largest priority
every `--push-every` updates (the run's distributed.push_every), and done=1 when the budget is spent. At each of its checkpoints the
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

LOG_PREFIX = "[rise-learner]"  # the program the user started, in every message
MAX_UPDATES_PER_ROUND = 16  # updates between two looks at progress messages and milestones
SAMPLE_TIMEOUT_MS = 500  # the rate limiter may hold a sample back this long before the loop looks around
IDLE_SLEEP_S = 0.05


class DistributedLearner:
    """The learner's parts (learner, evaluator, checkpointer, run log; rise_tf/parts) on a Reverb replay,
    with the actors' progress messages in place of a collector."""

    def __init__(self, config, run_dir: str, address: str, *, progress: bool = True, launched: bool = False):
        """launched: started by `rise-train --distributed`, which is then what resumes the run."""
        import reverb
        import tensorflow as tf
        from tf_agents.experimental.distributed.reverb_variable_container import ReverbVariableContainer

        from rise_tf.distributed import tables
        from rise_tf.distributed.weights import make_learner_state, variable_nest
        from rise_tf.parts.collector import EpisodeStats
        from rise_tf.parts.counters import Counters
        from rise_tf.parts.run import Run
        from rise_tf.run_dir import write_env_info
        from rise_tf import builder
        from rise_tf.parts.process import start_training_process

        self.address, self.launched, self.run_dir = address, launched, run_dir
        self.learner_state = make_learner_state()
        self._actor_seen: Dict[str, List[int]] = {}  # actor -> [incarnation, seq] of its newest message
        tables.check_identity(reverb.Client(address), config, address)
        process = start_training_process(config, run_dir, resume=True, log_prefix=LOG_PREFIX)
        self.config = config = process.config
        settings = config.distributed
        self.push_every, self.reconnect_seconds = settings.push_every, settings.reconnect_seconds
        # One lane, for the specs and the action names; the actors hold the training envs.
        self.env = builder.make_env(config, num_envs=1, training=False, parallel="serial")
        write_env_info(run_dir, config, self.env.envs[0].action_meanings)
        train_step = tf.Variable(0, dtype=tf.int64, name="train_step")
        self.agent = builder.make_agent(config, self.env.time_step_spec(), self.env.action_spec(), train_step,
                                        strategy=process.strategy)
        self.counters = Counters()
        self.learner = builder.make_learner(lambda: self.config, self.agent, self._make_replay(), self.counters,
                                            device=process.device, strategy=process.strategy)
        self.stats = EpisodeStats(1)  # the actors' returns, from their progress messages
        self.run_state = Run(
            config=config, run_dir=run_dir, engine="distributed", agent=self.agent, counters=self.counters,
            learner=self.learner, evaluator=builder.make_evaluator(config, self.agent),
            checkpointer=builder.make_checkpointer(config, run_dir, self.agent, train_step),
            run_log=builder.make_run_log(config, run_dir, progress), episode_stats=self.stats,
            tf_agents_metrics=[],  # those observe a driver; the actors run the drivers
            log_prefix=LOG_PREFIX, resume_command=self.resume_command(), save_replay=config.replay.save_replay,
            checkpoint_state=lambda: {"actor_messages": self._actor_seen},
            before_checkpoint=self._server_checkpoint)
        self.run_state.checkpointer.remove_stale_temporaries()
        self.run_state.restore(load_extra=self._load_actor_messages)
        self.variables = variable_nest(self.agent, self.learner_state)
        self.container = ReverbVariableContainer(address, table_names=[tables.VARIABLES_TABLE])
        self._pushed_at = None
        self._idle = False

    def _make_replay(self):
        from rise_tf.config import replay_layout
        from rise_tf.replay.reverb_store import ReverbReplay
        from rise_tf import builder

        return ReverbReplay(replay_layout(self.config), list(builder.network_spec(self.config)),
                            batch_size=self.config.agent.batch_size, prefetch=self.config.train.prefetch_batches,
                            address=self.address, lane_ids=[], sample_timeout_ms=SAMPLE_TIMEOUT_MS,
                            segment_length=self.config.agent.segment_length)

    def _load_actor_messages(self, state: Dict) -> None:
        self._actor_seen = {str(k): list(v) for k, v in state.get("actor_messages", {}).items()}

    def resume_command(self) -> str:
        if self.launched:
            return f"rise-train --resume {self.run_dir} --distributed [--actors N]"
        return f"rise-learner --replay {self.address} --run-dir {self.run_dir}"

    # ------------------------------------------------------------------ the loop
    def run(self) -> Dict[str, float]:
        """Learns at the pace the replay's rate limiter allows until the actors' frames reach the
        budget; Ctrl-C and SIGTERM end it with a checkpoint."""
        from rise_tf.distributed.weights import DONE

        run = self.run_state
        run.start()
        self.publish()  # actors wait for the first weights

        def loop():
            while not run.done():
                self._with_server(self._take_progress_and_publish)
                self._with_server(self._learn_while_allowed)
                run.show_progress()
                if run.milestones() == "solved":
                    return
        interrupted = run.drive(loop)
        if not interrupted:
            self.learner_state[DONE].assign(1.0)
        try:
            self.publish()
        except Exception as error:  # noqa: BLE001 - the server may be gone; the checkpoint comes next
            print(f"{LOG_PREFIX} warning: could not tell the actors ({type(error).__name__})", file=sys.stderr)
        return run.finish(interrupted)

    def _with_server(self, call):
        """`call`, reconnecting when the server was lost (it restarts from its checkpoint)."""
        from rise_tf.distributed import tables
        from rise_tf.parts.learner import NonFiniteLoss
        from rise_tf.parts.run import TrainingError
        from rise_tf.replay.reverb_store import NoBatchYet

        while True:
            try:
                return call()
            except (NoBatchYet, TrainingError, NonFiniteLoss, KeyboardInterrupt):
                raise
            except Exception as error:  # noqa: BLE001 - Reverb raises several types for a lost connection
                if not tables.is_connection_error(error):
                    raise
                self._reconnect(error)

    def _reconnect(self, error: Exception) -> None:
        from tf_agents.experimental.distributed.reverb_variable_container import ReverbVariableContainer

        from rise_tf.distributed import tables
        from rise_tf.parts.run import TrainingError

        print(f"\n{LOG_PREFIX} lost the replay server at {self.address} ({type(error).__name__}); "
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
        replay.max_priority = self.learner.replay.max_priority
        self.learner.replay, self.container = replay, container
        self.publish()
        print(f"{LOG_PREFIX} reconnected to {self.address}", file=sys.stderr, flush=True)

    def _take_progress_and_publish(self) -> int:
        from rise_tf.parts.schedules import exploration_epsilon

        steps = self.drain_progress()
        self.agent.epsilon.assign(exploration_epsilon(self.config.train, self.counters.frames))  # as actors see it
        if self._pushed_at is None or self.counters.updates - self._pushed_at >= self.push_every:
            self.publish()
        if steps == 0 and self._idle:
            time.sleep(IDLE_SLEEP_S)
        return steps

    def _learn_while_allowed(self) -> None:
        """As many updates as the rate limiter allows, up to MAX_UPDATES_PER_ROUND."""
        from rise_tf.replay.reverb_store import NoBatchYet

        self._idle = True
        for _ in range(MAX_UPDATES_PER_ROUND):
            try:
                self.learner.learn_once()
            except NoBatchYet:
                return
            self._idle = False

    def _server_checkpoint(self) -> None:
        """The server's checkpoint first: once a learner checkpoint is on disk, the replay's contents
        are saved too, so a kill -9 of both right after it still restarts the server with data."""
        try:
            self.learner.replay.client.checkpoint()
        except Exception as error:  # noqa: BLE001 - the learner's own checkpoint is what counts here
            print(f"\n{LOG_PREFIX} warning: the replay server could not write a checkpoint "
                  f"({type(error).__name__}); the learner's is saved next", file=sys.stderr)

    # ------------------------------------------------------------------ Reverb
    def publish(self) -> None:
        from rise_tf.distributed.weights import FRAMES, MAX_PRIORITY

        self.learner_state[FRAMES].assign(float(self.counters.frames))
        self.learner_state[MAX_PRIORITY].assign(self.learner.replay.max_priority)
        self.container.push(self.variables)
        self._pushed_at = self.counters.updates

    def drain_progress(self) -> int:
        """Counts each actor message once; returns the agent steps they add."""
        from rise_tf.distributed import tables

        client = self.learner.replay.client
        waiting = int(client.server_info()[tables.PROGRESS_TABLE].current_size)
        if waiting == 0:
            return 0
        added = 0
        messages = tables.take(client, tables.PROGRESS_TABLE, tables.PROGRESS_SPEC, waiting)
        for message in tables.new_progress(self._actor_seen, messages):
            steps, episodes = int(message["agent_steps"]), int(message["episodes"])
            added += steps
            self.run_state.count_collected(steps, episodes)
            if episodes:
                self.stats.recent.extend([float(message["return_sum"]) / episodes] * episodes)
        return added

    def close(self) -> None:
        self.env.close()
        self.run_state.close()


def build_parser() -> argparse.ArgumentParser:
    from rise_tf.config_flags import add_section_flags
    from rise_tf.distributed.actor import add_connection_flags

    parser = argparse.ArgumentParser(prog="rise-learner", description=__doc__.split("\n\n")[0],
                                     epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_connection_flags(parser, "the run's directory: config.json (written from the server's when missing), "
                                 "checkpoints, logs")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--launched", action="store_true", help=argparse.SUPPRESS)  # by rise-train --distributed
    add_section_flags(parser, "train", ["frames"])  # raise the budget, as rise-train --resume --frames
    add_section_flags(parser, "distributed", ["push_every", "reconnect_seconds"])
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    from rise_tf.config_flags import check_given_settings, given_settings
    from rise_tf.distributed.actor import check_address, connect_config

    args = build_parser().parse_args(argv)
    try:
        check_address(args.replay)
        check_given_settings(args)  # before waiting for a server: bad flags need no server to be refused
    except ValueError as error:
        print(f"rise-learner: error: {error}", file=sys.stderr)
        return 2
    from rise_tf.distributed.tables import ServerMismatch
    from rise_tf.parts.run import TrainingError
    from rise_tf.parts.checkpoints import CheckpointError
    try:
        config = connect_config(args.replay, args.run_dir, "rise-learner")
        given = given_settings(args)
        if given:
            config = config.replace(**given).validate()
        learner = DistributedLearner(config, args.run_dir, args.replay, progress=not args.no_progress,
                                     launched=args.launched)
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
