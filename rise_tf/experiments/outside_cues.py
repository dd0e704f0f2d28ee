"""Does the cue of an outside memory task reach RISE, and is it in reach when it matters?
(issue 21's investigation, on Memory Gym's MortarMayhem-Grid-v0 and the free-moving MortarMayhem-v0.)

    PYTHONPATH=.outside-envs python -m rise_tf.experiments.outside_cues [--episodes 40] [--window-length 16]
        [--reset-options '{"command_count": [2]}'] [--env-id MortarMayhem-v0]
    python -m rise_tf.experiments.outside_cues --runs runs/experiments/outside_mm2   # trained runs: per command
    PYTHONPATH=.outside-envs python -m rise_tf.experiments.outside_cues --hide-commands RUN_DIR [--checkpoint best]
        [--memory-reach 4]
    PYTHONPATH=.outside-envs python -m rise_tf.experiments.outside_cues --scripted --reset-options '{...}'

MortarMayhem shows a sequence of commands (move up, down, left, right, stay — and the diagonals in the
free-moving version: a white symbol on the arena), each for a few steps, then the agent must carry
them out in order, one per few steps. Both versions keep the same schedule.
What it answers, each from the env itself:
1. Separation: do the command frames, preprocessed as training does (gray, frame_size) and embedded by
   the frozen encoder ϑ, differ between commands more than frames of one command differ among
   themselves? (The MemoryCorridor diagnostic, cue_separation.py, asks the same of its cue.)
2. Reach: how many agent steps lie between a command's last showing and the first step the agent may
   walk toward its tile, and the step the tile is checked, against RISE's window k and the frame
   stack? ψ reads the last k embeddings only: a cue further back is not in its input at all, whatever
   ϑ makes of it; a cue within the frame stack needs no memory.
3. With --runs: which commands do trained agents carry out? From their greedy evaluations' returns:
   P(first command) and P(second | first). A memory-less agent guesses both (~1 in 4); remembering
   the cue shows first in the first command (its cue is 6 steps back when the agent may walk).
4. With --scripted (the free-moving MortarMayhem-v0): what a perfect memory, a memory-less agent that
   walks well and random play earn there, from scripted policies: the levels a learner is read against.
5. With --hide-commands RUN: does a trained policy act on the commands it saw? Its greedy policy plays
   the same episodes twice, once as trained and once with the commands never drawn (the command phase
   shows the bare arena; the env still checks the same commands). A policy that uses its memory of the
   cue falls to a memory-less agent's level when the cue is hidden; a memory-less one does not change.
   With --memory-reach N also a third time, commands shown, the policy reading only its newest N steps
   of memory (short_memory.ShortMemory): the same question asked of the memory instead of the screen.
It reads the command sequence from the env's own attributes (Memory Gym 1.0.2's
`_command_visualization_clone`, `_commands`, `reset_params`, `_generate_command_visualization`), so it is
tied to that release.
"""
from __future__ import annotations

import argparse
import itertools
import sys
from typing import Dict, List, Optional, Sequence

import gymnasium as gym
import numpy as np

from rise_tf.startup import quiet_third_party_startup

quiet_third_party_startup()

ENV_IDS = ("MortarMayhem-Grid-v0", "MortarMayhem-v0")


def command_frames(episodes: int, seed: int, frame_size: int, reset_options: Optional[dict] = None,
                   env_id: str = ENV_IDS[0]):
    """(frames [N, S, S] uint8 as training preprocesses them, the colour screens [N, H, W, 3] they came
    from, command of each frame ('' between commands), the env's reset parameters) of the task
    `reset_options` sets up."""
    from rise_runtime.envs.gym_image import env_action, make_registered, reset_with_options
    from rise_runtime.preprocessing import PreprocessingConfig, preprocess_screens

    env = make_registered(env_id, "memory_gym")
    stand_still = env_action(env.action_space, 0)  # 0, or [0, 0] (no move on either axis)
    config = PreprocessingConfig(frame_size=frame_size, action_repeat=1)
    frames, screens, labels = [], [], []
    for episode in range(episodes):
        observation, _ = reset_with_options(env, seed=seed + episode, options=reset_options)
        shown = list(env.unwrapped._command_visualization_clone)  # the command drawn at each early step
        for step, command in enumerate(shown):
            frames.append(preprocess_screens(observation, None, config))
            screens.append(np.asarray(observation))
            labels.append(command)
            if step < len(shown) - 1:
                observation, *_ = env.step(stand_still)  # while the commands are shown
    params = env.unwrapped.reset_params
    env.close()
    return np.stack(frames), np.stack(screens), labels, params


