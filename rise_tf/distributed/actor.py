"""`rise-actor`: runs a run's env lanes with the collect policy and writes every step to the replay server.

    rise-actor --replay host:8008 --run-dir runs/pong --actor-id 3

Acting is exactly the in-process collector's: the same TF-Agents driver and collect policy, the frozen
embeddings computed once at acting time, the same step rows (LaneWriters, reverb_store.py). Weights,
the learner's frame count (for ε) and the largest priority come from the variables table every
`--pull-every` driver steps; progress messages (steps, episodes, returns) go to the learner through
the actor_progress queue. Lanes are numbered actor_id × num_envs + i; each actor's envs get their own
seeds. With `--epsilon-ladder` actor i of N explores with Ape-X's ε_i = 0.4^(1 + 7 i / (N - 1)) instead
of the run's schedule (the run's distributed settings; the flags below override them).

If the server goes away, the actor says so and retries for `--reconnect-seconds`; it goes on from the
same env state with new writers (their first windows start after the reconnect). It stops when the
learner publishes done, on Ctrl-C / SIGTERM, or when the server stays away.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from typing import List, Optional

from rise_tf.startup import quiet_third_party_startup

quiet_third_party_startup()

from rise_tf.run_dir import RunDirError, has_run_config, load_run_config  # noqa: E402

ACTOR_SEED_STRIDE = 1_000  # actor i's lanes take seeds seed + (i + 1) * stride + lane
PROGRESS_EVERY_S = 1.0
SERVER_WAIT_S = 10.0  # how long rise-actor / rise-learner wait for the server to answer at start
APE_X_EPSILON, APE_X_ALPHA = 0.4, 7.0


def ladder_epsilon(actor_id: int, num_actors: int) -> float:
    """Ape-X's per-actor exploration (Horgan et al. 2018)."""
    if num_actors <= 1:
        return APE_X_EPSILON
    return APE_X_EPSILON ** (1 + APE_X_ALPHA * actor_id / (num_actors - 1))


class LearnerDone(Exception):
    """The learner published done while this actor waited for room in the replay."""


class ServerGone(RuntimeError):
    """The replay server did not come back within the reconnect time."""


