"""`rise-train --distributed`: a replay server, N actors and the learner as processes on this machine,
for one run, supervised.

The learner's progress bar and messages are the run's (its stderr is this terminal); the server and the
actors log to RUN_DIR/logs/. Ctrl-C (or SIGTERM) goes to the learner first, which saves a checkpoint;
then the actors stop (all at once, within seconds) and the server writes its last checkpoint.

Supervision: whatever dies is started again, up to the run's distributed.restart_limit times per
process, and the launcher says so:
- an actor rejoins with new writers on the same lanes;
- the replay server restarts on the same port from its newest Reverb checkpoint; the learner and the
  actors reconnect by themselves (they wait distributed.reconnect_seconds for it);
- the learner restarts from its newest checkpoint (progress the actors reported after that
  checkpoint is not counted again; their steps are in replay).
A learner that exits with code 2 met an error a restart cannot fix (its message says what); the run
then stops. When the learner has spent the budget it tells the actors (done); the launcher then stops
the server. `--resume RUN_DIR --distributed` continues: the server loads its newest checkpoint, the
learner its own.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Dict, List, Optional

from rise_tf.run_dir import PROCESSES_FILE, SERVER_LOG, actor_log, logs_dir, write_json_atomic

SERVER_START_SECONDS = 180.0  # TensorFlow's import and the network build come first
LEARNER_STOP_SECONDS = 120.0  # its last checkpoint (with the replay server's)
ACTOR_STOP_SECONDS = 15.0  # after SIGTERM; actors stop within a few seconds (actor.py), then are killed
SERVER_STOP_SECONDS = 60.0  # its last Reverb checkpoint
POLL_SECONDS = 0.5
LEARNER_ERROR_CODE = 2  # the learner's "fix the input" exit: not restarted
INTERRUPTED_CODE = 130


def free_port() -> int:
    import portpicker

    return portpicker.pick_unused_port()


def _tail(path: str, lines: int = 8) -> str:
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return ""


def _called(name: str) -> str:
    """How the launcher's messages name a process."""
    return {"server": "the replay server", "learner": "the learner"}.get(name, name)


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


