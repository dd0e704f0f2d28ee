"""Run configuration: frozen dataclasses by section, presets per algorithm, JSON round-trip, CLI flags.

Only the builder reads this; the pieces it builds take explicit arguments. Every field carries a
one-line help string, which becomes its `rise-train --flag` help. Units are in the names: `*_frames`
count emulator frames (4 per agent step on Atari), `*_updates` count learner updates.
"""
from __future__ import annotations

import dataclasses
import json
from typing import Any, Dict, List, Tuple

from rise_tf.envs.memory_task import GAME_NAME as MEMORY_GAME
from rise_tf.networks.encoders import FROZEN_ENCODERS, LEARNABLE_ENCODERS
from rise_tf.networks.heads import HEADS
from rise_tf.networks.recurrent import CORES
from rise_tf.networks.rise_q_network import FUSIONS, MEMORIES


def _field(default, help_text: str):
    return dataclasses.field(default=default, metadata={"help": help_text})


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


@dataclasses.dataclass(frozen=True)
class EnvConfig:
    game: str = _field("Pong", "Atari game (Pong, space_invaders, ALE/Breakout-v5) or MemoryCorridor")
    num_envs: int = _field(8, "parallel game lanes collected in lock-step")
    parallel: str = _field("serial", "how lanes step: serial | threads | processes")
    sticky_action_prob: float = _field(0.25, "probability the emulator repeats the previous action (ALE v5)")
    noop_max: int = _field(30, "up to this many no-op actions after each reset")
    max_episode_frames: int = _field(108_000, "episode truncation, in emulator frames")
    terminal_on_life_loss: bool = _field(False, "learner treats a life loss as terminal (discount 0)")
    action_repeat: int = _field(4, "emulator frames per agent step (Atari)")
    frame_size: int = _field(84, "preprocessed frames are frame_size x frame_size")
    corridor_length: int = _field(8, "MemoryCorridor: steps between the cue and the decision")
    num_cues: int = _field(2, "MemoryCorridor: number of cues (= actions)")

    def validate(self):
        if self.game != MEMORY_GAME:
            from rise_tf.envs.atari import resolve_game  # TF-free; raises with the closest names

            resolve_game(self.game)
        _require(self.num_envs >= 1, f"num_envs must be >= 1, got {self.num_envs}")
        _require(self.parallel in ("serial", "threads", "processes"),
                 f"parallel must be serial, threads or processes, got {self.parallel!r}")
        _require(0 <= self.sticky_action_prob < 1, f"sticky_action_prob must be in [0, 1), got {self.sticky_action_prob}")
        _require(self.noop_max >= 0, f"noop_max must be >= 0, got {self.noop_max}")
        _require(self.max_episode_frames >= 1, f"max_episode_frames must be >= 1, got {self.max_episode_frames}")
        _require(self.action_repeat >= 1, f"action_repeat must be >= 1, got {self.action_repeat}")
        _require(self.frame_size >= 36, f"frame_size must be >= 36 (the Nature CNN needs it), got {self.frame_size}")
        _require(self.corridor_length >= 1, f"corridor_length must be >= 1, got {self.corridor_length}")
        _require(2 <= self.num_cues <= 6, f"num_cues must be in 2..6, got {self.num_cues}")


