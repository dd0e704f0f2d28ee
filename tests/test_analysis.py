"""Aggregate metrics against hand-computed values; HNS against the reference table; rise-report on
tiny synthetic run directories (metrics.jsonl and TensorBoard-only)."""
import csv
import json
import os
import re

import numpy as np
import pytest

from rise_tf.analysis import aggregate
from rise_tf.analysis.report import main as report_main
from rise_tf.analysis.runs import find_runs
from rise_runtime.envs.atari_scores import GAME_SUBSETS, human_normalized_score, reference_scores


def test_iqm_trims_a_quarter_from_each_end():
    # 8 scores over two tasks: the middle 4 of 1..8 are 3, 4, 5, 6.
    assert aggregate.point_estimate({"a": [1, 8, 3, 6], "b": [2, 7, 4, 5]}, "IQM") == pytest.approx(4.5)
    # 5 scores: floor(1.25) = 1 cut from each end (scipy.stats.trim_mean's rule) -> mean(2, 3, 10) = 5.
    assert aggregate.point_estimate({"a": [1, 2, 3, 10, 100]}, "IQM") == pytest.approx(5.0)


def test_median_and_mean_are_over_task_means():
    scores = {"a": [0.0, 1.0], "b": [2.0, 2.0], "c": [10.0, 20.0]}  # task means 0.5, 2, 15
    assert aggregate.point_estimate(scores, "Median") == pytest.approx(2.0)
    assert aggregate.point_estimate(scores, "Mean") == pytest.approx(17.5 / 3)


def test_bootstrap_is_stratified_by_task():
    # Within each task every run is the same: a stratified resample cannot move the mean,
    # while resampling runs across tasks would (0.5 is not guaranteed).
    estimate = aggregate.interval_estimate({"a": [1.0, 1.0, 1.0], "b": [0.0, 0.0, 0.0]}, "Mean", reps=500)
    assert (estimate.point, estimate.low, estimate.high) == (0.5, 0.5, 0.5)


def test_bootstrap_interval_for_one_task_of_two_runs():
    # Resampling [0, 1] gives means 0 (p 1/4), 0.5 (1/2), 1 (1/4): the 95 % interval is [0, 1].
    estimate = aggregate.interval_estimate({"a": [0.0, 1.0]}, "Mean", reps=4000)
    assert estimate.point == 0.5 and estimate.low == 0.0 and estimate.high == 1.0
    replicates = aggregate.bootstrap_replicates({"a": [0.0, 1.0]}, "Mean", reps=4000)
    assert np.mean(replicates == 0.5) == pytest.approx(0.5, abs=0.03)


def test_interval_narrows_with_more_runs():
    rng = np.random.default_rng(1)
    few = aggregate.interval_estimate({"a": rng.normal(size=5)}, "IQM")
    many = aggregate.interval_estimate({"a": rng.normal(size=200)}, "IQM")
    assert many.high - many.low < (few.high - few.low) / 2
    assert few.low <= few.point <= few.high


def test_relative_change():
    change = aggregate.relative_change({"a": [3.0, 3.0]}, {"a": [2.0, 2.0]}, "Mean", reps=200)
    assert (change.point, change.low, change.high) == (0.5, 0.5, 0.5)
    with pytest.raises(ValueError, match="share no task"):
        aggregate.relative_change({"a": [1.0]}, {"b": [1.0]})


def test_rliable_intervals_are_the_same_whatever_numpy_global_state():
    """rliable 1.2 resamples with numpy's global generator and ignores the random_state it is given: a
    report's intervals must not move between runs (they did: +58.9 % and +58.8 % for the same runs),
    and the caller's global state is put back."""
    candidate, baseline = {"t": [3.281, 3.719, 3.875]}, {"t": [2.844, 3.094, 2.250]}
    estimates = []
    for global_seed in (1, 2):
        np.random.seed(global_seed)
        estimates.append((aggregate.relative_change(candidate, baseline, "IQM", reps=300),
                          aggregate.probability_of_improvement(candidate, {"t": [3.5, 3.0, 3.7]}, reps=300),
                          aggregate.interval_estimate({"t": [0.1, 0.5, 0.9, 0.4]}, "Mean", reps=300)))
        assert np.random.random() == np.random.RandomState(global_seed).random()  # the caller's state kept
    assert estimates[0] == estimates[1]
    profiles = [aggregate.performance_profiles({"a": {"t": [0.1, 0.5, 0.9]}}, np.linspace(0, 1, 5), reps=100)[1]
                for _ in range(2)]
    np.testing.assert_array_equal(profiles[0]["a"], profiles[1]["a"])


