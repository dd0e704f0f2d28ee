"""What memory is worth on Memory Gym's MysteryPath-Grid-v0, and how far back it must reach (issue 21).

    PYTHONPATH=.outside-envs python -m rise_tf.experiments.mystery_path_levels [--episodes 300]
        [--reset-options '{"cardinal_origin_choice": [0], "show_goal": true, "reward_path_progress": 0.1}']
    PYTHONPATH=.outside-envs python -m rise_tf.experiments.mystery_path_levels --run RUN_DIR [--checkpoint best]
        [--hide-falls] [--memory-reach 4] [--epsilon 0.05]
    PYTHONPATH=.outside-envs python -m rise_tf.experiments.mystery_path_levels --separation [--reset-options ...]

The task: a 7x7 grid with an invisible path from one edge to the opposite one. The agent (rotate left,
rotate right, forward; its heading is drawn) walks from the path's origin; stepping off the path draws
a red cross for one step and puts it back at the origin, heading unchanged. A memory-less greedy policy
sees the same screen at the origin after every fall and so walks the same way again; finding the path
means remembering where it fell. Scripted policies that read the env's own state (Memory Gym 1.0.2's
`mystery_path`, `start`, `end`, `agent`, `is_off_path`) give the task's levels:
- "remembers its falls": knows every tile it stepped on and every tile it fell from in this episode and
  walks, through tiles it knows, to the unknown tile nearest the goal (a perfect memory);
- "walks toward the goal": the neighbour tile nearest the goal, ties broken by a fixed order, no
  memory (one memory-less policy, not the best possible one);
- random play.
Both scripted walkers read the goal's tile from the env (the task shows it with show_goal true).
Reach: for the remembering walker, the agent steps between a fall (the cross's frame) and the next time
it stands on the tile it fell from — where remembering the fall decides its move — against RISE's window
k and the frame stack.
Memory in use: the share of falls that repeat a fall of the same episode (the same step off the path,
from the same tile to the same tile). A policy that remembers its falls never repeats one; a memory-less
greedy one repeats its first fall until the episode ends, unless its heading differs. With --run, a
trained run's greedy policy (no ε) plays the run's evaluation episodes and is measured the same way;
--hide-falls plays them again without the cross (the env's visual_feedback off): a policy that acts on
the crosses it saw does worse there, one that ignores them does not change. The agent's own position
before it is put back still shows where it fell, so hiding the cross removes one cue, not all.
--memory-reach N removes them all beyond N steps: the same episodes with the policy reading only its
newest N steps of memory (short_memory.ShortMemory); a lead that survives a cut to the frame stack's
reach (4) is not made of memory beyond the frame stack.
--epsilon X plays the same episodes ε-greedily (a random action with probability X at each step): a
greedy policy stuck repeating one fall can then leave the loop, so the return it gains says how much
of its failure is the loop; one that remembers its falls has less to gain.
Does the cue reach ψ (--separation)? The frames that show a fall (the cross), preprocessed as training
does and embedded by the frozen ϑ, grouped by the tile fallen onto: the distance between the groups'
centroids over the spread within a group (outside_cues' measure for Mortar Mayhem's commands).
"""
from __future__ import annotations

import argparse
import collections
import sys
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import gymnasium as gym
import numpy as np

from rise_tf.experiments.outside_cues import print_table, separation, trained_run_errors
from rise_tf.startup import quiet_third_party_startup

quiet_third_party_startup()

ENV_ID = "MysteryPath-Grid-v0"
POLICIES = ("remembers its falls", "walks toward the goal", "random play")
Tile = Tuple[int, int]
# Memory Gym's CardinalDirection: NORTH 0, WEST 1, SOUTH 2, EAST 3; action 1 turns left (+90 degrees),
# 2 turns right, 3 moves forward, 0 does nothing. Grid y grows southward.
HEADINGS = {0: (0, -1), 1: (-1, 0), 2: (0, 1), 3: (1, 0)}
NOTHING, TURN_LEFT, TURN_RIGHT, FORWARD = 0, 1, 2, 3


