"""RiseQNetwork: the RISE Q-network and its two comparison models, as one TF-Agents `Network`.

    memory="rise"            Q = ω( σ(Ω(ψ(window of ϑ-embeddings))) ⊙ φ(frame stack) )   (the paper)
    memory="none"            Q = ω( φ(frame stack) )            the non-recurrent base (DQN)
    memory="full_recurrent"  Q = ω( ψ(φ(o_{t-k+1}), ..., φ(o_t)) )  R2D2-style: φ re-run on k frames

The network never calls ϑ in `call`: RISE's embeddings arrive precomputed (stored in replay at
acting time). ϑ lives here only so that it is saved and restored with the network, and the policy
calls it through `embed_frames` once per frame.
fusion="concat" replaces the gate by concatenating φ and ψ features (an ablation from the paper).

With the IQN head (Beyond The Rainbow's), RISE's gate multiplies φ(o_t) *before* the τ-embedding
product: Z_τ(s, ·) = ω( σ(Ω(ψ(...))) ⊙ φ(o_t) ⊙ ReLU(W cos(π i τ)) ). `quantile_values` gives the
learner those quantiles; `call` gives Q = their mean (see heads.py for taus and noise by `training`).
`training=True` means the stochastic network BTR acts and learns with: fresh noise in noisy layers,
sampled taus, a spectral-norm power iteration; `training=False` is the deterministic network of
evaluation and export.
"""
from __future__ import annotations

from typing import Dict

import tensorflow as tf
from tf_agents.networks import network
from tf_agents.specs import tensor_spec

from rise_tf.networks.choices import FUSIONS, MEMORIES
from rise_tf.networks.encoders import make_frozen_encoder, make_learnable_encoder
from rise_tf.networks.heads import make_head
from rise_tf.networks.recurrent import MaskedRecurrentCore


def network_input_spec(memory: str, *, frame_size: int, frame_stack: int, window_length: int,
                       embedding_size: int) -> Dict[str, tf.TensorSpec]:
    """What the network reads for one decision (the policy state and the replay sampler build it)."""
    if memory not in MEMORIES:
        raise ValueError(f"unknown memory {memory!r}; choose one of {MEMORIES}")
    spec = {}
    if memory in ("none", "rise"):
        spec["frame_stack"] = tf.TensorSpec([frame_size, frame_size, frame_stack], tf.uint8, "frame_stack")
    if memory == "rise":
        spec["embedding_window"] = tf.TensorSpec([window_length, embedding_size], tf.float32, "embedding_window")
    if memory == "full_recurrent":
        spec["frame_window"] = tf.TensorSpec([window_length, frame_size, frame_size], tf.uint8, "frame_window")
    if memory != "none":
        spec["window_mask"] = tf.TensorSpec([window_length], tf.float32, "window_mask")
    return spec


def input_frame_size(spec: Dict[str, tf.TensorSpec]) -> int:
    """Frame height/width read from a network input spec (frame_stack [H, W, S] or frame_window [k, H, W])."""
    return spec["frame_stack"].shape[0] if "frame_stack" in spec else spec["frame_window"].shape[1]