def test_rliable_and_our_bootstrap_agree_on_the_same_scores():
    """The report uses rliable where every task has the same number of runs and our stratified
    bootstrap otherwise: on the same scores both give the same point and nearly the same interval."""
    rng = np.random.default_rng(4)
    scores = {task: rng.uniform(0, 1, size=6) for task in ("a", "b", "c")}
    for metric in aggregate.METRICS:
        theirs = aggregate.interval_estimate(scores, metric, reps=4000)  # a full matrix: rliable
        ours = aggregate.own_interval_estimate(scores, metric, reps=4000)
        assert theirs.point == pytest.approx(ours.point, abs=1e-12)
        assert theirs.low == pytest.approx(ours.low, abs=0.03) and theirs.high == pytest.approx(ours.high, abs=0.03)
    # Unequal runs per task: only ours can take it, and the report still gets an interval.
    uneven = {"a": [0.1, 0.2, 0.3], "b": [0.5, 0.6]}
    estimate = aggregate.interval_estimate(uneven, "Mean")
    assert estimate == aggregate.own_interval_estimate(uneven, "Mean")
    assert aggregate.probability_of_improvement(uneven, uneven) is None


def test_probability_of_improvement_by_hand():
    better = aggregate.probability_of_improvement({"a": [1.0, 2.0, 3.0]}, {"a": [0.0, 0.0, 0.0]}, reps=200)
    assert (better.point, better.low, better.high) == (1.0, 1.0, 1.0)
    # Task a: X wins 3 of 4 pairs (1>0, 2>0, 2>1; 1 vs 1 counts half) -> (3 + 0.5) / 4; task b: ties -> 0.5.
    mixed = aggregate.probability_of_improvement({"a": [1.0, 2.0], "b": [5.0, 5.0]}, {"a": [0.0, 1.0], "b": [5.0, 5.0]})
    assert mixed.point == pytest.approx((3.5 / 4 + 0.5) / 2)


def test_human_normalized_score_matches_the_reference_table():
    with open(os.path.join(os.path.dirname(__file__), "..", "serving", "rise_runtime", "data", "atari_reference_scores.csv")) as f:
        table = {row["game"]: (float(row["random"]), float(row["human"])) for row in csv.DictReader(f)}
    assert reference_scores() == table and len(table) == 57
    random_score, human_score = table["alien"]
    assert human_normalized_score("Alien", (random_score + human_score) / 2) == pytest.approx(0.5)
    assert human_normalized_score("ALE/BattleZone-v5", table["battle_zone"][1]) == pytest.approx(1.0)
    assert human_normalized_score("Pong", table["pong"][0]) == pytest.approx(0.0)
    assert human_normalized_score("MemoryCorridor", 1.0) is None
    for subset in GAME_SUBSETS.values():  # every named subset game has reference scores
        assert all(human_normalized_score(game, 0.0) is not None for game in subset)
    assert len(GAME_SUBSETS["atari5"]) == 5 and len(GAME_SUBSETS["atari100k"]) == 26


def _fake_run(directory, algo, game, seed, evals, update_ms, network=None, variant=None, env=None, targets=None):
    os.makedirs(directory)
    config = {"config_version": 1, "algo": algo, "env": env or {"game": game}, "network": network or {"core": "lstm"},
              "agent": {}, "replay": {}, "train": {"seed": seed}}
    with open(os.path.join(directory, "config.json"), "w") as f:
        json.dump(config, f)
    with open(os.path.join(directory, "metrics.jsonl"), "w") as f:
        f.write(json.dumps({"kind": "train", "frames": 100, "return": 0.0}) + "\n")
        for frames, score in evals:
            key = "success_rate" if game.startswith("MemoryCorridor") else "human_normalized"
            record = {"kind": "eval", "frames": frames, "return": score, key: score, "wall_seconds": frames / 100}
            if targets is not None:  # TD targets trained by then, as runs log them since 2026-12-05
                record["td_targets"] = frames * targets
            f.write(json.dumps(record) + "\n")
        f.write('{"kind": "eval", "fra')  # a line cut by a crash is skipped
    with open(os.path.join(directory, "summary.json"), "w") as f:
        json.dump({"frames": evals[-1][0], "wall_seconds": 10.0 * update_ms, "update_ms": update_ms,
                   "completed": True}, f)


