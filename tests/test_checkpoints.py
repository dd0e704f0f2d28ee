import json
import os
import threading

import numpy as np
import pytest
import tensorflow as tf

from rise_tf.parts import checkpoints
from rise_tf.config import make_config
from rise_tf.train.trainer import Trainer, TrainingError


def test_a_crash_mid_write_leaves_no_half_checkpoint_and_keeps_the_previous(tmp_path):
    run_dir = str(tmp_path)
    variable = tf.Variable([1.0, 2.0])
    first = checkpoints.save(run_dir, 100, {"v": variable}, {"frames": 100}, keep=3)

    def crash(directory):
        raise OSError("disk full")

    variable.assign([5.0, 6.0])
    with pytest.raises(OSError, match="disk full"):
        checkpoints.save(run_dir, 200, {"v": variable}, {"frames": 200}, keep=3, extra_writer=crash)
    assert checkpoints.list_checkpoints(run_dir) == [first]
    assert os.listdir(checkpoints.checkpoint_dir(run_dir)) == [os.path.basename(first)]  # no .tmp left
    state = checkpoints.restore(first, {"v": variable})
    assert state["frames"] == 100 and variable.numpy().tolist() == [1.0, 2.0]


@pytest.mark.parametrize("name", ["MortarMayhem-v0[command_count=2]", "runs*", "why?"])
def test_a_run_dir_named_with_glob_characters_restores(tmp_path, name):
    """TensorFlow reads a checkpoint's files by glob: rise-experiment's outside-env run dirs
    (`Env-v0[option=value]`) were written but could never be resumed or exported."""
    run_dir = str(tmp_path / name / "seed0")
    saved = checkpoints.save(run_dir, 100, {"v": tf.Variable([1.0, 2.0])}, {"frames": 100}, keep=3)
    restored = tf.Variable([0.0, 0.0])
    assert checkpoints.restore(saved, {"v": restored})["frames"] == 100
    assert restored.numpy().tolist() == [1.0, 2.0]


def test_old_checkpoints_are_pruned_to_keep(tmp_path):
    variable = tf.Variable(0.0)
    for frames in (1, 2, 3, 4):
        checkpoints.save(str(tmp_path), frames, {"v": variable}, {"frames": frames}, keep=2)
    assert [os.path.basename(p) for p in checkpoints.list_checkpoints(str(tmp_path))] == [
        "ckpt-000000000003", "ckpt-000000000004"]


def tiny_memory_config(agent=None, **train):
    return make_config("rise-dqn", "MemoryCorridor", env={"num_envs": 2}, replay={"capacity": 2_000},
                       agent=agent or {}, train={"frames": 300, "warmup_frames": 100, "eval_every_frames": 0, **train})


def test_a_nan_loss_stops_training_with_the_cause_and_the_fix(tmp_path):
    trainer = Trainer(tiny_memory_config(), str(tmp_path), progress=False)
    real_sample = trainer.replay.sample

    def poisoned(batch_size, beta):
        batch, keys, weights = real_sample(batch_size, beta)
        batch["n_step_return"][:] = np.inf
        return batch, keys, weights

    trainer.replay.sample = poisoned
    try:
        with pytest.raises(TrainingError, match="NaN/inf.*--learning-rate.*--resume"):
            trainer.run()
    finally:
        trainer.close()
    # The run's files stay strict JSON (no bare NaN, which other tools reject).
    for name in ("metrics.jsonl", "summary.json"):
        path = tmp_path / name
        if path.exists():
            text = path.read_text()
            records = text.splitlines() if name.endswith("jsonl") else [text]
            for record in records:
                json.loads(record, parse_constant=lambda constant: pytest.fail(f"{name} holds {constant}"))


def test_strict_json_writes_null_for_non_finite_numbers():
    from rise_tf.run_dir import strict_json

    assert json.loads(strict_json({"loss": float("nan"), "q": [1.5, float("-inf")]})) == {"loss": None, "q": [1.5, None]}


