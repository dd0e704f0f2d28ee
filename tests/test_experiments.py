"""rise-experiment: argument validation, the plan, and a tiny real experiment that resumes and reports."""
import json
import os
import shlex

import pytest

from rise_runtime.envs.memory_task import MEMORY_TASKS
from rise_tf.experiments.cli import main as experiment_main
from rise_tf.experiments.plan import build_plan, resolve_games


@pytest.mark.parametrize("argv, message", [
    (["atari", "--games", "Pongg"], "Closest valid names: Pong"),
    (["atari", "--games", "atari6"], "unknown game subset 'atari6'"),
    (["atari"], "needs --games"),
    (["memory", "--seeds", "0"], "--seeds must be >= 1"),
    (["memory", "--variants", "rise,gru"], "unknown variant 'gru'; did you mean core_gru"),
    (["memory", "--train-arg", "num-envs="], "FLAG=VALUE"),
    (["memory", "--frames", "lots"], "not a count"),
])
def test_bad_arguments_stop_with_a_clear_message(argv, message, capsys):
    with pytest.raises(SystemExit) as stop:
        experiment_main(argv)
    assert stop.value.code == 2
    assert message in capsys.readouterr().err


def test_plans():
    assert resolve_games(["atari5"]) == ["BattleZone", "DoubleDunk", "NameThisGame", "Phoenix", "Qbert"]
    assert resolve_games(["Pong,ALE/Breakout-v5", "pong", "atari5"])[:3] == ["Pong", "Breakout", "BattleZone"]
    memory = build_plan("memory", seeds=3, frames=1000)
    assert [(r.variant.name, r.seed) for r in memory[:4]] == [("base", 0), ("rise", 0), ("full_recurrent", 0),
                                                               ("base", 1)]  # whole seeds first
    assert {r.game for r in memory} == {"MemoryCorridor"} and len(memory) == 9
    atari = build_plan("atari", seeds=2, frames=10, games=["atari100k"])
    assert len(atari) == 26 * 2 * 2 and {r.variant.name for r in atari} == {"base", "rise"}
    ablation = {r.variant.name: r.train_args("exp") for r in build_plan("ablations", seeds=1, frames=5)}
    assert ablation["core_gru"][-2:] == ["--core", "gru"] and len(ablation) == 13
    # the snapshot's source run (base, same game and seed) is planned first, and its dir filled in
    names = list(ablation)  # the default stays first: the report compares with it
    assert names[0] == "rise" and names.index("base") == names.index("encoder_snapshot") - 1
    assert ablation["base"][:2] == ["--algo", "dqn"]
    assert ablation["encoder_snapshot"][-2:] == ["--frozen-encoder", os.path.join("snapshot:exp", "base",
                                                                                  "MemoryCorridor", "seed0")]
    assert ablation["core_gru_chrono"][-4:] == ["--core", "gru", "--core-gate-init", "chrono"]
    assert "--eval-every-frames" in ablation["rise"]  # memory-task curves get ~10 evaluation points


def test_dry_run_lists_commands(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))  # an empty Keras cache
    assert experiment_main(["ablations", "--seeds", "1", "--dry-run", "--out", str(tmp_path / "exp")]) == 0
    captured = capsys.readouterr()
    assert "12 runs (0 done)" in captured.out and "[new] window_k4/MemoryCorridor/seed0" in captured.out
    assert "--window-length 4" in captured.out and not os.path.exists(tmp_path / "exp")
    # the pretrained encoder is left out, saying why and how to fetch its weights
    assert "leaving out encoder_keras_mobilenet" in captured.err and "never downloads" in captured.err
    assert "encoder_keras_mobilenet/" not in captured.out
    weights = tmp_path / "keras" / "models" / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"
    weights.parent.mkdir(parents=True)
    weights.write_bytes(b"")  # present: planned (the run itself reads the file)
    assert experiment_main(["ablations", "--seeds", "1", "--dry-run", "--out", str(tmp_path / "exp"),
                            "--variants", "encoder_keras_mobilenet"]) == 0
    captured = capsys.readouterr()
    assert "--frozen-encoder keras:MobileNetV2" in captured.out and not captured.err
    with pytest.raises(SystemExit):  # nothing left once the only variant is left out
        weights.unlink()
        experiment_main(["ablations", "--seeds", "1", "--dry-run", "--variants", "encoder_keras_mobilenet"])
    assert "no runs left" in capsys.readouterr().err