def turn_or_step(heading: int, toward: Tile) -> int:
    """The action that moves the agent one tile in direction `toward` (a unit step) or turns it that way."""
    wanted = next(h for h, step in HEADINGS.items() if step == toward)
    if wanted == heading:
        return FORWARD
    return TURN_LEFT if (wanted - heading) % 4 == 1 else TURN_RIGHT


def neighbours(tile: Tile, size: int):
    for step in HEADINGS.values():
        x, y = tile[0] + step[0], tile[1] + step[1]
        if 0 <= x < size and 0 <= y < size:
            yield step, (x, y)


def distance(a: Tile, b: Tile) -> int:
    return abs(a[0] - b[0]) + abs(a[1] - b[1])


def toward_goal(here: Tile, goal: Tile, size: int) -> Tile:
    """Memory-less: the step to the neighbour nearest the goal (first in HEADINGS order on a tie)."""
    return min(neighbours(here, size), key=lambda step_tile: distance(step_tile[1], goal))[0]


def explore(here: Tile, goal: Tile, size: int, walked: set, fell: set) -> Optional[Tile]:
    """With memory: the first step, through tiles known to be on the path, to the not-yet-tried tile
    nearest the goal (breadth-first, so by the shortest known way); None if nothing is left to try."""
    came_from: Dict[Tile, Optional[Tile]] = {here: None}
    queue, untried = collections.deque([here]), []
    while queue:
        tile = queue.popleft()
        for _, next_tile in neighbours(tile, size):
            if next_tile in came_from or next_tile in fell:
                continue
            came_from[next_tile] = tile
            (queue.append if next_tile in walked else untried.append)(next_tile)
    if not untried:
        return None
    target = min(untried, key=lambda tile: distance(tile, goal))
    while came_from[target] != here:
        target = came_from[target]
    return target[0] - here[0], target[1] - here[1]


def summarize_falls(episodes: List[List[Tuple[Tile, Tile]]]) -> Dict[str, float]:
    """From each episode's falls, (from tile, to tile) in order: {"falls": per episode, "repeats": share of
    the falls that repeat one of the same episode}."""
    falls = sum(len(episode) for episode in episodes)
    repeats = sum(len(episode) - len(set(episode)) for episode in episodes)
    return {"falls": falls / max(len(episodes), 1), "repeats": repeats / falls if falls else 0.0}


class FallRecorder(gym.Wrapper):
    """Records, for each finished episode of a MysteryPath-Grid lane, its falls and whether it reached
    the goal (the env's own `success`), into `finished` (shared by the lanes of one evaluation)."""

    def __init__(self, env, finished: List[dict]):
        super().__init__(env)
        self.finished, self.falls = finished, []

    def reset(self, **kwargs):
        self.falls = []
        return self.env.reset(**kwargs)

    def step(self, action):
        game = self.env.unwrapped
        before = agent_tile(game)
        observation, reward, terminated, truncated, info = self.env.step(action)
        if game.is_off_path:
            self.falls.append((before, agent_tile(game)))
        if terminated or truncated:
            self.finished.append({"falls": self.falls, "success": float(info.get("success", 0))})
        return observation, reward, terminated, truncated, info


class HiddenFalls(gym.Wrapper):
    """The task with Memory Gym's own `visual_feedback` off (its paper's "feedback off" setting): a fall
    draws no cross, so what remains to remember is where the agent stood before it was put back."""

    def reset(self, **kwargs):
        result = self.env.reset(**kwargs)
        self.env.unwrapped.reset_params["visual_feedback"] = False  # read at each fall; set per reset
        return result


def finished_levels(finished: List[dict]) -> Dict[str, float]:
    """{"success": share reaching the goal, "falls", "repeats"} of FallRecorder's records."""
    return {"success": float(np.mean([episode["success"] for episode in finished])),
            **summarize_falls([episode["falls"] for episode in finished])}


def agent_tile(game) -> Tile:
    return tuple(int(v) for v in game.agent.grid_position)