def test_trim_metrics_keeps_the_records_up_to_the_resume_point_and_drops_cut_lines(tmp_path):
    from rise_tf.run_dir import trim_metrics

    path = tmp_path / "metrics.jsonl"
    path.write_text('{"kind": "train", "frames": 10}\n\n{"kind": "eval", "frames": 20}\n[1]\n'
                    '{"kind": "train", "frames": 30}\n{"kind": "tr')  # the last line cut by a kill
    assert trim_metrics(str(tmp_path), 20) == 3
    assert path.read_text() == '{"kind": "train", "frames": 10}\n{"kind": "eval", "frames": 20}\n'
    assert trim_metrics(str(tmp_path), 20) == 0 and trim_metrics(str(tmp_path / "none"), 0) == 0
    assert trim_metrics(str(tmp_path), 0) == 2 and path.read_text() == ""


def test_save_replay_restores_the_buffer_on_resume(tmp_path):
    config = tiny_memory_config().replace(replay={"save_replay": True})
    trainer = Trainer(config, str(tmp_path), progress=False)
    trainer.run()
    stored = trainer.replay.num_stored
    trainer.close()
    assert os.path.isdir(os.path.join(checkpoints.latest_checkpoint(str(tmp_path)), "replay"))
    resumed = Trainer(config, str(tmp_path), resume=True, progress=False)
    assert resumed.replay.num_stored == stored > 0
    assert resumed.counters.frames == 300
    resumed.close()


def test_half_written_checkpoints_of_killed_processes_are_removed_on_the_next_start(tmp_path, capsys):
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()  # a pid that has exited
    root = tmp_path / "checkpoints"
    stale = root / f".tmp-ckpt-{0:012d}-{dead}-1"
    live = root / f".tmp-ckpt-{0:012d}-{os.getppid()}-2"  # a running process's save in progress: kept
    for directory in (stale, live):
        directory.mkdir(parents=True)
        (directory / "variables.index").write_bytes(b"partial")
    assert checkpoints.remove_stale_temporaries(str(tmp_path)) == [stale.name]
    assert not stale.exists() and live.exists()


def _truncate(path):
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 2)


def test_damaged_checkpoints_fall_back_to_the_previous_good_one_then_stop_clearly(tmp_path, capsys):
    """A truncated variables file or replay.npz: --resume and export name it and use the previous
    checkpoint; with every checkpoint damaged, they stop with a message instead of a traceback."""
    from rise_tf.export import step_model

    config = tiny_memory_config(checkpoint_every_frames=150, keep_checkpoints=3).replace(replay={"save_replay": True})
    trainer = Trainer(config, str(tmp_path), progress=False)
    trainer.run()
    trainer.close()
    older, newest = checkpoints.list_checkpoints(str(tmp_path))[-2:]
    _truncate(os.path.join(newest, "replay", "replay.npz"))
    resumed = Trainer(config, str(tmp_path), resume=True, progress=False)
    assert resumed.last_checkpoint == older and resumed.counters.frames == int(older[-12:])
    resumed.close()
    out = capsys.readouterr().out
    assert "damaged replay" in out and "replay.npz" in out and f"restored {older}" in out
    for path in checkpoints.list_checkpoints(str(tmp_path)):
        _truncate(os.path.join(path, "variables.data-00000-of-00001"))
    with pytest.raises(checkpoints.CheckpointError, match="no checkpoint of .* can be restored"):
        Trainer(config, str(tmp_path), resume=True, progress=False)
    with pytest.raises(checkpoints.CheckpointError, match="variables.data"):
        step_model.load_policy(str(tmp_path))


@pytest.mark.parametrize("state", [{}, {"frames": 300, "agent_steps": "many", "updates": 5, "episodes": 1},
                                   {"frames": -1, "agent_steps": 0, "updates": 0, "episodes": 0}])
