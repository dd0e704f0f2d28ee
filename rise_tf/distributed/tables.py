"""The tables a run's Reverb server holds, and the checks a process makes when it connects (issue 11).

    rise_windows   the replay (reverb_store.make_table), with a SampleToInsertRatio rate limiter that
                   holds the run's replay ratio however many actors write
    variables      the learner's policy variables and train step, for actors to pull (the table
                   TF-Agents' ReverbVariableContainer reads: max_size 1, with a signature)
    actor_progress a queue of actors' progress messages (steps, episodes, returns since the last one),
                   drained by the learner: its frame counter is their sum
    run_identity   one item naming the run: what makes two processes' data and models compatible
                   (env, network, replay and agent settings; not the frame budget) and the formats

A process that connects to a server of another run, another config or another format version is
refused with both sides named (check_identity), before it writes anything.
"""
from __future__ import annotations

import hashlib
import json
import math
import time
from typing import Any, Callable, Dict, TypeVar

import numpy as np
import tensorflow as tf

from rise_tf.replay.reverb_store import TABLE as REPLAY_TABLE, import_reverb, make_table
from rise_tf.config import RunConfig, replay_layout
from rise_tf.parts.updates import warmup_agent_steps

VARIABLES_TABLE = "variables"  # tf_agents.experimental.distributed.reverb_variable_container.DEFAULT_TABLE
IDENTITY_TABLE = "run_identity"
PROGRESS_TABLE = "actor_progress"
PROGRESS_QUEUE_SIZE = 100_000  # messages held while no learner drains them (one per ~second per actor)
# One progress message: which actor (and which start of it), its sequence number, and its counts since
# the previous message. The learner keeps the newest (incarnation, seq) per actor and skips any older,
# so a message is never counted twice (e.g. after the server restarts from a checkpoint).
PROGRESS_SPEC = {"actor": tf.TensorSpec([], tf.int32), "incarnation": tf.TensorSpec([], tf.int64),
                 "seq": tf.TensorSpec([], tf.int64), "agent_steps": tf.TensorSpec([], tf.int64),
                 "episodes": tf.TensorSpec([], tf.int64), "return_sum": tf.TensorSpec([], tf.float64)}
FORMAT_VERSION = 1  # of the items and the variables nest; raised when either changes
# The sections whose settings the replay's contents and the networks depend on.
IDENTITY_SECTIONS = ("env", "network", "replay", "agent")


class ServerMismatch(RuntimeError):
    """The server serves another run, config or format."""


def identity(config: RunConfig) -> Dict[str, Any]:
    settings = {section: getattr(config, section).__dict__ for section in IDENTITY_SECTIONS}
    settings["algo"] = config.algo
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return {"config_fingerprint": digest, "format_version": FORMAT_VERSION, "algo": config.algo,
            "env": config.env_name}


def rate_limiter_settings(config: RunConfig) -> Dict[str, float]:
    """Samples per inserted item = updates per agent step × batch size; sampling starts at the
    warm-up (parts/updates.py); the learner may run ahead or fall behind by `max_update_backlog`
    updates (error_buffer, in samples)."""
    batch = config.agent.batch_size
    samples_per_insert = config.train.replay_ratio * batch
    return {"samples_per_insert": samples_per_insert,
            "min_size_to_sample": max(warmup_agent_steps(config.train.warmup_frames, config.frames_per_agent_step), batch),
            "error_buffer": max(config.train.max_update_backlog * batch, 2 * samples_per_insert)}


def rate_limiter(config: RunConfig):
    return import_reverb().rate_limiters.SampleToInsertRatio(**rate_limiter_settings(config))


def tables(config: RunConfig, variable_specs) -> list:
    reverb = import_reverb()
    identity_spec = {"identity": tf.TensorSpec([], tf.string)}
    return [
        make_table(replay_layout(config), segment_length=config.agent.segment_length, rate_limiter=rate_limiter(config)),
        reverb.Table(name=VARIABLES_TABLE, sampler=reverb.selectors.Uniform(), remover=reverb.selectors.Fifo(),
                     rate_limiter=reverb.rate_limiters.MinSize(1), max_size=1, max_times_sampled=0,
                     signature=variable_specs),
        reverb.Table.queue(PROGRESS_TABLE, max_size=PROGRESS_QUEUE_SIZE, signature=PROGRESS_SPEC),
        reverb.Table(name=IDENTITY_TABLE, sampler=reverb.selectors.Uniform(), remover=reverb.selectors.Fifo(),
                     rate_limiter=reverb.rate_limiters.MinSize(1), max_size=1, max_times_sampled=0,
                     signature=identity_spec),
    ]