class Actor:
    def __init__(self, config, address: str, actor_id: int, *, fixed_epsilon: Optional[float] = None, log=print):
        """Acts with the in-process collector (rise_tf/parts/collector.py), its steps going to Reverb.
        fixed_epsilon: explore with this ε (the Ape-X ladder) instead of the run's schedule."""
        import numpy as np
        import tensorflow as tf

        from rise_tf.distributed.weights import make_learner_state, variable_nest
        from rise_tf.parts.collector import Collector
        from rise_tf import builder

        self.config, self.address, self.actor_id = config, address, actor_id
        self.pull_every, self.reconnect_seconds = config.distributed.pull_every, config.distributed.reconnect_seconds
        self.fixed_epsilon, self.log = fixed_epsilon, log
        self.num_envs = config.env.num_envs
        self.lane_ids = actor_id * self.num_envs + np.arange(self.num_envs)
        self.env = builder.make_env(config, seed_offset=ACTOR_SEED_STRIDE * (actor_id + 1), training=True)
        self.agent = builder.make_agent(config, self.env.time_step_spec(), self.env.action_spec(),
                                        tf.Variable(0, dtype=tf.int64))
        self.learner_state = make_learner_state()
        self.variables = variable_nest(self.agent, self.learner_state)
        self.collector = Collector(self.env, self.agent.collect_policy, self._write, epsilon_variable=self.agent.epsilon,
                                   epsilon=self._epsilon)
        self.stats = self.collector.stats
        self.incarnation, self.seq = time.time_ns(), 0
        self._lost: Optional[Exception] = None
        self._reported = (0, 0, 0.0)  # agent steps, episodes, return sum at the last message
        self._connect(first=True)

    # ------------------------------------------------------------------ server
    def _connect(self, first: bool = False) -> None:
        """A client, the identity check, the variable container and new lane writers."""
        import reverb
        from tf_agents.experimental.distributed.reverb_variable_container import ReverbVariableContainer

        from rise_tf.distributed import tables
        from rise_tf.distributed.weights import MAX_PRIORITY
        from rise_tf.replay.reverb_store import LaneWriters
        from rise_tf.config import replay_layout

        self.client = reverb.Client(self.address)
        tables.check_identity(self.client, self.config, self.address)
        self.container = ReverbVariableContainer(self.address, table_names=[tables.VARIABLES_TABLE])
        rows = None if first else self.writers.rows_written.copy()
        self.writers = LaneWriters(self.client, replay_layout(self.config), self.lane_ids,
                                   priority=lambda: float(self.learner_state[MAX_PRIORITY]),
                                   on_blocked=self._check_done, segment_length=self.config.agent.segment_length)
        if rows is not None:
            self.writers.rows_written[:] = rows

    def _reconnect(self, error: Exception) -> None:
        from rise_tf.distributed.tables import retry_until_back

        self.log(f"[rise-actor {self.actor_id}] lost the replay server at {self.address} "
                 f"({type(error).__name__}: {str(error).splitlines()[0][:120]}); retrying for {self.reconnect_seconds:.0f} s")
        try:
            retry_until_back(self._connect, self.reconnect_seconds)
        except TimeoutError:
            raise ServerGone(f"the replay server at {self.address} did not come back within "
                             f"{self.reconnect_seconds:.0f} s; restart it (rise-replay-server --run-dir RUN_DIR) and "
                             f"this actor") from None
        self.log(f"[rise-actor {self.actor_id}] reconnected to {self.address}")
        self._lost = None

    # ------------------------------------------------------------------ acting
    def _write(self, trajectory) -> None:
        """Driver observer. While the server is lost, steps are dropped (the driver goes on; the
        reconnect happens after its step)."""
        from rise_tf.distributed.tables import is_connection_error

        if self._lost is not None:
            return
        embedding = trajectory.policy_info.get("embedding") if isinstance(trajectory.policy_info, dict) else None
        try:
            self.writers.append(trajectory.step_type, trajectory.observation, embedding, trajectory.action,
                                trajectory.reward, trajectory.discount)
        except LearnerDone:
            raise
        except Exception as error:  # noqa: BLE001 - Reverb raises several types for a lost connection
            if not is_connection_error(error):
                raise
            self._lost = error

    def _check_done(self) -> None:
        if self.pull_weights():
            raise LearnerDone()

    def pull_weights(self) -> bool:
        """Fresh weights and learner state; True when the learner says it is done."""
        from rise_tf.distributed.weights import DONE

        self.container.update(self.variables)
        return bool(self.learner_state[DONE] > 0.5)

    def _epsilon(self) -> float:
        from rise_tf.distributed.weights import FRAMES
        from rise_tf.parts.schedules import exploration_epsilon

        if self.fixed_epsilon is not None:
            return self.fixed_epsilon
        return exploration_epsilon(self.config.train, int(self.learner_state[FRAMES]))

    def _report(self) -> None:
        """A progress message with the counts since the previous one."""
        import numpy as np

        from rise_tf.distributed.tables import PROGRESS_TABLE

        steps, episodes, returns = self.stats.agent_steps, self.stats.episodes, self.stats.return_sum
        last_steps, last_episodes, last_returns = self._reported
        self.client.insert({"actor": np.int32(self.actor_id), "incarnation": np.int64(self.incarnation),
                            "seq": np.int64(self.seq), "agent_steps": np.int64(steps - last_steps),
                            "episodes": np.int64(episodes - last_episodes),
                            "return_sum": np.float64(returns - last_returns)}, priorities={PROGRESS_TABLE: 1.0})
        self.seq += 1
        self._reported = (steps, episodes, returns)

    def run(self, max_driver_steps: Optional[int] = None) -> str:
        """Acts until the learner is done (returns 'done'), or `max_driver_steps` ('limit')."""
        done = self._with_server(self.pull_weights)  # waits for the learner's first weights
        last_report, driver_steps = time.time(), 0
        while not done:
            if max_driver_steps is not None and driver_steps >= max_driver_steps:
                return "limit"
            try:
                self.collector.step()
            except LearnerDone:
                break
            if self._lost is not None:
                self._reconnect(self._lost)
            driver_steps += 1
            if time.time() - last_report >= PROGRESS_EVERY_S:
                self._with_server(self._report)
                last_report = time.time()
            if driver_steps % self.pull_every == 0:
                done = self._with_server(self.pull_weights)
        self._with_server(self._report)
        return "done"

    def _with_server(self, call):
        from rise_tf.distributed.tables import ServerMismatch, is_connection_error

        while True:
            try:
                return call()
            except (ServerMismatch, KeyboardInterrupt):
                raise
            except Exception as error:  # noqa: BLE001 - Reverb raises several types for a lost connection
                if not is_connection_error(error):
                    raise
                self._reconnect(error)

    def close(self) -> None:
        try:
            self.writers.close()
        except Exception:  # noqa: BLE001 - the server may be gone already
            pass
        self.collector.close()


