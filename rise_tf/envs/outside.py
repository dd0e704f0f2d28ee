"""Outside memory benchmarks (issue 21): tasks nobody in this project designed, reached through the
public --env-id path like any user's env.

    make outside-envs                                   # installs them into .outside-envs/ (BUILD.md)
    PYTHONPATH=.outside-envs python -m rise_tf.envs.outside --check
    PYTHONPATH=.outside-envs rise-train --env-id MortarMayhem-Grid-v0 --env-module memory_gym --algo rise-btr

Memory Gym (Pleines et al., ICLR 2023; `memory-gym` 1.0.2): 84x84 RGB. Only the `-Grid` variants have
Discrete actions (the others are MultiDiscrete([3, 3]), which rise-tf's Q heads do not take).
- MortarMayhem-Grid-v0: a sequence of floor tiles is shown as a cue, then the agent must walk to them
  in order, from memory; random play earns ~0.02 per episode (measured here).
- MysteryPath-Grid-v0: an invisible path must be walked; stepping off it resets the agent to the
  start, and only memory of where it fell tells the way on.
ViZDoom (Kempka et al. 2016; `vizdoom` 1.3.2): a Dict observation with `screen` 240x320x3.
- VizdoomMyWayHome-v1: a maze of rooms, the goal is out of sight (a classic memory/exploration task
  for recurrent agents; Discrete(6)); random play ends at the 2,100-step limit with -0.21.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from typing import List, Optional

from rise_runtime.envs.gym_image import OUTSIDE_ENV_PACKAGES


@dataclasses.dataclass(frozen=True)
class OutsideTask:
    env_id: str
    env_module: str
    image_key: Optional[str] = None

    @property
    def package(self) -> str:
        return OUTSIDE_ENV_PACKAGES[self.env_module.split(".")[0]]

    def train_flags(self) -> List[str]:
        return (["--env-id", self.env_id, "--env-module", self.env_module]
                + (["--image-key", self.image_key] if self.image_key else []))


OUTSIDE_TASKS = (
    OutsideTask("MortarMayhem-Grid-v0", "memory_gym"),
    OutsideTask("MysteryPath-Grid-v0", "memory_gym"),
    OutsideTask("VizdoomMyWayHome-v1", "vizdoom.gymnasium_wrapper", "screen"),
)


def check(tasks=OUTSIDE_TASKS, seconds: float = 1.0) -> List[dict]:
    """Makes each task as rise-train does (probe_env), steps it at random for `seconds`: its image,
    actions and random-play speed. Raises EnvSpecError (with the install hint) when one cannot be made."""
    from rise_runtime.envs.gym_image import make_registered, probe_env

    rows = []
    for task in tasks:
        layout, actions = probe_env(task.env_id, env_module=task.env_module, image_key=task.image_key)
        env = make_registered(task.env_id, task.env_module)
        env.reset(seed=0)
        steps, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            _, _, terminated, truncated, _ = env.step(env.action_space.sample())
            steps += 1
            if terminated or truncated:
                env.reset()
        env.close()
        rows.append({"env_id": task.env_id, "package": task.package, "image": "x".join(map(str, layout.screen_shape)),
                     "actions": actions, "random_steps_per_s": steps / (time.perf_counter() - started)})
    return rows


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rise_tf.envs.outside", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="make and step every outside task")
    args = parser.parse_args(argv)
    if not args.check:
        for task in OUTSIDE_TASKS:
            print(f"{task.env_id:24s} {task.package:18s} rise-train {' '.join(task.train_flags())}")
        return 0
    from rise_runtime.envs.gym_image import EnvSpecError

    try:
        for row in check():
            print(f"{row['env_id']:24s} {row['package']:18s} {row['image']}, {row['actions']} actions, "
                  f"{row['random_steps_per_s']:,.0f} random steps/s")
    except EnvSpecError as error:
        print(f"outside envs: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
