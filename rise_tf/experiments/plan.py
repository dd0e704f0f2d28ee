"""What an experiment runs: variants x games x seeds, each one `rise-train` run with its own directory.

TensorFlow-free, so argument errors come back before TensorFlow loads. A variant is an algorithm
preset plus config overrides; every run of an experiment shares the budget and everything else.
Layout: <out>/<variant>/<game>/seed<k>/ (a normal rise-train run dir) and <out>/experiment.json.
"""
from __future__ import annotations

import dataclasses
import difflib
import os
import re
from typing import Dict, List, Sequence, Tuple

from rise_runtime.envs.atari_scores import GAME_SUBSETS
from rise_runtime.envs.gym_image import parse_reset_options, task_name
from rise_runtime.envs.memory_task import GAME_NAME as MEMORY_GAME, MEMORY_TASKS, SOLVED_SUCCESS, is_memory_task
from rise_tf.networks.choices import KERAS_PREFIX, SNAPSHOT_PREFIX, keras_weights_path
from rise_tf.config import PRESET_DESCRIPTIONS


@dataclasses.dataclass(frozen=True)
class Variant:
    name: str
    algo: str
    overrides: Tuple[Tuple[str, object], ...] = ()  # (rise-train flag without dashes, value)
    note: str = ""
    runner: str = "rise_tf.train.cli"  # the module run with `python -m` (a peer's own trainer for peers)
    # A variant whose ϑ is another variant's trained φ names that variant here: the plan runs it first
    # (same game and seed), and RUN_OF in an override value becomes that run's directory.
    needs: str = ""

    @property
    def keras_application(self) -> str:
        """The pretrained Keras model whose weights file this variant's ϑ needs ('' for none)."""
        for flag, value in self.overrides:
            if flag == "frozen-encoder" and str(value).startswith(KERAS_PREFIX):
                return str(value)[len(KERAS_PREFIX):]
        return ""


RUN_OF = "{source_run}"


@dataclasses.dataclass(frozen=True)
class RunSpec:
    variant: Variant
    game: str
    seed: int
    frames: int
    extra: Tuple[Tuple[str, object], ...] = ()  # experiment-wide settings (eval cadence, ...)
    env_id: bool = False  # `game` is a gymnasium id (--env-id), not an Atari game or a memory task

    @property
    def task(self) -> str:
        """The game; an outside env with reset options carries them (MortarMayhem-Grid-v0[command_count=2])."""
        options = dict(self.extra).get("reset-options")
        return task_name(self.game, parse_reset_options(options)) if self.env_id and options else self.game

    @property
    def game_dir(self) -> str:
        return self.task.replace("/", "_")  # a gymnasium namespace is not a folder

    @property
    def relative_dir(self) -> str:
        return f"{self.variant.name}/{self.game_dir}/seed{self.seed}"

    @property
    def source_relative_dir(self) -> str:
        """The run whose trained φ this one freezes ('' when it needs none)."""
        return f"{self.variant.needs}/{self.game_dir}/seed{self.seed}" if self.variant.needs else ""

    def train_args(self, experiment_dir: str = ".") -> List[str]:
        """The rise-train flags of a fresh run (the run dir is added by the caller)."""
        args = ["--algo", self.variant.algo, "--env-id" if self.env_id else "--game", self.game,
                "--seed", str(self.seed), "--frames", str(self.frames)]
        for flag, value in self.extra + self.variant.overrides:
            if isinstance(value, bool):
                args.append(f"--{flag}" if value else f"--no-{flag}")
            else:
                value = str(value)
                if RUN_OF in value:
                    value = value.replace(RUN_OF, os.path.join(experiment_dir, self.source_relative_dir))
                args += [f"--{flag}", value]
        return args


COMPARISON = (
    Variant("base", "dqn", note="non-recurrent DQN, 4-frame stack"),
    Variant("rise", "rise-dqn", note="RISE-DQN: frozen random projection -> LSTM (k=16) gating the CNN"),
    Variant("full_recurrent", "r2d2-lite", note="R2D2-style: learnable CNN over all k=16 frames"),
)