def scripted_levels(episodes: int, seed: int, reset_options: Optional[dict] = None) -> Dict[str, Dict[str, object]]:
    """policy -> {"return": mean per episode, "success": share reaching the goal, "falls" and "repeats"
    (summarize_falls), "fall_gaps": agent steps from each fall to the next time the agent stood on the
    tile it fell from}."""
    from rise_runtime.envs.gym_image import make_registered, reset_with_options

    finished: List[dict] = []
    env = FallRecorder(make_registered(ENV_ID, "memory_gym"), finished)
    game, rng = env.unwrapped, np.random.default_rng(seed)
    size = game.grid_dim

    def position() -> Tile:
        return agent_tile(game)

    def policy_step(policy: str, memory: dict) -> int:
        if game.is_off_path:
            return NOTHING  # the env puts the agent back at the origin whatever it does
        if policy == "random play":
            return int(rng.integers(4))
        here, goal, heading = position(), tuple(int(v) for v in game.end), game.agent.face_direction.value
        if policy == "walks toward the goal":
            return turn_or_step(heading, toward_goal(here, goal, size))
        step = explore(here, goal, size, memory["walked"], memory["fell"])
        return NOTHING if step is None else turn_or_step(heading, step)

    levels: Dict[str, Dict[str, object]] = {}
    for policy in POLICIES:
        returns, gaps = [], []
        del finished[:]
        for episode in range(episodes):
            reset_with_options(env, seed=seed + episode, options=reset_options)
            memory = {"walked": {position()}, "fell": set(), "falls": {}}  # falls: edge tile -> step of the fall
            total, done, t = 0.0, False, 0
            while not done:
                before = position()
                _, reward, terminated, truncated, _ = env.step(policy_step(policy, memory))
                total, done, t = total + float(reward), terminated or truncated, t + 1
                if game.is_off_path:
                    memory["fell"].add(position())
                    memory["falls"].setdefault(before, t)
                else:
                    memory["walked"].add(position())
                    if position() in memory["falls"] and position() != before:
                        gaps.append(t - memory["falls"].pop(position()))
            returns.append(total)
        levels[policy] = {"return": float(np.mean(returns)), **finished_levels(finished), "fall_gaps": gaps}
    env.close()
    return levels


def fall_frames(episodes: int, seed: int, reset_options: Optional[dict] = None, frame_size: int = 84):
    """(frames [N, S, S] uint8 as training preprocesses them, the tile fallen onto of each) of every fall
    random play makes in `episodes` episodes."""
    from rise_runtime.envs.gym_image import make_registered, reset_with_options
    from rise_runtime.preprocessing import PreprocessingConfig, preprocess_screens

    env = make_registered(ENV_ID, "memory_gym")
    env.action_space.seed(seed)
    config = PreprocessingConfig(frame_size=frame_size, action_repeat=1)
    frames, labels = [], []
    for episode in range(episodes):
        reset_with_options(env, seed=seed + episode, options=reset_options)
        done = False
        while not done:
            observation, _, terminated, truncated, _ = env.step(env.action_space.sample())
            done = terminated or truncated
            if env.unwrapped.is_off_path:
                frames.append(preprocess_screens(observation, None, config))
                labels.append("%d,%d" % agent_tile(env.unwrapped))
    env.close()
    return np.stack(frames), labels


