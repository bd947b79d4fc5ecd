"""Tests of rbcore.resnet: the paper's residual network against plain NumPy, its size and FLOPs."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from rbcore.model import build_model, count_params, model_config
from rbcore.pooling import max_pool_2x2_same
from rbcore.resnet import FRN, SCSE, PaperResNet, ResidualBlock, _dense, forward_flops

# ------------------------------------------------------------------ NumPy reference


def _np(p):
    return np.asarray(p[...], np.float64)


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def conv_same(x, layer):
    """Keras Conv2D(padding='same') in NumPy: TF's pads (total max((o-1)s+k-n, 0), the floor of
    half before), written from TensorFlow's documentation, not from lax."""
    k, b, s = _np(layer.kernel), _np(layer.bias), layer.strides[0]
    kh, _, _, cout = k.shape
    n = x.shape[1]
    o = -(-n // s)
    total = max((o - 1) * s + kh - n, 0)
    lo, hi = total // 2, total - total // 2
    xp = np.pad(x, ((0, 0), (lo, hi), (lo, hi), (0, 0)))
    y = np.zeros((x.shape[0], o, o, cout)) + b
    for i in range(kh):
        for j in range(kh):
            y += xp[:, i : i + s * o : s, j : j + s * o : s, :] @ k[i, j]
    return y


def frn_np(x, m):
    nu2 = (x**2).sum(axis=(1, 2), keepdims=True)  # the SUM, as block.py codes it
    y = x / np.sqrt(nu2 + 1e-6 + np.log1p(np.exp(_np(m.eps))))
    return np.maximum(_np(m.gamma) * y + _np(m.beta), _np(m.tau))


def scse_np(x, m):
    spatial = sigmoid(conv_same(x, m.spatial))
    s = x.mean(axis=(1, 2))
    hidden = np.maximum(s @ _np(m.squeeze.kernel) + _np(m.squeeze.bias), 0)
    channel = sigmoid(hidden @ _np(m.excite.kernel) + _np(m.excite.bias))[:, None, None, :]
    return spatial * x + channel * x


def block_np(x, m):
    h = conv_same(frn_np(x, m.frn1), m.conv1)
    h = scse_np(conv_same(frn_np(h, m.frn2), m.conv2), m.scse)
    return (x if m.shortcut is None else conv_same(x, m.shortcut)) + h


def pool_np(x):
    b, n, _, c = x.shape
    o = -(-n // 2)
    xp = np.pad(x, ((0, 0), (0, 2 * o - n), (0, 2 * o - n), (0, 0)), constant_values=-np.inf)
    return xp.reshape(b, o, 2, o, 2, c).max(axis=(2, 4))


def resnet_np(x, m):
    relu = lambda z: np.maximum(z, 0)  # noqa: E731
    h = relu(conv_same(x, m.conv_in))
    for conv in m.feature_convs:
        h = relu(conv_same(h, conv))
    h = block_np(relu(conv_same(pool_np(h), m.conv64)), m.block64)
    h = block_np(relu(conv_same(pool_np(h), m.conv128)), m.block128)
    h = block_np(block_np(h, m.block256s2), m.block256).mean(axis=(1, 2))
    return (h @ _np(m.dense.kernel) + _np(m.dense.bias))[:, 0]


def _randomize(module, seed):
    """Every FRN/bias parameter away from its init (gamma 1, beta = tau = eps = 0), so the
    comparisons see each of them."""
    rng = np.random.default_rng(seed)
    for path, p in nnx.iter_graph(module):
        if isinstance(p, nnx.Param) and path[-1] in ("gamma", "beta", "tau", "eps", "bias"):
            base = 1.0 if path[-1] == "gamma" else 0.0
            p.set_value(jnp.asarray(base + 0.3 * rng.normal(size=p.shape), jnp.float32))


# ------------------------------------------------------------------------- the tests


@nnx.jit
def run(module, x):
    """module(x), jitted: one compilation instead of one per operation."""
    return module(x)


def test_frn_and_scse_match_numpy():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 6, 6, 8)).astype(np.float32)
    frn, scse = FRN(8), SCSE(8, rngs=nnx.Rngs(1))
    _randomize(frn, 2)
    _randomize(scse, 3)
    np.testing.assert_allclose(
        run(frn, jnp.asarray(x)), frn_np(x.astype(np.float64), frn), rtol=1e-5
    )
    np.testing.assert_allclose(run(scse, jnp.asarray(x)), scse_np(x.astype(np.float64), scse),
                               rtol=1e-5, atol=1e-6)  # fmt: skip


