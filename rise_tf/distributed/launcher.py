"""`rise-train --distributed --actors N`: a replay server, N actors and the learner as processes on
this machine, for one run.

The learner's progress bar and messages are the run's (its stderr is this terminal); the server and the
actors log to RUN_DIR/logs/. Ctrl-C (or SIGTERM) goes to the learner first, which saves a checkpoint;
then the actors stop and the server writes its last checkpoint. An actor that dies is started again
(it rejoins: new writers, the same lanes). When the learner has spent the budget it tells the actors
(done); the launcher then stops the server. `--resume RUN_DIR --distributed` continues: the server
loads its newest checkpoint, the learner its own.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import List, Optional

SERVER_START_SECONDS = 180.0  # TensorFlow's import and the network build come first
STOP_SECONDS = 60.0
ACTOR_RESTART_LIMIT = 5
PROCESSES_FILE = "processes.json"


def free_port() -> int:
    import portpicker

    return portpicker.pick_unused_port()


def _tail(path: str, lines: int = 8) -> str:
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return ""


class Launcher:
    def __init__(self, run_dir: str, actors: int, *, port: Optional[int] = None, progress: bool = True,
                 epsilon_ladder: bool = False, log=print):
        self.run_dir, self.num_actors, self.progress, self.epsilon_ladder, self.log = (
            run_dir, actors, progress, epsilon_ladder, log)
        self.port = port or free_port()
        self.address = f"localhost:{self.port}"
        self.logs = os.path.join(run_dir, "logs")
        os.makedirs(self.logs, exist_ok=True)
        self.server: Optional[subprocess.Popen] = None
        self.learner: Optional[subprocess.Popen] = None
        self.actors: List[Optional[subprocess.Popen]] = [None] * actors
        self.restarts = [0] * actors
        self._stopping = False

    def _spawn(self, module: str, args: List[str], log_name: Optional[str]) -> subprocess.Popen:
        """A child in its own session: a terminal's Ctrl-C reaches only this launcher, which forwards it."""
        out = open(os.path.join(self.logs, log_name), "a") if log_name else None
        return subprocess.Popen([sys.executable, "-m", module, *args], stdout=out, stderr=subprocess.STDOUT if out else None,
                                stdin=subprocess.DEVNULL, start_new_session=True)

    def _start_actor(self, index: int) -> None:
        args = ["--replay", self.address, "--run-dir", self.run_dir, "--actor-id", str(index)]
        if self.epsilon_ladder:
            args += ["--epsilon-ladder", str(self.num_actors)]
        self.actors[index] = self._spawn("rise_tf.distributed.actor", args, f"actor-{index}.log")
        self._write_processes()

    def _write_processes(self) -> None:
        """RUN_DIR/logs/processes.json: the pids of this run's processes (to watch or signal them)."""
        from rise_tf.run_dir import write_json_atomic

        pid = lambda process: process.pid if process is not None else None  # noqa: E731
        write_json_atomic(os.path.join(self.logs, PROCESSES_FILE),
                          {"launcher": os.getpid(), "replay": self.address, "server": pid(self.server),
                           "learner": pid(self.learner), "actors": [pid(a) for a in self.actors]})

    def start(self) -> None:
        from rise_tf.distributed.actor import wait_for_server

        server_log = os.path.join(self.logs, "replay_server.log")
        self.server = self._spawn("rise_tf.distributed.server", ["--run-dir", self.run_dir, "--port", str(self.port)],
                                  "replay_server.log")
        deadline = time.time() + SERVER_START_SECONDS
        while True:
            if self.server.poll() is not None:
                raise RuntimeError(f"the replay server exited with code {self.server.returncode} while starting; "
                                   f"its log ({server_log}) ends:\n{_tail(server_log)}")
            try:
                wait_for_server(self.address, 2.0, "rise-train")
                break
            except ConnectionError:
                if time.time() > deadline:
                    raise RuntimeError(f"the replay server did not answer at {self.address} within "
                                       f"{SERVER_START_SECONDS:.0f} s; its log: {server_log}") from None
        self.log(f"[rise-train] distributed: replay server at {self.address}, {self.num_actors} actor"
                 f"{'s' if self.num_actors != 1 else ''} (logs in {self.logs})")
        for index in range(self.num_actors):
            self._start_actor(index)
        learner_args = ["--replay", self.address, "--run-dir", self.run_dir, "--launched"] + (
            [] if self.progress else ["--no-progress"])
        self.learner = self._spawn("rise_tf.distributed.learner", learner_args, None)
        self._write_processes()

    def supervise(self) -> int:
        """Until the learner exits: restarts dead actors. Returns the learner's exit code."""
        while True:
            code = self.learner.poll()
            if code is not None:
                return code
            for index, actor in enumerate(self.actors):
                # Code 0: the actor saw the learner's done; anything else is a crash or a kill.
                if actor is not None and actor.poll() not in (None, 0) and not self._stopping:
                    if self.restarts[index] >= ACTOR_RESTART_LIMIT:
                        self.log(f"[rise-train] actor {index} exited (code {actor.returncode}) "
                                 f"{ACTOR_RESTART_LIMIT} times; not restarting it. Its log: "
                                 f"{os.path.join(self.logs, f'actor-{index}.log')}")
                        self.actors[index] = None
                        continue
                    self.restarts[index] += 1
                    self.log(f"[rise-train] actor {index} exited (code {actor.returncode}); starting it again")
                    self._start_actor(index)
            if self.server.poll() is not None:
                self.log(f"[rise-train] the replay server exited (code {self.server.returncode}); its log ends:\n"
                         f"{_tail(os.path.join(self.logs, 'replay_server.log'))}")
                return 1
            time.sleep(0.5)

    def interrupt_learner(self) -> None:
        if self.learner is not None and self.learner.poll() is None:
            self.learner.send_signal(signal.SIGINT)

    def stop(self) -> None:
        """Learner first (its checkpoint), then actors, then the server (its last checkpoint)."""
        self._stopping = True
        _wait_or_kill(self.learner, signal.SIGINT)
        deadline = time.time() + 15.0  # actors see done from the learner; give them a moment
        while any(a is not None and a.poll() is None for a in self.actors) and time.time() < deadline:
            time.sleep(0.5)
        for actor in self.actors:
            _wait_or_kill(actor, signal.SIGTERM)
        _wait_or_kill(self.server, signal.SIGTERM)


def _wait_or_kill(process: Optional[subprocess.Popen], sig) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(sig)
    try:
        process.wait(STOP_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def launch(run_dir: str, actors: int, *, port: Optional[int] = None, progress: bool = True,
           epsilon_ladder: bool = False) -> int:
    launcher = Launcher(run_dir, actors, port=port, progress=progress, epsilon_ladder=epsilon_ladder)
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in previous:
        signal.signal(sig, lambda *_: launcher.interrupt_learner())
    try:
        launcher.start()
        code = launcher.supervise()
    except RuntimeError as error:
        print(f"rise-train: error: {error}", file=sys.stderr)
        code = 2
    finally:
        launcher.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return code