def policy_levels(run_dir: str, episodes: int, checkpoint: Optional[str] = None, hide_falls: bool = False,
                  memory_reach: Sequence[int] = (), epsilons: Sequence[float] = (),
                  seed: int = 0) -> Dict[str, Dict[str, float]]:
    """A trained MysteryPath-Grid run's greedy policy (no ε) on the run's evaluation episodes:
    {"greedy": {"return", "episodes", "success" (share reaching the goal), "falls", "repeats"}} over the
    episodes it finished; with hide_falls also "greedy, falls hidden": the same episodes without the
    fall's cross (HiddenFalls); for each N in memory_reach also "greedy, memory cut to N steps": the same
    episodes with the policy reading its newest N steps of memory only (ShortMemory); for each X in
    epsilons also "ε-greedy, ε = X": the same episodes with a uniformly random action at each step with
    probability X (TensorFlow's random generator seeded with `seed` first). The network is loaded once.
    Raises ValueError when the run is not a MysteryPath-Grid run, or memory_reach does not apply to it."""
    import tensorflow as tf

    from rise_runtime.envs.gym_image import make_registered
    from rise_tf import builder
    from rise_tf.experiments.short_memory import ShortMemory
    from rise_tf.export.step_model import load_policy
    from rise_tf.parts.evaluator import EVAL_SEED_OFFSET, MAX_EVAL_LANES, as_py_policy, evaluate

    loaded = load_policy(run_dir, checkpoint)
    config = loaded.config
    if config.env.env_id != ENV_ID:
        raise ValueError(f"{run_dir} trained on {config.env.env_id or config.env.game}; --run takes {ENV_ID} runs")
    policy = as_py_policy(loaded.policy)
    conditions = [("greedy", False, policy)] + [("greedy, falls hidden", True, policy)] * hide_falls
    conditions += [(f"greedy, memory cut to {steps} steps", False, ShortMemory(policy, steps))
                   for steps in memory_reach]
    conditions += [(f"ε-greedy, ε = {epsilon:g}", False, as_py_policy(loaded.epsilon_greedy(epsilon)))
                   for epsilon in epsilons]
    levels = {}
    for name, hide, player in conditions:
        finished: List[dict] = []

        def lane(hide=hide, finished=finished):
            env = make_registered(ENV_ID, config.env.env_module)
            return FallRecorder(HiddenFalls(env) if hide else env, finished)
        env = builder.make_env(config, num_envs=min(episodes, MAX_EVAL_LANES), seed_offset=EVAL_SEED_OFFSET,
                               training=False, parallel="serial",  # the lanes' recorders share one list
                               env_factory=lane)
        tf.random.set_seed(seed)  # the ε conditions' draws; the greedy ones draw nothing
        result = evaluate(player, env, episodes, config.env_name)
        env.close()
        levels[name] = {"return": result.mean_return, "episodes": len(finished), **finished_levels(finished)}
    return levels


LEVEL_COLUMNS = ["return per episode", "reaches the goal", "falls per episode", "falls that repeat one of the episode"]


def level_cells(level: dict) -> List[str]:
    return [f"{level['return']:.3f}", f"{level['success']:.3f}", f"{level['falls']:.2f}", f"{level['repeats']:.2f}"]


