"""The fast paths give the numbers of the plain formulation (issue "every stage near the
compute bound").

The plain reference is the CNN written with XLA's own convolution, reshape-and-max pooling
and JAX's automatic gradients, on the model's parameters; the fast paths are what rbcore
runs: the custom gradients of rbcore.model, the first convolutions of several models in one
product (`shared_input_logits`, used by the Scorer) and the convolutional layers in pieces
(`rbcore.train.step.in_pieces`). Tolerances: float32 sums in another order, ~1e-6 relative.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from rbcore import inference
from rbcore.model import build_model, shared_input_logits
from rbcore.preprocess import normalize_jax
from rbcore.train import TrainConfig
from rbcore.train import step as train_step_module
from rbcore.train.losses import bce
from rbcore.train.step import in_pieces, loss_fn, step_keys
from rbcore.vat import virtual_adversarial_loss


def _plain_logits(p, x):
    """The CNN of rbcore.model in plain JAX (inference mode), from its parameter state p."""

    def conv(x, layer):
        y = jax.lax.conv_general_dilated(
            x, layer["kernel"], (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC")
        )
        return y + layer["bias"]

    def pool(x):
        b, h, w, c = x.shape
        return x[:, : h // 2 * 2, : w // 2 * 2].reshape(b, h // 2, 2, w // 2, 2, c).max((2, 4))

    x = pool(jax.nn.relu(conv(x, p["conv1"])))
    x = pool(jax.nn.relu(conv(x, p["conv2"]))).reshape(x.shape[0], -1)
    for name in ("dense1", "dense2"):
        x = jax.nn.relu(x @ p[name]["kernel"] + p[name]["bias"])
    return (x @ p["dense3"]["kernel"] + p["dense3"]["bias"])[:, 0]


def _plain_params(params):
    return nnx.to_pure_dict(params)


def _images(n, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(100.0, 10.0, size=(n, 29, 29, 3)).astype(np.float32)
    x[0, 3, 4, 1] = np.nan  # a masked pixel, as in real cutouts
    return x


def test_logits_of_every_fast_path_match_the_plain_cnn():
    models = [build_model(seed=s) for s in (0, 1)]
    for m in models:
        m.eval()
    x = _images(128, 0)
    xn = normalize_jax(x)
    plain = [_plain_logits(_plain_params(nnx.state(m, nnx.Param)), xn) for m in models]
    scale = max(float(jnp.abs(p).max()) for p in plain)
    tol = dict(rtol=1e-5, atol=1e-6 * scale)
    for m, p in zip(models, plain, strict=True):
        np.testing.assert_allclose(m(xn), p, **tol)
        np.testing.assert_allclose(in_pieces(m, xn, 32), p, **tol)
    for got, p in zip(shared_input_logits(models, xn), plain, strict=True):
        np.testing.assert_allclose(got, p, **tol)
    scored = inference.Scorer({"a": models[0], "b": models[1]}, batch_size=64)(x)
    np.testing.assert_allclose(scored["a"], plain[0], **tol)
    np.testing.assert_allclose(scored["b"], plain[1], **tol)


def _plain_loss(p, xl, yl, xu, key_vat, config):
    """loss_fn's arithmetic for dropout 0, written with the plain CNN."""
    logits = _plain_logits(p, normalize_jax(xl))
    loss = bce(logits, yl.astype(jnp.float32), jnp.ones_like(logits))
    x_all = jnp.concatenate([normalize_jax(xl), normalize_jax(xu)])
    fn = functools.partial(_plain_logits, p)
    lds = virtual_adversarial_loss(
        fn, x_all, key=key_vat, clean_logits=fn(x_all), eps=config.eps, xi=config.xi
    )
    return loss + config.alpha * lds


def _grads_and_loss(config, xl, yl, xu, dropout_rate):
    model = build_model({"dropout_rate": dropout_rate}, seed=0)
    model.train()
    gd_train, params, rest = nnx.split(model, nnx.Param, ...)
    model.eval()
    gd_eval = nnx.split(model, nnx.Param, ...)[0]
    keys = step_keys(config.seed, 0)
    kwargs = dict(config=config, graphdefs=(gd_train, gd_eval), eps=config.eps, alpha=1.0)
    grads, aux = jax.jit(
        lambda p: jax.grad(loss_fn, has_aux=True)(p, rest, (xl, yl, xu), keys, **kwargs)
    )(params)
    return params, keys, _plain_params(grads), aux


