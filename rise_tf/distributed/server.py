"""`rise-replay-server`: a run's Reverb server (replay, variables, actor progress, run identity).

    rise-replay-server --run-dir runs/pong --port 8008 --game Pong --algo rise-btr   # a new run
    rise-replay-server --run-dir runs/pong --port 8008                               # its config.json

It keeps its Reverb checkpoints in RUN_DIR/replay_server/ (the learner asks for one at each of its
checkpoints) and loads the newest when it starts, so a restarted server continues with the replay's
contents. It writes RUN_DIR/replay_server.json (its address) for the one-machine launcher. Ctrl-C or
SIGTERM: one last checkpoint, then it stops.
"""
from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
import threading
from typing import List, Optional

from rise_tf.startup import quiet_third_party_startup

quiet_third_party_startup()

from rise_tf.run_dir import (SERVER_DIR, SERVER_FILE, RunDirError, check_writable_run_dir, has_run_config,  # noqa: E402
                             load_run_config, write_json_atomic)

DEFAULT_PORT = 8008


def start(config, run_dir: str, port: int):
    """Starts the server (loading its newest checkpoint) and writes the run's identity into it."""
    import reverb
    import tensorflow as tf

    from rise_tf.distributed import tables
    from rise_tf.distributed.weights import make_learner_state, variable_nest, variable_specs
    from rise_tf import builder

    env = builder.make_env(config, num_envs=1, training=False, parallel="serial")
    try:
        agent = builder.make_agent(config, env.time_step_spec(), env.action_spec(), tf.Variable(0, dtype=tf.int64))
    finally:
        env.close()
    specs = variable_specs(variable_nest(agent, make_learner_state()))
    checkpointer = reverb.checkpointers.DefaultCheckpointer(os.path.join(run_dir, SERVER_DIR))
    server = reverb.Server(tables.tables(config, specs), port=port, checkpointer=checkpointer)
    address = f"localhost:{server.port}"
    tables.write_identity(reverb.Client(address), config)
    return server, address


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("", port))
        except OSError:
            return False
    return True


def build_parser() -> argparse.ArgumentParser:
    from rise_tf.config_flags import add_config_flags

    parser = argparse.ArgumentParser(prog="rise-replay-server", description=__doc__.split("\n\n")[0],
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--run-dir", required=True, help="the run: its config.json, or a new one from the flags below")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port to serve on [default: {DEFAULT_PORT}]")
    add_config_flags(parser)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    from rise_tf.config_flags import config_from_args

    parser = build_parser()
    args = parser.parse_args(argv)
    given = any(value is not None for key, value in vars(args).items() if "." in key) or args.algo
    try:
        if not 0 < args.port < 65536:
            raise ValueError(f"--port must be in 1..65535, got {args.port}")
        existing = has_run_config(args.run_dir)
        if existing:
            config = load_run_config(args.run_dir)
            if given and config_from_args(args).differences(config):
                raise ValueError(f"{args.run_dir} already holds a run with its own config.json; give no config flags "
                                 f"to serve it, or choose a new --run-dir")
        elif not given:
            raise ValueError(f"{args.run_dir} holds no run (no config.json): give the run's settings "
                             f"(e.g. --game Pong --algo rise-btr) to start one")
        else:
            config = config_from_args(args)
        if not port_is_free(args.port):
            raise ValueError(f"port {args.port} is in use (another server?): stop it, or pick another --port")
        check_writable_run_dir(args.run_dir)
    except (ValueError, RunDirError) as error:
        print(f"rise-replay-server: error: {error}", file=sys.stderr)
        return 2
    if not existing:
        from rise_tf.run_dir import write_run_config
        write_run_config(args.run_dir, config)

    server, address = start(config, args.run_dir, args.port)
    write_json_atomic(os.path.join(args.run_dir, SERVER_FILE), {"address": address, "port": server.port,
                                                                "pid": os.getpid()})
    print(f"[rise-replay-server] serving {config.algo} on {config.env_name} at {address} "
          f"(checkpoints in {os.path.join(args.run_dir, SERVER_DIR)}); Ctrl-C stops it", flush=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    import reverb
    path = reverb.Client(address).checkpoint()
    server.stop()
    print(f"[rise-replay-server] stopped; last checkpoint {path}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