# Implementation-strategy ablations of RISE, each changing one thing from the `rise` variant.
ABLATIONS = (
    Variant("rise", "rise-dqn", note="default: random projection, k=16, gate, LSTM, float16"),
    Variant("encoder_random_cnn", "rise-dqn", (("frozen-encoder", "random_cnn"),), "frozen random CNN"),
    Variant("encoder_pooled_pixels", "rise-dqn", (("frozen-encoder", "pooled_pixels"),), "8x8 pooled pixels"),
    Variant("window_k4", "rise-dqn", (("window-length", 4),), "k=4: shorter than the cue distance"),
    Variant("window_k32", "rise-dqn", (("window-length", 32),), "k=32"),
    Variant("fusion_concat", "rise-dqn", (("fusion", "concat"),), "concatenation instead of the gate"),
    Variant("core_gru", "rise-dqn", (("core", "gru"),), "GRU core"),
    Variant("core_gru_chrono", "rise-dqn", (("core", "gru"), ("core-gate-init", "chrono")),
            "GRU core, chrono-initialised update gate"),
    Variant("core_lstm_chrono", "rise-dqn", (("core-gate-init", "chrono"),), "LSTM core, chrono-initialised gates"),
    Variant("embedding_float32", "rise-dqn", (("embedding-dtype", "float32"),), "embeddings stored as float32"),
    Variant("encoder_snapshot", "rise-dqn", (("frozen-encoder", SNAPSHOT_PREFIX + RUN_OF),),
            "ϑ = φ of the same seed's trained `base` run, frozen", needs="base"),
    Variant("encoder_keras_mobilenet", "rise-dqn", (("frozen-encoder", KERAS_PREFIX + "MobileNetV2"),),
            "ϑ = ImageNet MobileNetV2's pooled penultimate layer"),
)

EXPERIMENTS: Dict[str, Tuple[Variant, ...]] = {
    "memory": COMPARISON,
    "atari": COMPARISON[:2],  # base vs RISE; add full_recurrent or preset names (btr, rise-btr) with --variants
    "ablations": ABLATIONS,
}
ALL_VARIANTS = {v.name: v for group in EXPERIMENTS.values() for v in group}
# Every preset is also a variant under its own name: dqn, rise-dqn, r2d2-lite, btr, rise-btr, r2d2-btr.
ALL_VARIANTS.update({algo: Variant(algo, algo, note=note) for algo, note in PRESET_DESCRIPTIONS.items()})
# Peers: other libraries' agents, run by their own trainers on the same lanes and schedule.
PEERS = (Variant("tfa-rnn-dqn", "tfa-rnn-dqn", note="TF-Agents DqnAgent + QRnnNetwork (CNN over every frame of "
                 "17-step sequences, loss at every step, zero initial state)",
                 runner="rise_tf.peers.tf_agents_rnn_dqn"),)
ALL_VARIANTS.update({v.name: v for v in PEERS})
# Segments (issue 20): the same presets trained on segments of 8 consecutive steps, 4 segments per update
# (32 TD targets, as the presets' batch of 32 single steps: the same targets per agent step).
SEGMENT_VARIANTS = tuple(Variant(f"{algo}-seg", algo, (("segment-length", 8), ("batch-size", 4)),
                                 note=f"{algo} on segments: 4 x 8 consecutive steps per update")
                         for algo in ("rise-dqn", "rise-btr"))
ALL_VARIANTS.update({v.name: v for v in SEGMENT_VARIANTS})

# Budgets a user gets without --frames. Memory task: where RISE-DQN has solved it on a CPU.
DEFAULT_FRAMES = {"memory": 20_000, "ablations": 20_000, "atari": 10_000_000}
# Eval cadence: ~10 points per learning curve; a run stops once solved (its remaining budget would
# only repeat the solved evaluation), so the budget goes to the runs that have not solved yet.
MEMORY_EVAL = (("eval-every-frames", 2_000), ("eval-episodes", 32), ("stop-at-success", SOLVED_SUCCESS))


# A gymnasium id: an optional namespace, a name and a version (MortarMayhem-Grid-v0, MyOrg/MyGame-v1).
_ENV_ID = re.compile(r"(?:[\w.-]+/)?[\w.-]+-v\d+")
# Evaluations of an outside env's run: this many per budget (a learning curve of ~10 points).
OUTSIDE_EVALS_PER_RUN = 10


def is_outside_env(name: str) -> bool:
    """A gymnasium id that is neither an Atari game nor a memory task (rise-train --env-id)."""
    from rise_runtime.envs.atari import resolve_game

    if is_memory_task(name) or not _ENV_ID.fullmatch(name):
        return False
    try:
        resolve_game(name)
    except ValueError:
        return True
    return False


