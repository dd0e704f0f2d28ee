"""The distributed engine on Reverb (issue 11): the run's identity, actors and the learner holding the
replay ratio, progress counted once, the launcher end to end, and (slow) the faults it survives."""
import json
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

pytest.importorskip("reverb")

from rise_tf.distributed import tables  # noqa: E402
from rise_tf.config import make_config  # noqa: E402

CLI_ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")


def tiny_config(**train):
    return make_config("rise-dqn", "MemoryCorridor", env={"num_envs": 2}, replay={"capacity": 2_000},
                       train={"frames": 800, "warmup_frames": 160, "eval_every_frames": 0, "log_every_frames": 400,
                              "checkpoint_every_frames": 400, **train})


@pytest.fixture
def run_server(tmp_path):
    from rise_tf.distributed import server as replay_server
    from rise_tf.run_dir import write_run_config

    started = []

    def start(config, run_dir=None):
        run_dir = run_dir or str(tmp_path / "run")
        write_run_config(run_dir, config)
        server, address = replay_server.start(config, run_dir, port=None)
        started.append(server)
        return server, address, run_dir
    yield start
    for server in started:
        server.stop()


def test_a_process_of_another_config_or_format_or_a_foreign_server_is_refused(run_server):
    import reverb

    config = tiny_config()
    _, address, _ = run_server(config)
    client = reverb.Client(address)
    tables.check_identity(client, config, address)  # the same config passes
    tables.check_identity(client, config.replace(train={"frames": 10_000}), address)  # a new budget too
    with pytest.raises(tables.ServerMismatch, match="another run or config"):
        tables.check_identity(client, config.replace(agent={"gamma": 0.5}), address)
    record = tables.read_identity(client, address)
    assert record["config"]["agent"]["gamma"] == config.agent.gamma  # actors elsewhere read the config here
    client.insert({"identity": np.array(json.dumps(dict(record, format_version=0)).encode(), dtype=object)},
                  priorities={tables.IDENTITY_TABLE: 1.0})
    with pytest.raises(tables.ServerMismatch, match="format version 0"):
        tables.check_identity(client, config, address)
    foreign = reverb.Server([reverb.Table.queue("other", 10)], port=None)
    try:
        with pytest.raises(tables.ServerMismatch, match="not a rise-tf replay server"):
            tables.check_identity(reverb.Client(f"localhost:{foreign.port}"), config, f"localhost:{foreign.port}")
    finally:
        foreign.stop()


def test_progress_messages_count_once_across_restarts():
    def message(actor, incarnation, seq):
        return {"actor": actor, "incarnation": incarnation, "seq": seq}
    seen = {}
    first = tables.new_progress(seen, [message(0, 5, 0), message(0, 5, 1), message(1, 7, 0)])
    assert len(first) == 3
    # a server restored from a checkpoint hands out (0, 5, 1) again; actor 0 restarted (incarnation 9)
    again = tables.new_progress(seen, [message(0, 5, 1), message(0, 9, 0), message(1, 7, 0), message(1, 7, 1)])
    assert [(m["actor"], m["incarnation"], m["seq"]) for m in again] == [(0, 9, 0), (1, 7, 1)]