SCRIPTED_POLICIES = ("knows the command", "walks to a random neighbour", "random play")


def scripted_levels(episodes: int, seed: int, reset_options: Optional[dict] = None) -> Dict[str, Dict[str, float]]:
    """The free-moving MortarMayhem-v0's reference levels, from scripted policies that read the env's
    own state (Memory Gym 1.0.2's `_target_pos`, `normalized_agent_position`, `_current_command`):
    walking to the target tile (a perfect memory), walking to a valid neighbour tile picked at random
    for each command (the best a memory-less agent that walks well can expect), and random actions.
    -> policy -> {"return": mean per episode, "first": P(first command carried out)}."""
    from rise_runtime.envs.gym_image import env_action, make_registered, reset_with_options

    env = make_registered("MortarMayhem-v0", "memory_gym")
    game, rng, stand_still = env.unwrapped, np.random.default_rng(seed), env_action(env.action_space, 0)
    env.action_space.seed(seed)

    def walk_to(tile):  # MultiDiscrete([3, 3]): 0 stay, 1 left / up, 2 right / down, per axis
        (x, y), (to_x, to_y) = game.normalized_agent_position, tile
        return np.array([2 if x < to_x else 1 if x > to_x else 0, 2 if y < to_y else 1 if y > to_y else 0])

    def random_neighbour():
        (x, y), size = game.normalized_agent_position, game.reset_params["arena_size"]
        tiles = [(x + dx, y + dy) for dx, dy in ((1, 0), (0, 1), (-1, 0), (0, -1))
                 if 0 <= x + dx < size and 0 <= y + dy < size]
        return tiles[rng.integers(len(tiles))]

    def walker(guess: dict):
        if game.arena.tiles_on:
            return stand_still  # the check: stay on the tile until the explosions end
        if guess.get("command") != game._current_command:  # a new command: a new guess
            guess.update(command=game._current_command, tile=random_neighbour())
        return walk_to(guess["tile"])

    act = dict(zip(SCRIPTED_POLICIES, (lambda _: walk_to(game._target_pos), walker,
                                       lambda _: env.action_space.sample())))
    levels = {}
    for policy in SCRIPTED_POLICIES:
        returns = []
        for episode in range(episodes):
            reset_with_options(env, seed=seed + episode, options=reset_options)
            total, done, guess = 0.0, False, {}
            while not done:
                _, reward, terminated, truncated, _ = env.step(act[policy](guess))
                total, done = total + float(reward), terminated or truncated
            returns.append(total)
        success = game.reset_params["reward_command_success"]
        levels[policy] = {"return": float(np.mean(returns)),
                          "first": float(np.mean([r >= success - 1e-9 for r in returns]))}
    env.close()
    return levels


class HiddenCommands(gym.Wrapper):
    """A Mortar Mayhem env (Grid or free) whose commands are never drawn: every step of the command
    phase shows what its blank steps between commands show (the arena, the agent, no symbol), while
    the env samples, checks and rewards the same commands as before."""

    def reset(self, **kwargs):
        # The env draws what _generate_command_visualization lists at each early step ("" = nothing).
        self.env.unwrapped._generate_command_visualization = (
            lambda commands, duration=1, delay=0: [""] * (len(commands) * (duration + delay)))
        return self.env.reset(**kwargs)