def test_report_from_a_synthetic_memory_experiment(tmp_path):
    root = tmp_path / "memory"
    runs = []
    for seed in range(3):
        _fake_run(root / "base" / "MemoryCorridor" / f"seed{seed}", "dqn", "MemoryCorridor", seed,
                  [(1000, 0.5), (2000, [0.5, 0.4, 0.6][seed])], update_ms=20.0)
        _fake_run(root / "rise" / "MemoryCorridor" / f"seed{seed}", "rise-dqn", "MemoryCorridor", seed,
                  [(1000, 0.6), (2000, 1.0)], update_ms=25.0, targets=seed + 1)
        runs += [{"dir": f"{v}/MemoryCorridor/seed{seed}", "variant": v, "note": f"{v} note"} for v in ("base", "rise")]
    with open(root / "experiment.json", "w") as f:
        json.dump({"experiment": "memory", "variants": ["base", "rise"], "runs": runs}, f)
    out = tmp_path / "results"
    assert report_main([str(root), "--out", str(out), "--name", "memory", "--reps", "500"]) == 0
    assert sorted(os.listdir(out)) == ["memory.json", "memory.md", "memory_curves.png", "memory_improvement.png",
                                       "memory_profiles.png", "memory_runs.csv"]
    summary = json.loads((out / "memory.json").read_text())
    base, rise = summary["variants"]["base"], summary["variants"]["rise"]
    assert base["aggregate"]["Mean"]["point"] == pytest.approx(0.5)
    assert rise["aggregate"]["Mean"] == {"point": 1.0, "low": 1.0, "high": 1.0}
    assert rise["solved_runs"] == 3 and rise["frames_to_solve"] == 2000 and base["solved_runs"] == 0
    assert rise["seconds_to_solve"] == pytest.approx(20.0)
    assert rise["td_targets_to_solve"] == pytest.approx(2000 * (1 + 2 + 3) / 3) and base["td_targets_to_solve"] is None
    assert rise["update_cost_vs_baseline"] == pytest.approx(1.25)
    assert rise["iqm_change_vs_baseline"]["point"] == pytest.approx(1.0)  # IQM 0.5 -> 1.0
    # Every rise run beats every base run: P(rise > base) = 1 (Mann-Whitney U = 9 of 3 x 3 pairs).
    assert rise["p_improvement_vs_baseline"]["point"] == pytest.approx(1.0)
    # best and final: base seed 1 fell from 0.5 to 0.4 (best 0.5); means over the 3 runs
    assert base["best_mean"] == pytest.approx((0.5 + 0.5 + 0.6) / 3) and rise["best_mean"] == 1.0
    first = next(r for r in summary["runs"] if r["label"] == "base" and r["seed"] == 1)
    assert first["best_score"] == 0.5 and first["final_score"] == 0.4
    # curves against agent steps (memory task: 1 frame per step) and wall-clock (logged frames / 100)
    assert first["agent_step_curve"] == [[1000, 0.5], [2000, 0.4]] and first["wall_curve"] == [[10.0, 0.5], [20.0, 0.4]]
    text = (out / "memory.md").read_text()
    # the best-eval column follows the two bootstrap columns (whose CIs vary with the resampling)
    assert "best eval (mean)" in text and re.search(r"\| base \| 3 \| 0\.500 \[[^]]+\] \| 0\.500 \[[^]]+\] \| 0\.533 \|", text)
    assert "| base | 3 |" in text and "| rise | 3 | 1.000 [1.000, 1.000]" in text and "rise note" in text
    assert "TD targets trained to solve" in text and "| 3/3 | 2000 | 20 | 4000 |" in text
    with open(out / "memory_runs.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 6 and {r["label"] for r in rows} == {"base", "rise"}
    assert summary["unfinished_runs"] == [] and "not finished" not in text
    os.remove(root / "rise" / "MemoryCorridor" / "seed2" / "summary.json")  # a run still going
    assert report_main([str(root), "--out", str(out), "--name", "memory", "--reps", "500"]) == 0
    text = (out / "memory.md").read_text()
    assert "**1 run(s) have not finished**" in text
    # Runs are named from the experiment folder on: no machine's paths in a report.
    assert "their latest evaluation: memory/rise/MemoryCorridor/seed2" in text and str(tmp_path) not in text
    summary = json.loads((out / "memory.json").read_text())
    assert {r["path"] for r in summary["runs"]} >= {"memory/base/MemoryCorridor/seed0", "memory/rise/MemoryCorridor/seed2"}
    # --last-evals 2: a run's score is the mean of its last two evaluations (base: 0.5, 0.45, 0.55; rise 0.8)
    assert report_main([str(root), "--out", str(out), "--name", "last2", "--reps", "500", "--last-evals", "2"]) == 0
    summary = json.loads((out / "last2.json").read_text())
    assert summary["last_evals"] == 2
    assert summary["variants"]["rise"]["aggregate"]["Mean"]["point"] == pytest.approx(0.8)
    assert summary["variants"]["base"]["aggregate"]["Mean"]["point"] == pytest.approx(0.5)
    assert sorted(r["final_score"] for r in summary["runs"] if r["label"] == "base") == pytest.approx([0.45, 0.5, 0.55])
    assert "score: mean of the last 2 greedy evaluations" in (out / "last2.md").read_text()
    assert report_main([str(root), "--out", str(out), "--last-evals", "0"]) == 2


def test_report_over_games_has_aggregates_and_config_labels(tmp_path):
    # No experiment.json: labels come from the algo and the settings that differ between runs.
    for game, base_score, rise_score in (("Pong", 0.1, 0.2), ("Breakout", 0.3, 0.3), ("Qbert", 0.2, 0.5)):
        for seed in range(2):
            _fake_run(tmp_path / "runs" / f"{game}-dqn-{seed}", "dqn", game, seed, [(10, base_score)], 20.0)
            _fake_run(tmp_path / "runs" / f"{game}-gru-{seed}", "rise-dqn", game, seed, [(10, rise_score)], 25.0,
                      network={"core": "gru"})
            _fake_run(tmp_path / "runs" / f"{game}-lstm-{seed}", "rise-dqn", game, seed, [(10, rise_score)], 25.0)
    labels = {run.label for run in find_runs(str(tmp_path / "runs"))}
    assert labels == {"dqn", "rise-dqn[core=gru]", "rise-dqn[core=lstm]"}
    out = tmp_path / "out"
    assert report_main([str(tmp_path / "runs"), "--out", str(out), "--baseline", "dqn", "--reps", "300"]) == 0
    assert (out / "report_aggregate.png").exists()
    summary = json.loads((out / "report.json").read_text())
    assert summary["variants"]["dqn"]["aggregate"]["Median"]["point"] == pytest.approx(0.2)
    # IQM over 6 scores (0.2, 0.2, 0.3, 0.3, 0.5, 0.5) -> middle 4 -> 0.325; base: (0.1, 0.1, 0.2, 0.2, 0.3, 0.3) -> 0.2
    change = summary["variants"]["rise-dqn[core=gru]"]["iqm_change_vs_baseline"]["point"]
    assert change == pytest.approx(0.325 / 0.2 - 1)
    assert "## Aggregates over games" in (out / "report.md").read_text()


def test_report_reads_tensorboard_only_runs(tmp_path):
    import tensorflow as tf

    for label, values in (("mine/lstm", [0.2, 0.8]), ("mine/gru", [0.1, 0.4])):
        for seed in range(2):
            writer = tf.summary.create_file_writer(str(tmp_path / label / f"seed{seed}"))
            with writer.as_default():
                for step, value in zip((1000, 2000), values):
                    tf.summary.scalar("eval/return", value + seed, step=step)
            writer.close()
    runs = find_runs(str(tmp_path))
    assert {(r.label, r.seed) for r in runs} == {("mine/lstm", 0), ("mine/lstm", 1), ("mine/gru", 0), ("mine/gru", 1)}
    lstm = [r for r in runs if r.label == "mine/lstm" and r.seed == 1][0]
    assert lstm.curve() == [(1000, pytest.approx(1.2)), (2000, pytest.approx(1.8))]
    assert report_main([str(tmp_path), "--out", str(tmp_path / "out"), "--baseline", "mine/gru"]) == 0
    summary = json.loads((tmp_path / "out" / "report.json").read_text())
    assert summary["variants"]["mine/lstm"]["aggregate"]["Mean"]["point"] == pytest.approx(1.3)


def test_report_errors_are_clear(tmp_path, capsys):
    with pytest.raises(SystemExit):
        report_main([str(tmp_path / "missing")])
    assert "is not a directory" in capsys.readouterr().err
    assert report_main([str(tmp_path)]) == 2
    assert "no runs found" in capsys.readouterr().err


def test_cue_separation_measures_the_cue_gap_against_the_corridor_spread():
    """With the identity as ϑ, the cue gap is the pixel distance between the two cue frames."""
    from rise_tf.experiments.cue_separation import corridor_frames, separation
    from rise_tf.config import make_config

    config = make_config("rise-dqn", "MemoryCorridor")
    first, second = corridor_frames(config, 0), corridor_frames(config, 1)
    assert (first[1:] == second[1:]).all() and not (first[0] == second[0]).all()  # only the cue differs
    flat = lambda frames: frames.reshape(len(frames), -1).astype(np.float64)  # noqa: E731
    result = separation(flat, config)
    assert result["cue_gap"] == pytest.approx(np.linalg.norm(flat(first[:1]) - flat(second[:1])))
    assert 0 < result["corridor_spread"] and result["ratio"] == pytest.approx(result["cue_gap"] / result["corridor_spread"])


def test_outside_cue_reach_and_separation_by_hand():
    from rise_tf.experiments.outside_cues import command_success, reach, separation

    # 10 episodes: 4 missed the first command, 6 carried it out, 2 of those the second too (reward 0.1 each)
    s = command_success([0.0] * 4 + [0.1] * 4 + [0.2] * 2, reward_per_command=0.1)
    assert s["episodes"] == 10 and s["first"] == 0.6 and s["second_given_first"] == pytest.approx(2 / 6)
    assert s["mean_commands"] == pytest.approx(0.8)

    # Memory Gym's MortarMayhem-Grid defaults: command i is last shown at 4i + 2, the cue phase ends at
    # 40, command i may be walked to from 40 + 8i and is checked at 40 + 8i + 6: gaps 44 (first) .. 80
    # (last), from 38 .. 74 steps back when the agent may start walking.
    params = {"command_count": [10], "command_show_duration": [3], "command_show_delay": [1],
              "explosion_delay": [6], "explosion_duration": [2]}
    assert reach(params) == {"commands": 10, "first_gap": 44, "last_gap": 80, "min_gap": 44, "max_gap": 80,
                             "min_move_gap": 38, "max_move_gap": 74}
    # two commands (the CPU-scale task): shown until 2 and 6, walked to from 8 and 16, checked at 14 and 22
    assert reach({**params, "command_count": [2]}) == {"commands": 2, "first_gap": 12, "last_gap": 16, "min_gap": 12,
                                                       "max_gap": 16, "min_move_gap": 6, "max_move_gap": 10}
    # the free-moving MortarMayhem-v0 keeps 18 steps to walk and 6 of checking: walked to from 8 and 32,
    # checked at 26 and 50; the second cue is 26 steps back when the agent may walk (beyond k = 16)
    free = {**params, "command_count": [2], "explosion_delay": [18], "explosion_duration": [6]}
    assert reach(free) == {"commands": 2, "first_gap": 24, "last_gap": 44, "min_gap": 24, "max_gap": 44,
                           "min_move_gap": 6, "max_move_gap": 26}
    # two commands at distance 2 apart, each frame 1 from its centroid; blank frames spread 0.5
    embeddings = np.array([[0, 1], [0, -1], [2, 1], [2, -1], [5, 0.5], [5, -0.5]], float)
    s = separation(embeddings, ["a", "a", "b", "b", "", ""])
    assert (s["commands"], s["between"], s["within"], s["ratio"], s["blank_spread"]) == (2, 2.0, 1.0, 2.0, 0.5)


def test_hide_commands_refuses_runs_that_are_not_mortar_mayhem(pong_run, tmp_path, capsys):
    from rise_tf.experiments.outside_cues import main

    assert main(["--hide-commands", str(pong_run)]) == 2
    assert "trained on Pong; --hide-commands takes runs of MortarMayhem-Grid-v0 or MortarMayhem-v0" in capsys.readouterr().err
    assert main(["--hide-commands", str(tmp_path / "none")]) == 2
    assert "is not a rise-tf run" in capsys.readouterr().err
    assert main(["--hide-commands", str(pong_run), "--checkpoint", str(tmp_path / "ckpt-1")]) == 2
    assert "does not exist" in capsys.readouterr().err
    damaged = tmp_path / "ckpt-000000000001"
    damaged.mkdir()
    (damaged / "state.json").write_text("{")
    assert main(["--hide-commands", str(pong_run), "--checkpoint", str(damaged)]) == 2
    assert "is corrupt" in capsys.readouterr().err
    assert main(["--runs", str(tmp_path / "none")]) == 2
    assert "is not a directory of runs" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["--hide-commands", str(pong_run), "--episodes", "0"])
    assert exit_info.value.code == 2 and "--episodes must be at least 1" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["--memory-reach", "4"])
    assert exit_info.value.code == 2 and "--memory-reach plays a trained policy" in capsys.readouterr().err