class RiseQNetwork(network.Network):
    def __init__(self, input_tensor_spec, *, num_actions: int, memory: str, learnable_encoder: str,
                 width_scale: int, impala_pool_size: int, spectral_norm: bool, frozen_encoder,
                 embedding_size: int, frozen_seed: int, core: str, core_units: int, core_gate_init: str, fusion: str, head: str,
                 head_hidden_units: int, noisy: bool, noisy_sigma0: float, num_cosines: int, num_taus: int,
                 name: str = "RiseQNetwork"):
        super().__init__(input_tensor_spec=input_tensor_spec, state_spec=(), name=name)
        if memory not in MEMORIES:
            raise ValueError(f"unknown memory {memory!r}; choose one of {MEMORIES}")
        if fusion not in FUSIONS:
            raise ValueError(f"unknown fusion {fusion!r}; choose one of {FUSIONS}")
        if num_actions < 1:
            raise ValueError(f"num_actions must be >= 1, got {num_actions}")
        self.memory = memory
        self.fusion = fusion
        self.num_actions = num_actions
        self.learnable_encoder = make_learnable_encoder(
            learnable_encoder, width_scale=width_scale, impala_pool_size=impala_pool_size,
            spectral_norm=spectral_norm)
        self.frozen_encoder = None
        self.core = None
        self.gate = None
        if memory == "rise":
            # A name builds one of the seeded encoders; a layer (snapshot, Keras application) comes ready.
            self.frozen_encoder = frozen_encoder if isinstance(frozen_encoder, tf.keras.layers.Layer) else (
                make_frozen_encoder(frozen_encoder, embedding_size=embedding_size, seed=frozen_seed))
        if memory != "none":
            self.core = MaskedRecurrentCore(units=core_units, core=core, gate_init=core_gate_init)
        if memory == "rise" and fusion == "gate":
            # Ω: lifts ψ's output to φ's width; its sigmoid gates φ(o_t) elementwise.
            self.gate = tf.keras.layers.Dense(self.learnable_encoder.output_size, activation="sigmoid",
                                              name="gate")
        self.head = make_head(head, num_actions=num_actions, hidden_units=head_hidden_units, noisy=noisy,
                              noisy_sigma0=noisy_sigma0, num_cosines=num_cosines, num_taus=num_taus)
        # Without noise, spectral norm's power iteration or sampled taus, training=True computes the same
        # Q as training=False: a learner may reuse one pass for the other.
        self.training_is_deterministic = not (noisy or spectral_norm or self.head.distributional)

    @property
    def distributional(self) -> bool:
        """True when the head gives quantiles (`quantile_values`), not just one Q per action."""
        return self.head.distributional

    @property
    def trainable_variables(self):
        # ϑ is frozen by construction; filtering here as well keeps it out even if someone flips
        # `trainable` on its layer.
        frozen = {id(v) for v in (self.frozen_encoder.variables if self.frozen_encoder else [])}
        return [v for v in super().trainable_variables if id(v) not in frozen]

    def create_variables(self, input_tensor_spec=None, training=False):
        """Builds φ, ψ, Ω, ω and also ϑ, which `call` never touches (copies must match variables)."""
        output_spec = super().create_variables(input_tensor_spec, training=training)
        if self.frozen_encoder is not None and not self.frozen_encoder.built:
            frame_size = input_frame_size(self.input_tensor_spec)
            self.embed_frames(tf.zeros([1, frame_size, frame_size], tf.uint8))
        return output_spec

    def embed_frames(self, frames):
        """ϑ over single frames: uint8 [B, H, W] -> float32 [B, E]. Acting time only."""
        if self.frozen_encoder is None:
            raise ValueError(f"memory={self.memory!r} has no frozen encoder")
        return self.frozen_encoder(frames)

    def features(self, observation, training=False):
        """What the head reads: φ's features (gated by RISE's memory) or ψ's output. [B, F]"""
        if self.memory == "full_recurrent":
            frames = observation["frame_window"]  # [B, k, H, W]
            window_length, height, width = frames.shape[1], frames.shape[2], frames.shape[3]
            # The cost RISE avoids: φ runs over every frame of the window, k times the work.
            per_frame = self.learnable_encoder(tf.reshape(frames, [-1, height, width, 1]), training=training)  # [B*k, F]
            per_frame = tf.reshape(per_frame, [-1, window_length, per_frame.shape[-1]])  # [B, k, F]
            return self.core(per_frame, observation["window_mask"])  # [B, U]
        features = self.learnable_encoder(observation["frame_stack"], training=training)  # [B, F]
        if self.memory == "rise":
            memory = self.core(observation["embedding_window"], observation["window_mask"])  # [B, U]
            if self.fusion == "gate":
                return self.gate(memory) * features  # before the head (and before IQN's τ product)
            return tf.concat([features, memory], axis=-1)
        return features

    def call(self, observation, step_type=None, network_state=(), training=False):
        return self.head(self.features(observation, training), training=training), network_state  # [B, A]

    def quantile_values(self, observation, training=False):
        """IQN only: (quantile values [B, N, A], their taus [B, N]); taus sampled when training."""
        if not self.distributional:
            raise ValueError("quantile_values needs a distributional head (head='iqn')")
        return self.head.sampled_quantiles(self.features(observation, training), training)


def build_network(input_spec, **kwargs) -> RiseQNetwork:
    """Constructs a RiseQNetwork (keyword arguments only) and creates all its variables."""
    net = RiseQNetwork(input_spec, **kwargs)
    net.create_variables(input_spec)
    return net


def spec_with_batch(spec, batch_size: int):
    """Zeros shaped like `spec` with a leading batch dimension (for building and tests)."""
    return tensor_spec.zero_spec_nest(spec, outer_dims=(batch_size,))