class Launcher:
    def __init__(self, run_dir: str, settings, *, progress: bool = True, log=print):
        """settings: the run's DistributedConfig."""
        self.run_dir, self.settings, self.progress, self.log = run_dir, settings, progress, log
        self.num_actors = settings.actors
        self.port = settings.replay_port or free_port()
        self.address = f"localhost:{self.port}"
        self.logs = logs_dir(run_dir)
        os.makedirs(self.logs, exist_ok=True)
        self.server: Optional[subprocess.Popen] = None
        self.learner: Optional[subprocess.Popen] = None
        self.actors: List[Optional[subprocess.Popen]] = [None] * self.num_actors
        self.restarts: Dict[str, int] = {}
        self._stopping = False

    def _spawn(self, module: str, args: List[str], log_name: Optional[str]) -> subprocess.Popen:
        """A child in its own session: a terminal's Ctrl-C reaches only this launcher, which forwards it."""
        out = open(os.path.join(self.logs, log_name), "a") if log_name else None
        return subprocess.Popen([sys.executable, "-m", module, *args], stdout=out, stderr=subprocess.STDOUT if out else None,
                                stdin=subprocess.DEVNULL, start_new_session=True)

    def _write_processes(self) -> None:
        """RUN_DIR/logs/processes.json: the pids of this run's processes (to watch or signal them)."""
        pid = lambda process: process.pid if process is not None else None  # noqa: E731
        write_json_atomic(os.path.join(self.logs, PROCESSES_FILE),
                          {"launcher": os.getpid(), "replay": self.address, "server": pid(self.server),
                           "learner": pid(self.learner), "actors": [pid(a) for a in self.actors],
                           "restarts": self.restarts})

    # ------------------------------------------------------------------ starting
    def _start_server(self) -> None:
        from rise_tf.distributed.actor import wait_for_server

        server_log = os.path.join(self.logs, SERVER_LOG)
        self.server = self._spawn("rise_tf.distributed.server", ["--run-dir", self.run_dir, "--port", str(self.port)],
                                  SERVER_LOG)
        self._write_processes()
        deadline = time.time() + SERVER_START_SECONDS
        while True:
            if self.server.poll() is not None:
                raise RuntimeError(f"the replay server {describe_exit(self.server.returncode)} while starting; "
                                   f"its log ({server_log}) ends:\n{_tail(server_log)}")
            try:
                wait_for_server(self.address, 2.0, "rise-train")
                return
            except ConnectionError:
                if time.time() > deadline:
                    raise RuntimeError(f"the replay server did not answer at {self.address} within "
                                       f"{SERVER_START_SECONDS:.0f} s; its log: {server_log}") from None

    def _start_actor(self, index: int) -> None:
        args = ["--replay", self.address, "--run-dir", self.run_dir, "--actor-id", str(index)]
        self.actors[index] = self._spawn("rise_tf.distributed.actor", args, actor_log(index))
        self._write_processes()

    def _start_learner(self) -> None:
        args = ["--replay", self.address, "--run-dir", self.run_dir, "--launched"] + (
            [] if self.progress else ["--no-progress"])
        self.learner = self._spawn("rise_tf.distributed.learner", args, None)
        self._write_processes()

    def start(self) -> None:
        self._start_server()
        self.log(f"[rise-train] distributed: replay server at {self.address}, {self.num_actors} actor"
                 f"{'s' if self.num_actors != 1 else ''} (logs in {self.logs})")
        for index in range(self.num_actors):
            self._start_actor(index)
        self._start_learner()

    # ------------------------------------------------------------------ supervising
    def _may_restart(self, name: str, code: int, gave_up: str) -> bool:
        """Counts a restart of process `name` (server, learner, actor N), which exited with `code`; once
        its budget (distributed.restart_limit) is spent, says so with `gave_up` and returns False."""
        if self.restarts.get(name, 0) >= self.settings.restart_limit:
            self.log(f"[rise-train] {_called(name)} {describe_exit(code)}, and was restarted "
                     f"{self.settings.restart_limit} times already; {gave_up}")
            return False
        self.restarts[name] = self.restarts.get(name, 0) + 1
        return True

    def _restart_budget_note(self, name: str) -> str:
        return f"restart {self.restarts[name]} of {self.settings.restart_limit}"

    def supervise(self) -> int:
        """Until the learner is done or stopped: restarts whatever dies. Returns the run's exit code."""
        while True:
            code = self.learner.poll()
            if code is not None:
                outcome = self._learner_exited(code)
                if outcome is not None:
                    return outcome
            if self.server.poll() is not None:
                outcome = self._server_exited()
                if outcome is not None:
                    return outcome
            for index, actor in enumerate(self.actors):
                # Code 0: the actor saw the learner's done; anything else is a crash or a kill.
                if actor is not None and actor.poll() not in (None, 0) and not self._stopping:
                    self._actor_exited(index, actor.returncode)
            time.sleep(POLL_SECONDS)

    def _learner_exited(self, code: int) -> Optional[int]:
        """The run's exit code, or None after a restart."""
        if code in (0, INTERRUPTED_CODE, LEARNER_ERROR_CODE) or self._stopping:
            return code
        if not self._may_restart("learner", code, f"stopping the run. Continue it with: rise-train --resume "
                                                     f"{self.run_dir} --distributed"):
            return 1
        self.log(f"[rise-train] the learner {describe_exit(code)}; starting it again from its newest checkpoint "
                 f"({self._restart_budget_note('learner')})")
        self._start_learner()
        return None

    def _server_exited(self) -> Optional[int]:
        code = self.server.returncode
        server_log = os.path.join(self.logs, SERVER_LOG)
        if not self._may_restart("server", code, f"stopping the run. Its log ends:\n{_tail(server_log)}"):
            return 1
        self.log(f"[rise-train] the replay server {describe_exit(code)}; starting it again on {self.address} from "
                 f"its newest checkpoint ({self._restart_budget_note('server')}); the learner and the "
                 f"actors reconnect")
        try:
            self._start_server()
        except RuntimeError as error:
            self.log(f"[rise-train] the replay server could not be restarted: {error}")
            return 1
        self.log(f"[rise-train] the replay server is back at {self.address}")
        return None

    def _actor_exited(self, index: int, code: int) -> None:
        name = f"actor {index}"
        if not self._may_restart(name, code, f"not restarting it. Its log: {os.path.join(self.logs, actor_log(index))}"):
            self.actors[index] = None
            self._write_processes()
            return
        self.log(f"[rise-train] {name} {describe_exit(code)}; starting it again ({self._restart_budget_note(name)})")
        self._start_actor(index)

    # ------------------------------------------------------------------ stopping
    def interrupt_learner(self) -> None:
        if self.learner is not None and self.learner.poll() is None:
            self.learner.send_signal(signal.SIGINT)

    def stop(self) -> None:
        """Learner first (its checkpoint), then every actor at once, then the server (its last checkpoint)."""
        self._stopping = True
        _wait_or_kill([self.learner], signal.SIGINT, LEARNER_STOP_SECONDS)
        deadline = time.time() + ACTOR_STOP_SECONDS  # actors see done from the learner; give them a moment
        while any(a is not None and a.poll() is None for a in self.actors) and time.time() < deadline:
            time.sleep(POLL_SECONDS)
        _wait_or_kill(self.actors, signal.SIGTERM, ACTOR_STOP_SECONDS)
        _wait_or_kill([self.server], signal.SIGTERM, SERVER_STOP_SECONDS)


def _wait_or_kill(processes: List[Optional[subprocess.Popen]], sig, seconds: float) -> None:
    """Sends `sig` to every live process, waits up to `seconds` for all of them, then kills the rest."""
    alive = [p for p in processes if p is not None and p.poll() is None]
    for process in alive:
        process.send_signal(sig)
    deadline = time.time() + seconds
    for process in alive:
        try:
            process.wait(max(deadline - time.time(), 0.01))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def launch(run_dir: str, settings, *, progress: bool = True) -> int:
    """settings: the run's DistributedConfig."""
    launcher = Launcher(run_dir, settings, progress=progress)
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
