"""The benchmarks run on every game they accept (smoke-sized; the figures come from `make bench`)."""
import math

from benchmarks import learner_cost


def test_learner_cost_fills_replay_with_the_games_own_actions():
    # MemoryCorridor has 2 actions: a filler writing Atari's 6 would index past the Q-values.
    result = learner_cost.measure(game="MemoryCorridor", rounds=1, updates_per_round=1, batch_size=4,
                                  models=(("base", "dqn"), ("rise", "rise-dqn")))
    assert math.isfinite(result["base_update_ms"]) and result["base_update_ms"] > 0
    assert math.isfinite(result["rise_over_base"]) and result["batch_size"] == 4


def test_frozen_encoder_cost_covers_every_encoder():
    from benchmarks import frozen_encoders

    result = frozen_encoders.measure(repeats=2, frame_size=42)
    assert list(result["encoders"]) == list(frozen_encoders.ENCODERS)
    for name, row in result["encoders"].items():
        assert row["batch1_ms_per_frame"] > 0 and row["batch8_ms_per_frame"] > 0 and row["weights"] > 0, name
    assert result["encoders"]["keras:ResNet50"]["weights"] > 10 * result["encoders"]["random_cnn"]["weights"]


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
