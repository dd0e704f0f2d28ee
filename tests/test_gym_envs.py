"""Bring-your-own environment: any gymnasium image env through --env-id or a Python factory, flicker,
the MemoryCorridor family, and every bad input the issue names (clear error, nothing written)."""
import importlib.util
import json
import os
import re

import gymnasium as gym
import numpy as np
import pytest
from tf_agents.environments import py_environment, utils as env_utils
from tf_agents.specs import array_spec
from tf_agents.trajectories import time_step as ts

import third_party_env  # noqa: F401  (registers ThirdParty/* like a user's package)
from conftest import atari_settings, describe, lane_options
from rise_runtime.preprocessing import PreprocessingConfig, preprocess_screens
from rise_runtime.envs.gym_image import EnvSpecError, GymImageEnv, probe_env
from rise_runtime.envs.memory_task import MEMORY_TASKS, MemoryCorridorEnv, env_id_of
from rise_tf.envs.py_env import FramePyEnvironment, make_frame_env
from rise_tf.train.cli import main

TINY = ["--num-envs", "2", "--warmup-frames", "40", "--batch-size", "8", "--capacity", "2000",
        "--eval-episodes", "2", "--eval-every-frames", "120", "--checkpoint-every-frames", "120",
        "--log-every-frames", "60", "--no-progress", "--embedding-size", "16", "--core-units", "16",
        "--frame-size", "42", "--window-length", "4"]


def gym_image(env_id, flicker=0.0, image_key=None, repeat=1, seed=None):
    return GymImageEnv.from_id(env_id, env_module="third_party_env", image_key=image_key,
                               preprocessing=PreprocessingConfig(frame_size=42, action_repeat=repeat),
                               flicker_prob=flicker, seed=seed)


@pytest.mark.parametrize("env_id,image_key", [("ThirdParty/Colours-v0", None), ("ThirdParty/ColoursGray-v0", None),
                                              ("ThirdParty/ColoursCHW-v0", None),
                                              ("ThirdParty/ColoursDict-v0", "pixels")])
def test_image_envs_of_every_layout_become_frames_and_pass_both_checkers(env_id, image_key):
    from gymnasium.utils.env_checker import check_env

    env = gym_image(env_id, image_key=image_key)
    check_env(env, skip_render_check=True)
    frame, _ = env.reset(seed=3)
    assert frame.shape == (42, 42) and frame.dtype == np.uint8
    # The colour square, through the shared preprocessing: what the runtime computes from the same screens.
    np.testing.assert_array_equal(frame, preprocess_screens(*env.observed_screens(), env.preprocessing))
    assert frame.max() > 0
    lane = FramePyEnvironment(gym_image(env_id, image_key=image_key), terminal_on_life_loss=False, seed=1)
    env_utils.validate_py_environment(lane, episodes=3)


def test_every_shipped_env_passes_check_env_and_tf_agents_validation():
    from gymnasium.utils.env_checker import check_env

    for task, settings in MEMORY_TASKS.items():
        env = gym.make(env_id_of(task)).unwrapped
        check_env(env, skip_render_check=True)
        lane = FramePyEnvironment(MemoryCorridorEnv(**vars(settings), frame_size=84), terminal_on_life_loss=False,
                                  seed=0)
        env_utils.validate_py_environment(lane, episodes=2)
    pong = make_frame_env(describe("Pong", max_episode_frames=400, flicker=0.5), seed=0, **lane_options())
    env_utils.validate_py_environment(pong, episodes=1)


def test_memory_variants_do_what_their_names_say():
    def episode(task, seed):
        env = gym.make(env_id_of(task)).unwrapped
        frames = [env.reset(seed=seed)[0]]
        done = False
        while not done:
            frame, reward, done, _, _ = env.step(0)
            frames.append(frame)
        return env, frames[:-1]  # the frames the agent acts on (the last is after the decision)

    env, frames = episode("MemoryCorridorLong", 0)
    assert len(frames) == 1 + 14 + 1 and env.action_space.n == 2
    env, _ = episode("MemoryCorridorCues4", 0)
    assert env.action_space.n == 4
    assert len(episode("MemoryCorridorBeyondWindow", 0)[1]) == 26  # the cue 25 steps before the decision
    # Distractors: corridor frames with a full-brightness band; about a third of them over many episodes.
    with_band = total = 0
    for seed in range(60):
        _, frames = episode("MemoryCorridorDistractors", seed)
        corridor = frames[1:-1]
        with_band += sum(int((f[:, 20:60] == 255).any()) for f in corridor)
        total += len(corridor)
    assert 0.25 < with_band / total < 0.42, with_band / total  # 480 frames, p = 1/3 (sd 0.022)
    # The standard task draws only its cues (one per reset) from the env's RNG: its episodes are what
    # they were before distractors existed.
    standard = MemoryCorridorEnv(**vars(MEMORY_TASKS["MemoryCorridor"]), frame_size=84)
    standard.reset(seed=9)
    cues = []
    for _ in range(12):
        cues.append(standard._cue)
        while not standard.step(0)[2]:
            pass
        standard.reset()
    rng = np.random.default_rng(9)
    assert cues == [int(rng.integers(2)) for _ in range(12)]


