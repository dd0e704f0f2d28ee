"""Any gymnasium environment with image observations and discrete actions, as rise-tf frames.

    env = GymImageEnv.from_id("MyOrg/MyGame-v0", env_module="my_org_games", image_key=None,
                              preprocessing=PreprocessingConfig(frame_size=84, action_repeat=1),
                              flicker_prob=0.0, seed=0, reset_options={"level": 2})

Observations may be RGB ([H, W, 3]) or grayscale ([H, W] or [H, W, 1]), channels-last or
channels-first, uint8 or float in [0, 1], of any size, or a Dict holding such an image under
`image_key`. Each agent step repeats the action `action_repeat` times (summing rewards) and, when it
repeats, takes the pixel-wise max of the last two observations — the same preprocessing as Atari
(`rise_runtime.preprocessing`: grayscale, resize to frame_size x frame_size). Rewards stay raw.

MultiDiscrete(nvec) actions are flattened: agent action i is the env action
`np.unravel_index(i, nvec) + start` (the last component varies fastest), named `ACTION_<c0>_<c1>...`
by its components (Memory Gym's free-moving tasks: MultiDiscrete([3, 3]) -> 9 actions). What cannot
be taken (continuous or MultiBinary actions, vector observations, a Dict without an image key) raises
`EnvSpecError` naming the problem and what would work. TF-Agents `PyEnvironment`s
are accepted through `PyEnvironmentAsGym` (one unbatched env).

`reset_options` is passed to every `env.reset(options=...)`: how parameterised benchmarks take their task
settings (Memory Gym: `{"command_count": [2]}`). The env's name then carries them
(`MortarMayhem-Grid-v0[command_count=2]`), so runs of two settings never mix in a report.

TF-free (gymnasium + numpy + the shared preprocessing): the play loop of the runtime uses it too.
"""
from __future__ import annotations

import dataclasses
import difflib
import importlib
import json
import os
from enum import Enum
from typing import Any, Dict, List, Optional, Tuple

import gymnasium as gym
import numpy as np

from rise_runtime.preprocessing import PreprocessingConfig
from rise_runtime.envs.screens import ScreenEnv


class EnvSpecError(ValueError):
    """The environment cannot be used as given; the message says what is wrong and what would work."""


# Outside benchmarks whose packages rise-tf's `make outside-envs` installs (outside the venv, see BUILD.md).
OUTSIDE_ENV_PACKAGES = {"memory_gym": "memory-gym==1.0.2", "vizdoom": "vizdoom==1.3.2"}


def import_env_module(module: Optional[str]) -> None:
    """Imports the package that registers the env; its own error is shown, not hidden behind ours."""
    if not module:
        return
    # Headless: an env that starts pygame's mixer (Memory Gym) must not probe for a sound card.
    os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
    try:
        importlib.import_module(module)
    except Exception as error:  # any failure inside the user's module is theirs to see
        top = module.split(".")[0]
        known = OUTSIDE_ENV_PACKAGES.get(top)
        hint = (f" In a rise-tf checkout, `make outside-envs` installs {known} into .outside-envs/ (without the "
                f"dependencies that clash with tf-agents'); then run with PYTHONPATH=.outside-envs." if known else "")
        raise EnvSpecError(
            f"--env-module {module!r} failed to import: {type(error).__name__}: {error}. Install the package that "
            f"provides it (pip install <its package>), or put the folder that holds {top}/ or {top}.py on the "
            f"Python path (PYTHONPATH=/path/to/that/folder).{hint}") from error


def check_registered(env_id: str) -> None:
    """Raises EnvSpecError with the closest registered ids when `env_id` is not registered."""
    if ":" in env_id:  # gymnasium's "module:EnvId" form imports the module itself
        module, _, env_id = env_id.partition(":")
        import_env_module(module)
    if env_id in gym.registry:
        return
    ids = list(gym.registry)
    close = difflib.get_close_matches(env_id, ids, n=5, cutoff=0.6)
    hint = f" Closest registered ids: {', '.join(close)}." if close else ""
    if env_id.startswith("ALE/"):
        hint += (" For Atari, --game Pong plays it with rise-tf's own ALE protocol and preprocessing; "
                 "--env-module ale_py registers gymnasium's ALE envs to use them as they are.")
    raise EnvSpecError(
        f"no gymnasium env {env_id!r} is registered.{hint} If a package registers it, name that package "
        f"with --env-module (or write the id as 'package:{env_id}'). A run trained with a Python env factory "
        f"resumes from Python: Trainer(config, run_dir, resume=True, env_factory=...).")


