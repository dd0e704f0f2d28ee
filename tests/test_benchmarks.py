"""The benchmarks run on every game they accept (smoke-sized; the figures come from `make bench`)."""
import math

import pytest

from benchmarks import learner_cost


def test_learner_cost_fills_replay_with_the_games_own_actions():
    # MemoryCorridor has 2 actions: a filler writing Atari's 6 would index past the Q-values.
    result = learner_cost.measure(game="MemoryCorridor", rounds=1, updates_per_round=1, batch_size=4,
                                  models=(("base", "dqn"), ("rise", "rise-dqn")))
    assert math.isfinite(result["base_update_ms"]) and result["base_update_ms"] > 0
    assert math.isfinite(result["rise_update_ms"]) and result["rise_update_ms"] > 0
    # the ratio is of the two medians measured side by side, and the sizes are the ones asked for
    assert result["rise_over_base"] == result["rise_update_ms"] / result["base_update_ms"]
    assert result["batch_size"] == 4 and result["window_length"] == 16
    assert set(result) == {"base_update_ms", "rise_update_ms", "rise_over_base", "batch_size", "window_length"}


@pytest.mark.slow  # ~20 s (ResNet50 on CPU); make bench runs it too
def test_frozen_encoder_cost_covers_every_encoder():
    from benchmarks import frozen_encoders

    result = frozen_encoders.measure(repeats=2, frame_size=42)
    assert list(result["encoders"]) == list(frozen_encoders.ENCODERS)
    for name, row in result["encoders"].items():
        assert row["batch1_ms_per_frame"] > 0 and row["batch8_ms_per_frame"] > 0 and row["weights"] > 0, name
    assert result["encoders"]["keras:ResNet50"]["weights"] > 10 * result["encoders"]["random_cnn"]["weights"]


@pytest.mark.slow  # ~40 s; make bench-gpu's logic, kept out of make test's 15-minute budget
def test_gpu_scale_bench_runs_on_a_cpu_with_a_tiny_size():
    """make bench-gpu's logic, on a CPU at a tiny size: the figures exist and are positive, and no GPU
    utilisation is made up where there is no nvidia-smi."""
    from benchmarks import gpu_scale, machine

    size = dict(num_envs=2, batch_size=8, warmup_frames=400, seconds=3)
    r = gpu_scale.measure_model("rise-btr", size, mixed_precision=False)
    assert r["end_to_end_frames_per_s"] > 0 and r["learner_updates_per_s"] > 0
    assert r["learner_alone_updates_per_s"] > 0 and r["collection_alone_frames_per_s"] > 0
    assert r["learner_alone_frames_per_s"] == r["learner_alone_updates_per_s"] * 4 / r["replay_ratio"]
    assert r["lane_mode"] == "auto" and r["timed_seconds"] > 0
    if not gpu_scale.shutil.which("nvidia-smi"):
        assert r["gpu_utilisation_percent"] is None
    result = {"size": size, "device": "CPU", "mixed_precision": False, "machine": machine.describe(),
              "date": "today", "btr": r, "rise-btr": r}
    page = gpu_scale.markdown(result)
    assert "No GPU here: these are CPU figures" in page and "| rise-btr |" in page


def test_distributed_bench_times_the_steady_state_and_tables_every_engine(tmp_path):
    """make bench-distributed's arithmetic: frames/s between the first log after the warm-up and the
    last; the table lists the in-process trainer and each actor count with its efficiency."""
    import json

    from benchmarks import distributed

    records = [{"kind": "train", "frames": f, "wall_seconds": w} for f, w in ((1000, 5.0), (3000, 15.0), (5000, 25.0),
                                                                                (9000, 45.0))]
    with open(tmp_path / "metrics.jsonl", "w") as f:
        f.write("\n".join(json.dumps(r) for r in records) + "\n")
    assert distributed._steady_fps(str(tmp_path), warmup=2000) == (9000 - 3000) / (45.0 - 15.0)
    result = {"size": "quick", "date": "today", "end_to_end_frames": 6000,
              "machine": {"cpu": "x", "cores": 2, "memory_gib": 1, "gpus": []},
              "replay": {name: {"steps_per_s": 10.0, "batches_per_s": 2.0, "samples_per_s": 64.0}
                         for name in ("in_process", "reverb")},
              "end_to_end": {"in_process": 200.0, "actors_1": 150.0, "actors_2": 100.0}}
    table = distributed.markdown(result)
    assert "| distributed, 1 actor process(es) + learner + server | 150 | 0.75 |" in table
    assert "| distributed, 2 actor process(es) + learner + server | 100 | 0.50 |" in table