def test_flicker_blanks_the_observed_screen_at_the_rate_asked_and_the_runtime_sees_the_same():
    env = gym_image("ThirdParty/Colours-v0", flicker=0.5, seed=5)
    env.reset(seed=5)
    blank = []
    for t in range(600):
        frame, *_ = env.step(t % 3)
        last, previous = env.observed_screens()
        # The play loop hands these screens to the runner, which preprocesses them: the same frame.
        np.testing.assert_array_equal(frame, preprocess_screens(last, previous, env.preprocessing))
        blank.append(env.blanked)
        assert (frame.max() == 0) == env.blanked
        assert env.last_screen.max() > 0  # the real screen (recordings) is never blanked
    assert 0.43 < np.mean(blank) < 0.57, np.mean(blank)  # 600 draws at p = 0.5 (sd 0.02)
    # The same seed blanks the same steps (training lane and play loop alike).
    again = gym_image("ThirdParty/Colours-v0", flicker=0.5, seed=5)
    again.reset(seed=5)
    assert [again.step(t % 3) and again.blanked for t in range(600)] == blank
    # No flicker: nothing blanked, and no draw taken from the env's RNG.
    plain = gym_image("ThirdParty/Colours-v0", seed=5)
    plain.reset(seed=5)
    assert not any(plain.step(0) and plain.blanked for _ in range(50))


def test_atari_flicker_matches_between_training_lane_and_play_env():
    from rise_runtime.envs.atari import AtariEnv

    settings = atari_settings(max_episode_frames=2_000, flicker_prob=0.5)
    lane = make_frame_env(describe("Pong", max_episode_frames=2_000, flicker=0.5), seed=7, **lane_options())
    play_env = AtariEnv("Pong", settings, seed=7)
    time_step = lane.reset()
    play_env.reset()
    for t in range(40):
        np.testing.assert_array_equal(time_step.observation,
                                      preprocess_screens(*play_env.observed_screens(), settings.preprocessing))
        time_step = lane.step(np.int32(t % 6))
        play_env.step(t % 6)


def test_action_repeat_sums_rewards_and_max_pools_within_the_step_only():
    env = gym_image("ThirdParty/Colours-v0", repeat=1, seed=0)
    env.reset(seed=0)
    env.step(0)
    # One observation per step: the previous screen is this step's, never the previous step's.
    np.testing.assert_array_equal(env.previous_screen, env.last_screen)
    repeated = gym_image("ThirdParty/Colours-v0", repeat=3, seed=0)
    repeated.reset(seed=0)
    inner = gym.make("ThirdParty/Colours-v0")
    inner.reset(seed=0)
    expected = sum(inner.step(1)[1] for _ in range(3))
    assert repeated.step(1)[1] == expected


@pytest.mark.parametrize("env_id,image_key,message", [
    ("ThirdParty/ColoursContinuous-v0", None, "continuous actions.*Discrete action space"),
    ("ThirdParty/ColoursHugePair-v0", None, r"MultiDiscrete\(\[20, 20\]\) actions, 400 combinations \(at most 256\)"),
    ("ThirdParty/ColoursBinary-v0", None, "MultiBinary actions.*TransformAction"),
    ("ThirdParty/ColoursVector-v0", None, r"Box of shape \(4,\) \(a vector.*AddRenderObservation"),
    ("ThirdParty/ColoursDict-v0", None, r"Dict with keys \['pixels', 'position'\].*--image-key.*image-shaped: pixels"),
    ("ThirdParty/ColoursDict-v0", "rgb", r"--image-key 'rgb' is not an observation key.*pixels"),
    ("ThirdParty/Colours-v0", "pixels", "not a Dict; drop --image-key"),
])
def test_envs_it_cannot_take_are_explained(env_id, image_key, message):
    with pytest.raises(EnvSpecError, match=message):
        probe_env(env_id, env_module="third_party_env", image_key=image_key)