def test_an_actor_and_the_learner_hold_the_replay_ratio_and_stop_together(run_server):
    """In one process (threads): the learner makes the in-process trainer's number of updates within the
    rate limiter's buffer, counts the actor's steps, and the actor stops when the learner is done."""
    from rise_tf.distributed.actor import Actor
    from rise_tf.distributed import tables
    from rise_tf.distributed.learner import DistributedLearner

    config = tiny_config().replace(distributed={"pull_every": 10})
    _, address, run_dir = run_server(config)
    learner = DistributedLearner(config, run_dir, address, progress=False)
    outcome = {}

    def act():
        actor = Actor(config, address, 0)
        try:
            outcome["result"], outcome["steps"] = actor.run(), actor.stats.agent_steps
        finally:
            actor.close()
    thread = threading.Thread(target=act)
    thread.start()
    try:
        summary = learner.run()
    finally:
        learner.close()
    thread.join(timeout=120)
    assert outcome["result"] == "done"
    counters = learner.counters
    assert counters.frames >= 800 and outcome["steps"] >= counters.agent_steps
    # replay_ratio updates per agent step after the warm-up, within the buffer Reverb's rate limiter allows
    # (in updates). Reverb counts the steps written (the actor's count, which runs ahead of the progress
    # messages the learner counted): the learner's count bounds the updates from below, the actor's from above.
    limiter = tables.rate_limiter_settings(config)
    tolerance = limiter["error_buffer"] / config.agent.batch_size
    earned = lambda steps: config.train.replay_ratio * (steps - limiter["min_size_to_sample"])  # noqa: E731
    assert earned(counters.agent_steps) - tolerance <= counters.updates <= earned(outcome["steps"]) + tolerance
    assert counters.updates > 0
    assert summary["engine"] == "distributed" and np.isfinite(learner.learner.last_loss)