def parse_reset_options(text: Optional[str]) -> Optional[Dict[str, Any]]:
    """--reset-options: a JSON object (or None) -> the dict passed to every env.reset(options=...)."""
    if text is None or text == "":
        return None
    try:
        options = json.loads(text)
    except json.JSONDecodeError as error:
        raise EnvSpecError(f"--reset-options must be a JSON object such as '{{\"command_count\": [2]}}' (quote it "
                           f"for the shell); {text!r} is not JSON: {error.msg} at character {error.pos}") from None
    if not isinstance(options, dict) or not options:
        raise EnvSpecError(f"--reset-options must be a non-empty JSON object (names to values) such as "
                           f"'{{\"command_count\": [2]}}', got {text!r}")
    return options


def options_label(options: Optional[Dict[str, Any]]) -> str:
    """'[command_count=2,show_origin=true]' for reset options (sorted, one-element lists unwrapped); ''
    for none. Names a task set up by its options: in reports, run dirs and the exported model."""
    if not options:
        return ""

    def value(v):
        v = v[0] if isinstance(v, list) and len(v) == 1 else v
        return json.dumps(v, separators=(",", ":")).strip('"')

    return "[" + ",".join(f"{key}={value(options[key])}" for key in sorted(options)) + "]"


def task_name(env_id: str, options: Optional[Dict[str, Any]]) -> str:
    """The env id with its reset options: MortarMayhem-Grid-v0[command_count=2]."""
    return env_id + options_label(options)


@dataclasses.dataclass(frozen=True)
class ImageLayout:
    """Where the image sits in an observation and how to read it."""

    key: Optional[str]  # Dict key, or None for a plain Box
    shape: Tuple[int, ...]  # of the raw image as the env gives it
    channels_first: bool
    float_unit: bool  # float in [0, 1]: scaled to 0..255

    def screen(self, observation) -> np.ndarray:
        """The raw observation -> a uint8 [H, W] or [H, W, C] screen."""
        image = np.asarray(observation[self.key] if self.key is not None else observation)
        if self.channels_first:
            image = np.moveaxis(image, 0, -1)
        if self.float_unit:
            image = np.clip(np.rint(image * 255.0), 0, 255)
        return image.astype(np.uint8, copy=False)

    @property
    def screen_shape(self) -> Tuple[int, ...]:
        return (self.shape[1:] + self.shape[:1]) if self.channels_first else self.shape


_IMAGE_HELP = ("rise-tf's networks read images: a Box of uint8 (or float in [0, 1]) shaped [H, W], [H, W, 1] or "
               "[H, W, 3] (channels-first [1|3, H, W] also works)")


def _image_problem(space: gym.Space) -> Optional[str]:
    """None when `space` is an image rise-tf can read, else what is wrong with it."""
    if not isinstance(space, gym.spaces.Box):
        return f"a {type(space).__name__} space"
    shape = space.shape
    if len(shape) not in (2, 3):
        return f"a Box of shape {shape} ({'a vector' if len(shape) == 1 else f'{len(shape)} axes'}, not an image)"
    if len(shape) == 3 and shape[-1] not in (1, 3) and shape[0] not in (1, 3):
        return f"a Box of shape {shape} ({shape[-1]} channels; only 1 or 3 can be read)"
    if min(shape[:2] if len(shape) == 2 or shape[-1] in (1, 3) else shape[1:]) < 8:
        return f"a Box of shape {shape} (smaller than 8 pixels a side)"
    if space.dtype != np.uint8:
        if not np.issubdtype(space.dtype, np.floating):
            return f"a Box of dtype {space.dtype}"
        if not (np.all(space.low >= 0) and np.all(space.high <= 1)):
            return f"a float Box with bounds [{np.min(space.low)}, {np.max(space.high)}] (floats must lie in [0, 1])"
    return None


