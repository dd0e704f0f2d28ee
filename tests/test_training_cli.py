"""The rise-train CLI on real games: checkpoints, resume, Ctrl-C and every bad-input path."""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from rise_tf.parts.checkpoints import list_checkpoints
from rise_tf.train.cli import main

TINY_PONG = ["--game", "Pong", "--num-envs", "2", "--warmup-frames", "400", "--batch-size", "8",
             "--capacity", "2000", "--max-episode-frames", "800", "--eval-episodes", "2",
             "--checkpoint-every-frames", "1000", "--log-every-frames", "500", "--no-progress",
             "--embedding-size", "16", "--core-units", "16"]


def read_state(checkpoint):
    with open(os.path.join(checkpoint, "state.json")) as f:
        return json.load(f)


def metrics(run_dir):
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f]


def test_tiny_pong_run_checkpoints_resumes_and_keeps_counting(tmp_path, capsys):
    run_dir = str(tmp_path / "pong")
    assert main(TINY_PONG + ["--frames", "2000", "--eval-every-frames", "2000", "--run-dir", run_dir]) == 0
    saved = list_checkpoints(run_dir)
    assert [os.path.basename(p) for p in saved] == ["ckpt-000000001000", "ckpt-000000002000"]
    first = read_state(saved[-1])
    assert first["frames"] == 2000 and first["agent_steps"] == 500
    assert first["updates"] == pytest.approx((500 - 100) * 0.25, abs=2)  # after 400 warm-up frames
    records = metrics(run_dir)
    evals = [r for r in records if r["kind"] == "eval"]
    assert evals and all(len(r["returns"]) == 2 for r in evals)
    assert "human_normalized" in evals[-1]
    with open(os.path.join(run_dir, "config.json")) as f:
        batch = json.load(f)["agent"]["batch_size"]
    assert evals[-1]["updates"] == first["updates"] and evals[-1]["td_targets"] == first["updates"] * batch
    assert all(r["loss"] == r["loss"] for r in records if r["kind"] == "train" and r["updates"])  # finite
    assert os.listdir(os.path.join(run_dir, "tensorboard"))

    best = os.path.join(run_dir, "checkpoints", "best")
    assert read_state(best)["frames"] == 2000  # the run's one evaluation
    # As if killed before its last checkpoint: the resume starts at 1,000 frames, and what was logged
    # and kept after that (the evaluation at 2,000, its best weights) belongs to steps that run again.
    shutil.rmtree(saved[-1])
    capsys.readouterr()
    assert main(["--resume", run_dir, "--frames", "3000", "--no-progress"]) == 0
    resumed = read_state(list_checkpoints(run_dir)[-1])
    assert resumed["frames"] == 3000 and resumed["agent_steps"] == 750
    assert resumed["updates"] > first["updates"]
    out = capsys.readouterr().out
    assert "resumed from" in out and "removed checkpoints/best (saved at 2,000 frames" in out
    assert re.search(r"dropped \d+ metrics.jsonl records past 1,000 frames", out)
    records = metrics(run_dir)
    train_frames = [r["frames"] for r in records if r["kind"] == "train"]
    assert train_frames == sorted(set(train_frames))  # one history: each log point once, in order
    assert [r["frames"] for r in records if r["kind"] == "eval"] == [2000, 3000]
    with open(os.path.join(run_dir, "summary.json")) as f:
        summary = json.load(f)
    assert summary["best_frames"] == read_state(best)["frames"] in (2000, 3000)
    with open(os.path.join(run_dir, "config.json")) as f:
        assert json.load(f)["train"]["frames"] == 3000  # the extended budget is the run's budget now