def _rise_train(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "rise_tf.train.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=CLI_ENV)


TINY_FLAGS = ["--game", "MemoryCorridor", "--algo", "rise-dqn", "--num-envs", "2", "--capacity", "2000",
              "--warmup-frames", "160", "--eval-every-frames", "0", "--log-every-frames", "400",
              "--checkpoint-every-frames", "400", "--no-progress"]


@pytest.mark.parametrize("segments", [[], ["--segment-length", "4", "--batch-size", "4"]], ids=["steps", "segments"])
def test_the_launcher_runs_server_actors_and_learner_as_processes(tmp_path, segments):
    """Single steps, and segments of 4 (Reverb items are then segment records)."""
    run_dir = str(tmp_path / "run")
    done = _rise_train(*TINY_FLAGS, *segments, "--frames", "600", "--distributed", "--actors", "2", "--run-dir", run_dir)
    assert done.returncode == 0, done.stderr[-2000:]
    with open(os.path.join(run_dir, "summary.json")) as f:
        summary = json.load(f)
    assert summary["engine"] == "distributed" and summary["frames"] >= 600 and summary["updates"] > 0
    for index in range(2):
        with open(os.path.join(run_dir, "logs", f"actor-{index}.log")) as f:
            assert "the learner is done" in f.read()
    assert os.listdir(os.path.join(run_dir, "replay_server"))  # the server's last checkpoint


def test_bad_input_to_the_distributed_commands_is_refused_before_anything_is_written(tmp_path):
    bad = _rise_train(*TINY_FLAGS, "--distributed", "--actors", "0", "--run-dir", str(tmp_path / "a"))
    assert bad.returncode == 2 and "actors must be >= 1" in bad.stderr and not os.path.exists(tmp_path / "a")
    nobody = subprocess.run([sys.executable, "-m", "rise_tf.distributed.actor", "--replay", "localhost:1", "--run-dir",
                             str(tmp_path / "b")], capture_output=True, text=True, timeout=120, env=CLI_ENV)
    assert nobody.returncode == 2 and "no replay server answers at localhost:1" in nobody.stderr
    for module, extra in (("rise_tf.distributed.actor", ["--actor-id", "0"]), ("rise_tf.distributed.learner", [])):
        malformed = subprocess.run([sys.executable, "-m", module, "--replay", "nowhere", "--run-dir",
                                    str(tmp_path / "b"), *extra], capture_output=True, text=True, timeout=120, env=CLI_ENV)
        assert malformed.returncode == 2 and "must be HOST:PORT" in malformed.stderr
    for module, flag in (("rise_tf.distributed.learner", "--push-every"), ("rise_tf.distributed.actor", "--pull-every")):
        refused = subprocess.run([sys.executable, "-m", module, "--replay", "localhost:1", "--run-dir", str(tmp_path / "b"),
                                  flag, "0"], capture_output=True, text=True, timeout=120, env=CLI_ENV)
        name = flag[2:].replace("-", "_")
        assert refused.returncode == 2 and f"{name} must be >= 1, got 0" in refused.stderr  # before any server wait
    assert not os.path.exists(tmp_path / "b")
    server = subprocess.run([sys.executable, "-m", "rise_tf.distributed.server", "--run-dir", str(tmp_path / "c")],
                            capture_output=True, text=True, timeout=120, env=CLI_ENV)
    assert server.returncode == 2 and "holds no run" in server.stderr


def _wait_for(condition, seconds, what):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if condition():
            return
        time.sleep(1.0)
    raise AssertionError(f"timed out waiting for {what}")


def _read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def _checkpoint_frames(run_dir):
    from rise_tf.parts import checkpoints
    latest = checkpoints.latest_checkpoint(run_dir)
    return -1 if latest is None else checkpoints.load_state(latest)["frames"]


def _start_launcher(run_dir, *, frames, actors):
    """`rise-train --distributed` in the background, its output (the learner's) on one pipe."""
    return subprocess.Popen([sys.executable, "-m", "rise_tf.train.cli", *TINY_FLAGS, "--frames", str(frames),
                             "--distributed", "--actors", str(actors), "--run-dir", run_dir],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=CLI_ENV)


@pytest.mark.slow
def test_a_killed_actor_is_started_again_and_the_run_completes(tmp_path):
    run_dir = str(tmp_path / "run")
    process = _start_launcher(run_dir, frames=3000, actors=2)
    actor_log = os.path.join(run_dir, "logs", "actor-0.log")
    _wait_for(lambda: "acting for" in _read(actor_log) and _checkpoint_frames(run_dir) > 0, 600, "the first checkpoint")
    with open(os.path.join(run_dir, "logs", "processes.json")) as f:
        os.kill(json.load(f)["actors"][0], signal.SIGKILL)
    output, _ = process.communicate(timeout=900)
    assert process.returncode == 0, output[-3000:]
    assert "actor 0 was killed by SIGKILL; starting it again (restart 1 of 5)" in output
    assert _read(actor_log).count("acting for") == 2  # it rejoined
    with open(os.path.join(run_dir, "summary.json")) as f:
        assert json.load(f)["frames"] >= 3000


@pytest.mark.slow
def test_a_killed_learner_resumes_and_a_killed_server_restarts_from_its_checkpoint(tmp_path):
    """Processes by hand, as on several machines: server, two actors, learner. kill -9 the learner: a
    new one continues from its checkpoint (counters never go back). kill -9 the server: restarted on the
    same port, it loads its newest checkpoint; the actors and the learner go on with it (their gRPC
    channels reconnect; a call made while it is down is retried or warned about) and the run completes."""
    import portpicker

    run_dir, port = str(tmp_path / "run"), portpicker.pick_unused_port()
    address = f"localhost:{port}"
    logs = tmp_path / "logs"
    logs.mkdir()

    def spawn(module, *args, log):
        return subprocess.Popen([sys.executable, "-m", module, *args], stdout=open(logs / log, "a"),
                                stderr=subprocess.STDOUT, env=CLI_ENV)
    server_args = ["--run-dir", run_dir, "--port", str(port)]
    config_flags = [flag for flag in TINY_FLAGS if flag != "--no-progress"] + ["--frames", "4000"]
    server = spawn("rise_tf.distributed.server", *server_args, *config_flags, log="server.log")
    _wait_for(lambda: "serving" in _read(logs / "server.log"), 300, "the server")
    actors = [spawn("rise_tf.distributed.actor", "--replay", address, "--run-dir", run_dir, "--actor-id", str(i),
                    "--reconnect-seconds", "300", log=f"actor-{i}.log") for i in range(2)]
    learner_args = ["--replay", address, "--run-dir", run_dir, "--no-progress"]
    learner = spawn("rise_tf.distributed.learner", *learner_args, log="learner.log")
    try:
        _wait_for(lambda: _checkpoint_frames(run_dir) > 0, 600, "the learner's first checkpoint")
        learner.kill()
        learner.wait()
        before = _checkpoint_frames(run_dir)
        learner = spawn("rise_tf.distributed.learner", *learner_args, log="learner.log")
        _wait_for(lambda: "resumed from" in _read(logs / "learner.log"), 300, "the learner's resume")
        _wait_for(lambda: _checkpoint_frames(run_dir) > before, 600, "a checkpoint after the resume")
        server.kill()
        server.wait()
        at_server_kill = _checkpoint_frames(run_dir)
        server = spawn("rise_tf.distributed.server", *server_args, log="server.log")
        _wait_for(lambda: _read(logs / "server.log").count("serving") == 2, 300, "the restarted server")
        # the replay's contents came back
        assert "Loading checkpoint from" in _read(logs / "server.log"), _read(logs / "server.log")[-3000:]
        assert learner.wait(timeout=900) == 0, _read(logs / "learner.log")[-3000:]
        for actor in actors:
            assert actor.wait(timeout=120) == 0
        with open(os.path.join(run_dir, "summary.json")) as f:
            summary = json.load(f)
        assert summary["frames"] >= 4000 and summary["frames"] > at_server_kill >= before
    finally:
        for process in [learner, server, *actors]:
            if process.poll() is None:
                process.kill()


@pytest.mark.slow
def test_the_launcher_restarts_a_killed_server_and_a_killed_learner_and_the_run_completes(tmp_path):
    """rise-train --distributed supervises itself: kill -9 of the replay server restarts it on the same
    port from its checkpoint (the learner and actors reconnect); kill -9 of the learner restarts it from
    its checkpoint; the run reaches its budget with exit 0, and SIGTERM stops the actors within seconds."""
    run_dir = str(tmp_path / "run")
    process = _start_launcher(run_dir, frames=5000, actors=2)
    lines = []
    reader = threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True)
    reader.start()
    output = lambda: "".join(lines)  # noqa: E731
    processes = os.path.join(run_dir, "logs", "processes.json")

    def pids():
        with open(processes) as f:
            return json.load(f)
    try:
        _wait_for(lambda: _checkpoint_frames(run_dir) > 0, 600, "the first checkpoint")
        os.kill(pids()["server"], signal.SIGKILL)
        _wait_for(lambda: "the replay server is back" in output(), 600, "the server's restart")
        assert "the replay server was killed by SIGKILL; starting it again" in output()
        at_server_restart = _checkpoint_frames(run_dir)
        _wait_for(lambda: _checkpoint_frames(run_dir) > at_server_restart, 600, "a checkpoint after the restart")
        learner = pids()["learner"]
        os.kill(learner, signal.SIGKILL)
        _wait_for(lambda: pids()["learner"] != learner, 120, "the learner's restart")
        assert "the learner was killed by SIGKILL; starting it again from its newest checkpoint" in output()
        assert process.wait(timeout=1200) == 0, output()[-3000:]
    finally:
        if process.poll() is None:
            process.kill()
    reader.join(timeout=10)
    assert output().count("resumed from") >= 1  # the restarted learner continued from its checkpoint
    with open(os.path.join(run_dir, "summary.json")) as f:
        assert json.load(f)["frames"] >= 5000
    for pid in [pids()["server"], pids()["learner"], *pids()["actors"]]:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # every child is gone