def add_connection_flags(parser: argparse.ArgumentParser, run_dir_help: str) -> None:
    """--replay and --run-dir, as rise-actor and rise-learner take them."""
    parser.add_argument("--replay", required=True, metavar="HOST:PORT", help="the run's replay server")
    parser.add_argument("--run-dir", required=True, help=run_dir_help)


def build_parser() -> argparse.ArgumentParser:
    from rise_tf.config_flags import add_section_flags

    parser = argparse.ArgumentParser(prog="rise-actor", description=__doc__.split("\n\n")[0],
                                     epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_connection_flags(parser, "the run's directory (its config.json; written from the server's when missing)")
    parser.add_argument("--actor-id", type=int, default=0, help="0, 1, ...: names the actor's lanes and seeds")
    add_section_flags(parser, "distributed", ["pull_every", "reconnect_seconds", "epsilon_ladder", "actors"])
    return parser


def connect_config(address: str, run_dir: str, program: str):
    """Waits for the server, then the run's config: from RUN_DIR/config.json (checked against the
    server's), or from the server."""
    import reverb

    from rise_tf.distributed import tables
    from rise_tf.run_dir import write_run_config
    from rise_tf.config import RunConfig

    wait_for_server(address, SERVER_WAIT_S, program)
    client = reverb.Client(address)
    record = tables.read_identity(client, address)
    if has_run_config(run_dir):
        config = load_run_config(run_dir)
        tables.check_identity(client, config, address)
        return config
    config = RunConfig.from_dict(record["config"])
    write_run_config(run_dir, config)
    print(f"[{program}] took the run's config from the server at {address} into {run_dir}/config.json")
    return config


def check_address(address: str) -> str:
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"--replay must be HOST:PORT (e.g. localhost:8008), got {address!r}")
    return address


def wait_for_server(address: str, seconds: float, program: str) -> None:
    """Raises ConnectionError naming the address when no Reverb server answers there in time."""
    import reverb

    deadline = time.time() + seconds
    while True:
        try:
            reverb.Client(address).server_info(timeout=2)
            return
        except Exception as error:  # noqa: BLE001 - unreachable, refused, not gRPC...
            if time.time() >= deadline:
                raise ConnectionError(f"no replay server answers at {address} ({type(error).__name__}); start it with "
                                      f"rise-replay-server --run-dir RUN_DIR --port PORT, or fix --replay") from None
            time.sleep(1.0)


STOP_GRACE_S = 5.0  # after SIGTERM: time to stop cleanly before the process ends itself