def test_mystery_path_policy_tools_refuse_without_a_mystery_path_run(pong_run, capsys):
    from rise_tf.experiments.mystery_path_levels import main

    for flag in ("--hide-falls", "--memory-reach=4", "--epsilon=0.05"):
        with pytest.raises(SystemExit) as exit_info:
            main([flag])
        assert exit_info.value.code == 2 and f"{flag.split('=')[0]} plays a trained policy" in capsys.readouterr().err
    for epsilon in ("0", "1.5", "nan"):
        with pytest.raises(SystemExit) as exit_info:
            main(["--run", str(pong_run), "--epsilon", epsilon])
        assert exit_info.value.code == 2 and "--epsilon must be in (0, 1]" in capsys.readouterr().err
    assert main(["--run", str(pong_run), "--memory-reach", "4"]) == 2
    assert "trained on Pong; --run takes MysteryPath-Grid-v0 runs" in capsys.readouterr().err


def test_seed_band_averages_runs_evaluation_by_evaluation():
    """Runs on one evaluation schedule log slightly different steps (6004, 6006, ...): their i-th
    evaluations are averaged at the mean x, not read step-wise on the union of their x values (which
    drew a zigzag of half-updated means); runs of different lengths (one stopped early) stay step-wise."""
    from rise_tf.analysis.report import seed_band

    x, mean, low, high = seed_band([[[1000, 0.5], [2000, 0.4]], [[1004, 0.7], [2006, 0.6]], [[1002, 0.3], [2004, 0.8]]])
    np.testing.assert_allclose(x, [1002, 2003.3333333])
    np.testing.assert_allclose(mean, [0.5, 0.6])
    np.testing.assert_allclose(low, [0.3, 0.4])
    np.testing.assert_allclose(high, [0.7, 0.8])
    x, mean, low, high = seed_band([[[1000, 0.5], [2000, 0.4]], [[1500, 1.0]]])
    np.testing.assert_allclose(x, [1000, 1500, 2000])
    np.testing.assert_allclose(mean, [0.5, 0.75, 0.7])  # the stopped run keeps its 1.0
    np.testing.assert_allclose(low, [0.5, 0.5, 0.4])
    np.testing.assert_allclose(high, [0.5, 1.0, 1.0])


