"""Run configuration: frozen dataclasses by section, presets per algorithm, JSON round-trip, CLI flags.

These dataclasses are the only place a default lives: the builder reads them and passes every
value explicitly (constructors take keyword arguments without defaults). Every field carries a
one-line help string, which becomes its `rise-train --flag` help. Units are in the names: `*_frames`
count env frames: agent steps x action_repeat (4 per agent step on Atari; 1 on the memory tasks and,
unless --action-repeat says otherwise, on --env-id envs); `*_updates` count learner updates.

Scales (`--scale`): `paper` is the presets as published (BTR's 64 lanes, batch 256, 1M replay,
200M frames); `cpu` is what fits a 2-core machine without a GPU, the settings the memory tasks are
solved with (8 lanes, batch 32, 50k replay, the Nature CNN, schedules of tens of thousands of agent
steps). Atari games default to `paper`, the memory tasks and --env-id envs to `cpu`. Both scales
are written in agent steps and converted to each env's frames, so a schedule means the same number
of decisions on every env kind.

Only the env settings an env kind reads are listed in its config (`to_dict`, --print-config,
config.json): a gymnasium env shows no sticky actions or no-ops, a memory task no action repeat.

TensorFlow-free (choice lists come from `networks.choices` and `agents.choices`), so `rise-train
--help` and config validation start in well under a second.

Presets: `dqn`, `rise-dqn`, `r2d2-lite` (the DQN base) and `btr`, `rise-btr`, `r2d2-btr` (Beyond The
Rainbow, Clark et al. 2025, with the values of its ICML code release). Deliberate deviations of the
BTR presets from that code:
- ε decays geometrically with time constant 2M agent steps, as BTR's per-step update does, but as a
  closed form of frames (ε_end + (ε_start − ε_end)·exp(−frames / decay_frames)).
- PER β anneals linearly over the whole frame budget (BTR: from the end of warm-up).
- PER samples the whole replay (BTR samples each batch from one env's buffer, picked by its total
  priority, "a slight simplification of PER").
- Evaluation uses the quantile midpoints as taus (BTR: random taus), so it is deterministic apart
  from ε_eval.
"""
from __future__ import annotations

import dataclasses
import difflib
import json
import math
from typing import Any, Dict, List, Optional, Tuple

from rise_tf.agents.choices import DISTRIBUTIONAL_LOSSES, LOSSES
from rise_tf.envs.choices import PARALLEL_MODES
from rise_runtime.envs import atari, memory_task, registry
from rise_runtime.envs.gym_image import parse_reset_options, probe_env, task_name
from rise_runtime.preprocessing import PreprocessingConfig
from rise_runtime.envs.memory_task import MEMORY_TASKS
from rise_runtime.envs.screens import check_flicker
from rise_tf.networks.choices import (CORE_GATE_INITS, CORES, DISTRIBUTIONAL_HEADS, FROZEN_ENCODERS, FUSIONS, HEADS,
                                      KERAS_APPLICATIONS, LEARNABLE_ENCODERS, MEMORIES, parse_frozen_encoder)
from rise_tf.replay.choices import REPLAY_BACKENDS
from rise_tf.replay.layout import ReplayLayout, min_lane_capacity

EPSILON_SCHEDULES = ("linear", "exponential")
ENGINES = ("auto", "serial", "concurrent")
SCALES = ("cpu", "paper")
# The scale a run gets without --scale: the paper's on Atari (the project reproduces it), the CPU's on
# the memory tasks and on a user's env (a machine without a GPU can run it).
DEFAULT_SCALE = {registry.ATARI: "paper", registry.MEMORY: "cpu", registry.GYM: "cpu"}

# Env settings only some kinds of env read; every other env setting applies to all kinds.
_ENV_KIND_FIELDS = {
    **dict.fromkeys(("sticky_action_prob", "noop_max", "max_episode_frames", "terminal_on_life_loss"),
                    (registry.ATARI,)),
    **dict.fromkeys(("action_repeat", "flicker"), (registry.ATARI, registry.GYM)),
    **dict.fromkeys(("env_id", "env_module", "image_key", "reset_options"), (registry.GYM,)),
    **dict.fromkeys(("corridor_length", "num_cues", "cue_steps", "distractor_prob"), (registry.MEMORY,)),
}
KIND_NAMES = {registry.ATARI: "Atari games", registry.MEMORY: "the memory tasks",
              registry.GYM: "gymnasium envs (--env-id)"}


def applies_to(env_kind: str, env_field: str) -> bool:
    """Whether an env of this kind reads this env setting."""
    return env_kind in _ENV_KIND_FIELDS.get(env_field, registry.ENV_KINDS)


def _unknown_scale(scale) -> str:
    return (f"unknown scale {scale!r}; choose one of {', '.join(SCALES)} (cpu: sized for a machine without a GPU; "
            f"paper: the presets as published)")


def _field(default, help_text: str, parse=None, metavar=None):
    """A config field; `parse` names the CLI type when the default (None) does not show it, `metavar`
    what the help calls a text value (NAME unless set)."""
    metadata = {"help": help_text}
    if parse is not None:
        metadata["parse"] = parse
    if metavar is not None:
        metadata["metavar"] = metavar
    return dataclasses.field(default=default, metadata=metadata)


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


def _require_finite(section) -> None:
    """Every float setting must be a real number: inf and NaN pass most range checks and then
    loop forever (replay_ratio inf) or poison the weights (learning_rate inf)."""
    for field in dataclasses.fields(section):
        value = getattr(section, field.name)
        if isinstance(value, float) and not math.isfinite(value):
            _require(False, f"{field.name} must be a finite number, got {value}")


_STANDARD_MEMORY_TASK = MEMORY_TASKS[memory_task.GAME_NAME]