def new_progress(seen: Dict[str, list], messages) -> list:
    """The messages not counted before, in order; `seen` (actor -> [incarnation, seq] of its newest
    counted message) is updated. A restarted actor has a newer incarnation; a server restored from a
    checkpoint may hand out messages again, which are skipped."""
    fresh = []
    for message in messages:
        actor, stamp = str(int(message["actor"])), [int(message["incarnation"]), int(message["seq"])]
        if actor in seen and stamp <= seen[actor]:
            continue
        seen[actor] = stamp
        fresh.append(message)
    return fresh


def write_identity(client, config: RunConfig) -> None:
    """The run's identity and its whole config (processes on other machines read it from here)."""
    record = dict(identity(config), config=config.to_dict())
    client.insert({"identity": np.array(json.dumps(record, sort_keys=True).encode(), dtype=object)},
                  priorities={IDENTITY_TABLE: 1.0})


def read_identity(client, address: str, timeout_s: float = 10.0) -> Dict[str, Any]:
    """What write_identity wrote; ServerMismatch when `address` is not a rise-tf replay server."""
    info = client.server_info(timeout=int(math.ceil(timeout_s)))
    if IDENTITY_TABLE not in info or REPLAY_TABLE not in info:
        raise ServerMismatch(f"{address} is a Reverb server, but not a rise-tf replay server (tables: "
                             f"{', '.join(sorted(info)) or 'none'}). Start one with rise-replay-server --run-dir RUN_DIR.")
    (record,) = take(client, IDENTITY_TABLE, {"identity": tf.TensorSpec([], tf.string)}, 1)
    value = np.asarray(record["identity"]).item()
    return json.loads(value.decode() if isinstance(value, bytes) else value)


def take(client, table: str, spec, count: int) -> list:
    """`count` single-step items of `table` as dicts of numpy values (a queue table removes them)."""
    samples = client.sample(table, num_samples=count, emit_timesteps=False)
    return [tf.nest.pack_sequence_as(spec, [np.asarray(column)[0] for column in sample.data]) for sample in samples]


def check_identity(client, config: RunConfig, address: str, timeout_s: float = 10.0) -> None:
    """Raises ServerMismatch unless the server at `address` serves this run's config and formats."""
    theirs = read_identity(client, address, timeout_s)
    ours = identity(config)
    if theirs.get("format_version") != ours["format_version"]:
        raise ServerMismatch(f"the replay server at {address} writes format version {theirs.get('format_version')}, "
                             f"this rise-tf writes {ours['format_version']}: run the same rise-tf version everywhere.")
    if theirs.get("config_fingerprint") != ours["config_fingerprint"]:
        raise ServerMismatch(
            f"the replay server at {address} serves another run or config ({theirs.get('algo')} on {theirs.get('env')}, "
            f"config {theirs.get('config_fingerprint')}); this process has {ours['algo']} on {ours['env']}, config "
            f"{ours['config_fingerprint']}. Point every process at the same --run-dir (its config.json), or start a "
            f"server for this run.")


def is_connection_error(error: Exception) -> bool:
    """Whether a Reverb call failed because the server went away (Reverb raises several types)."""
    text = f"{type(error).__name__} {error}".lower()
    return any(word in text for word in ("unavailable", "connect", "deadline", "socket", "cancelled", "closed"))


T = TypeVar("T")
RETRY_EVERY_S = 2.0


def retry_until_back(attempt: Callable[[], T], seconds: float) -> T:
    """`attempt()` every RETRY_EVERY_S until it succeeds (a server came back), for up to `seconds`;
    ServerMismatch passes through (a server of another run is not coming back); TimeoutError at the end."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        time.sleep(RETRY_EVERY_S)
        try:
            return attempt()
        except ServerMismatch:
            raise
        except Exception:  # noqa: BLE001 - not back yet
            continue
    raise TimeoutError(f"not back within {seconds:.0f} s")
