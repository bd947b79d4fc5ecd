"""The talk's CNN: parameter count, layer shapes, dropout only in training mode."""

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from rbcore.model import RBCNN, build_model, count_params, model_config

# Output shapes and parameter counts from the talk's table (Keras summary, batch dim omitted).
TALK_TABLE = {
    "conv2d_1": ((25, 25, 32), 2432),
    "max_pooling2d_1": ((12, 12, 32), 0),
    "conv2d_2": ((10, 10, 64), 18496),
    "max_pooling2d_2": ((5, 5, 64), 0),
    "dropout_1": ((5, 5, 64), 0),
    "flatten_1": ((1600,), 0),
    "dense_1": ((128,), 204928),
    "dense_2": ((64,), 8256),
    "dense_3": ((1,), 65),
}


def test_total_parameters_match_talk():
    assert count_params(build_model()) == 234_177


def test_layer_output_shapes_match_talk():
    feats = build_model().features(jnp.zeros((2, 29, 29, 3)))
    assert list(feats) == list(TALK_TABLE)
    for name, (shape, _) in TALK_TABLE.items():
        assert feats[name].shape == (2, *shape), name


def test_layer_parameter_counts_match_talk():
    m = build_model()
    layers = {
        "conv2d_1": m.conv1,
        "conv2d_2": m.conv2,
        "dense_1": m.dense1,
        "dense_2": m.dense2,
        "dense_3": m.dense3,
    }
    for name, layer in layers.items():
        assert count_params(layer) == TALK_TABLE[name][1], name


def test_one_logit_per_sample():
    out = build_model()(jnp.ones((5, 29, 29, 3)))
    assert out.shape == (5,)
    assert out.dtype == jnp.float32


def test_dropout_only_in_training_mode():
    m = RBCNN(dropout_rate=0.5, rngs=nnx.Rngs(0))
    x = jnp.asarray(np.random.default_rng(0).random((8, 29, 29, 3), dtype=np.float32))
    m.eval()
    a, b = m(x), m(x)
    np.testing.assert_array_equal(a, b)
    m.train()
    c, d = m(x), m(x)
    assert not np.allclose(c, d), "dropout must change the output between training passes"
    assert not np.allclose(a, c)
    m.eval()
    np.testing.assert_array_equal(m(x), a)


def test_config_round_trip_and_errors():
    m = build_model({"architecture": "RBCNN", "dropout_rate": 0.1})
    assert model_config(m) == {"architecture": "RBCNN", "dropout_rate": 0.1}
    with pytest.raises(ValueError, match="unknown architecture"):
        build_model({"architecture": "ResNet"})
    with pytest.raises(ValueError, match="unknown RBCNN config"):
        build_model({"architecture": "RBCNN", "width": 3})