def test_tiny_experiment_runs_skips_finished_runs_and_reports(tmp_path, capsys):
    out = tmp_path / "exp"
    # encoder_snapshot alone: the plan runs its source (base) first, then freezes that run's φ as ϑ
    argv = ["memory", "--variants", "encoder_snapshot", "--seeds", "1", "--frames", "400", "--out", str(out)]
    for setting in ("warmup-frames=200", "eval-every-frames=200", "eval-episodes=4", "num-envs=2",
                    "batch-size=8", "capacity=2000", "embedding-size=16", "core-units=16", "window-length=12",
                    "no-progress"):
        argv += ["--train-arg", setting]
    assert experiment_main(argv) == 0
    summary = json.loads((out / "encoder_snapshot" / "MemoryCorridor" / "seed0" / "summary.json").read_text())
    assert summary["completed"] and summary["frames"] == 400 and summary["update_ms"] > 0
    assert summary["wall_seconds"] > 0 and 0 <= summary["final_success_rate"] <= 1
    config = json.loads((out / "encoder_snapshot" / "MemoryCorridor" / "seed0" / "config.json").read_text())
    assert config["network"]["frozen_encoder"] == "snapshot:" + str(out / "base" / "MemoryCorridor" / "seed0")
    report = json.loads((out / "report" / "memory.json").read_text())
    assert list(report["variants"]) == ["base", "encoder_snapshot"] and len(report["runs"]) == 2
    assert report["runs"][0]["curve"][0][0] == 200  # an evaluation every 200 frames
    capsys.readouterr()
    assert experiment_main(argv) == 0  # again: nothing left to run
    assert capsys.readouterr().out.count("already done") == 2


def test_memory_tasks_and_peers_are_planned_like_any_variant():
    plan = build_plan("memory", seeds=1, frames=5, games=["memory"], variants=["tfa-rnn-dqn", "rise-btr"])
    assert sorted({r.game for r in plan}) == sorted(MEMORY_TASKS) and len(plan) == 2 * len(MEMORY_TASKS)
    peer = next(r for r in plan if r.variant.name == "tfa-rnn-dqn")
    assert peer.variant.runner == "rise_tf.peers.tf_agents_rnn_dqn"
    args = peer.train_args()
    assert args[:2] == ["--algo", "tfa-rnn-dqn"] and "--stop-at-success" in args  # solved runs stop early
    with pytest.raises(ValueError, match="did you mean"):
        build_plan("memory", seeds=1, frames=5, variants=["tfa-rnn-dq"])


def test_peer_rejects_bad_input_before_tensorflow(capsys):
    from rise_tf.peers.tf_agents_rnn_dqn import main as peer_main

    assert peer_main(["--game", "MemoryCoridor", "--run-dir", "/nonexistent/x"]) == 2
    assert "memory task MemoryCorridor" in capsys.readouterr().err
    assert peer_main(["--sequence-length", "1", "--run-dir", "/nonexistent/x"]) == 2
    assert "--sequence-length must be >= 2" in capsys.readouterr().err
    # success (a positive return) is the memory tasks' measure: no stopping at it on a gym env
    assert peer_main(["--env-id", "ThirdParty/Colours-v0", "--env-module", "third_party_env", "--stop-at-success",
                      "0.9", "--run-dir", "/nonexistent/x"]) == 2
    assert "--stop-at-success counts the memory tasks' success" in capsys.readouterr().err


