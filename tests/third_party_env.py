"""A "third-party" gymnasium env package for the tests: importing it registers its ids, as a user's
own package would (rise-train --env-id ThirdParty/Colours-v0 --env-module third_party_env).

Colours: an odd-sized RGB screen shows one of three colours; the action that names the colour earns
+1, any other 0; episodes last 6 steps. Variants with the spaces rise-tf must accept or refuse.
ColoursPair takes MultiDiscrete([3, 2]) actions (Memory Gym's free-moving tasks' kind): +1 when the
first component names the colour and the second is 1. Reset options set the task as parameterised
benchmarks do: {"colours": 1} shows red only.
"""
import enum

import gymnasium as gym
import numpy as np

COLOURS = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255]], np.uint8)
HEIGHT, WIDTH = 50, 37


class Colours(gym.Env):
    metadata = {"render_modes": []}

    class actions(enum.IntEnum):  # named actions, MiniGrid's style: what rise-tf should write in env.json
        red = 0
        green = 1
        blue = 2

    def __init__(self, layout="rgb", actions="discrete"):
        self.layout = layout
        image = {"rgb": gym.spaces.Box(0, 255, (HEIGHT, WIDTH, 3), np.uint8),
                 "gray": gym.spaces.Box(0, 255, (HEIGHT, WIDTH), np.uint8),
                 "chw_float": gym.spaces.Box(0.0, 1.0, (3, HEIGHT, WIDTH), np.float32)}
        if layout == "dict":
            self.observation_space = gym.spaces.Dict({"pixels": image["rgb"],
                                                      "position": gym.spaces.Box(-1, 1, (2,), np.float32)})
        elif layout == "vector":
            self.observation_space = gym.spaces.Box(-1, 1, (4,), np.float32)
        else:
            self.observation_space = image[layout]
        self.action_space = {"discrete": gym.spaces.Discrete(3), "box": gym.spaces.Box(-1, 1, (2,), np.float32),
                             "pair": gym.spaces.MultiDiscrete([3, 2]), "huge": gym.spaces.MultiDiscrete([20, 20]),
                             "binary": gym.spaces.MultiBinary(3)}[actions]
        self._colour, self._t, self._colours = 0, 0, len(COLOURS)

    def _observation(self):
        rgb = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
        rgb[10:40, 8:30] = COLOURS[self._colour]
        if self.layout == "gray":
            return rgb.max(axis=2)
        if self.layout == "chw_float":
            return np.moveaxis(rgb, -1, 0).astype(np.float32) / 255.0
        if self.layout == "dict":
            return {"pixels": rgb, "position": np.zeros(2, np.float32)}
        if self.layout == "vector":
            return np.zeros(4, np.float32)
        return rgb

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        unknown = set(options or {}) - {"colours"}
        assert not unknown, f"unknown reset options {sorted(unknown)}"  # Memory Gym's style of check
        self._colours = int((options or {}).get("colours", len(COLOURS)))
        self._colour, self._t = int(self.np_random.integers(self._colours)), 0
        return self._observation(), {}

    def step(self, action):
        assert self.action_space.contains(action), f"not an action of {self.action_space}: {action!r}"
        right = (self._colour, 1) if np.ndim(action) else self._colour
        reward = 1.0 if np.array_equal(action, right) else 0.0
        self._t += 1
        self._colour = int(self.np_random.integers(self._colours))
        return self._observation(), reward, self._t >= 6, False, {}


for _name, _kwargs in {"Colours-v0": {}, "ColoursGray-v0": {"layout": "gray"},
                       "ColoursCHW-v0": {"layout": "chw_float"}, "ColoursDict-v0": {"layout": "dict"},
                       "ColoursVector-v0": {"layout": "vector"}, "ColoursContinuous-v0": {"actions": "box"},
                       "ColoursPair-v0": {"actions": "pair"}, "ColoursHugePair-v0": {"actions": "huge"},
                       "ColoursBinary-v0": {"actions": "binary"}}.items():
    if f"ThirdParty/{_name}" not in gym.registry:
        gym.register(f"ThirdParty/{_name}", entry_point=Colours, kwargs=_kwargs)