@dataclasses.dataclass(frozen=True)
class EnvConfig:
    env_kind: str = _field(registry.ATARI, f"{' | '.join(registry.ENV_KINDS)}: what --game or --env-id names (set "
                                           f"from them; the env registry builds each kind)")
    game: str = _field("Pong", f"Atari game (Pong, space_invaders, ALE/Breakout-v5) or a memory task "
                               f"({', '.join(MEMORY_TASKS)})")
    env_id: Optional[str] = _field(None, "any registered gymnasium env with image observations and discrete "
                                         "actions (MultiDiscrete ones flattened), instead of --game "
                                         "(e.g. MyOrg/MyGame-v0) [default: none]", parse=str)
    env_module: Optional[str] = _field(None, "module imported before --env-id is made (the package that registers "
                                             "it) [default: none]", parse=str)
    image_key: Optional[str] = _field(None, "--env-id with Dict observations: the key holding the image "
                                            "[default: none]", parse=str)
    reset_options: Optional[str] = _field(None, "--env-id: a JSON object passed to every env.reset(options=...), "
                                                "how parameterised benchmarks take their task settings (Memory "
                                                "Gym: '{\"command_count\": [2]}'); the run's env name carries "
                                                "them [default: none]", parse=str, metavar="JSON")
    flicker: float = _field(0.0, "each observed screen is blanked with this probability (DRQN's flickering "
                                 "Atari: 0.5); training, evaluation and rise-play alike")
    num_envs: int = _field(8, "parallel game lanes collected in lock-step")
    parallel: str = _field("auto", f"how lanes step: {' | '.join(PARALLEL_MODES)} (vector: ale-py's C++ "
                                   f"AtariVectorEnv, Atari only; auto: vector for Atari, serial otherwise)")
    sticky_action_prob: float = _field(atari.STICKY_ACTION_PROB, "probability the emulator repeats the previous action (ALE v5)")
    noop_max: int = _field(atari.NOOP_MAX, "up to this many no-op actions after each reset")
    max_episode_frames: int = _field(atari.MAX_EPISODE_FRAMES, "episode truncation, in emulator frames")
    terminal_on_life_loss: bool = _field(False, "learner treats a life loss as terminal (discount 0)")
    action_repeat: int = _field(PreprocessingConfig.action_repeat, "env frames per agent step (Atari: 4; --env-id envs: "
                                                                   "1 unless set; the memory tasks always step once)")
    frame_size: int = _field(PreprocessingConfig.frame_size, "preprocessed frames are frame_size x frame_size (every env kind)")
    corridor_length: int = _field(_STANDARD_MEMORY_TASK.corridor_length,
                                  "MemoryCorridor: steps between the cue and the decision")
    num_cues: int = _field(_STANDARD_MEMORY_TASK.num_cues, "MemoryCorridor: number of cues (= actions)")
    cue_steps: int = _field(_STANDARD_MEMORY_TASK.cue_steps, "MemoryCorridor: frames the cue is shown")
    distractor_prob: float = _field(_STANDARD_MEMORY_TASK.distractor_prob,
                                    "MemoryCorridor: chance a corridor frame shows a cue-like band")

    @property
    def reset_options_dict(self) -> Optional[Dict[str, Any]]:
        return parse_reset_options(self.reset_options)

    def probe(self) -> None:
        """An --env-id env is made once, its spaces and reset options checked (before TensorFlow loads);
        raises EnvSpecError (a ValueError) saying what is wrong. Other kinds need no probe."""
        if self.env_id:
            probe_env(self.env_id, env_module=self.env_module, image_key=self.image_key,
                      reset_options=self.reset_options_dict)

    def validate(self):
        _require_finite(self)
        _require(bool(self.game) != bool(self.env_id),
                 "give either --game (Atari or a memory task) or --env-id (any gymnasium image env), not both"
                 if self.game else "no environment: give --game or --env-id")
        registry.check_kind(self.env_kind)
        inferred = registry.kind_of(self.game, self.env_id)
        _require(self.env_kind == inferred, f"env_kind {self.env_kind!r} does not match the env given "
                                             f"({self.env_id or self.game!r} is {inferred}): set it to {inferred!r} (make_config does) "
                                             f"or drop --env-kind")
        if self.game and self.env_kind != registry.MEMORY:
            close_tasks = difflib.get_close_matches(self.game, list(MEMORY_TASKS), n=3, cutoff=0.6)
            _require(not close_tasks, f"unknown game {self.game!r}; did you mean the memory task "
                                      f"{' or '.join(close_tasks)}? (memory tasks: {', '.join(MEMORY_TASKS)})")
            atari.resolve_game(self.game)  # raises with the closest Atari names
        _require(self.env_id is not None or (self.env_module is None and self.image_key is None
                                             and self.reset_options is None),
                 "--env-module, --image-key and --reset-options go with --env-id")
        parse_reset_options(self.reset_options)  # raises EnvSpecError (a ValueError) naming the problem
        check_flicker(self.flicker)
        _require(not (self.flicker and self.env_kind == registry.MEMORY),
                 "--flicker applies to Atari and --env-id envs; the memory tasks hide their cue by design")
        _require(self.num_envs >= 1, f"num_envs must be >= 1, got {self.num_envs}")
        _require(self.parallel in PARALLEL_MODES,
                 f"parallel must be one of {', '.join(PARALLEL_MODES)}, got {self.parallel!r}")
        _require(self.parallel != "vector" or self.env_kind == registry.ATARI,
                 "--parallel vector steps Atari games only (ale-py's AtariVectorEnv); use serial, threads or "
                 "processes for memory tasks and --env-id envs")
        _require(0 <= self.sticky_action_prob < 1, f"sticky_action_prob must be in [0, 1), got {self.sticky_action_prob}")
        _require(self.noop_max >= 0, f"noop_max must be >= 0, got {self.noop_max}")
        _require(self.max_episode_frames >= 1, f"max_episode_frames must be >= 1, got {self.max_episode_frames}")
        _require(self.action_repeat >= 1, f"action_repeat must be >= 1, got {self.action_repeat}")
        _require(36 <= self.frame_size <= 512,
                 f"frame_size must be in 36..512 (the Nature CNN needs 36; ALE screens are 210x160), got {self.frame_size}")
        _require(self.corridor_length >= 1, f"corridor_length must be >= 1, got {self.corridor_length}")
        _require(2 <= self.num_cues <= 6, f"num_cues must be in 2..6, got {self.num_cues}")
        _require(self.cue_steps >= 1, f"cue_steps must be >= 1, got {self.cue_steps}")
        _require(0 <= self.distractor_prob < 1, f"distractor_prob must be in [0, 1), got {self.distractor_prob}")