def test_multi_discrete_actions_are_flattened_last_component_fastest():
    """MultiDiscrete([3, 2]) -> 6 agent actions; action i is np.unravel_index(i, [3, 2]): only
    colour * 2 + 1 earns the reward. A TF-Agents env with an integer vector action spec is the same."""
    from rise_runtime.envs.gym_image import PyEnvironmentAsGym, env_action

    assert probe_env("ThirdParty/ColoursPair-v0", env_module="third_party_env", image_key=None)[1] == 6
    env = gym_image("ThirdParty/ColoursPair-v0", seed=0)
    assert env.action_space.n == 6
    assert env.action_meanings == ["ACTION_0_0", "ACTION_0_1", "ACTION_1_0", "ACTION_1_1", "ACTION_2_0", "ACTION_2_1"]
    env.reset()
    for _ in range(5):
        colour = env.env.unwrapped._colour
        rewards = []
        for action in range(6):  # the same colour is shown to each action's copy of the step
            env.env.unwrapped._colour = colour
            rewards.append(env.step(action)[1])
            env.env.unwrapped._t = 0
        assert rewards == [1.0 if action == colour * 2 + 1 else 0.0 for action in range(6)]

    class IntVectorActions(_GymnasiumAsPy):
        def __init__(self):
            super().__init__(third_party_env.Colours(layout="gray"))
            self._act = array_spec.BoundedArraySpec((2,), np.int32, [1, -1], [3, 0])

    adapted = PyEnvironmentAsGym(IntVectorActions())
    assert adapted.action_space == gym.spaces.MultiDiscrete([3, 2], dtype=np.int32, start=[1, -1])
    assert env_action(adapted.action_space, 5).tolist() == [3, 0]
    assert env_action(gym.spaces.Discrete(3, start=-1), 0) == -1


def test_bad_env_input_on_the_cli_writes_nothing(tmp_path, capsys):
    run_dir = tmp_path / "run"
    cases = [
        (["--env-id", "ThirdParty/Colors-v0", "--env-module", "third_party_env"], "Closest registered ids: ThirdParty/Colours-v0"),
        (["--env-id", "ThirdParty/ColoursContinuous-v0", "--env-module", "third_party_env"], "continuous actions"),
        (["--env-id", "X-v0", "--env-module", "no_such_package_here"], "failed to import: ModuleNotFoundError"),
        (["--game", "Pong", "--flicker", "1.0"], r"flicker probability must be in \[0, 1\)"),
        (["--game", "Pong", "--flicker", "-0.1"], r"flicker probability must be in \[0, 1\)"),
        (["--game", "MemoryCorridor", "--flicker", "0.5"],
         "--flicker applies to Atari games or gymnasium envs .*, not to the memory tasks"),
        (["--game", "Pong", "--env-id", "ThirdParty/Colours-v0"], "not both"),
        (["--game", "Pong", "--image-key", "pixels"], "--image-key applies to gymnasium envs \(--env-id\), not to Atari"),
        (["--env-id", "ThirdParty/Colours-v0", "--env-module", "third_party_env", "--scale", "gpu"],
         "unknown scale 'gpu'; choose one of cpu, paper"),
        (["--env-id", "ThirdParty/Colours-v0", "--env-module", "third_party_env", "--sticky-action-prob", "0.1"],
         "--sticky-action-prob applies to Atari games, not to gymnasium envs"),
        (["--env-id", "ThirdParty/Colours-v0", "--env-module", "third_party_env", "--reset-options", "{colours: 1}"],
         r"--reset-options must be a JSON object .*is not JSON: Expecting property name"),
        (["--env-id", "ThirdParty/Colours-v0", "--env-module", "third_party_env", "--reset-options", "[1]"],
         "--reset-options must be a non-empty JSON object"),
        (["--env-id", "ThirdParty/Colours-v0", "--env-module", "third_party_env", "--reset-options", '{"colors": 1}'],
         r"the env rejected --reset-options \{\"colors\": 1\}: AssertionError: unknown reset options \['colors'\]"),
        (["--game", "Pong", "--reset-options", '{"colours": 1}'], "--reset-options applies to gymnasium envs"),
        (["--env-id", "X-v0", "--env-module", "memory_gym"] if importlib.util.find_spec("memory_gym") is None else
         ["--env-id", "X-v0", "--env-module", "no_such_package_here"], "failed to import"),
    ]
    for argv, message in cases:
        assert main(argv + ["--run-dir", str(run_dir)]) == 2, argv
        err = capsys.readouterr().err
        assert re.search(message, err), (argv, err)
        assert not run_dir.exists(), argv