def hidden_command_levels(run_dir: str, episodes: int, checkpoint: Optional[str] = None,
                          memory_reach: Sequence[int] = ()) -> Dict[str, Dict[str, float]]:
    """A trained Mortar Mayhem run's greedy policy (no ε) on the same evaluation episodes with the
    commands shown and hidden: {"shown" | "hidden": command_success(...) and the mean return}; for each
    N in memory_reach also "shown, memory cut to N steps" (the policy reading its newest N steps of
    memory only: ShortMemory). Raises ValueError when the run is not a Mortar Mayhem run, or memory_reach does
    not apply to it."""
    from rise_runtime.envs.gym_image import make_registered, reset_with_options
    from rise_tf import builder
    from rise_tf.experiments.short_memory import ShortMemory
    from rise_tf.export.step_model import load_policy
    from rise_tf.parts.evaluator import EVAL_SEED_OFFSET, MAX_EVAL_LANES, as_py_policy, evaluate

    loaded = load_policy(run_dir, checkpoint)
    config = loaded.config
    if config.env.env_id not in ENV_IDS:
        raise ValueError(f"{run_dir} trained on {config.env.env_id or config.env.game}; --hide-commands takes runs of "
                         f"{' or '.join(ENV_IDS)}")
    # The task's reward per command, as the env itself sets it from the run's reset options (one reset).
    probe = make_registered(config.env.env_id, config.env.env_module)
    try:
        reset_with_options(probe, seed=0, options=config.env.reset_options_dict)
        success = probe.unwrapped.reset_params["reward_command_success"]
    finally:
        probe.close()
    policy = as_py_policy(loaded.policy)
    conditions = [("shown", False, policy), ("hidden", True, policy)]
    conditions += [(f"shown, memory cut to {steps} steps", False, ShortMemory(policy, steps))
                   for steps in memory_reach]
    levels = {}
    for condition, hide_them, player in conditions:
        def factory(hide=hide_them):
            env = make_registered(config.env.env_id, config.env.env_module)
            return HiddenCommands(env) if hide else env

        env = builder.make_env(config, num_envs=min(episodes, MAX_EVAL_LANES), seed_offset=EVAL_SEED_OFFSET,
                               training=False, env_factory=factory)
        result = evaluate(player, env, episodes, config.env_name)
        env.close()
        levels[condition] = {**command_success(result.returns, success), "return": result.mean_return}
    return levels


def separation(embeddings: np.ndarray, labels: List[str]) -> Dict[str, float]:
    """Mean distance between the commands' centroids, mean distance of a command's frames to their
    centroid, and of the frames between commands ('' labels) to theirs."""
    classes = sorted({label for label in labels if label})
    labels_array = np.asarray(labels)
    centroids = {c: embeddings[labels_array == c].mean(axis=0) for c in classes}
    between = float(np.mean([np.linalg.norm(centroids[a] - centroids[b]) for a, b in itertools.combinations(classes, 2)]))
    within = float(np.mean([np.linalg.norm(e - centroids[label]) for e, label in zip(embeddings, labels) if label]))
    blank = embeddings[labels_array == ""]
    blank_spread = float(np.mean(np.linalg.norm(blank - blank.mean(axis=0), axis=1))) if len(blank) else float("nan")
    return {"commands": len(classes), "between": between, "within": within, "ratio": between / max(within, 1e-12),
            "blank_spread": blank_spread}


def reach(params: dict) -> Dict[str, int]:
    """Agent steps from a command's last showing to the step its tile is checked (gaps) and to the first
    step the agent may walk toward it (move_gaps), for the first and the last command (Memory Gym
    1.0.2's schedule: each command shown `command_show_duration` steps then `command_show_delay` blank
    steps; then each one has `explosion_delay` steps to reach its tile and is checked over
    `explosion_duration` steps)."""
    count = max(params["command_count"])
    show, delay = max(params["command_show_duration"]), max(params["command_show_delay"])
    move, check = max(params["explosion_delay"]), max(params["explosion_duration"])
    shown_until = [i * (show + delay) + show - 1 for i in range(count)]
    cue_phase = count * (show + delay)
    moves_from = [cue_phase + i * (move + check) for i in range(count)]
    checked_at = [start + move for start in moves_from]
    gaps = [checked - shown for checked, shown in zip(checked_at, shown_until)]
    move_gaps = [start - shown for start, shown in zip(moves_from, shown_until)]
    return {"commands": count, "first_gap": gaps[0], "last_gap": gaps[-1], "min_gap": min(gaps), "max_gap": max(gaps),
            "min_move_gap": min(move_gaps), "max_move_gap": max(move_gaps)}


def command_success(returns: List[float], reward_per_command: float) -> Dict[str, float]:
    """From greedy evaluation returns (each = commands carried out x reward_per_command; an episode ends
    at the first miss): P(the first command), P(the second | the first), mean commands carried out."""
    done = np.rint(np.asarray(returns, float) / reward_per_command).astype(int)
    first = float(np.mean(done >= 1)) if len(done) else float("nan")
    second = float(np.mean(done[done >= 1] >= 2)) if np.any(done >= 1) else float("nan")
    return {"episodes": len(done), "first": first, "second_given_first": second, "mean_commands": float(np.mean(done))}