def test_an_actor_stops_within_seconds_on_sigterm_even_when_its_server_is_gone(tmp_path):
    """SIGTERM while the actor waits on a server that no longer answers (a Reverb call blocks the main
    thread there): it stops within its grace time, not the launcher's kill timeout."""
    import portpicker

    from rise_tf.distributed.actor import STOP_GRACE_S

    port = portpicker.pick_unused_port()
    actor = subprocess.Popen([sys.executable, "-m", "rise_tf.distributed.actor", "--replay", f"localhost:{port}",
                              "--run-dir", str(tmp_path / "run")], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True, env=CLI_ENV)
    assert "connecting to the replay server" in actor.stdout.readline()  # it waits for a server at the port
    sent = time.time()
    actor.send_signal(signal.SIGTERM)
    actor.wait(timeout=60)
    assert time.time() - sent <= STOP_GRACE_S + 3.0 and actor.returncode == 130, actor.stdout.read()


def test_the_epsilon_ladder_is_ape_x():
    from rise_tf.distributed.actor import ladder_epsilon

    assert ladder_epsilon(0, 8) == pytest.approx(0.4)
    assert ladder_epsilon(7, 8) == pytest.approx(0.4 ** 8)
    assert ladder_epsilon(3, 8) == pytest.approx(0.4 ** (1 + 7 * 3 / 7))
    assert ladder_epsilon(0, 1) == pytest.approx(0.4)