def test_outside_env_ids_are_games_for_every_variant_the_peer_included(capsys):
    import third_party_env  # noqa: F401  (registers ThirdParty/*)
    from rise_tf.experiments.cli import main as experiment_main
    from rise_tf.experiments.plan import is_outside_env
    from rise_tf.peers.tf_agents_rnn_dqn import build_parser as peer_parser, peer_settings

    assert is_outside_env("ThirdParty/Colours-v0") and is_outside_env("MortarMayhem-Grid-v0")
    assert not is_outside_env("Pong") and not is_outside_env("ALE/Pong-v5") and not is_outside_env("MemoryCorridor")
    plan = build_plan("memory", seeds=1, frames=3000, games=["ThirdParty/Colours-v0,MemoryCorridor"],
                      variants=["rise-btr", "tfa-rnn-dqn"], env_settings=(("env-module", "third_party_env"),))
    outside = [spec for spec in plan if spec.env_id]
    assert [spec.relative_dir for spec in outside] == ["rise-btr/ThirdParty_Colours-v0/seed0",
                                                       "tfa-rnn-dqn/ThirdParty_Colours-v0/seed0"]
    for spec in outside:
        args = spec.train_args()
        assert args[2:4] == ["--env-id", "ThirdParty/Colours-v0"] and "--game" not in args
        assert args[args.index("--env-module") + 1] == "third_party_env"
        assert args[args.index("--eval-every-frames") + 1] == "300"  # 10 evaluations per run
    inside = [spec for spec in plan if not spec.env_id]
    assert all("--env-module" not in spec.train_args() for spec in inside)
    # the peer takes the outside env's arguments as rise-train does, at the same (CPU) scale
    peer_args = next(spec for spec in outside if spec.variant.name == "tfa-rnn-dqn").train_args()
    config = peer_settings(peer_parser().parse_args(peer_args[2:] + ["--run-dir", "x"]))["config"]
    assert config.env.env_id == "ThirdParty/Colours-v0" and config.env.env_module == "third_party_env"
    assert config.scale == "cpu" and config.agent.batch_size == 32 and config.train.frames == 3000
    # an id nobody registered is refused before anything runs, with the closest ids
    assert_exit = pytest.raises(SystemExit)
    with assert_exit:
        experiment_main(["memory", "--games", "ThirdParty/Colors-v0", "--env-module", "third_party_env", "--dry-run"])
    assert "Closest registered ids: ThirdParty/Colours-v0" in capsys.readouterr().err
    with pytest.raises(ValueError, match="go with gymnasium ids"):
        build_plan("memory", seeds=1, frames=5, env_settings=(("env-module", "x"),))


def test_reset_options_name_the_task_in_run_dirs_and_reach_every_variant(capsys):
    import third_party_env  # noqa: F401  (registers ThirdParty/*)
    from rise_tf.experiments.cli import main as experiment_main
    from rise_tf.peers.tf_agents_rnn_dqn import build_parser as peer_parser, peer_settings

    settings = (("env-module", "third_party_env"), ("reset-options", '{"colours": [2]}'))
    plan = build_plan("memory", seeds=1, frames=3000, games=["ThirdParty/Colours-v0"],
                      variants=["btr", "tfa-rnn-dqn"], env_settings=settings)
    assert [spec.relative_dir for spec in plan] == ["btr/ThirdParty_Colours-v0[colours=2]/seed0",
                                                    "tfa-rnn-dqn/ThirdParty_Colours-v0[colours=2]/seed0"]
    peer_args = plan[1].train_args()
    assert peer_args[peer_args.index("--reset-options") + 1] == '{"colours": [2]}'
    config = peer_settings(peer_parser().parse_args(peer_args[2:] + ["--run-dir", "x"]))["config"]
    assert config.env.reset_options_dict == {"colours": [2]}
    assert config.env_name == "ThirdParty/Colours-v0[colours=2]"
    # the dry run prints commands a shell takes as they are (the JSON quoted)
    assert experiment_main(["memory", "--games", "ThirdParty/Colours-v0", "--env-module", "third_party_env",
                            "--reset-options", '{"colours": 2}', "--variants", "btr", "--seeds", "1",
                            "--dry-run", "--out", "exp"]) == 0
    line = next(line for line in capsys.readouterr().out.splitlines() if "[new]" in line)
    argv = shlex.split(line.split(": ", 1)[1])
    assert argv[argv.index("--reset-options") + 1] == '{"colours": 2}'
    assert argv[argv.index("--run-dir") + 1] == os.path.join("exp", "btr", "ThirdParty_Colours-v0[colours=2]", "seed0")
    # options the env rejects stop the experiment before any run, with the env's own complaint
    with pytest.raises(SystemExit):
        experiment_main(["memory", "--games", "ThirdParty/Colours-v0", "--env-module", "third_party_env",
                         "--reset-options", '{"colors": 2}', "--dry-run"])
    assert "unknown reset options ['colors']" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        experiment_main(["memory", "--reset-options", '{"colours": 2}', "--dry-run"])
    assert "--reset-options go with gymnasium ids" in capsys.readouterr().err