def test_plot_title_breaks_a_long_task_name_after_commas():
    from rise_tf.analysis.report import plot_title

    assert plot_title("Pong") == "Pong"
    long = "MysteryPath-Grid-v0[cardinal_origin_choice=0,reward_path_progress=1.0,show_goal=true,show_origin=true]"
    assert plot_title(long) == ("MysteryPath-Grid-v0\n[cardinal_origin_choice=0,reward_path_progress=1.0,\n"
                                "show_goal=true,show_origin=true]")


def test_report_says_why_a_probability_of_improvement_is_missing(tmp_path):
    root = tmp_path / "uneven"
    for variant, algo, score in (("base", "dqn", 0.5), ("rise", "rise-dqn", 1.0)):
        for game, seeds in (("MemoryCorridor", 2), ("MemoryCorridorLong", 1)):  # 2 runs on one task, 1 on the other
            for seed in range(seeds):
                _fake_run(root / variant / game / f"seed{seed}", algo, game, seed, [(1000, score)], update_ms=10.0,
                          variant=variant)
    out = tmp_path / "results"
    assert report_main([str(root), "--out", str(out), "--name", "uneven", "--reps", "200", "--baseline", "dqn"]) == 0
    text = (out / "uneven.md").read_text()
    assert "Probability of improvement over dqn not computed for rise-dqn: rliable needs the same number of runs" in text


