"""rise-play on a real ALE game with the exported model: scores, latency, pacing, recording, errors."""
import json
import sys

import av
import cv2

from rise_runtime.play import main


def test_plays_a_few_hundred_frames_and_records_them(pong_onnx, tmp_path, capsys):
    video = tmp_path / "pong.mp4"
    assert main([pong_onnx, "--episodes", "2", "--max-episode-frames", "800", "--record", str(video), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["game"] == "Pong" and len(result["scores"]) == 2
    # Truncated at 800 emulator frames, which include the 1-30 no-op start frames: (800 - 30) / 4 -> 193.
    assert all(193 <= steps <= 200 for steps in result["episode_steps"])
    assert result["human_normalized"] is not None
    assert 0 < result["latency_p50_ms"] <= result["latency_p99_ms"]
    assert result["record_codec"] == "h264"  # browsers play H.264 in yuv420p
    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264" and stream.codec_context.pix_fmt == "yuv420p"
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
    assert len(frames) == sum(result["episode_steps"]) and frames[0].shape == (210, 160, 3)  # one frame per step


def test_mp4_falls_back_to_opencv_without_pyav_and_says_browsers_may_not_play_it(pong_onnx, tmp_path, capsys,
                                                                                   monkeypatch):
    monkeypatch.setitem(sys.modules, "av", None)
    video = tmp_path / "pong.mp4"
    assert main([pong_onnx, "--max-episode-frames", "200", "--record", str(video)]) == 0
    assert "mp4v: many browsers cannot play it" in capsys.readouterr().out
    capture = cv2.VideoCapture(str(video))
    # one frame per agent step: 200 emulator frames (the no-op start included) at repeat 4 -> 43..50 steps
    assert 43 <= int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) <= 50


def test_realtime_paces_to_game_time_and_counts_deadlines(pong_onnx, tmp_path, capsys):
    import time

    started = time.perf_counter()
    assert main([pong_onnx, "--realtime", "--max-episode-frames", "120", "--json", "--record",
                 str(tmp_path / "p.mp4")]) == 0
    elapsed = time.perf_counter() - started
    result = json.loads(capsys.readouterr().out)
    steps = result["steps"]  # 120 frames with the no-op start: 23..30 agent steps of 4 frames
    assert 23 <= steps <= 30 and 0 <= result["dropped_deadlines"] <= steps
    # paced to 60 Hz game time: never faster than 4 frames / 60 Hz per step
    assert elapsed >= steps * 4 / 60.0 - 0.05
    with av.open(str(tmp_path / "p.mp4")) as container:
        assert sum(1 for _ in container.decode(container.streams.video[0])) == steps


def test_bad_requests_exit_with_a_message(pong_onnx, tmp_path, capsys):
    assert main([pong_onnx, "--game", "Breakout", "--max-episode-frames", "100"]) == 2
    assert "trained with" in capsys.readouterr().err
    assert main([pong_onnx, "--record", str(tmp_path / "x.avi"), "--max-episode-frames", "100"]) == 2
    assert ".mp4 or .gif" in capsys.readouterr().err
    assert main([str(tmp_path / "none.onnx")]) == 2
    assert "rise-export" in capsys.readouterr().err
    assert main([pong_onnx, "--record", "/proc/rise-play-test/x.mp4"]) == 2  # unwritable, even for root
    assert "/proc does not accept new files" in capsys.readouterr().err
    (tmp_path / "models").mkdir()
    assert main([str(tmp_path / "models")]) == 2
    assert "is a folder, not a model" in capsys.readouterr().err


def test_plays_a_memory_task_model_in_its_own_corridor(tmp_path, capsys):
    from rise_tf.export import step_model
    from conftest import tiny_run

    run = tiny_run(tmp_path / "memory", "rise-dqn", "MemoryCorridor")
    path = str(tmp_path / "memory.onnx")
    step_model.export_onnx(step_model.load_policy(run), path)
    capsys.readouterr()  # the training run's own output
    assert main([path, "--episodes", "3", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["game"] == "MemoryCorridor" and result["human_normalized"] is None
    assert result["episode_steps"] == [10, 10, 10] and set(result["scores"]) <= {-1.0, 1.0}
