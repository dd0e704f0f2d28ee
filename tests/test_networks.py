import numpy as np
import pytest
import tensorflow as tf

from rise_tf.networks.encoders import adaptive_max_pool, area_resize_matrix, make_frozen_encoder
from rise_tf.networks.recurrent import MaskedRecurrentCore
from rise_tf.networks.rise_q_network import spec_with_batch

from conftest import network_for, spec_for


def random_inputs(spec, batch, seed=0):
    rng = np.random.default_rng(seed)
    out = {}
    for key, s in spec.items():
        shape = (batch,) + tuple(s.shape)
        if s.dtype == tf.uint8:
            out[key] = tf.constant(rng.integers(0, 256, shape), tf.uint8)
        elif key == "window_mask":
            out[key] = tf.ones(shape)
        else:
            out[key] = tf.constant(rng.standard_normal(shape), tf.float32)
    return out


@pytest.mark.parametrize("memory", ["none", "rise", "full_recurrent"])
@pytest.mark.parametrize("encoder", ["nature", "impala"])
def test_q_values_have_one_column_per_action(memory, encoder):
    spec = spec_for(memory, window_length=4, embedding_size=16)
    net = network_for(spec, 5, memory=memory, learnable_encoder=encoder)
    q_values, state = net(random_inputs(spec, 3))
    assert q_values.shape == (3, 5) and state == ()
    assert np.all(np.isfinite(q_values.numpy()))


@pytest.mark.parametrize("frozen", ["random_projection", "random_cnn", "pooled_pixels"])
def test_frozen_encoder_is_not_trainable_is_saved_and_is_seeded(frozen):
    spec = spec_for("rise", embedding_size=16)
    net = network_for(spec, 3, frozen_encoder=frozen, frozen_seed=7)
    frozen_ids = {id(v) for v in net.frozen_encoder.variables}
    assert frozen_ids and not frozen_ids & {id(v) for v in net.trainable_variables}
    assert frozen_ids <= {id(v) for v in net.variables}  # checkpointed with the network
    frames = tf.constant(np.random.default_rng(0).integers(0, 256, (2, 84, 84)), tf.uint8)
    embedding = net.embed_frames(frames)
    assert embedding.shape == (2, 16)
    again = network_for(spec, 3, frozen_encoder=frozen, frozen_seed=7)
    np.testing.assert_array_equal(again.embed_frames(frames), embedding)  # same seed, same ϑ
    if frozen != "pooled_pixels":  # pooled pixels has no random weights
        other = network_for(spec, 3, frozen_encoder=frozen, frozen_seed=8)
        assert not np.allclose(other.embed_frames(frames), embedding)


def test_training_never_calls_the_frozen_encoder():
    spec = spec_for("rise", embedding_size=16)
    net = network_for(spec, 3)
    calls = []
    original = net.frozen_encoder.call
    net.frozen_encoder.call = lambda frames: calls.append(1) or original(frames)
    with tf.GradientTape() as tape:
        q_values, _ = net(random_inputs(spec, 2))
        first_action = q_values[:, 0]  # (the sum over actions cancels a dueling head's advantage stream)
    gradients = tape.gradient(first_action, net.trainable_variables)
    assert calls == []
    # every trainable weight (φ, ψ, Ω, ω) is trained through the gated Q, and ϑ has none
    assert net.trainable_variables and not any("frozen" in v.name for v in net.trainable_variables)
    for variable, gradient in zip(net.trainable_variables, gradients):
        assert gradient is not None, f"{variable.name} gets no gradient"
        assert np.isfinite(tf.convert_to_tensor(gradient).numpy()).all(), variable.name
        assert np.any(tf.convert_to_tensor(gradient).numpy() != 0), f"{variable.name} gets a zero gradient"


def test_masked_steps_do_not_change_the_recurrent_state():
    """A left-padded window gives exactly the output of the cell run over the valid suffix only."""
    for kind in ("lstm", "gru"):
        core = MaskedRecurrentCore(units=6, core=kind, gate_init="keras")
        rng = np.random.default_rng(1)
        valid = tf.constant(rng.standard_normal((2, 3, 4)), tf.float32)
        garbage = tf.constant(rng.standard_normal((2, 5, 4)) * 100, tf.float32)
        padded = tf.concat([garbage, valid], axis=1)  # 8 steps, first 5 masked
        mask = tf.constant([[0] * 5 + [1] * 3] * 2, tf.float32)
        short = core(valid, tf.ones((2, 3)))
        np.testing.assert_allclose(core(padded, mask), short, rtol=1e-5, atol=1e-6)
        assert not np.allclose(core(padded, tf.ones((2, 8))), short)