def test_a_task_set_by_reset_options_is_its_own_game(tmp_path):
    """Two settings of one outside env are two tasks in a report, never averaged together."""
    for name, options in (("plain", None), ("one", '{"colours": [1]}'), ("two", '{"colours": 2, "b": true}')):
        env = {"env_id": "ThirdParty/Colours-v0", "env_kind": "gym", "reset_options": options}
        _fake_run(tmp_path / name, "rise-btr", "", 0, [(10, 1.0)], 20.0, env=env)
    assert sorted(run.game for run in find_runs(str(tmp_path))) == [
        "ThirdParty/Colours-v0", "ThirdParty/Colours-v0[b=true,colours=2]", "ThirdParty/Colours-v0[colours=1]"]


def test_td_targets_to_solve_only_when_every_solved_run_logged_them(tmp_path):
    """Runs from before 2026-12-05 log no TD targets: a mean over the others would mislead."""
    from rise_tf.analysis.report import summarise

    for seed, targets in enumerate((4, None)):
        _fake_run(tmp_path / "rise" / "MemoryCorridor" / f"seed{seed}", "rise-dqn", "MemoryCorridor", seed,
                  [(1000, 0.5), (2000, 1.0)], update_ms=25.0, targets=targets)
    both = summarise(find_runs(str(tmp_path)), baseline=None, reps=50)["variants"]
    assert both["rise-dqn"]["solved_runs"] == 2 and both["rise-dqn"]["td_targets_to_solve"] is None
    only_logged = summarise([r for r in find_runs(str(tmp_path)) if r.seed == 0], baseline=None, reps=50)
    assert only_logged["variants"]["rise-dqn"]["td_targets_to_solve"] == 8000