@dataclasses.dataclass(frozen=True)
class NetworkConfig:
    memory: str = _field("rise", f"{' | '.join(MEMORIES)}: frame stack only, RISE, or R2D2-style full recurrence")
    learnable_encoder: str = _field("nature", f"trainable CNN φ: {' | '.join(LEARNABLE_ENCODERS)}")
    width_scale: int = _field(1, "channel multiplier of φ (Beyond The Rainbow uses impala x2)")
    impala_pool_size: int = _field(6, "impala: adaptive max-pool output is pool x pool")
    spectral_norm: bool = _field(False, "impala: spectral normalisation on the residual-block convolutions (BTR)")
    frozen_encoder: str = _field("random_projection", f"frozen encoder ϑ: {' | '.join(FROZEN_ENCODERS)} | "
                                                      f"snapshot:RUN_DIR (φ of an earlier run, frozen) | keras:NAME "
                                                      f"(pretrained, from the Keras cache: {', '.join(KERAS_APPLICATIONS)})")
    embedding_size: int = _field(64, "width of ϑ's embedding E (pooled_pixels needs a square)")
    embedding_dtype: str = _field("float16", "dtype embeddings are stored (and rounded) in: float16 | float32")
    window_length: int = _field(16, "k: embeddings (or frames, full_recurrent) the recurrent core reads")
    frame_stack: int = _field(4, "frames stacked as φ's input")
    core: str = _field("lstm", f"recurrent core ψ: {' | '.join(CORES)}")
    core_units: int = _field(64, "hidden units of ψ")
    core_gate_init: str = _field("keras", f"ψ's gate biases: {' | '.join(CORE_GATE_INITS)} (chrono: memory spanning the "
                                          f"window at initialisation, Tallec & Ollivier 2018)")
    fusion: str = _field("gate", f"how ψ meets φ: {' | '.join(FUSIONS)} (gate: the paper; concat: its ablation, "
                                 f"which learned the memory tasks in far fewer updates, results/segments.md)")
    head: str = _field("dueling", f"Q head ω: {' | '.join(HEADS)} (iqn: implicit quantiles with dueling streams, BTR)")
    head_hidden_units: int = _field(0, "hidden units per head stream; 0 = no hidden layer (BTR: 512)")
    noisy: bool = _field(False, "factorised noisy linear layers in the head (noise off when evaluating and exported)")
    noisy_sigma0: float = _field(0.5, "noisy layers: initial σ = sigma0 / sqrt(fan_in)")
    num_cosines: int = _field(64, "iqn: cosine features of each tau")
    num_taus: int = _field(8, "iqn: taus sampled per state when acting and learning; evaluation and export "
                              "use this many quantile midpoints")
    frozen_seed: Optional[int] = _field(None, "seed of ϑ's fixed weights (saved and exported) [default: --seed]",
                                        parse=int)

    def validate(self):
        _require_finite(self)
        _require(self.memory in MEMORIES, f"unknown memory {self.memory!r}; choose one of {MEMORIES}")
        _require(self.learnable_encoder in LEARNABLE_ENCODERS,
                 f"unknown learnable_encoder {self.learnable_encoder!r}; choose one of {LEARNABLE_ENCODERS}")
        parse_frozen_encoder(self.frozen_encoder)  # raises naming the choices
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
        _require(self.core_gate_init in CORE_GATE_INITS,
                 f"unknown core_gate_init {self.core_gate_init!r}; choose one of {CORE_GATE_INITS}")
        _require(self.core_units >= 1, f"core_units must be >= 1, got {self.core_units}")
        _require(self.fusion in FUSIONS, f"unknown fusion {self.fusion!r}; choose one of {FUSIONS}")
        _require(self.head in HEADS, f"unknown head {self.head!r}; choose one of {HEADS}")
        _require(self.head_hidden_units >= 0, f"head_hidden_units must be >= 0, got {self.head_hidden_units}")
        _require(self.noisy_sigma0 >= 0, f"noisy_sigma0 must be >= 0, got {self.noisy_sigma0}")
        _require(self.num_cosines >= 1, f"num_cosines must be >= 1, got {self.num_cosines}")
        _require(self.num_taus >= 1, f"num_taus must be >= 1, got {self.num_taus}")
        _require(not self.spectral_norm or self.learnable_encoder == "impala",
                 "spectral_norm applies to the Impala CNN's residual blocks; use --learnable-encoder impala "
                 "or --no-spectral-norm")