@dataclasses.dataclass(frozen=True)
class NetworkConfig:
    memory: str = _field("rise", "none (frame stack only) | rise | full_recurrent (R2D2-style)")
    learnable_encoder: str = _field("nature", "trainable CNN φ: nature | impala")
    width_scale: int = _field(1, "channel multiplier of φ (Beyond The Rainbow uses impala x2)")
    impala_pool_size: int = _field(6, "impala: adaptive max-pool output is pool x pool")
    frozen_encoder: str = _field("random_projection", "frozen encoder ϑ: random_projection | random_cnn | pooled_pixels")
    embedding_size: int = _field(64, "width of ϑ's embedding E (pooled_pixels needs a square)")
    embedding_dtype: str = _field("float16", "dtype embeddings are stored (and rounded) in: float16 | float32")
    window_length: int = _field(16, "k: embeddings (or frames, full_recurrent) the recurrent core reads")
    frame_stack: int = _field(4, "frames stacked as φ's input")
    core: str = _field("lstm", "recurrent core ψ: lstm | gru")
    core_units: int = _field(64, "hidden units of ψ")
    fusion: str = _field("gate", "how ψ meets φ: gate (the paper) | concat (ablation)")
    head: str = _field("dueling", "Q head ω: linear | dueling")
    frozen_seed: int = _field(0, "seed of ϑ's fixed weights (part of the model: saved and exported)")

    def validate(self):
        _require(self.memory in MEMORIES, f"unknown memory {self.memory!r}; choose one of {MEMORIES}")
        _require(self.learnable_encoder in LEARNABLE_ENCODERS,
                 f"unknown learnable_encoder {self.learnable_encoder!r}; choose one of {LEARNABLE_ENCODERS}")
        _require(self.frozen_encoder in FROZEN_ENCODERS,
                 f"unknown frozen_encoder {self.frozen_encoder!r}; choose one of {FROZEN_ENCODERS}")
        _require(self.embedding_size >= 1, f"embedding_size must be >= 1, got {self.embedding_size}")
        if self.frozen_encoder == "pooled_pixels" and self.memory == "rise":
            root = round(self.embedding_size ** 0.5)
            _require(root * root == self.embedding_size,
                     f"pooled_pixels needs a square embedding_size, got {self.embedding_size}; try {root * root or 1}")
        _require(self.embedding_dtype in ("float16", "float32"),
                 f"embedding_dtype must be float16 or float32, got {self.embedding_dtype!r}")
        _require(self.window_length >= 1, f"window_length (k) must be >= 1, got {self.window_length}")
        _require(self.frame_stack >= 1, f"frame_stack must be >= 1, got {self.frame_stack}")
        _require(self.width_scale >= 1, f"width_scale must be >= 1, got {self.width_scale}")
        _require(self.impala_pool_size >= 1, f"impala_pool_size must be >= 1, got {self.impala_pool_size}")
        _require(self.core in CORES, f"unknown core {self.core!r}; choose one of {CORES}")
        _require(self.core_units >= 1, f"core_units must be >= 1, got {self.core_units}")
        _require(self.fusion in FUSIONS, f"unknown fusion {self.fusion!r}; choose one of {FUSIONS}")
        _require(self.head in HEADS, f"unknown head {self.head!r}; choose one of {HEADS}")


@dataclasses.dataclass(frozen=True)
class ReplayConfig:
    capacity: int = _field(500_000, "agent steps kept in replay over all lanes (~7.2 KB each)")
    prioritized: bool = _field(True, "prioritized replay (PER); false = uniform")
    priority_exponent: float = _field(0.5, "PER α")
    importance_beta_start: float = _field(0.4, "PER β at the start of learning")
    importance_beta_end: float = _field(1.0, "PER β at the end of the frame budget (linear)")
    save_replay: bool = _field(False, "also checkpoint the replay contents (large) so resume keeps them")

    def validate(self):
        _require(self.capacity >= 1, f"capacity must be >= 1, got {self.capacity}")
        _require(self.priority_exponent >= 0, f"priority_exponent must be >= 0, got {self.priority_exponent}")
        _require(0 <= self.importance_beta_start <= 1 and 0 <= self.importance_beta_end <= 1,
                 "importance_beta_start and importance_beta_end must be in [0, 1]")