def resolve_games(tokens: Sequence[str]) -> List[str]:
    """'atari5' / 'atari100k' / game names / memory task names ('memory' = all of them) / gymnasium ids
    of outside envs (MortarMayhem-Grid-v0), comma lists allowed -> game names, in order, unique."""
    from rise_runtime.envs.atari import resolve_game  # raises with the closest valid names

    games: List[str] = []
    for token in (t.strip() for item in tokens for t in item.split(",")):
        if not token:
            continue
        if token.lower() in GAME_SUBSETS:
            names = list(GAME_SUBSETS[token.lower()])
        elif token.lower() == "memory":  # every MemoryCorridor task
            names = list(MEMORY_TASKS)
        elif is_memory_task(token) or is_outside_env(token):
            names = [token]
        else:
            if token.lower().startswith("atari") and token.lower() not in GAME_SUBSETS:
                raise ValueError(f"unknown game subset {token!r}; known subsets: {', '.join(sorted(GAME_SUBSETS))}")
            names = [resolve_game(token)]
        games += [name for name in names if name not in games]
    if not games:
        raise ValueError("no games given; pass --games atari5, atari100k or game names (Pong,Breakout)")
    return games


# A variant with settings of its own: the known variant's name, then "+flag=value" for each
# (rise-btr+window-length=96): its runs go under that full name.
_SETTING = re.compile(r"[a-z][a-z0-9-]*=[^+=,\s]+")


def _with_settings(token: str) -> Variant:
    name, *settings = token.split("+")
    base = _known_variant(name)
    for setting in settings:
        if not _SETTING.fullmatch(setting):
            raise ValueError(f"variant {token!r}: {setting!r} is not a rise-train setting written flag=value "
                             f"(e.g. rise-btr+window-length=96)")
    overrides = tuple(tuple(setting.split("=", 1)) for setting in settings)
    note = f"{base.note}; " + ", ".join(f"--{flag} {value}" for flag, value in overrides)
    return dataclasses.replace(base, name=token, overrides=base.overrides + overrides, note=note)


def _known_variant(name: str) -> Variant:
    if name not in ALL_VARIANTS:
        close = difflib.get_close_matches(name, ALL_VARIANTS, n=3) or [v for v in ALL_VARIANTS if name in v]
        raise ValueError(f"unknown variant {name!r}" + (f"; did you mean {', '.join(close)}?" if close else "")
                         + f" Known: {', '.join(ALL_VARIANTS)}")
    return ALL_VARIANTS[name]


def resolve_variants(experiment: str, names: Sequence[str] = ()) -> List[Variant]:
    if not names:
        return list(EXPERIMENTS[experiment])
    chosen = []
    for name in (n.strip() for item in names for n in item.split(",") if n.strip()):
        chosen.append(_with_settings(name) if "+" in name else _known_variant(name))
    return chosen


def build_plan(experiment: str, seeds: int, frames: int, games: Sequence[str] = (),
               variants: Sequence[str] = (), first_seed: int = 0,
               env_settings: Tuple[Tuple[str, object], ...] = ()) -> List[RunSpec]:
    """All runs of an experiment, seed-major so that a cut-short experiment has whole seeds.
    env_settings: rise-train flags of the outside envs' runs only (env-module, image-key, reset-options)."""
    if experiment not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {experiment!r}; choose one of {', '.join(EXPERIMENTS)}")
    if seeds < 1:
        raise ValueError(f"--seeds must be >= 1, got {seeds}")
    if frames < 1:
        raise ValueError(f"--frames must be >= 1, got {frames}")
    if experiment == "atari" and not games:
        raise ValueError("the atari experiment needs --games (atari5, atari100k, or names such as Pong,Breakout)")
    game_list = resolve_games(games) if games else [MEMORY_GAME]
    variant_list = _with_sources(resolve_variants(experiment, variants))
    outside = {game for game in game_list if is_outside_env(game)}
    if env_settings and not outside:
        raise ValueError("--env-module, --image-key and --reset-options go with gymnasium ids in --games "
                         "(MortarMayhem-Grid-v0)")
    extra = MEMORY_EVAL if all(is_memory_task(g) for g in game_list) else ()
    outside_extra = (("eval-every-frames", max(frames // OUTSIDE_EVALS_PER_RUN, 1)),) + tuple(env_settings)
    return [RunSpec(variant, game, seed, frames, outside_extra if game in outside else extra, env_id=game in outside)
            for seed in range(first_seed, first_seed + seeds)
            for game in game_list
            for variant in variant_list]


def _with_sources(variants: List[Variant]) -> List[Variant]:
    """Puts each snapshot variant's source variant before it (adding it when not chosen)."""
    ordered: List[Variant] = []
    for variant in variants:
        if variant.needs and ALL_VARIANTS[variant.needs] not in ordered:
            ordered.append(ALL_VARIANTS[variant.needs])
        if variant not in ordered:
            ordered.append(variant)
    return ordered


def missing_keras_weights(plan: Sequence[RunSpec]) -> Dict[str, str]:
    """{variant name: the Keras application whose weights it needs and the Keras cache lacks}."""
    return {spec.variant.name: spec.variant.keras_application for spec in plan
            if spec.variant.keras_application and not os.path.isfile(keras_weights_path(spec.variant.keras_application))}