@dataclasses.dataclass(frozen=True)
class ReplayConfig:
    capacity: int = _field(500_000, "agent steps kept in replay over all lanes (~7.2 KB each at 84x84)")
    prioritized: bool = _field(True, "prioritized replay (PER); false = uniform")
    priority_exponent: float = _field(0.5, "PER α")
    importance_beta_start: float = _field(0.4, "PER β at the start of learning")
    importance_beta_end: float = _field(1.0, "PER β at the end of the frame budget (linear)")
    save_replay: bool = _field(False, "also checkpoint the replay contents (large) so resume keeps them")
    replay_backend: str = _field("memory", f"where replay lives: {' | '.join(REPLAY_BACKENDS)} (reverb: an embedded "
                          "Reverb server; needs the distributed extra)")

    def validate(self):
        _require_finite(self)
        _require(self.capacity >= 1, f"capacity must be >= 1, got {self.capacity}")
        _require(self.replay_backend in REPLAY_BACKENDS,
                 f"replay_backend must be one of {', '.join(REPLAY_BACKENDS)}, got {self.replay_backend!r}")
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
    loss: str = _field("huber", f"{' | '.join(LOSSES)}: quantile_huber trains the distributional heads "
                                 f"({', '.join(DISTRIBUTIONAL_HEADS)}), huber the others")
    double_dqn: bool = _field(True, "double-DQN targets (argmax by the online network)")
    huber_delta: float = _field(1.0, "Huber loss threshold (κ of the quantile Huber loss)")
    munchausen: bool = _field(False, "Munchausen targets: α·clip(τ log π(a|s), l0, 0) added to the reward, soft bootstrap")
    munchausen_temperature: float = _field(0.03, "Munchausen entropy temperature τ")
    munchausen_alpha: float = _field(0.9, "Munchausen scaling α of the log-policy bonus")
    munchausen_log_policy_clip: float = _field(-1.0, "Munchausen: τ log π is clipped to [l0, 0]; this is l0")
    reward_clip: float = _field(1.0, "clip rewards to [-c, c] in the targets; 0 disables")
    target_update_period: int = _field(2000, "learner updates between target-network updates")
    target_update_tau: float = _field(1.0, "1 = hard copy; < 1 = Polyak averaging factor")
    gradient_clip_norm: float = _field(10.0, "clip gradients to this global norm; 0 disables")
    segment_length: int = _field(1, "m: consecutive agent steps of one lane per sampled segment (RISE and the "
                                    "full-recurrent model); an update then trains batch_size segments x m positions "
                                    "(batch_size x m TD targets) and costs about m times more, while --replay-ratio "
                                    "still counts updates per agent step: TD targets per agent step = replay ratio x "
                                    "batch_size x m. 1 = single steps. A resumed run keeps its own")
    segment_priority_eta: float = _field(0.9, "a segment's priority: eta x max + (1 - eta) x mean of its positions' "
                                              "errors (R2D2)")

    def validate(self):
        _require_finite(self)
        _require(self.loss in LOSSES, f"unknown loss {self.loss!r}; choose one of {LOSSES}")
        _require(not (self.munchausen and self.double_dqn),
                 "Munchausen targets replace double-DQN's argmax; add --no-double-dqn (or --no-munchausen)")
        _require(self.munchausen_temperature > 0, f"munchausen_temperature must be > 0, got {self.munchausen_temperature}")
        _require(self.munchausen_log_policy_clip < 0,
                 f"munchausen_log_policy_clip must be < 0, got {self.munchausen_log_policy_clip}")
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
        _require(self.segment_length >= 1, f"segment_length must be >= 1 (1 = single steps), got {self.segment_length}")
        _require(0 <= self.segment_priority_eta <= 1,
                 f"segment_priority_eta must be in [0, 1], got {self.segment_priority_eta}")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    frames: int = _field(10_000_000, "training budget in emulator frames (agent steps x action_repeat)")
    warmup_frames: int = _field(80_000, "frames collected before the first learner update")
    replay_ratio: float = _field(0.25, "learner updates per agent step collected (0.25 = one update every 4 steps)")
    epsilon_start: float = _field(1.0, "ε-greedy exploration at the start")
    epsilon_end: float = _field(0.01, "ε after the decay")
    epsilon_decay_frames: int = _field(1_000_000, "linear: frames over which ε decays; exponential: its time constant")
    epsilon_schedule: str = _field("linear", f"ε decay: {' | '.join(EPSILON_SCHEDULES)} (BTR: exponential)")
    epsilon_greedy_fraction: float = _field(1.0, "ε-greedy acts in this first fraction of the budget, then ε = 0 "
                                                 "(BTR: 0.5, noisy nets explore after)")
    eval_epsilon: float = _field(0.0, "ε of the evaluation policy (BTR: 0.01)")
    eval_every_frames: int = _field(500_000, "frames between greedy evaluations; 0 disables")
    eval_episodes: int = _field(4, "episodes per evaluation (one lane each)")
    stop_at_success: float = _field(0.0, "stop when a greedy evaluation's success rate reaches this (memory-task "
                                         "experiments; 0 = train to the budget)")
    checkpoint_every_frames: int = _field(250_000, "frames between checkpoints")
    keep_checkpoints: int = _field(3, "checkpoints kept on disk (older ones are deleted)")
    log_every_frames: int = _field(20_000, "frames between TensorBoard scalar writes")
    seed: int = _field(0, "seed for TensorFlow, numpy, environments and replay")
    deterministic_ops: bool = _field(False, "TensorFlow op determinism (reproducible, slower)")
    engine: str = _field("auto", "serial: act, then learn, in turn (reproducible) | concurrent: collection and "
                                 "learning in threads, the replay ratio held by a rate limiter | auto: concurrent "
                                 "when the learner has a GPU, else serial (on a CPU both share the cores; bench.md)")
    max_update_backlog: int = _field(8, "concurrent engine: updates the learner may fall behind the replay ratio "
                                        "before collection waits for it")
    learner_replicas: int = _field(1, "GPUs the learner's update is mirrored over (tf.distribute.MirroredStrategy); "
                                   "the batch size must be a multiple")
    prefetch_batches: int = _field(2, "concurrent engine: batches a sampler thread assembles ahead of the learner")
    xla: bool = _field(False, "compile the learner update with XLA (jit_compile); see bench.md for when it pays")
    mixed_precision: bool = _field(False, "float16 compute, float32 weights and a scaled loss (GPUs with tensor "
                                          "cores; slower on a CPU)")

    def validate(self):
        _require_finite(self)
        _require(self.frames >= 1, f"frames must be >= 1, got {self.frames}")
        _require(self.warmup_frames >= 0, f"warmup_frames must be >= 0, got {self.warmup_frames}")
        _require(self.replay_ratio >= 0, f"replay_ratio must be >= 0, got {self.replay_ratio}")
        _require(0 <= self.epsilon_end <= 1 and 0 <= self.epsilon_start <= 1 and 0 <= self.eval_epsilon <= 1,
                 "epsilon_start, epsilon_end and eval_epsilon must be in [0, 1]")
        _require(self.epsilon_schedule in EPSILON_SCHEDULES,
                 f"unknown epsilon_schedule {self.epsilon_schedule!r}; choose one of {EPSILON_SCHEDULES}")
        _require(0 <= self.epsilon_greedy_fraction <= 1,
                 f"epsilon_greedy_fraction must be in [0, 1], got {self.epsilon_greedy_fraction}")
        _require(self.epsilon_decay_frames >= 1, f"epsilon_decay_frames must be >= 1, got {self.epsilon_decay_frames}")
        _require(self.eval_every_frames >= 0, f"eval_every_frames must be >= 0, got {self.eval_every_frames}")
        _require(0 <= self.stop_at_success <= 1, f"stop_at_success must be in [0, 1], got {self.stop_at_success}")
        _require(not self.stop_at_success or self.eval_every_frames,
                 "stop_at_success needs evaluations: set --eval-every-frames")
        _require(self.eval_episodes >= 1, f"eval_episodes must be >= 1, got {self.eval_episodes}")
        _require(self.checkpoint_every_frames >= 1, f"checkpoint_every_frames must be >= 1, got {self.checkpoint_every_frames}")
        _require(self.keep_checkpoints >= 1, f"keep_checkpoints must be >= 1, got {self.keep_checkpoints}")
        _require(self.log_every_frames >= 1, f"log_every_frames must be >= 1, got {self.log_every_frames}")
        _require(self.seed >= 0, f"seed must be >= 0 (it seeds numpy, which takes no negative seeds), got {self.seed}")
        _require(self.engine in ENGINES, f"unknown engine {self.engine!r}; choose one of {list(ENGINES)}")
        _require(self.max_update_backlog >= 1, f"max_update_backlog must be >= 1, got {self.max_update_backlog}")
        _require(self.learner_replicas >= 1, f"learner_replicas must be >= 1, got {self.learner_replicas}")
        _require(self.prefetch_batches >= 1, f"prefetch_batches must be >= 1 (the queue between sampler and "
                                              f"learner), got {self.prefetch_batches}")
        _require(not (self.engine == "concurrent" and self.deterministic_ops),
                 "--deterministic-ops asks for reproducible runs, which the concurrent engine cannot give (its "
                 "threads interleave differently each run): use --engine serial")