def image_layout(space: gym.Space, image_key: Optional[str]) -> ImageLayout:
    """Reads the observation space; raises EnvSpecError saying what is wrong and what would work."""
    key = None
    if isinstance(space, gym.spaces.Dict):
        images = [k for k, sub in space.spaces.items() if _image_problem(sub) is None]
        if image_key is None:
            raise EnvSpecError(
                f"observations are a Dict with keys {sorted(space.spaces)}; name the one holding the image with "
                f"--image-key" + (f" (image-shaped: {', '.join(images)})" if images else
                                  " (none of them is an image rise-tf can read: " + _IMAGE_HELP + ")"))
        if image_key not in space.spaces:
            raise EnvSpecError(f"--image-key {image_key!r} is not an observation key; the keys are "
                               f"{sorted(space.spaces)}" + (f" (image-shaped: {', '.join(images)})" if images else ""))
        key, space = image_key, space.spaces[image_key]
    elif image_key is not None:
        raise EnvSpecError(f"--image-key {image_key!r} is given, but the observations are a "
                           f"{type(space).__name__}, not a Dict; drop --image-key")
    problem = _image_problem(space)
    if problem is not None:
        where = f"observation key {key!r}" if key else "observations"
        raise EnvSpecError(f"the {where} are {problem}; {_IMAGE_HELP}. For state-vector envs use a non-image "
                           f"agent, or render them to pixels (gymnasium.wrappers.AddRenderObservation).")
    shape = tuple(space.shape)
    channels_first = len(shape) == 3 and shape[-1] not in (1, 3) and shape[0] in (1, 3)
    return ImageLayout(key, shape, channels_first, space.dtype != np.uint8)


# A Q head has one output per flat action; beyond this many the product of a MultiDiscrete space is
# rarely what a value-based agent should learn over (a user's own Discrete wrapper can choose a subset).
MAX_FLAT_ACTIONS = 256


def check_action_space(space: gym.Space) -> int:
    """The number of actions; raises EnvSpecError for anything but Discrete or a small MultiDiscrete."""
    if isinstance(space, gym.spaces.Discrete):
        return int(space.n)
    if isinstance(space, gym.spaces.MultiDiscrete) and space.nvec.ndim == 1:
        count = int(np.prod(space.nvec))
        if count <= MAX_FLAT_ACTIONS:
            return count
        kind = f"MultiDiscrete({space.nvec.tolist()}) actions, {count:,} combinations (at most {MAX_FLAT_ACTIONS})"
    elif isinstance(space, gym.spaces.Box):
        kind = f"continuous actions (Box of shape {space.shape})"
    else:
        kind = f"{type(space).__name__} actions"
    raise EnvSpecError(f"the env has {kind}; rise-tf's agents (DQN, Beyond The Rainbow) are value-based and need "
                       f"a Discrete action space (or a MultiDiscrete one, flattened). Wrap the env so that N discrete "
                       f"choices map to its actions (gymnasium.wrappers.TransformAction with a Discrete action_space), "
                       f"or pick a discrete version of it.")


def env_action(space: gym.Space, action: int):
    """The env's action for agent action `action` (see the module docstring for MultiDiscrete)."""
    start = getattr(space, "start", 0)
    if isinstance(space, gym.spaces.MultiDiscrete):
        return np.asarray(np.unravel_index(int(action), space.nvec), dtype=space.dtype) + start
    return int(action) + int(start)


def make_registered(env_id: str, env_module: Optional[str]) -> gym.Env:
    """gymnasium.make after importing `env_module`; every failure becomes an EnvSpecError."""
    import_env_module(env_module)
    check_registered(env_id)
    try:
        return gym.make(env_id)
    except Exception as error:  # the env's own constructor failed: show its error
        raise EnvSpecError(f"gymnasium.make({env_id!r}) failed: {type(error).__name__}: {error}") from error


def reset_with_options(env: gym.Env, *, seed: Optional[int], options: Optional[Dict[str, Any]]):
    """env.reset(seed=..., options=...); an env that rejects the options raises EnvSpecError naming them."""
    if not options:
        return env.reset(seed=seed)
    try:
        return env.reset(seed=seed, options=options)
    except Exception as error:  # the env's own check (Memory Gym asserts on unknown names)
        raise EnvSpecError(f"the env rejected --reset-options {json.dumps(options)}: {type(error).__name__}: "
                           f"{error or '(no message)'}. Check the names and values against the env's documentation "
                           f"(Memory Gym: its default_reset_parameters)") from error