def test_resume_refuses_config_changes_and_missing_runs(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--resume", str(tmp_path), "--window-length", "4"])
    assert "only --frames and the distributed settings may change" in capsys.readouterr().err
    assert main(["--resume", str(tmp_path / "nothing")]) == 2
    assert "config.json is missing" in capsys.readouterr().err


def test_a_run_dir_written_by_another_config_is_refused(tmp_path, capsys):
    run_dir = str(tmp_path / "memory")
    base = ["--game", "MemoryCorridor", "--frames", "200", "--warmup-frames", "100", "--eval-every-frames", "0",
            "--no-progress", "--run-dir", run_dir, "--num-envs", "2"]
    assert main(base) == 0
    assert main(base + ["--window-length", "8"]) == 2
    err = capsys.readouterr().err
    assert "another config" in err and "network.window_length" in err and "--resume" in err


def test_corrupt_checkpoints_are_named_with_the_fix(tmp_path, capsys):
    run_dir = str(tmp_path / "memory")
    assert main(["--game", "MemoryCorridor", "--frames", "200", "--warmup-frames", "100", "--num-envs", "2",
                 "--eval-every-frames", "0", "--no-progress", "--run-dir", run_dir]) == 0
    checkpoint = list_checkpoints(run_dir)[-1]
    with open(os.path.join(checkpoint, "variables.index"), "wb") as f:
        f.write(b"not a checkpoint")
    assert main(["--resume", run_dir, "--frames", "300", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert checkpoint in err and "damaged" in err and "Start a new run directory" in err
    with open(os.path.join(checkpoint, "state.json"), "w") as f:
        f.write("{truncated")
    assert main(["--resume", run_dir, "--frames", "300", "--no-progress"]) == 2
    assert "corrupt" in capsys.readouterr().err


def test_unknown_game_and_bad_values_exit_with_a_message(tmp_path, capsys):
    run_dir = tmp_path / "typo"
    assert main(["--game", "Pnog", "--frames", "10", "--no-progress", "--run-dir", str(run_dir)]) == 2
    assert "Closest valid names: Pong" in capsys.readouterr().err
    assert not run_dir.exists()  # nothing is written for a config that cannot run
    assert main(["--window-length", "0", "--print-config"]) == 2
    assert "window_length (k) must be >= 1" in capsys.readouterr().err


# The concurrent engine's case is slow-suite only: the fast suite has its counter parity and the
# in-process signal test below; the 15-minute budget of `make test` needs the half minute.
@pytest.mark.parametrize("engine", ["serial", pytest.param("concurrent", marks=pytest.mark.slow)])
def test_ctrl_c_saves_a_checkpoint_and_resume_continues(tmp_path, engine):
    run_dir = str(tmp_path / "interrupted")
    command = [sys.executable, "-m", "rise_tf.train.cli", "--game", "MemoryCorridor", "--frames", "1M",
               "--warmup-frames", "100", "--num-envs", "2", "--eval-every-frames", "0", "--log-every-frames", "100",
               "--engine", engine, "--save-replay", "--no-progress", "--run-dir", run_dir]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    metrics_path = os.path.join(run_dir, "metrics.jsonl")
    deadline = time.time() + 180
    while time.time() < deadline and not (os.path.exists(metrics_path) and os.path.getsize(metrics_path)):
        time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "--resume" in err
    saved = list_checkpoints(run_dir)
    assert len(saved) == 1 and not [n for n in os.listdir(os.path.dirname(saved[0])) if n.startswith(".tmp")]
    state = read_state(saved[0])
    frames = state["frames"]
    assert frames >= 100
    # One consistent state: the saved replay holds a row per counted agent step, plus the LAST row of
    # every finished episode (the driver's boundary step, which is not an agent step).
    with np.load(os.path.join(saved[0], "replay", "replay.npz")) as replay:
        assert int(replay["rows_written"].sum()) == state["agent_steps"] + state["episodes"]
    assert main(["--resume", run_dir, "--frames", str(frames + 100), "--no-progress"]) == 0
    assert read_state(list_checkpoints(run_dir)[-1])["frames"] >= frames + 100


def test_a_stop_signal_inside_a_lane_step_waits_until_the_counters_have_it(tmp_path):
    """SIGINT delivered after the driver wrote a step's rows to replay but before the trainer counted
    them: the checkpoint must still hold one replay row per counted agent step, plus each finished
    episode's LAST row. (Found by the Ctrl-C test above, once, under load.)"""
    from rise_tf.config import make_config
    from rise_tf.train.trainer import Trainer

    run_dir = str(tmp_path / "run")
    config = make_config("rise-dqn", "MemoryCorridor", env={"num_envs": 2},
                         replay={"capacity": 2_000, "save_replay": True},
                         train={"frames": 1_000_000, "warmup_frames": 100, "eval_every_frames": 0,
                                "log_every_frames": 100})
    trainer = Trainer(config, run_dir, progress=False)
    driver = trainer.collector.driver
    run, driver_runs = driver.run, []

    def run_then_signal(*args, **kwargs):
        result = run(*args, **kwargs)
        driver_runs.append(1)
        if len(driver_runs) == 30:
            os.kill(os.getpid(), signal.SIGINT)  # the rows are in replay; the counters are not yet
        return result
    driver.run = run_then_signal
    try:
        summary = trainer.run()
    finally:
        trainer.close()
    assert summary["interrupted"]
    state = read_state(list_checkpoints(run_dir)[-1])
    assert state["agent_steps"] == 30 * 2 and state["episodes"] > 0
    with np.load(os.path.join(list_checkpoints(run_dir)[-1], "replay", "replay.npz")) as replay:
        assert int(replay["rows_written"].sum()) == state["agent_steps"] + state["episodes"]


def test_same_seed_gives_the_same_run_on_cpu(tmp_path):
    def run(name):
        run_dir = str(tmp_path / name)
        assert main(["--game", "MemoryCorridor", "--frames", "600", "--warmup-frames", "200", "--num-envs", "2",
                     "--eval-every-frames", "0", "--log-every-frames", "200", "--deterministic-ops",
                     "--seed", "3", "--no-progress", "--run-dir", run_dir]) == 0
        return [(r["frames"], r["updates"], r["loss"], r["return"]) for r in metrics(run_dir)]

    first, second = run("a"), run("b")
    assert len(first) == 3 and first[-1][1] > 0
    assert first == second


@pytest.mark.slow  # ~20 s; the update's agreement with float32 is in the fast suite (test_agent)
def test_mixed_precision_on_a_cpu_warns_and_still_learns(tmp_path, capsys):
    run_dir = tmp_path / "mixed"
    assert main(["--game", "MemoryCorridor", "--frames", "300", "--warmup-frames", "200", "--num-envs", "2",
                 "--replay-ratio", "0.1", "--batch-size", "8", "--eval-every-frames", "0", "--no-progress",
                 "--mixed-precision", "--log-every-frames", "100", "--run-dir", str(run_dir)]) == 0
    assert "--mixed-precision on a host without a GPU" in capsys.readouterr().err
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["updates"] > 0 and summary["completed"]
    assert all(r["loss"] is not None and np.isfinite(r["loss"]) for r in metrics(str(run_dir)) if r["updates"])


@pytest.mark.parametrize("args, message", [
    (["--frames", "inf"], "'inf' is not a finite count"),
    (["--replay-ratio", "inf"], "'inf' is not a finite number"),
    (["--learning-rate", "nan"], "'nan' is not a finite number"),
    (["--capacity", "10G"], r"needs about .* GiB .* only .* GiB of memory is available. Lower --capacity"),
    (["--algo", "rise-btr", "--head", "dueling"], "cannot train head 'dueling'"),
    (["--engine", "concurrent", "--replay-ratio", "4", "--num-envs", "8"],
     r"cannot hold replay ratio 4 with 8 lanes .* Raise --max-update-backlog to at least 32"),
    (["--engine", "concurrent", "--prefetch-batches", "0"], "prefetch_batches must be >= 1"),
    (["--game", "MemoryCorridor", "--parallel", "vector"], "Atari games only"),
    (["--seed", "-1"], "seed must be >= 0"),
    (["--distributed", "--actors", "0"], "actors must be >= 1"),
    (["--game", "MemoryCorridor", "--env-kind", "atari"], "env_kind 'atari' does not match"),
    (["--restart-limit", "-1"], "restart_limit must be >= 0"),
])
def test_bad_numbers_and_sizes_exit_2_and_write_nothing(args, message, tmp_path, capsys):
    run_dir = tmp_path / "never"
    assert exit_code(args + ["--run-dir", str(run_dir)]) == 2
    assert re.search(message, capsys.readouterr().err)
    assert not run_dir.exists()


def exit_code(args):
    """main()'s exit code, whether it returns it or argparse exits with it."""
    try:
        return main(args)
    except SystemExit as stop:
        return stop.code


def test_unusable_run_dirs_and_resume_paths_exit_2_with_the_fix(tmp_path, capsys):
    a_file = tmp_path / "file.txt"
    a_file.write_text("not a directory")
    cases = [
        (["--run-dir", str(a_file)], "is a file, not a directory"),
        (["--run-dir", str(a_file / "run")], "lies under"),
        (["--resume", str(a_file)], "is a file, not a rise-tf run directory"),
        (["--run-dir", ""], "--run-dir is empty"),
    ]
    if os.path.isdir("/sys") and not os.access("/sys", os.W_OK | os.X_OK) or os.geteuid() == 0:
        cases.append((["--run-dir", "/sys/rise-tf-cannot-write-here"], "cannot write the run directory"))
    for args, message in cases:
        assert main(["--game", "MemoryCorridor", "--no-progress"] * ("--resume" not in args) + args) == 2, args
        assert message in capsys.readouterr().err
    assert a_file.read_text() == "not a directory"
    assert not os.path.exists("/sys/rise-tf-cannot-write-here")


def test_a_rise_dqn_checkpoint_is_not_resumed_as_rise_btr(tmp_path, capsys):
    run_dir = str(tmp_path / "memory")
    base = ["--game", "MemoryCorridor", "--frames", "200", "--warmup-frames", "100", "--eval-every-frames", "0",
            "--no-progress", "--run-dir", run_dir, "--num-envs", "2"]
    assert main(base + ["--algo", "rise-dqn"]) == 0
    assert main(base + ["--algo", "rise-btr"]) == 2  # same directory, another algo
    assert "holds a rise-dqn run; it cannot continue as rise-btr" in capsys.readouterr().err
    config_path = os.path.join(run_dir, "config.json")
    with open(config_path) as f:
        config = json.load(f)
    config["algo"] = "rise-btr"  # a hand-edited config.json: the checkpoint still says rise-dqn
    with open(config_path, "w") as f:
        json.dump(config, f)
    assert main(["--resume", run_dir, "--frames", "300", "--no-progress"]) == 2
    assert "written by a rise-dqn run" in capsys.readouterr().err