@dataclasses.dataclass(frozen=True)
class DistributedConfig:
    """`rise-train --distributed` (and rise-actor / rise-learner / rise-replay-server): how the processes
    of a run work together. None of it changes what is learned, so a resume may change it."""

    actors: int = _field(2, "actor processes with --distributed")
    replay_port: Optional[int] = _field(None, "the replay server's port with --distributed [default: a free one]",
                                        parse=int)
    epsilon_ladder: bool = _field(False, "Ape-X's per-actor ε (0.4^(1 + 7 i / (N - 1))) instead of the run's schedule")
    pull_every: int = _field(50, "driver steps between an actor's weight pulls")
    push_every: int = _field(20, "learner updates between weight pushes")
    reconnect_seconds: float = _field(120.0, "how long an actor or the learner waits for a lost replay server")
    restart_limit: int = _field(5, "--distributed: times the launcher restarts each process (server, learner, "
                                   "each actor) before it gives up")

    def validate(self):
        _require_finite(self)
        _require(self.actors >= 1, f"actors must be >= 1 (the actors collect all experience), got {self.actors}")
        _require(self.replay_port is None or 0 < self.replay_port < 65536,
                 f"replay_port must be in 1..65535, got {self.replay_port}")
        _require(self.pull_every >= 1, f"pull_every must be >= 1, got {self.pull_every}")
        _require(self.push_every >= 1, f"push_every must be >= 1, got {self.push_every}")
        _require(self.reconnect_seconds > 0, f"reconnect_seconds must be > 0, got {self.reconnect_seconds}")
        _require(self.restart_limit >= 0, f"restart_limit must be >= 0, got {self.restart_limit}")


SECTIONS = (("env", EnvConfig), ("network", NetworkConfig), ("replay", ReplayConfig),
            ("agent", AgentConfig), ("train", TrainConfig), ("distributed", DistributedConfig))
# What a resume may change: the budget, and how a distributed run's processes work together.
RESUMABLE_SECTIONS = ("distributed",)
RESUMABLE_FIELDS = ("train.frames",)
CONFIG_VERSION = 1


DEFAULT_ALGO = "rise-dqn"


