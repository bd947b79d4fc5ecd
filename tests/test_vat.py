"""Tests of rbcore.vat: the KL, the normalization, the power iteration and the LDS."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from rbcore.model import build_model
from rbcore.preprocess import normalize
from rbcore.vat import (
    DEFAULT_XI,
    kl_divergence_with_logits,
    l2_normalize,
    virtual_adversarial_loss,
    virtual_adversarial_perturbation,
)


def _kl_reference(a, b):
    """Bernoulli KL(q || p) in float64 from probabilities (fine for moderate logits)."""
    q, p = 1 / (1 + np.exp(-a)), 1 / (1 + np.exp(-b))
    return q * np.log(q / p) + (1 - q) * np.log((1 - q) / (1 - p))


@pytest.fixture(scope="module")
def cnn():
    """(logits function of (state, x), state, x): parameters as arguments, not constants."""
    model = build_model(seed=0)
    model.eval()
    graphdef, state = nnx.split(model)
    x = normalize(np.random.default_rng(0).normal(size=(8, 29, 29, 3)).astype(np.float32))
    return (lambda st, z: nnx.merge(graphdef, st)(z)), state, jnp.asarray(x)


def test_kl_matches_reference_and_is_finite_at_extreme_logits():
    rng = np.random.default_rng(1)
    a, b = rng.normal(0, 3, 200), rng.normal(0, 3, 200)
    got = np.asarray(
        kl_divergence_with_logits(jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32))
    )
    np.testing.assert_allclose(got, _kl_reference(a, b), rtol=1e-3, atol=1e-5)

    extreme = jnp.array([50.0, -50.0, 50.0, -50.0, 0.0])
    other = jnp.array([-50.0, 50.0, 50.0, -50.0, 50.0])
    kl = kl_divergence_with_logits(extreme, other)
    grad = jax.grad(lambda p: kl_divergence_with_logits(extreme, p).sum())(other)
    assert np.isfinite(np.asarray(kl)).all() and np.isfinite(np.asarray(grad)).all()
    # KL(1 || sigmoid(-50)) = 50; equal logits: 0; KL(1/2 || sigmoid(50)) = 25 - log 2.
    np.testing.assert_allclose(np.asarray(kl), [50.0, 50.0, 0.0, 0.0, 25.0 - np.log(2)], atol=1e-4)
    assert (np.asarray(kl) >= 0).all()


def test_kl_gradient_survives_rounding_of_a_tiny_value():
    # The value (~1e-13) is below float32 resolution; its gradient sigmoid(p) - sigmoid(q) is not.
    q = jnp.array([0.3])
    grad = jax.grad(lambda p: kl_divergence_with_logits(q, p).sum())(q + 1e-6)
    assert float(grad[0]) > 0


def test_l2_normalize_unit_norm_and_safe_at_zero():
    d = np.random.default_rng(2).normal(size=(5, 29, 29, 3)).astype(np.float32) * 1e-20
    d[3] = 0.0
    out = np.asarray(l2_normalize(jnp.asarray(d)))
    norms = np.sqrt((out.astype(np.float64) ** 2).sum(axis=(1, 2, 3)))
    np.testing.assert_allclose(norms[[0, 1, 2, 4]], 1.0, rtol=1e-5)
    assert norms[3] == 0.0 and np.isfinite(out).all()


@pytest.mark.parametrize("eps", [0.1, 2.0])
def test_perturbation_has_norm_eps_per_sample(cnn, eps):
    f, state, x = cnn
    r = jax.jit(
        lambda st, x: virtual_adversarial_perturbation(
            lambda z: f(st, z), x, key=jax.random.key(0), eps=eps
        )
    )(state, x)
    norms = np.sqrt((np.asarray(r, np.float64) ** 2).sum(axis=(1, 2, 3)))
    np.testing.assert_allclose(norms, eps, rtol=1e-4)


def test_lds_nonnegative_and_zero_for_a_constant_model(cnn):
    f, state, x = cnn
    lds = jax.jit(
        lambda st, x: virtual_adversarial_loss(
            lambda z: f(st, z), x, key=jax.random.key(1), eps=1.0
        )
    )(state, x)
    assert float(lds) > 0  # a random CNN is not flat

    def constant(z):
        return jnp.full(z.shape[0], 0.7)

    assert float(virtual_adversarial_loss(constant, x, key=jax.random.key(1), eps=1.0)) == 0.0


def test_logistic_linear_model_direction_is_plus_minus_w():
    rng = np.random.default_rng(3)
    w = jnp.asarray(rng.normal(size=(29, 29, 3)).astype(np.float32))
    x = jnp.asarray(rng.uniform(size=(32, 29, 29, 3)).astype(np.float32))

    def linear(z):
        return jnp.sum(z * w, axis=(1, 2, 3)) * 0.01 - 0.5

    d = jax.jit(
        lambda x: virtual_adversarial_perturbation(linear, x, key=jax.random.key(2), eps=1.0)
    )(x)
    cos = np.abs(np.asarray(jnp.sum(d * w / jnp.linalg.norm(w), axis=(1, 2, 3))))
    assert cos.min() > 0.99


def test_power_iteration_converges_to_top_eigenvector():
    # logit(x0 + r) = c + sqrt(r^T H r): KL(p(x0) || p(x0 + r)) is proportional to r^T H r, so
    # each iteration is d <- normalize(H d) and d converges to H's top eigenvector.
    rng = np.random.default_rng(4)
    q, _ = np.linalg.qr(rng.normal(size=(12, 12)))
    eig = np.array([4.0, 3.0, 2.5, 2.0, 1.5, 1.0, 0.8, 0.6, 0.4, 0.3, 0.2, 0.1])
    h = jnp.asarray((q * eig) @ q.T, jnp.float32)
    top = jnp.asarray(q[:, 0], jnp.float32)
    x0 = jnp.asarray(rng.normal(size=(8, 12)).astype(np.float32))

    def quadratic(z):
        r = z - x0
        return 0.2 + jnp.sqrt(jnp.einsum("bi,ij,bj->b", r, h, r) + 1e-20)

    cos = []
    for k in (1, 3, 10, 40):
        d = jax.jit(
            functools.partial(
                virtual_adversarial_perturbation,
                quadratic,
                key=jax.random.key(5),
                eps=1.0,
                xi=1e-2,
                n_power=k,
            )
        )(x0)
        cos.append(float(np.abs(np.asarray(d @ top)).min()))
    assert cos == sorted(cos) and cos[0] < 0.95 and cos[-1] > 0.999


def test_default_xi_gives_a_stable_direction_where_tiny_xi_does_not(cnn):
    # For a one-logit model the direction is +-grad f at x + xi d; it should match grad f(x).
    f, state, x = cnn
    ref = l2_normalize(jax.jit(jax.grad(lambda z, st: f(st, z).sum()))(x, state))

    @jax.jit
    def cos(xi, key, st):
        d = virtual_adversarial_perturbation(lambda z: f(st, z), x, key=key, eps=1.0, xi=xi)
        return jnp.abs(jnp.sum(d * ref, axis=(1, 2, 3)))

    def cosines(xi):
        return np.concatenate([np.asarray(cos(xi, jax.random.key(k), state)) for k in range(3)])

    assert cosines(DEFAULT_XI).min() > 0.98
    # Miyato's xi = 1e-6: the logit change is below float32 resolution for many samples and
    # their direction collapses to zero.
    assert cosines(1e-6).min() < 0.5