def test_gate_and_concat_fusions_differ_in_shape_of_features():
    spec = spec_for("rise", embedding_size=16)
    gate = network_for(spec, 4, fusion="gate")
    concat = network_for(spec, 4, fusion="concat")
    assert gate.gate is not None and concat.gate is None
    assert concat(random_inputs(spec, 2))[0].shape == (2, 4)


def test_area_resize_matrix_averages_and_preserves_mass():
    matrix = area_resize_matrix(84, 16)
    np.testing.assert_allclose(matrix.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(area_resize_matrix(4, 2), [[0.5, 0.5, 0, 0], [0, 0, 0.5, 0.5]])


def test_adaptive_max_pool_matches_bins():
    x = tf.reshape(tf.range(25, dtype=tf.float32), [1, 5, 5, 1])
    pooled = adaptive_max_pool(x, 2)[0, :, :, 0].numpy()
    # bins over 5 cells into 2: [0, 3) and [2, 5)
    np.testing.assert_array_equal(pooled, [[12, 14], [22, 24]])


def test_invalid_choices_raise_clear_errors():
    with pytest.raises(ValueError, match="square"):
        make_frozen_encoder("pooled_pixels", embedding_size=50, seed=0)
    with pytest.raises(ValueError, match="unknown frozen encoder"):
        make_frozen_encoder("imagenet", embedding_size=16, seed=0)
    with pytest.raises(ValueError, match="unknown memory"):
        spec_for("transformer")
    spec = spec_for("rise", embedding_size=16)
    with pytest.raises(ValueError, match="unknown head"):
        network_for(spec, 3, head="distributional-ish")
    with pytest.raises(ValueError, match="unknown recurrent core"):
        network_for(spec, 3, core="transformer")
    with pytest.raises(ValueError, match="Nature CNN has none"):
        network_for(spec, 3, spectral_norm=True)


def test_zero_inputs_helper_has_batch_axis():
    spec = spec_for("full_recurrent", window_length=3)
    zeros = spec_with_batch(spec, 2)
    assert zeros["frame_window"].shape == (2, 3, 84, 84) and zeros["window_mask"].shape == (2, 3)


def _cue_sensitivity(core, window, mask):
    """|d h_k / d x_first| / |d h_k / d x_last|: how much of the first step reaches the last output."""
    inputs = tf.Variable(window)
    with tf.GradientTape() as tape:
        hidden = core(inputs, mask)
        out = tf.reduce_sum(hidden * tf.constant(np.random.default_rng(0).standard_normal(hidden.shape), tf.float32))
    grads = tape.gradient(out, inputs).numpy()[0]
    return np.linalg.norm(grads[0]) / np.linalg.norm(grads[-1])


def test_gru_forgets_the_window_at_keras_init_and_chrono_init_fixes_it():
    """Why the GRU core did not learn MemoryCorridor: with Keras' zero biases a GRU keeps about half its
    state per step, so 10 steps later the cue's influence is ~10x smaller than in the LSTM (whose
    forget bias starts at 1). Chrono init restores it (means over 4 seeds)."""
    window = tf.constant(np.random.default_rng(3).standard_normal((1, 10, 16)) * 0.2, tf.float32)
    mask = tf.ones((1, 10))

    def mean_sensitivity(kind, gate_init):
        values = []
        for seed in range(4):
            tf.keras.utils.set_random_seed(seed)
            values.append(_cue_sensitivity(MaskedRecurrentCore(units=32, core=kind, gate_init=gate_init), window, mask))
        return float(np.mean(values))

    lstm, gru = mean_sensitivity("lstm", "keras"), mean_sensitivity("gru", "keras")
    gru_chrono = mean_sensitivity("gru", "chrono")
    assert gru < lstm / 4, (gru, lstm)
    assert gru_chrono > 4 * gru, (gru_chrono, gru)


def test_chrono_init_sets_the_memory_gates_from_the_window_length():
    for kind in ("lstm", "gru"):
        tf.keras.utils.set_random_seed(0)
        core = MaskedRecurrentCore(units=64, core=kind, gate_init="chrono")
        core(tf.zeros((2, 16, 8)), tf.ones((2, 16)))
        bias = core.cell.bias.numpy()
        memory_gate = bias[64:128] if kind == "lstm" else bias[0, :64]
        assert memory_gate.min() >= 0.0 and memory_gate.max() <= np.log(15.0) + 1e-6 and memory_gate.std() > 0.3
        if kind == "lstm":
            np.testing.assert_allclose(bias[:64], -memory_gate)  # input gate = - forget gate
            assert np.all(bias[128:] == 0)
        else:
            assert np.all(bias[0, 64:] == 0) and np.all(bias[1] == 0)
    with pytest.raises(ValueError, match="gate_init"):
        MaskedRecurrentCore(units=4, core="gru", gate_init="orthogonal")
