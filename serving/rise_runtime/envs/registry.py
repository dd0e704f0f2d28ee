"""The one env registry: every env kind rise-tf trains on and plays, built from its description.

An env description is a small JSON-able dict, `{"kind": atari | memory | gym, "name": ..., ...}`, with
what rebuilds the env (the Atari protocol, the memory task's settings, the gymnasium id and its
module). The training config writes it (rise_tf.config.env_description), env.json and the exported
model's metadata carry it, and both the training lanes and `rise-play` build their env here, so a
model always meets the env it was trained on.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, Optional

from rise_runtime.preprocessing import PreprocessingConfig

ATARI, MEMORY, GYM = "atari", "memory", "gym"
ENV_KINDS = (ATARI, MEMORY, GYM)


def kind_of(game: Optional[str], env_id: Optional[str]) -> str:
    """The kind of a --game / --env-id pair: gym for an env id, memory for a memory task, else Atari."""
    from rise_runtime.envs.memory_task import is_memory_task

    if env_id:
        return GYM
    return MEMORY if is_memory_task(game or "") else ATARI


def check_kind(kind: str) -> str:
    if kind not in ENV_KINDS:
        raise ValueError(f"unknown env kind {kind!r}; choose one of {', '.join(ENV_KINDS)}")
    return kind


def atari_settings(description: Dict[str, Any], preprocessing: PreprocessingConfig):
    """The emulator protocol an Atari description records."""
    from rise_runtime.envs.atari import AtariSettings

    return AtariSettings(sticky_action_prob=description["sticky_action_prob"], noop_max=description["noop_max"],
                         max_episode_frames=description["max_episode_frames"], preprocessing=preprocessing,
                         flicker_prob=description.get("flicker", 0.0))


def make_env(description: Dict[str, Any], *, preprocessing: PreprocessingConfig, seed: Optional[int] = None,
             factory: Optional[Callable[[], Any]] = None):
    """One env emitting the run's frames (uint8 [frame_size, frame_size]) with discrete actions.
    `factory` (Python API, gym kind) builds the wrapped env instead of gymnasium.make."""
    kind = check_kind(description["kind"])
    if kind == GYM:
        from rise_runtime.envs.gym_image import GymImageEnv

        options = dict(image_key=description.get("image_key"), preprocessing=preprocessing,
                       flicker_prob=description.get("flicker", 0.0), seed=seed,
                       reset_options=description.get("reset_options"))
        if factory is not None:
            return GymImageEnv(factory(), name=description["name"], **options)
        return GymImageEnv.from_id(description["env_id"], env_module=description.get("env_module"), **options)
    if factory is not None:
        raise ValueError(f"an env factory builds gym-kind envs only, not {kind}")
    if kind == MEMORY:
        from rise_runtime.envs.memory_task import MemoryCorridorEnv

        env = MemoryCorridorEnv(corridor_length=description["corridor_length"], num_cues=description["num_cues"],
                                cue_steps=description["cue_steps"],
                                distractor_prob=description.get("distractor_prob", 0.0),
                                frame_size=preprocessing.frame_size)
        env.name = description["name"]
        if seed is not None:
            env.reset(seed=seed)
        return env
    from rise_runtime.envs.atari import AtariEnv

    return AtariEnv(description["name"], atari_settings(description, preprocessing), seed=seed)