def test_a_module_that_fails_shows_its_own_error(tmp_path, capsys, monkeypatch):
    (tmp_path / "broken_games.py").write_text("raise RuntimeError('licence server unreachable')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert main(["--env-id", "Broken-v0", "--env-module", "broken_games", "--run-dir", str(tmp_path / "r")]) == 2
    assert "RuntimeError: licence server unreachable" in capsys.readouterr().err


def test_tiny_run_on_a_third_party_env_through_env_id(tmp_path):
    run_dir = str(tmp_path / "colours")
    assert main(TINY + ["--env-id", "ThirdParty/Colours-v0", "--env-module", "third_party_env", "--frames", "240",
                        "--run-dir", run_dir]) == 0
    with open(os.path.join(run_dir, "config.json")) as f:
        config = json.load(f)
    assert config["env"]["env_id"] == "ThirdParty/Colours-v0" and config["env"]["game"] == ""
    assert config["env"]["action_repeat"] == 1  # gymnasium envs: one env step per agent step by default
    assert config["env"]["env_kind"] == "gym"
    with open(os.path.join(run_dir, "env.json")) as f:
        assert json.load(f) == {"name": "ThirdParty/Colours-v0", "action_meanings": ["red", "green", "blue"],
                                "env": {"kind": "gym", "name": "ThirdParty/Colours-v0", "env_id": "ThirdParty/Colours-v0",
                                        "env_module": "third_party_env", "image_key": None, "reset_options": None,
                                        "flicker": 0.0}}
    with open(os.path.join(run_dir, "summary.json")) as f:
        summary = json.load(f)
    assert summary["game"] == "ThirdParty/Colours-v0" and summary["frames"] == 240 and summary["updates"] > 0
    assert 0.0 <= summary["final_return"] <= 6.0
    # success is the memory tasks' measure (a positive return): a gym env's run records returns only
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        evals = [json.loads(line) for line in f if '"eval"' in line]
    assert evals and not any("success_rate" in record for record in evals)
    assert "final_success_rate" not in summary


@pytest.mark.parametrize("kind", ["gymnasium", "py_environment"])
def test_tiny_run_through_the_python_api_with_an_env_factory(tmp_path, kind):
    from rise_tf.config import make_config
    from rise_tf.train.trainer import Trainer

    def factory():
        env = third_party_env.Colours(layout="gray")
        return env if kind == "gymnasium" else _GymnasiumAsPy(env)

    config = make_config("rise-dqn", env={"env_id": "my-colours", "num_envs": 2, "frame_size": 42},
                         network={"embedding_size": 16, "core_units": 16, "window_length": 4},
                         replay={"capacity": 2000}, agent={"batch_size": 8},
                         train={"frames": 120, "warmup_frames": 40, "eval_every_frames": 0,
                                "checkpoint_every_frames": 120, "log_every_frames": 60})
    trainer = Trainer(config, str(tmp_path / kind), progress=False, env_factory=factory)
    try:
        summary = trainer.run()
    finally:
        trainer.close()
    assert summary["frames"] == 120 and summary["updates"] > 0 and summary["game"] == "my-colours"


class _GymnasiumAsPy(py_environment.PyEnvironment):
    """A TF-Agents PyEnvironment of the user's own (what a TF-Agents user might hand us)."""

    def __init__(self, env):
        super().__init__(handle_auto_reset=False)
        self.env = env
        box = env.observation_space
        self._obs = array_spec.BoundedArraySpec(box.shape, box.dtype, 0, 255)
        self._act = array_spec.BoundedArraySpec((), np.int64, 0, env.action_space.n - 1)

    def observation_spec(self):
        return self._obs

    def action_spec(self):
        return self._act

    def _reset(self):
        return ts.restart(self.env.reset()[0])

    def _step(self, action):
        observation, reward, terminated, truncated, _ = self.env.step(int(action))
        if terminated:
            return ts.termination(observation, np.float32(reward))
        return ts.truncation(observation, np.float32(reward)) if truncated else ts.transition(observation, np.float32(reward))


def test_an_env_id_run_exports_with_its_env_and_plays_in_the_runtime(tmp_path):
    from export.cli import main as export_main
    from rise_runtime.envs import registry
    from rise_runtime.play import play
    from rise_runtime.runner import Policy

    run_dir = str(tmp_path / "colours")
    assert main(TINY + ["--env-id", "ThirdParty/ColoursGray-v0", "--env-module", "third_party_env", "--frames", "120",
                        "--flicker", "0.25", "--reset-options", '{"colours": 1}', "--run-dir", run_dir]) == 0
    onnx_path = str(tmp_path / "colours.onnx")
    assert export_main([run_dir, "--out", onnx_path, "--parity-steps", "16"]) == 0
    policy = Policy.load(onnx_path)
    name = "ThirdParty/ColoursGray-v0[colours=1]"  # the task is the env id with its reset options
    assert policy.game == name
    assert policy.env_description == {"kind": "gym", "name": name, "env_id": "ThirdParty/ColoursGray-v0",
                                      "env_module": "third_party_env", "image_key": None,
                                      "reset_options": {"colours": 1}, "flicker": 0.25}
    result = play(policy, None, 2, realtime=False, record=None, seed=0, max_episode_frames=1000,
                  sticky_action_prob=0.0, flicker=0.25)
    assert result["game"] == name and result["episode_steps"] == [6, 6]
    # the runtime's env resets with the options every episode: one colour (red) only, ever
    env = registry.make_env(policy.env_description, preprocessing=policy.preprocessing, seed=3)
    colours = set()
    for _ in range(5):
        env.reset()
        for action in range(6):
            colours.add(env.env.unwrapped._colour)
            env.step(action % 3)
    assert colours == {0}
    with open(os.path.join(run_dir, "summary.json")) as f:
        assert json.load(f)["game"] == name


def test_a_multi_discrete_env_trains_exports_and_plays_with_flat_actions(tmp_path):
    """The run's env.json and the model name the flat actions by their components; rise-play rebuilds
    the env and turns the model's flat action back into the env's pair."""
    from export.cli import main as export_main
    from rise_runtime.play import play
    from rise_runtime.runner import Policy

    run_dir = str(tmp_path / "pair")
    assert main(TINY + ["--env-id", "ThirdParty/ColoursPair-v0", "--env-module", "third_party_env", "--frames", "120",
                        "--run-dir", run_dir]) == 0
    with open(os.path.join(run_dir, "env.json")) as f:
        assert json.load(f)["action_meanings"] == [f"ACTION_{a}_{b}" for a in range(3) for b in range(2)]
    onnx_path = str(tmp_path / "pair.onnx")
    assert export_main([run_dir, "--out", onnx_path, "--parity-steps", "8"]) == 0
    policy = Policy.load(onnx_path)
    assert policy.num_actions == 6
    result = play(policy, None, 2, realtime=False, record=None, seed=0, max_episode_frames=100,
                  sticky_action_prob=0.0, flicker=0.0)
    assert result["episode_steps"] == [6, 6]  # the env's own contains() check passed on every flat action


def test_actions_are_named_as_the_env_names_them():
    from types import SimpleNamespace

    from rise_runtime.envs.gym_image import action_names

    class Plain(gym.Env):
        action_space = gym.spaces.Discrete(2)

    class Meanings(Plain):
        def get_action_meanings(self):
            return ["NOOP", "FIRE"]

    class Doom(Plain):  # ViZDoom's gymnasium wrapper: delta buttons first, a Discrete action per combination
        action_space = gym.spaces.Discrete(4)
        game = SimpleNamespace(get_available_buttons=lambda: [SimpleNamespace(name=n) for n in (
            "TURN_LEFT_RIGHT_DELTA", "MOVE_FORWARD", "TURN_LEFT")])
        button_map = [np.array([0, 0]), np.array([1, 0]), np.array([0, 1]), np.array([1, 1])]

    assert action_names(Plain(), 2) == ["ACTION_0", "ACTION_1"]
    assert action_names(Meanings(), 2) == ["NOOP", "FIRE"]
    assert action_names(Meanings(), 3) == ["ACTION_0", "ACTION_1", "ACTION_2"]  # names that do not fit: none
    assert action_names(Doom(), 4) == ["NOOP", "MOVE_FORWARD", "TURN_LEFT", "MOVE_FORWARD+TURN_LEFT"]
    assert action_names(gym.make("ThirdParty/Colours-v0"), 3) == ["red", "green", "blue"]  # an actions enum


def test_export_needs_no_env_module_and_play_says_what_to_install(tmp_path):
    """A run on a user's env package: env.json and the model carry its action names; rise-export in a
    process where the package cannot be imported still exports (parity on random frames); rise-play
    there says how to make the package importable."""
    import subprocess
    import sys

    run_dir = str(tmp_path / "colours")
    assert main(TINY + ["--env-id", "ThirdParty/ColoursGray-v0", "--env-module", "third_party_env", "--frames", "120",
                        "--run-dir", run_dir]) == 0
    with open(os.path.join(run_dir, "env.json")) as f:
        assert json.load(f)["action_meanings"] == ["red", "green", "blue"]
    clean = dict(os.environ, PYTHONPATH="")  # the tests folder (which holds third_party_env) is not on the path
    onnx_path = str(tmp_path / "colours.onnx")
    exported = subprocess.run([sys.executable, "-m", "rise_tf.export.cli", run_dir, "--out", onnx_path, "--parity-steps", "8"],
                              capture_output=True, text=True, env=clean, cwd=str(tmp_path), timeout=600)
    assert exported.returncode == 0, exported.stderr[-2000:]
    assert "random frames (the run's env cannot be built here: --env-module 'third_party_env' failed" in exported.stdout
    assert '"red", "green", "blue"' in exported.stdout
    played = subprocess.run([sys.executable, "-m", "rise_runtime.play", onnx_path], capture_output=True, text=True,
                            env=clean, cwd=str(tmp_path), timeout=300)
    assert played.returncode == 2
    assert "failed to import" in played.stderr and "PYTHONPATH=/path/to/that/folder" in played.stderr


def test_the_memory_tasks_are_registered_with_gymnasium_as_the_readme_says():
    import subprocess
    import sys

    script = ("import gymnasium as gym\n"
              "print(gym.make('rise_runtime.envs:rise_tf/MemoryCorridorLong-v0').reset(seed=0)[0].shape)\n"
              "import rise_runtime.envs\n"
              "print(gym.make('rise_tf/MemoryCorridor-v0').reset(seed=0)[0].shape)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.split() == ["(84,", "84)", "(84,", "84)"], done.stderr[-1500:]


def test_outside_tasks_list_flags_rise_train_takes_and_check_steps_them(capsys):
    import shlex

    from rise_tf.config_flags import config_from_args
    from rise_tf.envs.outside import OUTSIDE_TASKS, OutsideTask, check
    from rise_tf.train.cli import build_parser

    for task in OUTSIDE_TASKS:  # every listed command line is one rise-train accepts, as printed
        args = build_parser().parse_args(shlex.split(shlex.join(task.train_flags())) + ["--algo", "rise-btr"])
        config = config_from_args(args)
        assert config.env_name == task.name and config.scale == "cpu"
    cpu_task = next(task for task in OUTSIDE_TASKS if task.reset_options)
    assert cpu_task.name == "MortarMayhem-Grid-v0[command_count=2,reward_command_success=1.0]"
    # check() makes, resets (with the options) and steps a task as rise-train would
    (row,) = check([OutsideTask("ThirdParty/Colours-v0", "third_party_env", reset_options='{"colours": 1}')],
                   seconds=0.05)
    assert row["env_id"] == "ThirdParty/Colours-v0[colours=1]" and row["image"] == "50x37x3"
    assert row["actions"] == 3 and row["random_steps_per_s"] > 0
    with pytest.raises(EnvSpecError, match="rejected --reset-options"):
        check([OutsideTask("ThirdParty/Colours-v0", "third_party_env", reset_options='{"colors": 1}')], seconds=0.01)


def test_scripted_levels_of_the_free_moving_mortar_mayhem():
    """Runs where Memory Gym is installed (`make outside-envs`, PYTHONPATH=.outside-envs): walking to the
    commanded tile carries out every command; guessing a neighbour without memory, about 1 in 3."""
    pytest.importorskip("memory_gym")
    from rise_tf.experiments.outside_cues import SCRIPTED_POLICIES, scripted_levels

    levels = scripted_levels(40, 0, {"command_count": [2], "reward_command_success": 1.0, "allowed_commands": 4})
    knows, walker, _ = (levels[p] for p in SCRIPTED_POLICIES)
    assert knows == {"return": 2.0, "first": 1.0}
    assert 0.1 <= walker["first"] <= 0.6 and walker["return"] < 1.0


def test_mystery_path_walkers_steer_and_remember_by_hand():
    """The scripted walkers' moves, hand-checked (no env needed): headings turn the way Memory Gym turns
    them, and the remembering walker goes round a tile it fell from through a tile it has walked."""
    from rise_tf.experiments.mystery_path_levels import (FORWARD, TURN_LEFT, TURN_RIGHT, explore, summarize_falls,
                                                         toward_goal, turn_or_step)

    north, west = 0, 1
    assert turn_or_step(north, (0, -1)) == FORWARD
    assert turn_or_step(north, (1, 0)) == TURN_RIGHT  # east is to the right of north
    assert turn_or_step(north, (-1, 0)) == TURN_LEFT
    assert turn_or_step(west, (0, 1)) == TURN_LEFT  # facing west, south is to the left
    assert toward_goal((0, 3), (6, 3), 7) == (1, 0)
    # it fell east of the origin: try the untried tiles next to it (nearest the goal, first found)
    assert explore((0, 3), (6, 3), 7, walked={(0, 3)}, fell={(1, 3)}) == (0, -1)
    # having walked north once: back through (0, 2) to (1, 2), one tile nearer the goal than (0, 4)
    assert explore((0, 3), (6, 3), 7, walked={(0, 3), (0, 2)}, fell={(1, 3), (0, 1)}) == (0, -1)
    assert explore((0, 2), (6, 3), 7, walked={(0, 3), (0, 2)}, fell={(1, 3), (0, 1)}) == (1, 0)
    # boxed in by falls: nothing left to try
    assert explore((0, 0), (6, 3), 7, walked={(0, 0)}, fell={(1, 0), (0, 1)}) is None
    # two episodes, four falls, one of them a repeat of its episode's first
    assert summarize_falls([[((0, 3), (1, 3)), ((0, 3), (0, 2)), ((0, 3), (1, 3))], [((2, 2), (2, 3))]]) == \
        {"falls": 2.0, "repeats": 0.25}
    assert summarize_falls([[]]) == {"falls": 0.0, "repeats": 0.0}


def _face_off_the_path(env):
    """Turns the agent at the origin toward a neighbour tile off the path: (origin, that tile)."""
    from rise_tf.experiments.mystery_path_levels import FORWARD, agent_tile, neighbours, turn_or_step

    game = env.unwrapped
    on_path = {(node.x, node.y) for node in game.mystery_path.path}
    origin = agent_tile(game)
    step, off = next((step, tile) for step, tile in neighbours(origin, game.grid_dim) if tile not in on_path)
    while turn_or_step(game.agent.face_direction.value, step) != FORWARD:
        env.step(turn_or_step(game.agent.face_direction.value, step))
    return origin, off


def test_fall_recorder_logs_each_fall_of_a_finished_episode():
    """Runs where Memory Gym is installed: stepping off the path from the origin twice the same way is
    two falls, the second a repeat; the episode's record comes when it ends (max_steps 6 here)."""
    pytest.importorskip("memory_gym")
    from rise_runtime.envs.gym_image import make_registered, reset_with_options
    from rise_tf.experiments.mystery_path_levels import FORWARD, NOTHING, FallRecorder, summarize_falls

    finished = []
    env = FallRecorder(make_registered("MysteryPath-Grid-v0", "memory_gym"), finished)
    reset_with_options(env, seed=1, options={"max_steps": 6})
    game = env.unwrapped
    origin, off = _face_off_the_path(env)
    actions = [FORWARD, NOTHING, FORWARD, NOTHING, NOTHING, NOTHING]  # fall, back to the origin, fall again
    for action in actions[:game.max_episode_steps - game.t]:
        env.step(action)
    env.close()
    assert len(finished) == 1 and finished[0]["falls"] == [(origin, off), (origin, off)]
    assert finished[0]["success"] == 0.0
    assert summarize_falls([finished[0]["falls"]]) == {"falls": 2.0, "repeats": 0.5}


def test_hidden_falls_draw_no_cross_and_still_count():
    """Runs where Memory Gym is installed: the same step off the path shows the red cross, and with
    HiddenFalls (the env's visual_feedback off, set at every reset) shows none; the fall still counts."""
    pytest.importorskip("memory_gym")
    from rise_runtime.envs.gym_image import make_registered, reset_with_options
    from rise_tf.experiments.mystery_path_levels import FORWARD, FallRecorder, HiddenFalls

    def red_pixels(hide):
        finished = []
        game_env = make_registered("MysteryPath-Grid-v0", "memory_gym")
        env = FallRecorder(HiddenFalls(game_env) if hide else game_env, finished)
        for _ in range(2):  # the option holds past a second reset (Memory Gym rebuilds its parameters)
            reset_with_options(env, seed=1, options={"max_steps": 8})
        game = env.unwrapped
        _face_off_the_path(env)
        observation, *_ = env.step(FORWARD)
        assert game.is_off_path and len(env.falls) == 1
        env.close()
        return int(np.all(observation == (255, 0, 0), axis=-1).sum())

    assert red_pixels(hide=False) > 10 and red_pixels(hide=True) == 0


def test_mystery_path_levels_memory_finds_the_goal_and_no_memory_rarely_does():
    """Runs where Memory Gym is installed: with the goal shown, remembering the falls reaches the goal in
    every episode; walking toward the goal without memory loops back into the same fall."""
    pytest.importorskip("memory_gym")
    from rise_tf.experiments.mystery_path_levels import POLICIES, scripted_levels

    levels = scripted_levels(20, 0, {"cardinal_origin_choice": [0], "show_goal": True, "reward_path_progress": 0.1})
    remembers, walker, random_play = (levels[p] for p in POLICIES)
    assert remembers["success"] == 1.0 and remembers["return"] > 1.5
    assert walker["success"] <= 0.4 and random_play["success"] <= 0.2
    assert remembers["fall_gaps"] and min(remembers["fall_gaps"]) >= 1


def test_a_mystery_path_runs_policy_plays_epsilon_greedily_from_a_seed(tmp_path):
    """Runs where Memory Gym is installed: `mystery_path_levels --run RUN --epsilon X` plays the run's
    evaluation episodes again ε-greedily; at ε = 1 every action is random, so the policy walks off the
    path (a tiny run's greedy policy may not), and the same seed gives the same episodes."""
    pytest.importorskip("memory_gym")
    from rise_tf.experiments.mystery_path_levels import policy_levels

    run_dir = str(tmp_path / "mystery")
    assert main(TINY + ["--env-id", "MysteryPath-Grid-v0", "--env-module", "memory_gym", "--frames", "120",
                        "--run-dir", run_dir]) == 0
    first = policy_levels(run_dir, 4, epsilons=[1.0], seed=3)
    assert list(first) == ["greedy", "ε-greedy, ε = 1"]
    assert first["greedy"]["episodes"] == first["ε-greedy, ε = 1"]["episodes"] == 4
    assert first["ε-greedy, ε = 1"]["falls"] > 0
    again = policy_levels(run_dir, 4, epsilons=[1.0], seed=3)
    assert again == first
    other = policy_levels(run_dir, 4, epsilons=[1.0], seed=4)  # the greedy policy draws nothing; ε = 1 does
    assert other["greedy"] == first["greedy"] and other["ε-greedy, ε = 1"] != first["ε-greedy, ε = 1"]


def test_fall_frames_show_the_cross_on_a_tile_off_the_path():
    """Runs where Memory Gym is installed: every fall frame random play collects is labelled with a tile
    of the grid and shows red's gray level (the cross), which the start of an episode does not."""
    pytest.importorskip("memory_gym")
    from rise_runtime.envs.gym_image import make_registered, reset_with_options
    from rise_runtime.preprocessing import PreprocessingConfig, preprocess_screens
    from rise_tf.experiments.mystery_path_levels import ENV_ID, fall_frames

    options = {"show_origin": False, "show_goal": False}
    frames, labels = fall_frames(3, 0, options)
    assert frames.shape[1:] == (84, 84) and len(frames) == len(labels) > 0
    assert all(0 <= int(v) < 7 for label in labels for v in label.split(","))

    def shows_red(frame):  # pure red in gray: ~76 (ITU-R 601: 0.299 x 255)
        return bool(np.any(np.abs(frame.astype(int) - 76) <= 2))

    assert all(shows_red(frame) for frame in frames)
    env = make_registered(ENV_ID, "memory_gym")
    start, _ = reset_with_options(env, seed=0, options=options)
    env.close()
    assert not shows_red(preprocess_screens(start, None, PreprocessingConfig(frame_size=84, action_repeat=1)))


def test_hidden_commands_blank_the_command_phase_and_keep_the_commands():
    """Runs where Memory Gym is installed: with the commands hidden the command phase shows the bare
    arena at every step (the agent cannot move then), the same commands are sampled, and carrying them
    out is rewarded as before."""
    pytest.importorskip("memory_gym")
    from rise_runtime.envs.gym_image import make_registered
    from rise_tf.experiments.outside_cues import HiddenCommands

    options = {"command_count": [2], "reward_command_success": 1.0, "allowed_commands": 4}

    def command_phase(env):
        observation, _ = env.reset(seed=3, options=options)
        frames = [observation]
        while env.unwrapped._command_visualization:  # the steps that draw the commands
            observation, *_ = env.step(0)
            frames.append(observation)
        return frames, list(env.unwrapped._commands)

    shown, shown_commands = command_phase(make_registered("MortarMayhem-Grid-v0", "memory_gym"))
    hidden_env = HiddenCommands(make_registered("MortarMayhem-Grid-v0", "memory_gym"))
    hidden, hidden_commands = command_phase(hidden_env)
    assert hidden_commands == shown_commands and len(hidden) == len(shown) == 2 * (3 + 1)
    assert not all(np.array_equal(frame, shown[0]) for frame in shown)  # symbols, then blanks between them
    assert all(np.array_equal(frame, hidden[0]) for frame in hidden)
    assert np.array_equal(hidden[0], shown[3])  # a blank step of the shown phase: the same arena
    # The same actions earn the same rewards: the env checks the commands it did not draw.
    rng, rewarded = np.random.default_rng(0), 0
    for seed in range(20):
        actions = rng.integers(0, 4, 200)
        outcomes = []
        for env in (make_registered("MortarMayhem-Grid-v0", "memory_gym"), hidden_env):
            env.reset(seed=seed, options=options)
            rewards = []
            for action in actions:
                _, reward, terminated, truncated, _ = env.step(int(action))
                rewards.append(float(reward))
                if terminated or truncated:
                    break
            outcomes.append(rewards)
        assert outcomes[0] == outcomes[1]
        rewarded += sum(outcomes[0]) > 0
    assert rewarded > 0  # some random play carried out a command: the comparison is not of zeros only