def test_a_checkpoint_without_valid_counters_is_damage_and_falls_back(tmp_path, capsys, state):
    """state.json `{}` (or counters that are not whole numbers >= 0) would restart the run from 0 and
    overwrite its newer checkpoints: it is damage, and the previous good checkpoint is used."""
    config = tiny_memory_config(checkpoint_every_frames=150, keep_checkpoints=3)
    trainer = Trainer(config, str(tmp_path), progress=False)
    trainer.run()
    trainer.close()
    older, newest = checkpoints.list_checkpoints(str(tmp_path))[-2:]
    with open(os.path.join(newest, "state.json"), "w") as f:
        json.dump(state, f)
    resumed = Trainer(config, str(tmp_path), resume=True, progress=False)
    try:
        assert resumed.last_checkpoint == older
        assert resumed.counters.frames == int(older[-12:]) > 0 and resumed.counters.updates > 0
    finally:
        resumed.close()
    out = capsys.readouterr().out
    assert f"checkpoint {newest} is damaged: its counter" in out and f"restored {older}" in out


def test_a_run_that_never_learned_says_so(tmp_path, capsys):
    """Resumed before warm-up finished, without saved replay: the budget is spent, no update was made."""
    config = tiny_memory_config(frames=150, warmup_frames=200)
    first = Trainer(config, str(tmp_path), progress=False)
    first.run()
    first.close()
    longer = config.replace(train={"frames": 250})
    resumed = Trainer(longer, str(tmp_path), resume=True, progress=False)
    summary = resumed.run()
    resumed.close()
    assert summary["completed"] and summary["updates"] == 0
    assert "no learning update" in summary["warning"] and "--save-replay" in summary["warning"]
    assert "no learning update" in capsys.readouterr().err


@pytest.mark.parametrize("agent", [{}, {"segment_length": 4, "batch_size": 8}], ids=["steps", "segments"])
def test_the_concurrent_engine_reaches_the_serial_engines_counters(tmp_path, agent):
    """Same config, both engines: the same frames, agent steps, episodes and (through the rate
    limiter) exactly the same number of updates; finite losses; the same summary keys. With single
    steps and with segments (one priority per segment, written by the sampler thread)."""
    results, writers = {}, {}
    for engine in ("serial", "concurrent"):
        config = tiny_memory_config(agent, frames=600, warmup_frames=120, log_every_frames=200, engine=engine)
        trainer = Trainer(config, str(tmp_path / engine), progress=False)
        write = trainer.learner.write_priorities
        writers[engine] = []

        def counted(keys, errors, write=write, calls=writers[engine]):
            calls.append(threading.current_thread().name)
            write(keys, errors)
        trainer.learner.write_priorities = counted
        summary = trainer.run()
        results[engine] = (trainer.counters, summary, trainer.learner.last_loss)
        trainer.close()
    (serial, serial_summary, serial_loss), (concurrent, concurrent_summary, concurrent_loss) = (
        results["serial"], results["concurrent"])
    assert concurrent.frames == serial.frames == 600 and concurrent.agent_steps == serial.agent_steps
    assert concurrent.episodes == serial.episodes and concurrent.updates == serial.updates > 0
    assert np.isfinite(serial_loss) and np.isfinite(concurrent_loss)
    assert set(concurrent_summary) == set(serial_summary) and concurrent_summary["completed"]
    # every update's priorities were written, and never by the concurrent learner thread
    assert len(writers["serial"]) == serial.updates and len(writers["concurrent"]) == concurrent.updates
    assert "rise-learner" not in writers["concurrent"]
    assert concurrent_summary["engine"] == "concurrent" and serial_summary["engine"] == "serial"


def test_engine_settings_are_checked():
    with pytest.raises(ValueError, match="unknown engine"):
        tiny_memory_config(engine="parallel").validate()
    with pytest.raises(ValueError, match="--engine serial"):
        tiny_memory_config(engine="concurrent", deterministic_ops=True).validate()
    with pytest.raises(ValueError, match="max_update_backlog"):
        tiny_memory_config(max_update_backlog=0).validate()


def test_auto_engine_is_concurrent_only_where_the_learner_has_a_gpu():
    from rise_tf.config import resolve_engine

    config = tiny_memory_config()
    assert config.train.engine == "auto"
    assert resolve_engine(config, learner_on_gpu=False) == "serial"  # a CPU: learner and collection share cores
    assert resolve_engine(config, learner_on_gpu=True) == "concurrent"
    assert resolve_engine(tiny_memory_config(deterministic_ops=True), learner_on_gpu=True) == "serial"
    held = config.replace(train={"replay_ratio": 64.0})  # owes more updates per step than the backlog allows
    assert resolve_engine(held, learner_on_gpu=True) == "serial"
    assert resolve_engine(tiny_memory_config(engine="concurrent"), learner_on_gpu=False) == "concurrent"


