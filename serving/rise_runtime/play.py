"""`rise-play`: play an exported step model in its own env, as a game loop would (no TensorFlow).

    rise-play pong.onnx --episodes 3 --realtime --record pong.mp4

The env is the model's own: an ALE game, or the gymnasium env id it was trained on (with its
module and image key), with the same flicker (`--flicker` overrides). Each agent step: the env
repeats the action (4 frames on Atari), the runner gets the last two raw screens as the agent sees
them (blank on a flickered step) and returns the next action. `--realtime` paces the loop to 60 Hz game time (one agent step
per 4/60 s) and counts the deadlines the policy missed. Reports raw and human-normalized scores and
per-step policy latency (preprocessing + inference) p50/p99.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import List, Optional

import numpy as np

from rise_runtime.extras import MissingExtraError, require

EMULATOR_HZ = 60.0


class _Recorder:
    """Writes raw RGB screens, one frame per agent step, to:
    - GIF (Pillow, the `play` extra);
    - MP4 with H.264 in yuv420p (PyAV, the `video` extra), which browsers play;
    - MP4 with OpenCV's mp4v (the `opencv` extra), only when PyAV is missing. Many browsers will not
      play that file, and the player says so."""

    def __init__(self, path: str, fps: float):
        self.path, self.fps = path, fps
        self.frames: List[np.ndarray] = []
        extension = os.path.splitext(path)[1].lower()
        if extension not in (".mp4", ".gif"):
            raise ValueError(f"--record must end in .mp4 or .gif, got {path!r}")
        self.codec = "gif"
        self._container = self._stream = self._video = None
        # Checked before the first episode, not at its first frame.
        if extension == ".gif":
            self._writer_module = require("PIL.Image", "play", "recording GIFs")
            return
        try:
            self._writer_module = require("av", "video", "recording browser-playable MP4 (H.264)")
            self.codec = "h264"
        except MissingExtraError as missing_pyav:
            try:
                self._writer_module = require("cv2", "opencv", "recording MP4")
            except MissingExtraError:
                raise missing_pyav from None
            self.codec = "mp4v"

    def add(self, screen: np.ndarray) -> None:
        if self.codec == "gif":
            self.frames.append(screen.copy())
        elif self.codec == "h264":
            self._add_h264(screen)
        else:
            self._add_mp4v(screen)

    def _add_h264(self, screen: np.ndarray) -> None:
        av = self._writer_module
        if self._container is None:
            height, width = screen.shape[:2]
            self._container = av.open(self.path, mode="w", options={"movflags": "+faststart"})
            self._stream = self._container.add_stream("libx264", rate=int(round(self.fps)))
            # yuv420p needs even sizes; Atari's 210x160 already is.
            self._stream.width, self._stream.height = width - width % 2, height - height % 2
            self._stream.pix_fmt = "yuv420p"
        frame = np.ascontiguousarray(screen[: self._stream.height, : self._stream.width])
        for packet in self._stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
            self._container.mux(packet)

    def _add_mp4v(self, screen: np.ndarray) -> None:
        cv2 = self._writer_module
        if self._video is None:
            height, width = screen.shape[:2]
            self._video = cv2.VideoWriter(self.path, cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (width, height))
            if not self._video.isOpened():
                raise OSError(f"cannot write video to {self.path}")
        self._video.write(screen[:, :, ::-1])  # OpenCV wants BGR

    def close(self) -> None:
        if self._container is not None:
            for packet in self._stream.encode():  # flush the encoder
                self._container.mux(packet)
            self._container.close()
        if self._video is not None:
            self._video.release()
        if self.codec == "gif" and self.frames:
            images = [self._writer_module.fromarray(frame) for frame in self.frames]
            images[0].save(self.path, save_all=True, append_images=images[1:], duration=int(1000 / self.fps), loop=0)


def model_flicker(policy) -> float:
    """The flicker probability the model was trained with (0 for models that predate it)."""
    return float((policy.env_description or {}).get("flicker", 0.0))


def make_play_env(policy, game: Optional[str], *, seed: int, max_episode_frames: int, sticky_action_prob: float,
                  flicker: float):
    """The model's own env (or `game`, an ALE game), configured as in training, from the registry."""
    from rise_runtime.envs import registry
    from rise_runtime.envs.atari import NOOP_MAX, is_atari_game

    description = policy.env_description or {"kind": registry.ATARI, "name": policy.game}
    if game is None and description["kind"] != registry.ATARI:
        return registry.make_env(dict(description, flicker=flicker), preprocessing=policy.preprocessing, seed=seed)
    if game is None and policy.env_description is None and not is_atari_game(policy.game):
        raise ValueError(f"{policy.path} was trained on {policy.game!r}, which is not an Atari game, and it was "
                         f"exported before models recorded their env; re-export it with rise-export, or name an "
                         f"Atari game with --game (only for Atari models)")
    # The Atari protocol of rise-play's flags (sticky actions, frame cap), on the model's game or --game.
    atari = {"kind": registry.ATARI, "name": game or policy.game, "sticky_action_prob": sticky_action_prob,
             "noop_max": NOOP_MAX, "max_episode_frames": max_episode_frames, "flicker": flicker}
    return registry.make_env(atari, preprocessing=policy.preprocessing, seed=seed)