@dataclasses.dataclass(frozen=True)
class RunConfig:
    algo: str = DEFAULT_ALGO
    scale: Optional[str] = None  # make_config's scale (None: a config built by hand, or written before scales)
    env: EnvConfig = EnvConfig()
    network: NetworkConfig = NetworkConfig()
    replay: ReplayConfig = ReplayConfig()
    agent: AgentConfig = AgentConfig()
    train: TrainConfig = TrainConfig()
    distributed: DistributedConfig = DistributedConfig()

    def validate(self) -> "RunConfig":
        _require(self.algo in PRESETS, f"unknown algo {self.algo!r}; choose one of {sorted(PRESETS)}")
        _require(self.scale is None or self.scale in SCALES, _unknown_scale(self.scale))
        for section, _ in SECTIONS:
            getattr(self, section).validate()
        net, agent = self.network, self.agent
        lane_need = min_lane_capacity(window_length=net.window_length, frame_stack=net.frame_stack, n_step=agent.n_step)
        _require(self.replay.capacity >= self.env.num_envs * lane_need,
                 f"replay capacity {self.replay.capacity} is too small for {self.env.num_envs} lanes with "
                 f"window {net.window_length} and n_step {agent.n_step}: it needs at least "
                 f"{self.env.num_envs * lane_need}; raise --capacity")
        _require(agent.batch_size <= self.replay.capacity,
                 f"batch_size {agent.batch_size} exceeds the replay capacity {self.replay.capacity}")
        # One collection step inserts num_envs steps at once, owing replay_ratio x num_envs updates; a
        # backlog smaller than that would make the collector wait after every step (no overlap left).
        updates_per_step = self.updates_per_collection_step
        _require(self.train.engine != "concurrent" or updates_per_step <= self.train.max_update_backlog,
                 f"the concurrent engine cannot hold replay ratio {self.train.replay_ratio:g} with "
                 f"{self.env.num_envs} lanes and --max-update-backlog {self.train.max_update_backlog}: each "
                 f"collection step owes {updates_per_step} updates. Raise --max-update-backlog to at least "
                 f"{updates_per_step}, or use --engine serial.")
        if agent.segment_length > 1:
            _require(net.memory != "none",
                     f"--segment-length {agent.segment_length} needs a model with memory (RISE or the full-recurrent "
                     f"model: --algo rise-dqn, rise-btr, r2d2-lite, r2d2-btr); {self.algo} reads a frame stack only, "
                     f"for which single steps (--segment-length 1) are the same")
            _require(agent.segment_length <= self.replay.capacity // self.env.num_envs - lane_need,
                     f"--segment-length {agent.segment_length} does not fit in a lane of the replay "
                     f"({self.replay.capacity // self.env.num_envs} steps per lane, {lane_need} of them for windows "
                     f"and n-step): lower --segment-length or raise --capacity")
        # The replicas split single steps, or segments (whole ones): either way the batch size.
        _require(agent.batch_size % self.train.learner_replicas == 0,
                 f"batch_size {agent.batch_size} does not split over --learner-replicas "
                 f"{self.train.learner_replicas}: use a multiple of {self.train.learner_replicas}")
        # Success (a positive return) is defined by the memory tasks only; elsewhere it would be a guess.
        _require(not self.train.stop_at_success or self.is_memory_task,
                 f"--stop-at-success counts the memory tasks' success (a positive return), which {self.env_name} "
                 f"does not define: drop --stop-at-success (the run trains to its budget)")
        distributional_head = net.head in DISTRIBUTIONAL_HEADS
        distributional_loss = agent.loss in DISTRIBUTIONAL_LOSSES
        _require(distributional_head == distributional_loss,
                 f"loss {agent.loss!r} cannot train head {net.head!r}: quantile_huber needs a distributional head "
                 f"({', '.join(DISTRIBUTIONAL_HEADS)}), huber needs one of "
                 f"{', '.join(h for h in HEADS if h not in DISTRIBUTIONAL_HEADS)}")
        return self

    @property
    def updates_per_collection_step(self) -> int:
        """Updates one collection step (num_envs agent steps) earns at the replay ratio, rounded up."""
        return math.ceil(self.train.replay_ratio * self.env.num_envs)

    @property
    def targets_per_update(self) -> int:
        """TD targets (positions) one learner update trains: batch_size segments of segment_length steps."""
        return self.agent.batch_size * self.agent.segment_length

    @property
    def frozen_seed(self) -> int:
        """ϑ's seed: network.frozen_seed when set, else the run's seed."""
        return self.train.seed if self.network.frozen_seed is None else self.network.frozen_seed

    @property
    def is_memory_task(self) -> bool:
        return self.env.env_kind == registry.MEMORY

    @property
    def env_name(self) -> str:
        """The game, memory task or gymnasium id this run plays (run-dir names, reports, exports)."""
        return task_name(self.env.env_id, self.env.reset_options_dict) if self.env.env_id else self.env.game

    @property
    def frames_per_agent_step(self) -> int:
        return 1 if self.is_memory_task else self.env.action_repeat

    def to_dict(self) -> Dict[str, Any]:
        """Every setting, except the env settings this env kind does not read (from_dict restores
        their defaults)."""
        values = dataclasses.asdict(self)
        values["env"] = {name: value for name, value in values["env"].items() if applies_to(self.env.env_kind, name)}
        return {"config_version": CONFIG_VERSION, **values}

    @classmethod
    def from_dict(cls, values: Dict[str, Any]) -> "RunConfig":
        values = dict(values)
        version = values.pop("config_version", None)
        _require(version == CONFIG_VERSION,
                 f"config version {version} is not the version this rise-tf reads ({CONFIG_VERSION})")
        sections = {}
        for section, kind in SECTIONS:
            given = dict(values.pop(section, {}))
            if section == "env" and "env_kind" not in given:  # configs written before the kind was recorded
                given["env_kind"] = registry.kind_of(given.get("game", EnvConfig.game), given.get("env_id"))
            known = {f.name for f in dataclasses.fields(kind)}
            unknown = set(given) - known
            _require(not unknown, f"unknown {section} settings {sorted(unknown)}")
            sections[section] = kind(**given)
        unknown = set(values) - {"algo", "scale"}
        _require(not unknown, f"unknown config keys {sorted(unknown)}")
        return cls(algo=values.get("algo", DEFAULT_ALGO), scale=values.get("scale"), **sections)

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
            if section in ("algo", "scale"):
                changes[section] = updates
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


