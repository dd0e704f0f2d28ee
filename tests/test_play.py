"""rise-play on a real ALE game with the exported model: scores, latency, pacing, recording, errors."""
import json

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
    capture = cv2.VideoCapture(str(video))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == sum(result["episode_steps"])  # one frame per step
    ok, frame = capture.read()
    assert ok and frame.shape == (210, 160, 3)


def test_realtime_paces_to_game_time_and_counts_deadlines(pong_onnx, tmp_path, capsys):
    assert main([pong_onnx, "--realtime", "--max-episode-frames", "120", "--record", str(tmp_path / "p.gif")]) == 0
    out = capsys.readouterr().out
    assert "step deadlines missed" in out and "score" in out
    assert (tmp_path / "p.gif").stat().st_size > 0


def test_bad_requests_exit_with_a_message(pong_onnx, tmp_path, capsys):
    assert main([pong_onnx, "--game", "Breakout", "--max-episode-frames", "100"]) == 2
    assert "trained with" in capsys.readouterr().err
    assert main([pong_onnx, "--record", str(tmp_path / "x.avi"), "--max-episode-frames", "100"]) == 2
    assert ".mp4 or .gif" in capsys.readouterr().err
    assert main([str(tmp_path / "none.onnx")]) == 2
    assert "rise-export" in capsys.readouterr().err
