"""Outside memory benchmarks (issue 21): tasks nobody in this project designed, reached through the
public --env-id path like any user's env.

    make outside-envs                                   # installs them into .outside-envs/ (BUILD.md)
    PYTHONPATH=.outside-envs python -m rise_tf.envs.outside --check
    PYTHONPATH=.outside-envs rise-train --env-id MortarMayhem-Grid-v0 --env-module memory_gym --algo rise-btr

Memory Gym (Pleines et al., ICLR 2023; `memory-gym` 1.0.2): 84x84 RGB. The `-Grid` variants have
Discrete(4) actions (turn, move); the free-moving ones MultiDiscrete([3, 3]) (a direction on each axis),
taken as 9 flat actions.
- MortarMayhem-Grid-v0: a sequence of floor tiles is shown as a cue, then the agent must walk to them
  in order, from memory; random play earns ~0.02 per episode (measured here). Published: ten commands,
  each 38-74 steps back when the agent may walk to it. `MORTAR_MAYHEM_CPU` sets it up with two
  (`--reset-options`), which a machine without a GPU can learn and a frame stack cannot (random play
  earns ~0.21 of 2).
- MortarMayhem-v0: the same task with free movement (9 commands, diagonals included; a tile is several
  steps wide) and the published timing kept: with two commands (`MORTAR_MAYHEM_CPU`) the cue is 6 and
  26 steps back when the agent may walk to its tile (k = 16 reaches the first, k = 32 both); random
  play earns ~0.17 of 2 (measured here, 300 episodes).
- MysteryPath-Grid-v0: an invisible path must be walked; stepping off it resets the agent to the
  start, and only memory of where it fell tells the way on. `MYSTERY_PATH_CPU` shows the origin and
  the goal and pays 1.0 per new tile (random play earns ~2.58 per episode, a walker that remembers its
  falls ~8.97; measured here, 300 episodes).
ViZDoom (Kempka et al. 2016; `vizdoom` 1.3.2): a Dict observation with `screen` 240x320x3.
- VizdoomMyWayHome-v1: a maze of rooms, the goal is out of sight (a classic memory/exploration task
  for recurrent agents; Discrete(6)); random play ends at the 2,100-step limit with -0.21.
"""
from __future__ import annotations

import argparse
import dataclasses
import shlex
import sys
import time
from typing import List, Optional

from rise_runtime.envs.gym_image import OUTSIDE_ENV_PACKAGES, parse_reset_options, task_name


@dataclasses.dataclass(frozen=True)
class OutsideTask:
    env_id: str
    env_module: str
    image_key: Optional[str] = None
    reset_options: Optional[str] = None  # JSON, as --reset-options takes it

    @property
    def package(self) -> str:
        top = self.env_module.split(".")[0]
        return OUTSIDE_ENV_PACKAGES.get(top, top)

    @property
    def name(self) -> str:
        return task_name(self.env_id, parse_reset_options(self.reset_options))

    def train_flags(self) -> List[str]:
        return (["--env-id", self.env_id, "--env-module", self.env_module]
                + (["--image-key", self.image_key] if self.image_key else [])
                + (["--reset-options", self.reset_options] if self.reset_options else []))


# MortarMayhem-Grid at the CPU scale: two commands (the published task shows ten, 38-74 steps before
# the agent may walk to them: beyond k = 16), each 6-10 steps back when the agent may start walking
# (beyond the frame stack of 4, inside k = 16); 1 per command carried out instead of 0.1: a command
# is then worth what a point is on Atari (clipped to ±1), the reward scale BTR's settings assume
# (Munchausen's τ = 0.03 is an entropy bonus in reward units).
MORTAR_MAYHEM_CPU = '{"command_count": [2], "reward_command_success": 1.0}'
# MysteryPath-Grid at the CPU scale: the path always runs left to right with its origin and goal drawn
# (published: from any edge, the goal hidden), 1.0 per new path tile instead of 0.1 (the same reward
# scale as above); the invisible path, the falls and the 128-step limit stay as published. A fall is
# 5 agent steps back (median) when the agent is again where it fell, 29 at most: inside k = 32.
MYSTERY_PATH_CPU = ('{"cardinal_origin_choice": [0], "show_origin": true, "show_goal": true, '
                    '"reward_path_progress": 1.0}')

OUTSIDE_TASKS = (
    OutsideTask("MortarMayhem-Grid-v0", "memory_gym"),
    OutsideTask("MortarMayhem-Grid-v0", "memory_gym", reset_options=MORTAR_MAYHEM_CPU),
    OutsideTask("MortarMayhem-v0", "memory_gym", reset_options=MORTAR_MAYHEM_CPU),
    OutsideTask("MysteryPath-Grid-v0", "memory_gym"),
    OutsideTask("MysteryPath-Grid-v0", "memory_gym", reset_options=MYSTERY_PATH_CPU),
    OutsideTask("VizdoomMyWayHome-v1", "vizdoom.gymnasium_wrapper", "screen"),
)


def check(tasks=OUTSIDE_TASKS, seconds: float = 1.0) -> List[dict]:
    """Makes each task as rise-train does (probe_env), steps it at random for `seconds`: its image,
    actions and random-play speed. Raises EnvSpecError (with the install hint) when one cannot be made."""
    from rise_runtime.envs.gym_image import make_registered, probe_env

    rows = []
    for task in tasks:
        options = parse_reset_options(task.reset_options)
        layout, actions = probe_env(task.env_id, env_module=task.env_module, image_key=task.image_key,
                                    reset_options=options)
        env = make_registered(task.env_id, task.env_module)
        env.reset(seed=0, options=options)  # probe_env has checked the options
        steps, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            _, _, terminated, truncated, _ = env.step(env.action_space.sample())
            steps += 1
            if terminated or truncated:
                env.reset(options=options)
        env.close()
        rows.append({"env_id": task.name, "package": task.package, "image": "x".join(map(str, layout.screen_shape)),
                     "actions": actions, "random_steps_per_s": steps / (time.perf_counter() - started)})
    return rows


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rise_tf.envs.outside", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="make and step every outside task")
    args = parser.parse_args(argv)
    if not args.check:
        for task in OUTSIDE_TASKS:
            print(f"{task.name}\n    {task.package}: rise-train {shlex.join(task.train_flags())}")
        return 0
    from rise_runtime.envs.gym_image import EnvSpecError

    try:
        rows = check()
        width = max(len(row["env_id"]) for row in rows)
        for row in rows:
            print(f"{row['env_id']:{width}s} {row['package']:18s} {row['image']}, {row['actions']} actions, "
                  f"{row['random_steps_per_s']:,.0f} random steps/s")
    except EnvSpecError as error:
        print(f"outside envs: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