def _btr_adam_epsilon(batch_size: int) -> float:
    return 0.005 / batch_size  # BTR's Adam ε scales with the batch


# Beyond The Rainbow (Clark et al. 2025), from its ICML code release (VIPTankz/BeyondTheRainbowICML,
# main.py / Agent.py / networks.py; see ../shared/reference/btr.md and this module's docstring).
BTR = {
    "env": {"num_envs": 64},
    "network": {"learnable_encoder": "impala", "width_scale": 2, "impala_pool_size": 6, "spectral_norm": True,
                "head": "iqn", "head_hidden_units": 512, "noisy": True, "noisy_sigma0": 0.5, "num_cosines": 64,
                "num_taus": 8},
    "replay": {"capacity": 1_048_576, "prioritized": True, "priority_exponent": 0.2,
               "importance_beta_start": 0.4, "importance_beta_end": 1.0},
    "agent": {"loss": "quantile_huber", "munchausen": True, "double_dqn": False, "munchausen_temperature": 0.03,
              "munchausen_alpha": 0.9, "munchausen_log_policy_clip": -1.0, "huber_delta": 1.0, "gamma": 0.997,
              "n_step": 3, "batch_size": 256, "learning_rate": 1e-4, "adam_epsilon": _btr_adam_epsilon(256),
              "gradient_clip_norm": 10.0, "target_update_period": 500, "target_update_tau": 1.0, "reward_clip": 1.0},
    # One update per vector step of 64 envs; learning starts after 200k transitions (x4 frames);
    # ε decays with a 2M-transition time constant, ε-greedy only in the first half of training.
    "train": {"replay_ratio": 1 / 64, "warmup_frames": 800_000, "epsilon_start": 1.0, "epsilon_end": 0.01,
              "epsilon_schedule": "exponential", "epsilon_decay_frames": 8_000_000, "epsilon_greedy_fraction": 0.5,
              "eval_epsilon": 0.01, "eval_every_frames": 1_000_000, "eval_episodes": 100, "frames": 200_000_000},
}
BASES = {"dqn": {}, "btr": BTR}  # the DQN base is the dataclass defaults


def _with(base: Dict[str, Dict[str, Any]], **sections: Dict[str, Any]) -> Dict[str, Dict[str, Any]]:
    merged = {name: dict(values) for name, values in base.items()}
    for name, values in sections.items():
        merged.setdefault(name, {}).update(values)
    return merged


# Presets: the models the project compares, on two bases, all trained by the same agent.
# name: (base, memory, description)
_PRESET_TABLE = {
    "dqn": ("dqn", "none", "DQN base (4-frame stack, no memory)"),
    "rise-dqn": ("dqn", "rise", "RISE on the DQN base"),
    "r2d2-lite": ("dqn", "full_recurrent", "full-recurrent model on the DQN base (φ re-encodes all k frames)"),
    "btr": ("btr", "none", "Beyond The Rainbow base (noisy dueling IQN, Munchausen; Impala x2 + spectral norm at "
                           "--scale paper, the Nature CNN at --scale cpu)"),
    "rise-btr": ("btr", "rise", "RISE on the BTR base (the paper's setting)"),
    "r2d2-btr": ("btr", "full_recurrent", "full-recurrent model on the BTR body (the cost RISE avoids)"),
}
PRESETS = {name: _with(BASES[base], network={"memory": memory}) for name, (base, memory, _) in _PRESET_TABLE.items()}
BASE_OF = {name: base for name, (base, _, _) in _PRESET_TABLE.items()}
PRESET_DESCRIPTIONS = {name: description for name, (_, _, description) in _PRESET_TABLE.items()}

# The CPU scale, in agent steps (make_config converts the *_frames counts to the env's frames): what
# the memory tasks are solved with on a 2-core machine, for any env. The Atari schedule scaled down.
_CPU_DQN = {
    "env": {"num_envs": 8},
    "replay": {"capacity": 50_000},
    "agent": {"target_update_period": 250, "learning_rate": 1e-3},
    "train": {"frames": 30_000, "warmup_frames": 2_000, "replay_ratio": 0.25, "epsilon_decay_frames": 10_000,
              "epsilon_end": 0.05, "eval_every_frames": 10_000, "eval_episodes": 32,
              "checkpoint_every_frames": 20_000, "log_every_frames": 1_000},
}
CPU_SCALE = {
    "dqn": _CPU_DQN,
    # BTR's learner (IQN with noisy dueling streams, Munchausen targets, PER α 0.2) on a smaller body:
    # the Nature CNN that rise-dqn uses here instead of spectral-norm Impala x2 (which costs ~6-25x
    # more per frame: ~370 ms per update at x1 and batch 32 on a 2-core CPU), 128 hidden units
    # instead of 512 and batch 32 instead of 256, so it learns the memory tasks in minutes on a CPU and
    # its comparison with rise-dqn differs in the learner only. The schedule is the DQN one, with a
    # linear ε that stops at half the budget (noisy nets explore after) and greedy evaluation.
    "btr": _with(_CPU_DQN,
                 network={"learnable_encoder": "nature", "width_scale": 1, "spectral_norm": False,
                          "head_hidden_units": 128},
                 agent={"batch_size": 32, "adam_epsilon": _btr_adam_epsilon(32)},
                 train={"frames": 40_000, "epsilon_schedule": "linear", "epsilon_greedy_fraction": 0.5,
                        "eval_epsilon": 0.0}),
}
# The memory tasks' own horizon: a decision a dozen steps after the cue, one reward at the end.
MEMORY_TASK_SETTINGS = {"agent": {"gamma": 0.9, "n_step": 1}}
# The presets' counts are Atari frames, 4 per agent step.
_PRESET_FRAMES_PER_STEP = PreprocessingConfig.action_repeat