def play(policy, game: Optional[str], episodes: int, *, realtime: bool, record: Optional[str], seed: int,
         max_episode_frames: int, sticky_action_prob: float, flicker: float) -> dict:
    """Plays `episodes` episodes; `game` None = the model's own env. Returns scores and latencies."""
    from rise_runtime.envs.atari_scores import human_normalized_score

    env = make_play_env(policy, game, seed=seed, max_episode_frames=max_episode_frames,
                        sticky_action_prob=sticky_action_prob, flicker=flicker)
    name = getattr(env, "game", None) or env.name
    if list(env.action_meanings) != list(policy.action_meanings):
        env.close()
        raise ValueError(f"{name} has actions {env.action_meanings}, but the model was trained with "
                         f"{policy.action_meanings} (on {policy.game!r}); play the model's own game.")
    step_seconds = policy.preprocessing.action_repeat / EMULATOR_HZ
    recorder = _Recorder(record, EMULATOR_HZ / policy.preprocessing.action_repeat) if record else None
    scores, lengths, latencies, dropped = [], [], [], 0
    try:
        for _ in range(episodes):
            env.reset()
            policy.reset()
            score, steps, done = 0.0, 0, False
            deadline = time.perf_counter() + step_seconds
            while not done:
                if recorder:
                    recorder.add(env.render())
                start = time.perf_counter()
                action = policy.act(*env.observed_screens())  # blank on a flickered step, as in training
                latencies.append(time.perf_counter() - start)
                _, reward, terminated, truncated, _ = env.step(action)
                score += reward
                steps += 1
                done = terminated or truncated
                if realtime:
                    now = time.perf_counter()
                    if now > deadline:
                        dropped += 1
                        deadline = now  # start the next frame's budget from here
                    else:
                        time.sleep(deadline - now)
                    deadline += step_seconds
            scores.append(score)
            lengths.append(steps)
    finally:
        env.close()
        if recorder:
            recorder.close()
    hns = [human_normalized_score(name, s) for s in scores]
    latency_ms = 1000 * np.asarray(latencies)
    return {"game": name, "flicker": flicker, "scores": scores, "mean_score": float(np.mean(scores)), "episode_steps": lengths,
            "human_normalized": None if hns[0] is None else float(np.mean(hns)),
            "latency_p50_ms": float(np.percentile(latency_ms, 50)), "latency_p99_ms": float(np.percentile(latency_ms, 99)),
            "steps": int(sum(lengths)), "dropped_deadlines": dropped if realtime else None, "record": record,
            "record_codec": recorder.codec if recorder else None}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="rise-play", description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="an exported .onnx step model (rise-export)")
    parser.add_argument("--game", default=None, help="ALE game [default: the model's own env]")
    parser.add_argument("--episodes", type=int, default=1, help="episodes to play")
    parser.add_argument("--realtime", action="store_true", help="pace to 60 Hz game time, count missed deadlines")
    parser.add_argument("--record", default=None, metavar="FILE", help="write the raw screen to FILE (.mp4 or .gif)")
    parser.add_argument("--seed", type=int, default=0, help="emulator and no-op seed")
    missing_extra = None
    try:  # the envs need the `play` extra; --help works without it, playing says which extra to install
        for module in ("gymnasium", "ale_py"):
            require(module, "play", "rise-play")
        from rise_runtime.envs.atari import MAX_EPISODE_FRAMES, STICKY_ACTION_PROB
    except MissingExtraError as error:
        missing_extra, MAX_EPISODE_FRAMES, STICKY_ACTION_PROB = error, None, None
    parser.add_argument("--max-episode-frames", type=int, default=MAX_EPISODE_FRAMES,
                        help="episode cap, emulator frames")
    parser.add_argument("--sticky-action-prob", type=float, default=STICKY_ACTION_PROB,
                        help="probability the emulator repeats the previous action (ALE v5)")
    parser.add_argument("--flicker", type=float, default=None, metavar="P",
                        help="blank each observed screen with probability P [default: the model's training flicker]")
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda", "auto"), help="execution provider")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    if missing_extra is not None:
        print(f"rise-play: error: {missing_extra}", file=sys.stderr)
        return 2
    if args.episodes < 1:
        parser.error("--episodes must be >= 1")
    if args.flicker is not None and not 0.0 <= args.flicker < 1.0:
        parser.error(f"--flicker must be in [0, 1) (0 = off), got {args.flicker}")
    from rise_runtime.paths import file_problem
    from rise_runtime.runner import ModelError, Policy

    problem = file_problem(args.record, "--record") if args.record else None
    if problem:
        print(f"rise-play: error: {problem}", file=sys.stderr)
        return 2
    try:
        policy = Policy.load(args.model, threads=args.threads, device=args.device)
        flicker = model_flicker(policy) if args.flicker is None else args.flicker
        result = play(policy, args.game, args.episodes, realtime=args.realtime, record=args.record,
                      seed=args.seed, max_episode_frames=args.max_episode_frames,
                      sticky_action_prob=args.sticky_action_prob, flicker=flicker)
    except (FileNotFoundError, ModelError, ValueError, OSError, MissingExtraError) as error:
        print(f"rise-play: error: {error}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result))
        return 0
    for episode, (score, steps) in enumerate(zip(result["scores"], result["episode_steps"]), 1):
        print(f"[rise-play] {result['game']} episode {episode}: score {score:g} in {steps} steps")
    hns = result["human_normalized"]
    if result["flicker"]:
        print(f"[rise-play] flicker: each observed screen blanked with probability {result['flicker']:g}")
    print(f"[rise-play] mean score {result['mean_score']:g}" + (f", human-normalized {hns:.3f}" if hns is not None else ""))
    print(f"[rise-play] policy latency per step: p50 {result['latency_p50_ms']:.2f} ms, "
          f"p99 {result['latency_p99_ms']:.2f} ms over {result['steps']} steps ({', '.join(policy.providers)})")
    if args.realtime:
        print(f"[rise-play] real time at {EMULATOR_HZ:g} Hz: {result['dropped_deadlines']} of {result['steps']} "
              f"step deadlines missed")
    if args.record:
        note = {"h264": "H.264", "gif": "GIF",
                "mp4v": "mp4v: many browsers cannot play it; pip install 'rise-runtime[video]' for H.264"}
        print(f"[rise-play] recording: {args.record} ({note[result['record_codec']]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
