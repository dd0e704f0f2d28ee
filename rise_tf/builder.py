"""The one place that reads a RunConfig and wires environments, network, agent and replay together.

Every constructor below is called with explicit keyword arguments taken from the config, which is
the only place a default lives.
"""
from __future__ import annotations

from typing import Any, Callable, Optional

import tensorflow as tf
from tf_agents.specs import tensor_spec

from rise_tf.agents.rise_agent import RiseAgent
from rise_runtime.envs.registry import MEMORY
from rise_runtime.preprocessing import PreprocessingConfig
from rise_tf.envs.py_env import make_batched_env
from rise_tf.networks.choices import FROZEN_ENCODERS, keras_weights_path, parse_frozen_encoder
from rise_tf.networks.precision import keras_policy
from rise_tf.networks.encoders import KerasApplicationEncoder, SnapshotEncoder
from rise_tf.networks.rise_q_network import build_network, network_input_spec
from rise_tf.agents.mirrored import mirrored_train_function
from rise_tf.replay.embedding_replay import EmbeddingReplay
from rise_tf.replay.segments import SequenceShape
from rise_tf.replay.store import ReplayStore
from rise_tf.run_dir import ENV_FILE, RunDirError, load_env_info, load_run_config
from rise_tf.parts import checkpoints
from rise_tf.config import RunConfig, env_description, replay_layout
from rise_tf.parts import schedules
from rise_tf.parts.checkpointer import Checkpointer
from rise_tf.parts.collector import Collector
from rise_tf.parts.evaluator import Evaluator
from rise_tf.parts.learner import Learner
from rise_tf.parts.run_log import RunLog


def preprocessing_config(config: RunConfig) -> PreprocessingConfig:
    """The frame pipeline the run's env applies (and the exported model's contract states). A memory
    task is stepped once per agent step and draws its frame directly: no repeat, nothing to pool."""
    if config.env.env_kind == MEMORY:
        return PreprocessingConfig(frame_size=config.env.frame_size, action_repeat=1, max_pool_last_two=False)
    return PreprocessingConfig(frame_size=config.env.frame_size, action_repeat=config.env.action_repeat)


EnvFactory = Callable[[], Any]  # returns a gymnasium.Env or a TF-Agents PyEnvironment (one per lane)


def make_env(config: RunConfig, num_envs: Optional[int] = None, seed_offset: int = 0, training: bool = True,
             parallel: Optional[str] = None, env_factory: Optional[EnvFactory] = None):
    """The run's lanes, batched, each built by the runtime's env registry from the run's env description.
    `env_factory` (Python API) builds each lane of an --env-id run instead of gymnasium.make; the
    config's env_id then only names it."""
    if env_factory is not None and not config.env.env_id:
        raise ValueError("an env factory needs a name for the run: set env={'env_id': 'MyGame'} in the config")
    return make_batched_env(env_description(config), num_envs or config.env.num_envs,
                            config.train.seed + seed_offset, parallel or config.env.parallel,
                            preprocessing=preprocessing_config(config),
                            # Life loss as terminal is a learning signal only; evaluation always plays whole games.
                            terminal_on_life_loss=config.env.terminal_on_life_loss and training,
                            factory=env_factory)


def network_spec(config: RunConfig):
    net = config.network
    return network_input_spec(net.memory, frame_size=config.env.frame_size, frame_stack=net.frame_stack,
                              window_length=net.window_length, embedding_size=net.embedding_size)


def frozen_encoder(config: RunConfig):
    """ϑ: a built-in name, or a ready layer for a snapshot (φ of an earlier run, restored from its
    latest checkpoint) or a pretrained Keras application (weights from the Keras cache)."""
    net = config.network
    kind, argument = parse_frozen_encoder(net.frozen_encoder)
    if net.memory != "rise" or kind in FROZEN_ENCODERS:
        return net.frozen_encoder
    if kind == "keras":
        return KerasApplicationEncoder(model_name=argument, weights_path=keras_weights_path(argument),
                                       embedding_size=net.embedding_size, seed=config.frozen_seed)
    source = load_run_config(argument)
    info = load_env_info(argument)
    if info is None:
        raise RunDirError(f"{argument} has no {ENV_FILE} (a run from before rise-tf recorded it); resume it once "
                          f"to write it, then use it as a snapshot")
    with keras_policy("float32"):  # ϑ stays float32 under mixed precision (see networks/precision.py)
        source_network = make_network(source, len(info["action_meanings"]))
    latest = checkpoints.latest_checkpoint(argument)
    if latest is None:
        raise RunDirError(f"{argument} has no checkpoint: a snapshot needs a trained φ")
    checkpoints.restore(latest, {"q_network": source_network}, partial=True)
    # The full-recurrent model's φ reads single frames; the others read stacks of frame_stack.
    channels = 1 if source.network.memory == "full_recurrent" else source.network.frame_stack
    return SnapshotEncoder(encoder=source_network.learnable_encoder, frame_stack=channels,
                           embedding_size=net.embedding_size, seed=config.frozen_seed)


def make_network(config: RunConfig, num_actions: int):
    net = config.network
    return build_network(network_spec(config), num_actions=num_actions, memory=net.memory,
                         learnable_encoder=net.learnable_encoder, width_scale=net.width_scale,
                         impala_pool_size=net.impala_pool_size, spectral_norm=net.spectral_norm,
                         frozen_encoder=frozen_encoder(config), embedding_size=net.embedding_size,
                         frozen_seed=config.frozen_seed, core=net.core, core_units=net.core_units,
                         core_gate_init=net.core_gate_init,
                         fusion=net.fusion, head=net.head, head_hidden_units=net.head_hidden_units,
                         noisy=net.noisy, noisy_sigma0=net.noisy_sigma0, num_cosines=net.num_cosines,
                         num_taus=net.num_taus)