def test_the_peer_refuses_envs_it_cannot_take_before_tensorflow(capsys):
    from rise_tf.peers.tf_agents_rnn_dqn import main as peer_main

    base = ["--env-module", "third_party_env", "--run-dir", "/nonexistent/x"]
    assert peer_main(["--env-id", "ThirdParty/ColoursVector-v0"] + base) == 2
    assert "a vector, not an image" in capsys.readouterr().err
    assert peer_main(["--env-id", "ThirdParty/Colours-v0", "--sticky-action-prob", "0.1"] + base) == 2
    assert "--sticky-action-prob applies to Atari games" in capsys.readouterr().err
    assert peer_main(["--env-id", "ThirdParty/Colours-v0", "--scale", "huge"] + base) == 2
    assert "unknown scale 'huge'" in capsys.readouterr().err


def test_the_peer_acts_on_a_multi_discrete_env_as_rise_train_does(tmp_path):
    """The peer builds its lanes with rise-train's env code: a MultiDiscrete env plays as 6 flat actions."""
    import third_party_env  # noqa: F401  (registers ThirdParty/*)
    from rise_tf.peers.tf_agents_rnn_dqn import main as peer_main

    run_dir = tmp_path / "peer"
    # Evaluations every 41 frames on 2 lanes: at 42, 82 and 124, the last frame count, which is no multiple
    # of 41; the run must not evaluate the same weights a second time as its "final" evaluation.
    assert peer_main(["--env-id", "ThirdParty/ColoursPair-v0", "--env-module", "third_party_env", "--frames", "124",
                      "--num-envs", "2", "--frame-size", "42", "--eval-every-frames", "41", "--eval-episodes", "2",
                      "--sequence-length", "4", "--warmup-frames", "40", "--run-dir", str(run_dir), "--no-progress"]) == 0
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["completed"] and summary["game"] == "ThirdParty/ColoursPair-v0" and summary["frames"] == 124
    evals = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()
             if json.loads(line)["kind"] == "eval"]
    assert [e["frames"] for e in evals] == [42, 82, 124]
    assert 0.0 <= summary["final_return"] <= 6.0
    # TD targets are counted as the peer trains them: a sequence of 4 steps holds 3 transitions.
    evaluation = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()][-1]
    batch = json.loads((run_dir / "config.json").read_text())["agent"]["batch_size"]
    assert evaluation["kind"] == "eval" and evaluation["updates"] == summary["updates"] > 0
    assert evaluation["td_targets"] == summary["updates"] * batch * 3


def test_a_variant_can_carry_settings_of_its_own():
    plan = build_plan("memory", seeds=1, frames=100, variants=["rise-btr+window-length=96+core-units=128,rise-btr"])
    own, plain = plan
    assert own.relative_dir == "rise-btr+window-length=96+core-units=128/MemoryCorridor/seed0"
    args = own.train_args()
    assert args[args.index("--window-length") + 1] == "96" and args[args.index("--core-units") + 1] == "128"
    assert "--window-length" not in plain.train_args() and own.variant.algo == plain.variant.algo == "rise-btr"
    for bad, message in (("rise-btr+window-length", "not a rise-train setting written flag=value"),
                         ("rise-bt+window-length=3", "unknown variant 'rise-bt'; did you mean")):
        with pytest.raises(ValueError, match=message):
            build_plan("memory", seeds=1, frames=5, variants=[bad])