def test_reverb_replay_throughput_is_measured_for_both_stores():
    from benchmarks import distributed

    result = distributed.replay_throughput(steps=40, batches=2)
    assert set(result) == {"in_process", "reverb"}
    assert all(row["steps_per_s"] > 0 and row["batches_per_s"] > 0 for row in result.values())


def test_segment_cost_is_per_update_and_per_target_side_by_side():
    result = learner_cost.measure_segments(game="MemoryCorridor", rounds=1, updates_per_round=1, targets=16,
                                           btr_targets=8, lengths=(1, 4))
    models = result["models"]
    assert set(models) == {"rise_m1", "rise_m4", "rise_m4_stack1", "full_recurrent_m1", "rise_btr_m1", "rise_btr_m4",
                           "tfa_rnn_dqn"}
    assert result["targets_per_update"] == 16 and result["btr_targets_per_update"] == 8
    # the peer: B sequences of k+1 steps, each of its k transitions a target
    assert models["tfa_rnn_dqn"]["targets"] == result["peer_batch_size"] * (result["peer_sequence_length"] - 1)
    for name, row in models.items():
        assert math.isfinite(row["update_ms"]) and row["update_ms"] > 0
        assert row["target_ms"] == row["update_ms"] / row["targets"]
        base = models["rise_btr_m1" if name.startswith("rise_btr") else "rise_m1"]
        assert row["over_rise_m1"] == row["target_ms"] / base["target_ms"]
        assert row["over_peer"] == row["target_ms"] / models["tfa_rnn_dqn"]["target_ms"]
    assert models["rise_btr_m4"]["targets"] == 8 and models["rise_m4"]["targets"] == models["rise_m4_stack1"]["targets"] == 16
    assert models["rise_m1"]["over_rise_m1"] == 1.0

def test_the_segments_table_renders_the_peer_without_an_m1_of_its_own():
    import json
    import os

    from benchmarks.run import _markdown

    with open(os.path.join(os.path.dirname(__file__), "..", "results", "bench.json")) as f:
        results = json.load(f)  # the other sections as measured; this one replaced
    row = {"update_ms": 10.0, "targets": 16, "target_ms": 0.625, "over_rise_m1": 1.0, "over_peer": 1.25}
    peer = dict(row, target_ms=0.5, over_rise_m1=0.8, over_peer=1.0)
    results["learner_segments"] = {"targets_per_update": 16, "btr_targets_per_update": 8, "peer_batch_size": 1,
                                   "peer_sequence_length": 17, "models": {"rise_m1": row, "tfa_rnn_dqn": peer}}
    text = _markdown(results)
    assert "| rise_m1 | 16 | 10.0 | 0.625 | 1.00x | 1.25x |" in text
    assert "| tfa_rnn_dqn | 16 | 10.0 | 0.500 | - | 1.00x |" in text


def test_server_latency_is_measured_beside_in_process_for_1_8_and_16_clients(pong_onnx):
    from benchmarks import run, server_latency

    result = server_latency.compare(pong_onnx, requests=20)
    runs = result["new"]["runs"]
    assert [r["clients"] for r in runs] == [1, 8, 16]
    assert [r["requests"] for r in runs] == [20, 20 * 8, 20 * 16]
    assert all(0 < r["p50_ms"] <= r["p99_ms"] and r["requests_per_s"] > 0 for r in runs)
    assert result["new_one_client_added_p50_ms"] == runs[0]["p50_ms"] - result["in_process"]["p50_ms"]
    import json
    import os

    with open(os.path.join(os.path.dirname(__file__), "..", "results", "bench.json")) as f:
        results = json.load(f)  # the other sections as measured; this one replaced
    results["step_latency"]["server"] = result
    table = run._markdown(results)
    assert f"adds **{result['new_one_client_added_p50_ms']:.2f} ms** p50" in table
    assert table.count("| Starlette + uvicorn (today) |") == 3