def test_reach_gives_each_runs_first_evaluation_at_the_level(tmp_path):
    """--reach: agent steps (frames / action repeat) and wall-clock of the first evaluation >= the level,
    "never" with the run's wall-clock otherwise; means only over the runs that reached it."""
    env = {"env_id": "ThirdParty/Cues-v0", "env_kind": "gym", "action_repeat": 2}
    curves = {("rise", 0): [(1000, 0.2), (2000, 0.5), (3000, 0.4)], ("rise", 1): [(1000, 0.6), (2000, 0.7)],
              ("base", 0): [(1000, 0.3), (2000, 0.45)], ("base", 1): [(1000, 0.1), (2000, 0.2)]}
    for (variant, seed), evals in curves.items():
        _fake_run(tmp_path / "exp" / variant / f"seed{seed}", "btr" if variant == "base" else "rise-btr", "", seed,
                  evals, update_ms=30.0, variant=variant, env=env)
    out = tmp_path / "results"
    assert report_main([str(tmp_path / "exp"), "--out", str(out), "--name", "r", "--reps", "200",
                        "--baseline", "btr", "--reach", "0.5"]) == 0
    summary = json.loads((out / "r.json").read_text())
    rise, base = summary["variants"]["rise-btr"]["reach"], summary["variants"]["btr"]["reach"]
    # evaluations log wall_seconds = frames / 100; agent steps = frames / 2
    assert [(r["seed"], r["agent_steps"], r["wall_seconds"]) for r in rise["per_run"]] == [(0, 1000, 20.0), (1, 500, 10.0)]
    assert rise["reached_runs"] == 2 and rise["agent_steps"] == 750 and rise["wall_seconds"] == pytest.approx(15.0)
    assert base["reached_runs"] == 0 and base["agent_steps"] is None  # 0.45 is not 0.5
    text = (out / "r.md").read_text()
    assert "## First greedy evaluation scoring ≥ 0.5" in text
    assert "| rise-btr | 2/2 | seed 0: 1,000 @ 20 s; seed 1: 500 @ 10 s | 750 / 15 |" in text
    assert "| btr | 0/2 | seed 0: never (300 s); seed 1: never (300 s) | – |" in text
    assert report_main([str(tmp_path / "exp"), "--out", str(out), "--name", "plain", "--reps", "200"]) == 0
    assert "First greedy evaluation" not in (out / "plain.md").read_text()
    with pytest.raises(SystemExit):
        report_main([str(tmp_path / "exp"), "--reach", "nan"])