@pytest.mark.slow
def test_ctrl_c_stops_the_learner_first_then_everything_and_resume_continues(tmp_path):
    run_dir = str(tmp_path / "run")
    process = _start_launcher(run_dir, frames=100_000, actors=1)
    _wait_for(lambda: _checkpoint_frames(run_dir) > 0, 600, "the first checkpoint")
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 130, output[-3000:]
    assert "[rise-learner] interrupted at" in output
    assert f"continue with: rise-train --resume {run_dir} --distributed" in output
    with open(os.path.join(run_dir, "logs", "processes.json")) as f:
        pids = json.load(f)
    for pid in [pids["server"], pids["learner"], *pids["actors"]]:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # every child is gone
    stopped_at = _checkpoint_frames(run_dir)
    resumed = _rise_train("--resume", run_dir, "--frames", str(stopped_at + 800), "--distributed", "--actors", "1",
                          "--no-progress")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resumed from" in resumed.stdout + resumed.stderr
    with open(os.path.join(run_dir, "summary.json")) as f:
        assert json.load(f)["frames"] >= stopped_at + 800


def test_retry_until_back_waits_for_the_server_and_gives_up_in_time(monkeypatch):
    monkeypatch.setattr(tables, "RETRY_EVERY_S", 0.01)
    calls = []

    def comes_back_third_time():
        calls.append(1)
        if len(calls) < 3:
            raise RuntimeError("UNAVAILABLE: failed to connect")
        return "connected"
    assert tables.retry_until_back(comes_back_third_time, seconds=5) == "connected" and len(calls) == 3

    def other_run():
        raise tables.ServerMismatch("another run")
    with pytest.raises(tables.ServerMismatch):
        tables.retry_until_back(other_run, seconds=5)

    def never():
        raise RuntimeError("UNAVAILABLE")
    with pytest.raises(TimeoutError):
        tables.retry_until_back(never, seconds=0.05)


def test_the_launcher_restarts_within_its_budget_and_never_restarts_a_learner_that_needs_a_fix(tmp_path):
    """Supervision's decisions, without processes (the kill -9 runs are in the slow suite): a crashed or
    killed learner or server is started again up to restart_limit times, then the run stops; a learner
    that finished (0), was interrupted (130) or met an error a restart cannot fix (2) is not restarted."""
    from rise_tf.config import DistributedConfig
    from rise_tf.distributed import launcher as launching

    said, started = [], []
    launcher = launching.Launcher(str(tmp_path / "run"), DistributedConfig(actors=1, replay_port=1234, restart_limit=2),
                                  progress=False, log=said.append)
    launcher._start_learner = lambda: started.append("learner")
    launcher._start_server = lambda: started.append("server")
    launcher._start_actor = lambda index: started.append(f"actor {index}")
    for code in (0, 130, 2):
        assert launcher._learner_exited(code) == code
    assert started == []
    assert launcher._learner_exited(-9) is None and launcher._learner_exited(1) is None
    assert launcher._learner_exited(-9) == 1  # the third death: the budget of 2 is spent
    assert started == ["learner", "learner"] and launcher.restarts == {"learner": 2}
    assert "the learner was killed by SIGKILL; starting it again from its newest checkpoint (restart 1 of 2)" in said[0]
    assert "restarted 2 times already; stopping the run" in said[-1] and "--resume" in said[-1]

    class Exited:
        returncode = -9
    launcher.server = Exited()
    assert launcher._server_exited() is None and started[-1] == "server"
    assert "the replay server is back" in said[-1]
    launcher._actor_exited(0, -15)
    assert started[-1] == "actor 0" and "actor 0 was killed by SIGTERM; starting it again (restart 1 of 2)" in said[-1]