def make_agent(config: RunConfig, time_step_spec, action_spec, train_step_counter=None, strategy=None) -> RiseAgent:
    """The learner and its policies. With train.mixed_precision its networks compute in float16 (weights
    float32, loss scaled); the export builds its own float32 network from the same weights. With a
    tf.distribute strategy (train.learner_replicas > 1) the weights are mirrored and each update is
    split over the replicas (agents/mirrored.py)."""
    if strategy is not None:
        with strategy.scope():
            agent = make_agent(config, time_step_spec, action_spec, train_step_counter)
        agent.compiled_train = mirrored_train_function(agent, strategy, agent.compiled_train.input_signature)
        if agent.compiled_train_segments is not None:
            agent.compiled_train_segments = mirrored_train_function(agent, strategy,
                                                                    agent.compiled_train_segments.input_signature)
        return agent
    time_step_spec = tensor_spec.from_spec(time_step_spec)
    action_spec = tensor_spec.from_spec(action_spec)
    num_actions = int(action_spec.maximum - action_spec.minimum + 1)
    agent_config = config.agent
    with keras_policy("mixed_float16" if config.train.mixed_precision else None):
        optimizer = tf.keras.optimizers.Adam(agent_config.learning_rate, epsilon=agent_config.adam_epsilon)
        if config.train.mixed_precision:
            optimizer = tf.keras.mixed_precision.LossScaleOptimizer(optimizer)
        agent = RiseAgent(
            time_step_spec, action_spec, make_network(config, num_actions), optimizer,
            embedding_dtype=config.network.embedding_dtype, loss=agent_config.loss, double_dqn=agent_config.double_dqn,
            huber_delta=agent_config.huber_delta, munchausen=agent_config.munchausen,
            munchausen_temperature=agent_config.munchausen_temperature, munchausen_alpha=agent_config.munchausen_alpha,
            munchausen_log_policy_clip=agent_config.munchausen_log_policy_clip,
            target_update_period=agent_config.target_update_period, target_update_tau=agent_config.target_update_tau,
            gradient_clip_norm=agent_config.gradient_clip_norm, eval_epsilon=config.train.eval_epsilon,
            train_step_counter=train_step_counter, batch_size=config.agent.batch_size,
            sequence_shape=sequence_shape(config), xla=config.train.xla)
        agent.initialize()
        # Slots exist before a restore, and the update's first trace creates no variables (it would trace twice).
        agent.optimizer.build(agent.q_network.trainable_variables)
    return agent


def sequence_shape(config: RunConfig) -> SequenceShape:
    """How the agent reads segments (and TF-Agents Trajectories) of this run's replay."""
    return SequenceShape(replay_layout(config), tuple(network_spec(config)), config.agent.segment_length)


def make_replay(config: RunConfig) -> ReplayStore:
    layout, inputs = replay_layout(config), list(network_spec(config))
    if config.replay.replay_backend == "reverb":
        from rise_tf.replay.reverb_store import ReverbReplay  # Reverb loads only when asked for
        return ReverbReplay(layout, inputs, batch_size=config.agent.batch_size, prefetch=config.train.prefetch_batches,
                            segment_length=config.agent.segment_length)
    return EmbeddingReplay(layout, inputs, seed=config.train.seed)


# ---------------------------------------------------------------------- the loop's parts (rise_tf/parts)

def trackables(agent, train_step) -> dict:
    """What a checkpoint holds of the agent (the names are the checkpoint's format)."""
    return {"q_network": agent.q_network, "target_q_network": agent.target_q_network, "optimizer": agent.optimizer,
            "train_step": train_step, "target_update": agent.target_update_schedule}


# The schedules read the run's config when they are evaluated (current_config()), so a budget raised
# between two run() calls (Trainer.config = ...) moves ε and PER β with it.

def make_collector(current_config: Callable[[], RunConfig], env, agent, sink, counters) -> Collector:
    """The lanes with the collect policy; ε follows the run's schedule over its frames."""
    return Collector(env, agent.collect_policy, sink, epsilon_variable=agent.epsilon,
                     epsilon=lambda: schedules.exploration_epsilon(current_config().train, counters.frames))


def make_learner(current_config: Callable[[], RunConfig], agent, replay, counters, *, device: str, strategy,
                 replay_lock=None) -> Learner:
    def importance_beta() -> float:
        config = current_config()
        return schedules.importance_beta(config.replay, config.train, counters.frames)
    agent_config = current_config().agent
    return Learner(agent, replay, batch_size=agent_config.batch_size, sequence_shape=sequence_shape(current_config()),
                   segment_priority_eta=agent_config.segment_priority_eta, device=device, strategy=strategy,
                   counters=counters, replay_lock=replay_lock, importance_beta=importance_beta)


def make_evaluator(config: RunConfig, agent, env_factory: Optional[EnvFactory] = None) -> Evaluator:
    def make_eval_env(num_envs: int, seed_offset: int):
        return make_env(config, num_envs=num_envs, seed_offset=seed_offset, training=False, parallel="serial",
                        env_factory=env_factory)
    return Evaluator(make_eval_env, agent.evaluation_policy, episodes=config.train.eval_episodes,
                     env_name=config.env_name)


def make_checkpointer(config: RunConfig, run_dir: str, agent, train_step) -> Checkpointer:
    return Checkpointer(run_dir, trackables(agent, train_step), keep=config.train.keep_checkpoints)


def make_run_log(config: RunConfig, run_dir: str, show_progress: bool) -> RunLog:
    return RunLog(run_dir, show_progress=show_progress, total_frames=config.train.frames,
                  description=f"{config.algo} {config.env_name}")