@dataclasses.dataclass(frozen=True)
class AgentConfig:
    learning_rate: float = _field(1e-4, "Adam learning rate")
    adam_epsilon: float = _field(1.5e-4, "Adam epsilon")
    batch_size: int = _field(32, "sampled steps per learner update")
    n_step: int = _field(3, "steps in the n-step return")
    gamma: float = _field(0.99, "discount per agent step")
    double_dqn: bool = _field(True, "double-DQN targets (argmax by the online network)")
    huber_delta: float = _field(1.0, "Huber loss threshold")
    reward_clip: float = _field(1.0, "clip rewards to [-c, c] in the targets; 0 disables")
    target_update_period: int = _field(2000, "learner updates between target-network updates")
    target_update_tau: float = _field(1.0, "1 = hard copy; < 1 = Polyak averaging factor")
    gradient_clip_norm: float = _field(10.0, "clip gradients to this global norm; 0 disables")

    def validate(self):
        _require(self.learning_rate > 0, f"learning_rate must be > 0, got {self.learning_rate}")
        _require(self.adam_epsilon > 0, f"adam_epsilon must be > 0, got {self.adam_epsilon}")
        _require(self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}")
        _require(self.n_step >= 1, f"n_step must be >= 1, got {self.n_step}")
        _require(0 < self.gamma <= 1, f"gamma must be in (0, 1], got {self.gamma}")
        _require(self.huber_delta > 0, f"huber_delta must be > 0, got {self.huber_delta}")
        _require(self.reward_clip >= 0, f"reward_clip must be >= 0, got {self.reward_clip}")
        _require(self.target_update_period >= 1, f"target_update_period must be >= 1, got {self.target_update_period}")
        _require(0 < self.target_update_tau <= 1, f"target_update_tau must be in (0, 1], got {self.target_update_tau}")
        _require(self.gradient_clip_norm >= 0, f"gradient_clip_norm must be >= 0, got {self.gradient_clip_norm}")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    frames: int = _field(10_000_000, "training budget in emulator frames (agent steps x action_repeat)")
    warmup_frames: int = _field(80_000, "frames collected before the first learner update")
    replay_ratio: float = _field(0.25, "learner updates per agent step collected (0.25 = one update every 4 steps)")
    epsilon_start: float = _field(1.0, "ε-greedy exploration at the start")
    epsilon_end: float = _field(0.01, "ε after the decay")
    epsilon_decay_frames: int = _field(1_000_000, "frames over which ε decays linearly")
    eval_every_frames: int = _field(500_000, "frames between greedy evaluations; 0 disables")
    eval_episodes: int = _field(4, "episodes per evaluation (one lane each)")
    checkpoint_every_frames: int = _field(250_000, "frames between checkpoints")
    keep_checkpoints: int = _field(3, "checkpoints kept on disk (older ones are deleted)")
    log_every_frames: int = _field(20_000, "frames between TensorBoard scalar writes")
    seed: int = _field(0, "seed for TensorFlow, numpy, environments and replay")
    deterministic_ops: bool = _field(False, "TensorFlow op determinism (reproducible, slower)")

    def validate(self):
        _require(self.frames >= 1, f"frames must be >= 1, got {self.frames}")
        _require(self.warmup_frames >= 0, f"warmup_frames must be >= 0, got {self.warmup_frames}")
        _require(self.replay_ratio >= 0, f"replay_ratio must be >= 0, got {self.replay_ratio}")
        _require(0 <= self.epsilon_end <= 1 and 0 <= self.epsilon_start <= 1, "epsilons must be in [0, 1]")
        _require(self.epsilon_decay_frames >= 1, f"epsilon_decay_frames must be >= 1, got {self.epsilon_decay_frames}")
        _require(self.eval_every_frames >= 0, f"eval_every_frames must be >= 0, got {self.eval_every_frames}")
        _require(self.eval_episodes >= 1, f"eval_episodes must be >= 1, got {self.eval_episodes}")
        _require(self.checkpoint_every_frames >= 1, f"checkpoint_every_frames must be >= 1, got {self.checkpoint_every_frames}")
        _require(self.keep_checkpoints >= 1, f"keep_checkpoints must be >= 1, got {self.keep_checkpoints}")
        _require(self.log_every_frames >= 1, f"log_every_frames must be >= 1, got {self.log_every_frames}")


SECTIONS = (("env", EnvConfig), ("network", NetworkConfig), ("replay", ReplayConfig),
            ("agent", AgentConfig), ("train", TrainConfig))
CONFIG_VERSION = 1