def runs_command_success(root: str, reward_per_command: float, from_fraction: float = 0.5) -> List[dict]:
    """command_success over the evaluations of the later part of each run under `root` (rise-report's
    reading of run dirs)."""
    import os

    from rise_tf.analysis.runs import find_runs

    rows = []
    for run in find_runs(root):
        evals = sorted((e for e in run.evals if "returns" in e), key=lambda e: e["frames"])
        later = evals[int(len(evals) * from_fraction):]
        if later:
            returns = [r for record in later for r in record["returns"]]
            rows.append({"run": os.path.relpath(run.path, os.path.abspath(root)), "evals": len(later),
                         **command_success(returns, reward_per_command)})
    return rows


def print_table(columns: List[str], rows: List[List[str]]) -> None:
    """A Markdown table: the first column left-aligned, the others (numbers) right-aligned."""
    print("| " + " | ".join(columns) + " |")
    print("|---|" + "---:|" * (len(columns) - 1))
    for row in rows:
        print("| " + " | ".join(row) + " |")


def trained_run_errors() -> tuple:
    """The errors that loading a trained run's policy raises on bad input (a missing or foreign run dir,
    a checkpoint that is not there, an env that cannot be rebuilt)."""
    from rise_runtime.envs.gym_image import EnvSpecError
    from rise_tf.export.step_model import ExportError
    from rise_tf.parts.checkpoints import CheckpointError
    from rise_tf.run_dir import RunDirError

    return ValueError, EnvSpecError, ExportError, RunDirError, CheckpointError