def stop_on_sigterm(prefix: str) -> None:
    """SIGTERM stops the actor within STOP_GRACE_S, even while a Reverb call blocks the main thread (a
    Python signal handler would wait for that call to return, e.g. for a server that is gone). The
    C-level handler writes the signal to a wake-up socket at once, in whichever thread it lands; a
    watcher thread reads it, interrupts the main thread, and ends the process if the main thread has
    not finished by then. An actor holds nothing a checkpoint needs."""
    import _thread
    import socket
    import threading

    receiver, sender = socket.socketpair()
    sender.setblocking(False)
    signal.signal(signal.SIGTERM, lambda *_: None)  # a Python handler: the C handler (and wake-up) only run then
    signal.set_wakeup_fd(sender.fileno(), warn_on_full_buffer=False)

    def watch():
        while True:
            received = receiver.recv(64)
            if signal.SIGTERM in received:
                break
        _thread.interrupt_main()
        time.sleep(STOP_GRACE_S)
        print(f"{prefix} stopped (SIGTERM; a call to the replay server did not return within "
              f"{STOP_GRACE_S:.0f} s)", flush=True)
        os._exit(130)

    watcher = threading.Thread(target=watch, name="rise-actor-sigterm", daemon=True)
    watcher.wakeup_socket = sender  # alive as long as the process: the C handler writes to its descriptor
    watcher.start()


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    stop_on_sigterm(f"[rise-actor {args.actor_id}]")  # first: before any library starts a thread
    print(f"[rise-actor {args.actor_id}] connecting to the replay server at {args.replay}", flush=True)
    try:
        return _run(args)
    except KeyboardInterrupt:
        print(f"[rise-actor {args.actor_id}] stopped before it started acting", flush=True)
        return 130


def _run(args) -> int:
    from rise_tf.config_flags import check_given_settings, given_settings

    try:
        check_address(args.replay)
        check_given_settings(args)  # before waiting for a server: bad flags need no server to be refused
        if args.actor_id < 0:
            raise ValueError(f"--actor-id must be >= 0, got {args.actor_id}")
    except ValueError as error:
        print(f"rise-actor: error: {error}", file=sys.stderr)
        return 2
    from rise_tf.distributed.tables import ServerMismatch
    try:
        config = connect_config(args.replay, args.run_dir, "rise-actor")
        given = given_settings(args)
        if given:
            config = config.replace(**given).validate()
        settings = config.distributed
        if settings.epsilon_ladder and args.actor_id >= settings.actors:
            raise ValueError(f"--actor-id {args.actor_id} is not one of the ladder's {settings.actors} actors "
                             f"(--actors sets how many)")
        epsilon = ladder_epsilon(args.actor_id, settings.actors) if settings.epsilon_ladder else None
        actor = Actor(config, args.replay, args.actor_id, fixed_epsilon=epsilon)
    except (ConnectionError, ServerMismatch, RunDirError, ValueError) as error:
        print(f"rise-actor: error: {error}", file=sys.stderr)
        return 2
    print(f"[rise-actor {args.actor_id}] acting for {config.algo} on {config.env_name} with lanes "
          f"{actor.lane_ids[0]}..{actor.lane_ids[-1]}, writing to {args.replay}", flush=True)
    try:
        outcome = actor.run()
        print(f"[rise-actor {args.actor_id}] the learner is done; {actor.stats.agent_steps:,} agent steps written",
              flush=True)
        return 0 if outcome == "done" else 1
    except KeyboardInterrupt:
        print(f"[rise-actor {args.actor_id}] stopped; {actor.stats.agent_steps:,} agent steps written", flush=True)
        return 130
    except ServerGone as error:
        print(f"rise-actor: error: {error}", file=sys.stderr)
        return 3
    finally:
        actor.close()


if __name__ == "__main__":
    sys.exit(main())