def _assert_close_trees(got, want, rel):
    for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        np.testing.assert_allclose(g, w, rtol=rel, atol=rel * float(jnp.abs(w).max()))


def test_one_vat_training_step_matches_the_plain_cnn():
    config = TrainConfig(alpha=1.0, batch_size=128, unlabeled_batch_size=128, dropout_rate=0.0)
    xl, xu = _images(128, 1), _images(128, 2)
    yl = jnp.asarray(np.random.default_rng(3).integers(0, 2, 128), jnp.int32)
    params, (_, key_vat), grads, aux = _grads_and_loss(config, xl, yl, xu, 0.0)
    p = _plain_params(params)
    plain_loss, plain_grads = jax.jit(
        jax.value_and_grad(lambda p: _plain_loss(p, xl, yl, xu, key_vat, config))
    )(p)
    assert aux["lds"] > 0  # the VAT term is present, so its gradient is compared too
    np.testing.assert_allclose(aux["loss"], plain_loss, rtol=1e-5)
    _assert_close_trees(grads, plain_grads, 1e-4)


def test_pieces_keep_the_dropout_mask_and_the_step(monkeypatch):
    # With dropout, the step in pieces (the default) equals the step in one pass: the mask
    # is drawn once for the whole batch.
    config = TrainConfig(alpha=1.0, batch_size=128, unlabeled_batch_size=128)
    xl, xu = _images(128, 4), _images(128, 5)
    yl = jnp.asarray(np.random.default_rng(6).integers(0, 2, 128), jnp.int32)
    assert 128 % train_step_module.CONV_PIECE == 0 and train_step_module.CONV_PIECE < 128
    *_, grads, aux = _grads_and_loss(config, xl, yl, xu, config.dropout_rate)
    monkeypatch.setattr(train_step_module, "CONV_PIECE", 10**9)  # one pass
    *_, grads_one, aux_one = _grads_and_loss(config, xl, yl, xu, config.dropout_rate)
    np.testing.assert_allclose(aux["loss"], aux_one["loss"], rtol=1e-6)
    _assert_close_trees(grads, grads_one, 1e-5)


def test_phase_form_of_the_first_layer_matches_the_direct_one_with_gradients():
    # conv2d_1 + ReLU + pool in phase form (the model's __call__ and the Scorer) against
    # the direct form (the training step's trunk): values and the gradients in x, kernel and
    # bias. Rows 10-20 of the first image are masked (0 after normalization): every window
    # there ties exactly (the bias alone), so the first-maximum rule of both forms is
    # compared too. (A constant non-zero patch can tie in one form and not in the other:
    # the sums are taken in another order.)
    from rbcore.model import _direct_pooled_conv1 as direct
    from rbcore.model import _pooled_conv1

    rng = np.random.default_rng(7)
    x = normalize_jax(_images(16, 8))
    x = x.at[0, 10:20].set(0.0)
    kernel = jnp.asarray(rng.normal(0, 0.2, (5, 5, 3, 32)), jnp.float32)
    bias = jnp.asarray(rng.normal(0, 0.1, 32), jnp.float32)
    weight = jnp.asarray(rng.normal(size=(12, 12, 32)), jnp.float32)

    def loss(form):
        return jax.jit(jax.value_and_grad(lambda *a: (form(*a) * weight).sum(), (0, 1, 2)))

    (v_phase, g_phase), (v_direct, g_direct) = (
        loss(f)(x, kernel, bias) for f in (_pooled_conv1, direct)
    )
    np.testing.assert_allclose(_pooled_conv1(x, kernel, bias), direct(x, kernel, bias), atol=1e-5)
    np.testing.assert_allclose(v_phase, v_direct, rtol=1e-5)
    tied = direct(x, kernel, bias)[0, 6:9]  # windows inside the constant rows
    assert float(tied.max()) > 0  # ties of positive values: the gradient's rule matters
    _assert_close_trees(g_phase, g_direct, 1e-5)
    assert float(jnp.abs(g_phase[0][:, 28]).max()) == 0.0  # row 28 reaches only row 24