def refused(error: object) -> int:
    """The cause on stderr; exit status 2 (bad input, nothing written)."""
    print(f"outside_cues: error: {error}", file=sys.stderr)
    return 2


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rise_tf.experiments.outside_cues",
                                     description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=40, help="episodes whose command phase is embedded")
    parser.add_argument("--seed", type=int, default=0, help="ϑ's seed and the first episode's")
    parser.add_argument("--embedding-size", type=int, default=64, help="ϑ's embedding size (the presets': 64)")
    parser.add_argument("--window-length", type=int, action="append", default=None,
                        help="k to compare with the reach (repeatable) [default: 16 and 96]")
    parser.add_argument("--reset-options", default=None,
                        help="the task's Memory Gym reset parameters, as rise-train takes them (JSON object)")
    parser.add_argument("--frame-stack", type=int, default=4, help="frames φ sees (the presets': 4)")
    parser.add_argument("--env-id", choices=ENV_IDS, default=ENV_IDS[0], help="which Mortar Mayhem [default: %(default)s]")
    parser.add_argument("--runs", default=None,
                        help="instead: per-command success of the trained runs under this folder, from the greedy "
                             "evaluations of each run's second half (reward per command: --reward-per-command)")
    parser.add_argument("--reward-per-command", type=float, default=1.0,
                        help="--runs: reward of one command carried out (MortarMayhem-Grid: 0.1 unless set) [default: 1]")
    parser.add_argument("--scripted", action="store_true",
                        help="instead: MortarMayhem-v0's reference levels from scripted policies (a perfect "
                             "memory, a memory-less walker, random play) over --episodes episodes")
    parser.add_argument("--hide-commands", metavar="RUN_DIR", default=None,
                        help="instead: a trained Mortar Mayhem run's greedy policy over --episodes episodes with the "
                             "commands shown and with them hidden (does it act on what it remembers?)")
    parser.add_argument("--checkpoint", default=None,
                        help="--hide-commands: 'best' (the best evaluation's) or a checkpoint directory "
                             "[default: the latest]")
    parser.add_argument("--memory-reach", type=int, metavar="N", action="append", default=[],
                        help="--hide-commands (RISE or full-recurrent): also play the episodes, commands shown, with "
                             "the policy reading only its newest N steps of memory (4: the frame stack's reach; "
                             "repeatable)")
    args = parser.parse_args(argv)
    if args.episodes < 1:
        parser.error(f"--episodes must be at least 1, got {args.episodes}")
    if args.memory_reach and args.hide_commands is None:
        parser.error("--memory-reach plays a trained policy: give --hide-commands RUN_DIR")
    if args.hide_commands is not None:
        try:
            levels = hidden_command_levels(args.hide_commands, args.episodes, args.checkpoint, args.memory_reach)
        except trained_run_errors() as error:
            return refused(error)
        print(f"{args.hide_commands}: greedy policy, {args.episodes} evaluation episodes per condition\n")
        print_table(["commands", "return per episode", "P(first command)", "P(second, given the first)",
                     "commands per episode"],
                    [[condition, f"{level['return']:.3f}", f"{level['first']:.2f}",
                      f"{level['second_given_first']:.2f}", f"{level['mean_commands']:.3f}"]
                     for condition, level in levels.items()])
        return 0
    if args.scripted:
        from rise_runtime.envs.gym_image import EnvSpecError, parse_reset_options

        try:
            levels = scripted_levels(args.episodes, args.seed, parse_reset_options(args.reset_options))
        except EnvSpecError as error:
            return refused(error)
        print(f"MortarMayhem-v0, {args.episodes} episodes per policy\n")
        print_table(["scripted policy", "return per episode", "P(first command)"],
                    [[policy, f"{level['return']:.3f}", f"{level['first']:.3f}"] for policy, level in levels.items()])
        return 0
    if args.runs is not None:
        try:
            rows = runs_command_success(args.runs, args.reward_per_command)
        except FileNotFoundError as error:
            return refused(error)
        if not rows:
            return refused(f"no run with greedy evaluations under {args.runs}")
        print_table(["run", "evaluations", "episodes", "P(first command)", "P(second, given the first)",
                     "commands per episode"],
                    [[row["run"], str(row["evals"]), str(row["episodes"]), f"{row['first']:.2f}",
                      f"{row['second_given_first']:.2f}", f"{row['mean_commands']:.3f}"] for row in rows])
        return 0
    from rise_runtime.envs.gym_image import EnvSpecError, parse_reset_options, task_name

    try:
        options = parse_reset_options(args.reset_options)
        frames, screens, labels, params = command_frames(args.episodes, args.seed, 84, options, args.env_id)
    except EnvSpecError as error:
        return refused(error)
    import tensorflow as tf

    from rise_tf.networks.encoders import make_frozen_encoder

    # colour before preprocessing vs gray after it: does grayscale or the resize erase the cue?
    rows = {f"pixels (colour {'x'.join(map(str, screens.shape[1:]))})":
            screens.reshape(len(screens), -1).astype(np.float32) / 255.0,
            "pixels (gray 84x84)": frames.reshape(len(frames), -1).astype(np.float32) / 255.0}
    for name in ("random_projection", "random_cnn"):
        encoder = make_frozen_encoder(name, embedding_size=args.embedding_size, seed=args.seed)
        rows[f"ϑ = {name}"] = encoder(tf.constant(frames)).numpy().astype(np.float32)
    print(f"{task_name(args.env_id, options)}: {len(frames)} frames of the command phase over {args.episodes} episodes\n")
    table = []
    for name, embeddings in rows.items():
        s = separation(embeddings, labels)
        table.append([name, str(s["commands"]), f"{s['between']:.3f}", f"{s['within']:.3f}", f"{s['ratio']:.1f}",
                      f"{s['blank_spread']:.3f}"])
    print_table(["space", "commands", "between-command distance", "within-command spread", "ratio",
                 "blank-frame spread"], table)
    r = reach(params)
    print(f"\nReach: {r['commands']} commands; steps from a command's last showing to its check: first "
          f"{r['first_gap']}, last {r['last_gap']} (min {r['min_gap']}, max {r['max_gap']}).")
    print(f"From a command's last showing to the first step the agent may walk toward it: {r['min_move_gap']} to "
          f"{r['max_move_gap']} steps.")

    def share(window: int, low: int, high: int) -> str:
        return "all" if window > high else ("none" if window <= low else "some")

    print(f"frame stack {args.frame_stack}: the command is in φ's input when the agent may start walking for "
          f"{share(args.frame_stack, r['min_move_gap'], r['max_move_gap'])} of the commands")
    for k in args.window_length or [16, 96]:
        print(f"k = {k}: the command is in ψ's window at its check for {share(k, r['min_gap'], r['max_gap'])} of the "
              f"commands; when the agent may start walking, for {share(k, r['min_move_gap'], r['max_move_gap'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