def refused(error: object) -> int:
    """The cause on stderr; exit status 2 (bad input, nothing written)."""
    print(f"mystery_path_levels: error: {error}", file=sys.stderr)
    return 2


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rise_tf.experiments.mystery_path_levels",
                                     description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=300,
                        help="episodes per scripted policy, or of --run's policy [default: %(default)s]")
    parser.add_argument("--seed", type=int, default=0,
                        help="the first episode's seed (and random play's); with --run, the seed of the ε draws "
                             "(--run plays the run's own evaluation episodes)")
    parser.add_argument("--reset-options", default=None,
                        help="the task's Memory Gym reset parameters, as rise-train takes them (JSON object)")
    parser.add_argument("--window-length", type=int, action="append", default=None,
                        help="k to compare with the reach (repeatable) [default: 16 and 32]")
    parser.add_argument("--frame-stack", type=int, default=4, help="frames φ sees (the presets': 4)")
    parser.add_argument("--run", metavar="RUN_DIR", default=None,
                        help="instead: a trained MysteryPath-Grid run's greedy policy over --episodes evaluation "
                             "episodes (its falls and how often it repeats one)")
    parser.add_argument("--checkpoint", default=None,
                        help="--run: 'best' (the best evaluation's) or a checkpoint directory [default: the latest]")
    parser.add_argument("--hide-falls", action="store_true",
                        help="--run: also play the same episodes with the fall's cross hidden (Memory Gym's "
                             "visual_feedback off); a policy that acts on the crosses it saw does worse")
    parser.add_argument("--memory-reach", type=int, metavar="N", action="append", default=[],
                        help="--run (RISE or full-recurrent): also play the same episodes with the policy reading "
                             "only its newest N steps of memory (4: the frame stack's reach; repeatable); a policy "
                             "that uses what lies further back does worse")
    parser.add_argument("--epsilon", type=float, metavar="X", action="append", default=[],
                        help="--run: also play the same episodes ε-greedily, a random action with probability X "
                             "(repeatable); what a policy gains says how much of its failure is a greedy loop")
    parser.add_argument("--separation", action="store_true",
                        help="instead: how far apart the frozen ϑ puts the frames of falls onto different tiles "
                             "(random play's falls over --episodes episodes)")
    parser.add_argument("--embedding-size", type=int, default=64,
                        help="--separation: ϑ's embedding size (the presets': 64)")
    args = parser.parse_args(argv)
    if args.episodes < 1:
        parser.error(f"--episodes must be at least 1, got {args.episodes}")
    for flag, given in (("--hide-falls", args.hide_falls), ("--memory-reach", bool(args.memory_reach)),
                        ("--epsilon", bool(args.epsilon))):
        if given and args.run is None:
            parser.error(f"{flag} plays a trained policy: give --run RUN_DIR")
    for epsilon in args.epsilon:
        if not 0 < epsilon <= 1:  # also refuses nan
            parser.error(f"--epsilon must be in (0, 1], got {epsilon}; the greedy policy (ε = 0) is always played")
    from rise_runtime.envs.gym_image import EnvSpecError, parse_reset_options, task_name

    if args.run is not None:
        try:
            levels = policy_levels(args.run, args.episodes, args.checkpoint, hide_falls=args.hide_falls,
                                   memory_reach=args.memory_reach, epsilons=args.epsilon, seed=args.seed)
        except trained_run_errors() as error:
            return refused(error)
        print(f"{args.run}: greedy policy, {levels['greedy']['episodes']} finished evaluation episodes\n")
        print_table(["policy"] + LEVEL_COLUMNS, [[name] + level_cells(level) for name, level in levels.items()])
        return 0

    if args.separation:
        try:
            frames, labels = fall_frames(args.episodes, args.seed, parse_reset_options(args.reset_options))
        except EnvSpecError as error:
            return refused(error)
        import tensorflow as tf

        from rise_tf.networks.encoders import make_frozen_encoder

        spaces = {"pixels (gray 84x84)": frames.reshape(len(frames), -1).astype(np.float32) / 255.0}
        for name in ("random_projection", "random_cnn"):
            encoder = make_frozen_encoder(name, embedding_size=args.embedding_size, seed=args.seed)
            spaces[f"ϑ = {name}"] = encoder(tf.constant(frames)).numpy().astype(np.float32)
        print(f"{len(frames)} fall frames of random play over {args.episodes} episodes\n")
        rows = []
        for name, embeddings in spaces.items():
            sep = separation(embeddings, labels)
            rows.append([name, str(sep["commands"]), f"{sep['between']:.3f}", f"{sep['within']:.3f}",
                         f"{sep['ratio']:.1f}"])
        print_table(["space", "tiles fallen onto", "between-tile distance", "within-tile spread", "ratio"], rows)
        return 0
    try:
        options = parse_reset_options(args.reset_options)
        levels = scripted_levels(args.episodes, args.seed, options)
    except EnvSpecError as error:
        return refused(error)
    print(f"{task_name(ENV_ID, options)}: {args.episodes} episodes per scripted policy\n")
    print_table(["scripted policy"] + LEVEL_COLUMNS,
                [[policy] + level_cells(level) for policy, level in levels.items()])
    gaps = np.asarray(levels[POLICIES[0]]["fall_gaps"])
    if gaps.size:
        print(f"\nReach ({POLICIES[0]}): {gaps.size} returns to a tile it fell from; agent steps since the fall: "
              f"median {np.median(gaps):.0f}, 90th percentile {np.percentile(gaps, 90):.0f}, max {gaps.max()}")
        within: Callable[[int], str] = lambda k: f"{np.mean(gaps < k):.2f}"  # the cross is among the last k frames
        for k in [args.frame_stack] + (args.window_length or [16, 32]):
            print(f"window {k}: the fall is still in view at {within(k)} of them")
    return 0


if __name__ == "__main__":
    sys.exit(main())