@dataclasses.dataclass(frozen=True)
class RunConfig:
    algo: str = "rise-dqn"
    env: EnvConfig = EnvConfig()
    network: NetworkConfig = NetworkConfig()
    replay: ReplayConfig = ReplayConfig()
    agent: AgentConfig = AgentConfig()
    train: TrainConfig = TrainConfig()

    def validate(self) -> "RunConfig":
        _require(self.algo in PRESETS, f"unknown algo {self.algo!r}; choose one of {sorted(PRESETS)}")
        for section, _ in SECTIONS:
            getattr(self, section).validate()
        _require(self.replay.capacity >= self.env.num_envs * (self.network.window_length + self.agent.n_step + 2),
                 f"replay capacity {self.replay.capacity} is too small for {self.env.num_envs} lanes with "
                 f"window {self.network.window_length}; raise --capacity")
        return self

    @property
    def is_memory_task(self) -> bool:
        return self.env.game == MEMORY_GAME

    @property
    def frames_per_agent_step(self) -> int:
        return 1 if self.is_memory_task else self.env.action_repeat

    def to_dict(self) -> Dict[str, Any]:
        return {"config_version": CONFIG_VERSION, **dataclasses.asdict(self)}

    @classmethod
    def from_dict(cls, values: Dict[str, Any]) -> "RunConfig":
        values = dict(values)
        version = values.pop("config_version", None)
        _require(version == CONFIG_VERSION,
                 f"config version {version} is not the version this rise-tf reads ({CONFIG_VERSION})")
        sections = {}
        for section, kind in SECTIONS:
            given = values.pop(section, {})
            known = {f.name for f in dataclasses.fields(kind)}
            unknown = set(given) - known
            _require(not unknown, f"unknown {section} settings {sorted(unknown)}")
            sections[section] = kind(**given)
        unknown = set(values) - {"algo"}
        _require(not unknown, f"unknown config keys {sorted(unknown)}")
        return cls(algo=values.get("algo", "rise-dqn"), **sections)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    def differences(self, other: "RunConfig") -> List[str]:
        mine, theirs = _flatten(self.to_dict()), _flatten(other.to_dict())
        return [f"{key}: {mine.get(key)!r} -> {theirs.get(key)!r}"
                for key in sorted(set(mine) | set(theirs)) if mine.get(key) != theirs.get(key)]

    def replace(self, **section_updates: Dict[str, Any]) -> "RunConfig":
        """replace(train={"frames": 10}) -> a copy with those fields changed."""
        changes = {}
        for section, updates in section_updates.items():
            if section == "algo":
                changes["algo"] = updates
            else:
                changes[section] = dataclasses.replace(getattr(self, section), **updates)
        return dataclasses.replace(self, **changes)


def _flatten(values: Dict[str, Any], prefix: str = "") -> Dict[str, Any]:
    flat = {}
    for key, value in values.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


# Presets: the three models the project compares, trained by the same agent.
PRESETS = {
    "dqn": {"network": {"memory": "none"}},
    "rise-dqn": {"network": {"memory": "rise"}},
    "r2d2-lite": {"network": {"memory": "full_recurrent"}},
}

# The memory task is small and fast: scale the Atari schedule down so it learns in minutes on a CPU.
MEMORY_TASK_SCALE = {
    "env": {"num_envs": 8},
    "replay": {"capacity": 50_000},
    "agent": {"target_update_period": 250, "gamma": 0.9, "n_step": 1, "learning_rate": 1e-3},
    "train": {"frames": 30_000, "warmup_frames": 2_000, "replay_ratio": 0.25, "epsilon_decay_frames": 10_000,
              "epsilon_end": 0.05, "eval_every_frames": 10_000, "eval_episodes": 32,
              "checkpoint_every_frames": 20_000, "log_every_frames": 1_000},
}


def make_config(algo: str = "rise-dqn", game: str = "Pong", **section_updates) -> RunConfig:
    """Preset for `algo`, scaled for the memory task if `game` is MemoryCorridor, then overrides."""
    if algo not in PRESETS:
        raise ValueError(f"unknown algo {algo!r}; choose one of {sorted(PRESETS)}")
    config = RunConfig(algo=algo).replace(env={"game": game}, **PRESETS[algo])
    if game == MEMORY_GAME:
        config = config.replace(**MEMORY_TASK_SCALE)
    if section_updates:
        config = config.replace(**section_updates)
    return config.validate()


def flag_table() -> List[Tuple[str, str, dataclasses.Field]]:
    """(flag name, section, field) for every field; flag names are unique across sections."""
    table = []
    for section, kind in SECTIONS:
        for field in dataclasses.fields(kind):
            table.append((field.name.replace("_", "-"), section, field))
    names = [name for name, _, _ in table]
    assert len(names) == len(set(names)), "config field names must be unique across sections"
    return table