@pytest.mark.parametrize(
    "c_in, filters, strides, shortcut, projects",
    [
        (128, 256, 2, "as_coded", True),  # the 8 -> 4 block: 'same' pads (0, 1) for stride 2
        (64, 64, 1, "as_coded", True),  # the code projects even here (block.py:77)
        (64, 64, 1, "as_intended", False),  # identity
        (64, 64, 2, "as_intended", True),  # 3x3 strided shortcut (block.py:82-86)
    ],
)
def test_residual_block_matches_numpy(c_in, filters, strides, shortcut, projects):
    rng = np.random.default_rng(4)
    x = rng.normal(size=(2, 8, 8, c_in)).astype(np.float32)
    m = ResidualBlock(c_in, filters, strides=strides, projection_shortcut=shortcut,
                      rngs=nnx.Rngs(5))  # fmt: skip
    _randomize(m, 6)
    assert (m.shortcut is not None) == projects
    if projects:
        assert m.shortcut.kernel.shape[0] == (3 if shortcut == "as_intended" else 1)
    got = run(m, jnp.asarray(x))
    assert got.shape == (2, 8 // strides, 8 // strides, filters)
    np.testing.assert_allclose(got, block_np(x.astype(np.float64), m), rtol=2e-4, atol=2e-5)


def test_same_pool_matches_numpy():
    x = np.random.default_rng(7).normal(size=(2, 15, 15, 4)).astype(np.float32)
    got = max_pool_2x2_same(jnp.asarray(x))
    assert got.shape == (2, 8, 8, 4)
    np.testing.assert_array_equal(got, pool_np(x))


@pytest.mark.parametrize("shortcut", ["as_coded", "as_intended"])
def test_whole_network_matches_numpy(shortcut):
    m = build_model({"architecture": "PaperResNet", "projection_shortcut": shortcut}, seed=3)
    _randomize(m, 8)
    x = np.random.default_rng(9).uniform(size=(2, 29, 29, 3)).astype(np.float32)
    np.testing.assert_allclose(run(m, jnp.asarray(x)), resnet_np(x.astype(np.float64), m),
                               rtol=1e-3, atol=1e-4)  # fmt: skip
    assert jax.eval_shape(lambda x: m.trunk(x, "phase"), jnp.asarray(x)).shape == (2, 256)
    with pytest.raises(ValueError, match="form must be"):
        m.trunk(jnp.asarray(x), "winograd")


def test_parameter_count_as_coded_and_as_intended():
    paper_two_logits = 2_401_638  # the count of the code's network (two logits)
    m = build_model({"architecture": "PaperResNet"})
    # One logit: the dense layer 256 -> 1 (257) instead of 256 -> 2 (514).
    assert count_params(m) == paper_two_logits - (256 * 2 + 2) + (256 * 1 + 1) == 2_401_381
    m.dense = _dense(256, 2, nnx.Rngs(0))  # the code's two-logit head, built
    assert count_params(m) == paper_two_logits
    # As intended: the three blocks that change neither channels nor stride lose their 1x1
    # projection (C*C + C each); the 128 -> 256 block keeps its own.
    intended = build_model({"architecture": "PaperResNet", "projection_shortcut": "as_intended"})
    assert count_params(intended) == 2_401_381 - sum(c * c + c for c in (64, 128, 256))


def test_forward_flops_count():
    # (output size, kernel, C_in, C_out) of every convolution, read off the architecture table
    # in rbcore/resnet.py's docstring, then the dense layers (scSE's and the classifier).
    convs = [(29, 5, 3, 32)] + [(29, 3, 32, 32)] * 4 + [(15, 3, 32, 64), (8, 3, 64, 128)]
    for n, c, f, s in ((15, 64, 64, 1), (8, 128, 128, 1), (8, 128, 256, 2), (4, 256, 256, 1)):
        o = n // s
        convs += [(o, 3, c, c), (o, 3, c, f), (o, 1, f, 1), (o, 1, c, f)]
    dense = [(c, c // 2) for c in (64, 128, 256, 256)] * 2 + [(256, 1)]
    expect = sum(2 * o * o * k * k * a * b for o, k, a, b in convs) + sum(
        2 * a * b for a, b in dense
    )
    got = forward_flops(build_model({"architecture": "PaperResNet"}))
    assert sum(got.values()) == expect
    assert 213e6 < expect < 215e6  # the 214 MFLOP per sample
    assert got["conv_in"] == 2 * 29 * 29 * 5 * 5 * 3 * 32
    # Without the taps on 'same' padding zeros: 29 rows x 5 taps less 2 + 1 + 1 + 2 = 6 outside.
    inside = forward_flops(build_model({"architecture": "PaperResNet"}), count_padding=False)
    assert inside["conv_in"] == 2 * (29 * 5 - 6) ** 2 * 3 * 32
    assert inside["dense"] == got["dense"] and 184e6 < sum(inside.values()) < 186e6


def test_config_round_trip_and_errors():
    m = PaperResNet(projection_shortcut="as_intended", rngs=nnx.Rngs(0))
    assert model_config(m) == {"architecture": "PaperResNet", "projection_shortcut": "as_intended"}
    assert model_config(build_model(model_config(m))) == model_config(m)
    with pytest.raises(ValueError, match="projection_shortcut must be one of"):
        build_model({"architecture": "PaperResNet", "projection_shortcut": "sometimes"})
    with pytest.raises(ValueError, match="unknown PaperResNet config fields"):
        build_model({"architecture": "PaperResNet", "dropout_rate": 0.1})