# Other gymnasium envs: one env step per agent step unless the user asks for a repeat.
GYM_ENV_SETTINGS = {"env": {"action_repeat": 1}}


def _counted_in_frames(values: Dict[str, Dict[str, Any]], factor: float) -> Dict[str, Dict[str, Any]]:
    """The train section's frame counts multiplied by `factor` (agent steps -> frames, or frames of
    one action repeat -> another's)."""
    train = {key: (max(1, round(value * factor)) if key == "frames" or key.endswith("_frames") else value)
             for key, value in values.get("train", {}).items()}
    return dict(values, train=train)


def make_config(algo: str = DEFAULT_ALGO, game: Optional[str] = None, scale: Optional[str] = None,
                **section_updates) -> RunConfig:
    """Preset for `algo` on `game` (default Pong) or on the gymnasium env named by env={"env_id": ...},
    at `scale` (cpu | paper; default: DEFAULT_SCALE of the env's kind), the memory task's own settings;
    then the overrides."""
    if algo not in PRESETS:
        raise ValueError(f"unknown algo {algo!r}; choose one of {sorted(PRESETS)}")
    env_id = section_updates.get("env", {}).get("env_id")
    if env_id:
        _require(game is None, f"give either a game ({game}) or an env_id ({env_id}), not both")
        game = ""
    elif game is None:
        game = EnvConfig.game
    kind = registry.kind_of(game, env_id)
    scale = DEFAULT_SCALE[kind] if scale is None else scale
    _require(scale in SCALES, _unknown_scale(scale))
    config = RunConfig(algo=algo, scale=scale).replace(env={"game": game, "env_kind": kind})
    if kind == registry.GYM:
        config = config.replace(**GYM_ENV_SETTINGS)
    action_repeat = section_updates.get("env", {}).get("action_repeat", config.env.action_repeat)
    frames_per_step = 1 if kind == registry.MEMORY else action_repeat
    # The paper scale's counts are Atari frames, the dataclass defaults' included.
    paper = _with({"train": {f.name: f.default for f in dataclasses.fields(TrainConfig)
                             if f.name == "frames" or f.name.endswith("_frames")}}, **PRESETS[algo])
    config = config.replace(**_counted_in_frames(paper, frames_per_step / _PRESET_FRAMES_PER_STEP))
    if scale == "cpu":
        config = config.replace(**_counted_in_frames(CPU_SCALE[BASE_OF[algo]], frames_per_step))
    if kind == registry.MEMORY:
        config = config.replace(**MEMORY_TASK_SETTINGS).replace(env=dataclasses.asdict(MEMORY_TASKS[game]))
    if section_updates:
        config = config.replace(**section_updates)
    return config.validate()


def resolve_engine(config: RunConfig, learner_on_gpu: bool) -> str:
    """The engine a run uses: 'auto' is concurrent when the learner has a GPU (collection then has the
    CPU to itself) and the concurrent engine can hold the replay ratio without op determinism; else serial."""
    train = config.train
    if train.engine != "auto":
        return train.engine
    holds_ratio = config.updates_per_collection_step <= train.max_update_backlog
    return "concurrent" if learner_on_gpu and holds_ratio and not train.deterministic_ops else "serial"


def replay_layout(config: RunConfig) -> ReplayLayout:
    """The replay's shapes and learning constants from a config (TF-free: `rise-train` sizes the
    replay from it before TensorFlow loads; the builder builds the replay from it)."""
    return ReplayLayout(
        num_lanes=config.env.num_envs, capacity=config.replay.capacity, frame_size=config.env.frame_size,
        embedding_size=config.network.embedding_size if config.network.memory == "rise" else 0,
        embedding_dtype=config.network.embedding_dtype, frame_stack=config.network.frame_stack,
        window_length=config.network.window_length, n_step=config.agent.n_step, gamma=config.agent.gamma,
        reward_clip=config.agent.reward_clip, prioritized=config.replay.prioritized,
        priority_exponent=config.replay.priority_exponent)


def env_description(config: RunConfig) -> Dict[str, Any]:
    """What a runtime needs to rebuild the run's environment (exported with the model)."""
    env = config.env
    if env.env_kind == registry.GYM:
        return {"kind": registry.GYM, "name": config.env_name, "env_id": env.env_id, "env_module": env.env_module,
                "image_key": env.image_key, "reset_options": env.reset_options_dict, "flicker": env.flicker}
    if env.env_kind == registry.MEMORY:
        # flicker: every kind carries it (the contract); the memory tasks refuse --flicker, so it is 0.
        return {"kind": registry.MEMORY, "name": env.game, "corridor_length": env.corridor_length, "num_cues": env.num_cues,
                "cue_steps": env.cue_steps, "distractor_prob": env.distractor_prob, "flicker": 0.0}
    return {"kind": registry.ATARI, "name": env.game, "sticky_action_prob": env.sticky_action_prob,
            "noop_max": env.noop_max, "max_episode_frames": env.max_episode_frames, "flicker": env.flicker}


def flag_table() -> List[Tuple[str, str, dataclasses.Field]]:
    """(flag name, section, field) for every field; flag names are unique across sections."""
    table = []
    for section, kind in SECTIONS:
        for field in dataclasses.fields(kind):
            table.append((field.name.replace("_", "-"), section, field))
    names = [name for name, _, _ in table]
    assert len(names) == len(set(names)), "config field names must be unique across sections"
    return table