def probe_env(env_id: str, *, env_module: Optional[str], image_key: Optional[str],
              reset_options: Optional[Dict[str, Any]] = None) -> Tuple[ImageLayout, int]:
    """Makes the env once and checks its spaces, and its reset options by one reset (rise-train does this
    before TensorFlow loads). Returns its image layout and number of actions; raises EnvSpecError saying
    what is wrong."""
    env = make_registered(env_id, env_module)
    try:
        layout, num_actions = image_layout(env.observation_space, image_key), check_action_space(env.action_space)
        if reset_options:
            reset_with_options(env, seed=0, options=reset_options)
        return layout, num_actions
    except EnvSpecError as error:
        raise EnvSpecError(f"{env_id}: {error}") from None
    finally:
        env.close()


class PyEnvironmentAsGym(gym.Env):
    """One (unbatched) TF-Agents PyEnvironment seen as a gymnasium env, so GymImageEnv can read it.

    LAST with discount 0 is `terminated`, LAST with discount > 0 `truncated`. Imports no TF-Agents:
    it only calls the PyEnvironment's methods."""

    def __init__(self, py_env):
        if getattr(py_env, "batched", False) and py_env.batch_size:
            raise EnvSpecError(f"the PyEnvironment is batched (batch_size {py_env.batch_size}); give the factory "
                               f"one env per call (rise-tf batches the lanes itself)")
        self.py_env = py_env
        self.observation_space = _space_of(py_env.observation_spec(), "observation")
        action_spec = py_env.action_spec()
        low = np.broadcast_to(action_spec.minimum, action_spec.shape)
        high = np.broadcast_to(action_spec.maximum, action_spec.shape)
        if np.issubdtype(action_spec.dtype, np.integer) and tuple(action_spec.shape) == ():
            self.action_space = gym.spaces.Discrete(int(high) - int(low) + 1, start=int(low))
        elif np.issubdtype(action_spec.dtype, np.integer) and len(action_spec.shape) == 1:
            self.action_space = gym.spaces.MultiDiscrete(high - low + 1, dtype=action_spec.dtype, start=low)
        else:  # reported as continuous by check_action_space
            self.action_space = gym.spaces.Box(-np.inf, np.inf, tuple(action_spec.shape), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return self.py_env.reset().observation, {}

    def step(self, action):
        step = self.py_env.step(np.asarray(action, dtype=self.py_env.action_spec().dtype))
        last = bool(step.is_last())
        ends = last and float(step.discount) == 0.0
        return step.observation, float(step.reward), ends, last and not ends, {}

    def close(self):
        self.py_env.close()


def _space_of(spec, what: str) -> gym.Space:
    if isinstance(spec, dict):
        return gym.spaces.Dict({k: _space_of(v, what) for k, v in spec.items()})
    low = getattr(spec, "minimum", 0 if spec.dtype == np.uint8 else -np.inf)
    high = getattr(spec, "maximum", 255 if spec.dtype == np.uint8 else np.inf)
    return gym.spaces.Box(np.broadcast_to(low, spec.shape), np.broadcast_to(high, spec.shape), tuple(spec.shape),
                          spec.dtype)


def as_gym_env(env: Any) -> gym.Env:
    """A gymnasium env, or a TF-Agents PyEnvironment adapted to one; anything else is an error."""
    if isinstance(env, gym.Env):
        return env
    if hasattr(env, "observation_spec") and hasattr(env, "action_spec") and hasattr(env, "step"):
        return PyEnvironmentAsGym(env)
    raise EnvSpecError(f"the env factory returned a {type(env).__name__}; it must return a gymnasium.Env or a "
                       f"TF-Agents PyEnvironment")


def action_names(env: gym.Env, num_actions: int) -> List[str]:
    """The env's own names for its discrete actions, from the first of: `get_action_meanings()` (ALE and
    envs that copy it), an `actions` enum (MiniGrid's style: member value = action index), ViZDoom's
    button combinations (`button_map` over the game's binary buttons: "MOVE_FORWARD+TURN_LEFT",
    "NOOP"); for MultiDiscrete actions their components, ACTION_<c0>_<c1>...; ACTION_<i> when the env
    names none of them."""
    if isinstance(env.action_space, gym.spaces.MultiDiscrete):
        return ["ACTION_" + "_".join(map(str, env_action(env.action_space, i))) for i in range(num_actions)]
    unwrapped = env.unwrapped
    for names in (_meanings_method(unwrapped), _actions_enum(unwrapped), _vizdoom_buttons(unwrapped)):
        if names is not None and len(names) == num_actions:
            return [str(name) for name in names]
    return [f"ACTION_{i}" for i in range(num_actions)]


def _meanings_method(unwrapped) -> Optional[List[str]]:
    meanings = getattr(unwrapped, "get_action_meanings", None)
    return list(meanings()) if callable(meanings) else None


def _actions_enum(unwrapped) -> Optional[List[str]]:
    for attribute in ("actions", "Actions"):
        enum = getattr(unwrapped, attribute, None)
        if isinstance(enum, type) and issubclass(enum, Enum):
            members = sorted(enum, key=lambda member: member.value)
            if [member.value for member in members] == list(range(len(members))):
                return [member.name for member in members]
    return None


def _vizdoom_buttons(unwrapped) -> Optional[List[str]]:
    game, combinations = getattr(unwrapped, "game", None), getattr(unwrapped, "button_map", None)
    if game is None or combinations is None or not hasattr(game, "get_available_buttons"):
        return None
    # The wrapper puts delta (analogue) buttons first and maps a Discrete action onto the binary ones.
    binary = [button.name for button in game.get_available_buttons() if not button.name.endswith("_DELTA")]
    return ["+".join(name for name, pressed in zip(binary, combination) if pressed) or "NOOP"
            for combination in combinations]


class GymImageEnv(ScreenEnv):
    """A gymnasium image env (or adapted PyEnvironment) emitting rise-tf frames uint8 [size, size]."""

    def __init__(self, env: Any, *, name: str, image_key: Optional[str], preprocessing: PreprocessingConfig,
                 flicker_prob: float, seed: Optional[int], reset_options: Optional[Dict[str, Any]] = None):
        self.env = as_gym_env(env)
        self.name = name
        self.reset_options = reset_options
        try:
            self.layout = image_layout(self.env.observation_space, image_key)
            num_actions = check_action_space(self.env.action_space)
        except EnvSpecError as error:
            self.env.close()
            raise EnvSpecError(f"{name}: {error}") from None
        self._init_screens(self.layout.screen_shape, preprocessing, flicker_prob)
        self.action_space = gym.spaces.Discrete(num_actions)
        self.action_meanings: List[str] = action_names(self.env, num_actions)
        if seed is not None:
            self.np_random = np.random.default_rng(seed)
        self._next_seed = seed

    @classmethod
    def from_id(cls, env_id: str, *, env_module: Optional[str], image_key: Optional[str],
                preprocessing: PreprocessingConfig, flicker_prob: float, seed: Optional[int],
                reset_options: Optional[Dict[str, Any]] = None) -> "GymImageEnv":
        return cls(make_registered(env_id, env_module), name=task_name(env_id, reset_options), image_key=image_key,
                   preprocessing=preprocessing, flicker_prob=flicker_prob, seed=seed, reset_options=reset_options)

    def _observe(self, observation) -> None:
        self._screens[0] = self._screens[1]
        self._screens[1] = self.layout.screen(observation)

    def reset(self, *, seed: Optional[int] = None, options=None):
        super().reset(seed=seed)
        if seed is not None:
            self._next_seed = seed
        # options were checked once (probe_env); an env's own failure later is shown as it is
        observation, info = self.env.reset(seed=self._next_seed, options=self.reset_options)
        self._next_seed = None  # later episodes continue the env's own RNG stream
        self._screens[:] = 0
        self._observe(observation)
        self._draw_flicker()
        return self._frame(), {"life_lost": False, **_plain(info)}

    def step(self, action):
        reward, terminated, truncated, info = 0.0, False, False, {}
        repeated = env_action(self.env.action_space, action)
        for repeat in range(self.preprocessing.action_repeat):
            observation, r, terminated, truncated, info = self.env.step(repeated)
            reward += float(r)
            self._observe(observation)
            if terminated or truncated:
                break
        if repeat == 0:  # one observation this step: nothing to max-pool with (not the previous step's)
            self._screens[0] = self._screens[1]
        self._draw_flicker()
        return self._frame(), reward, bool(terminated), bool(truncated), {"life_lost": False, **_plain(info)}

    def close(self):
        self.env.close()


def _plain(info: dict) -> dict:
    """The wrapped env's info without keys of ours it might collide with."""
    return {k: v for k, v in info.items() if k != "life_lost"}