def test_tf_agents_metrics_are_logged_under_their_standard_names(tmp_path):
    """TF-Agents' py_metrics observe the driver; TensorBoard gets Metrics/<name> (train step) and
    Metrics_vs_EnvironmentSteps/<name>, and the step counts agree with ours."""
    import glob

    trainer = Trainer(tiny_memory_config(log_every_frames=100), str(tmp_path), progress=False)
    try:
        trainer.run()
        counts = {m.name: float(m.result()) for m in trainer.collector.metrics}
        counters = trainer.counters
    finally:
        trainer.close()
    # the last log was at 300 frames = the end; every lane step of MemoryCorridor is one frame. TF-Agents
    # counts an episode at its last transition, ours at the boundary step after it: at most a lane apart.
    assert counts["EnvironmentSteps"] == counters.agent_steps
    assert 0 <= counts["NumberOfEpisodes"] - counters.episodes <= 2
    tags = set()
    for path in glob.glob(os.path.join(str(tmp_path), "tensorboard", "events.*")):
        for record in tf.data.TFRecordDataset(path):
            event = tf.compat.v1.Event.FromString(record.numpy())
            tags |= {value.tag for value in event.summary.value}
    assert {"Metrics/AverageReturn", "Metrics/AverageEpisodeLength", "Metrics/NumberOfEpisodes",
            "Metrics_vs_EnvironmentSteps/AverageReturn", "Metrics_vs_NumberOfEpisodes/AverageReturn"} <= tags


def test_the_best_evaluation_is_kept_and_exports_and_a_run_without_one_is_refused(tmp_path, capsys):
    """checkpoints/best holds the weights of the evaluation with the highest mean return (not pruned,
    not resumed from); summary.json names it beside the final one; rise-export --checkpoint best
    exports it, and refuses a run that never evaluated, writing nothing."""
    from rise_tf.export.cli import main as export_main
    from rise_tf.run_dir import STATE_FILE

    config = tiny_memory_config(frames=600, warmup_frames=120, eval_every_frames=200, eval_episodes=4,
                                checkpoint_every_frames=200)
    run_dir = str(tmp_path / "run")
    trainer = Trainer(config, run_dir, progress=False)
    summary = trainer.run()
    trainer.close()
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        evals = [json.loads(line) for line in f if '"eval"' in line]
    returns = [e["return"] for e in evals]
    best = max(range(len(returns)), key=lambda i: (returns[i], -i))  # the first of the highest
    assert summary["best_frames"] == evals[best]["frames"] and summary["best_return"] == returns[best]
    path = checkpoints.best_checkpoint(run_dir)
    assert summary["best_checkpoint"] == path and path.endswith(os.path.join("checkpoints", "best"))
    with open(os.path.join(path, STATE_FILE)) as f:
        assert json.load(f)["frames"] == evals[best]["frames"]
    assert path not in checkpoints.list_checkpoints(run_dir)  # never pruned, never resumed from
    out = str(tmp_path / "best.onnx")
    assert export_main([run_dir, "--checkpoint", "best", "--out", out, "--parity-steps", "8"]) == 0
    assert f"{os.path.join('checkpoints', 'best')} ({evals[best]['frames']:,} frames)" in capsys.readouterr().out
    assert os.path.isfile(out)

    silent = str(tmp_path / "silent")
    trainer = Trainer(tiny_memory_config(frames=200, eval_every_frames=0), silent, progress=False)
    assert "best_frames" not in trainer.run()
    trainer.close()
    refused = str(tmp_path / "refused.onnx")
    assert export_main([silent, "--checkpoint", "best", "--out", refused]) == 2
    err = capsys.readouterr().err
    assert "has no best checkpoint" in err and "nothing written" in err and not os.path.exists(refused)
