"""The supervised losses, pure functions of logits and labels (the VAT loss is `rbcore.vat`)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax


def bce(logits, labels, weights):
    """Weighted binary cross-entropy, mean over the batch (Keras class_weight convention)."""
    return jnp.mean(weights * optax.sigmoid_binary_cross_entropy(logits, labels))


def masked_bce(logits, labels, weights):
    """`bce` over the labeled samples only (label >= 0; label -1 = unlabeled).

    The mean over the labeled samples, as the paper's `Crossentropy` (model2.py), which drops
    the label -1 samples before a mean-reduced sparse cross-entropy; 0 when none is labeled.
    """
    mask = (labels >= 0).astype(logits.dtype)
    y = jnp.clip(labels, 0, 1).astype(logits.dtype)
    ce = weights * optax.sigmoid_binary_cross_entropy(logits, y)
    return jnp.sum(mask * ce) / jnp.maximum(jnp.sum(mask), 1.0)


def exp_hinge_loss(*, logits: jax.Array, labels: jax.Array, margin: float) -> jax.Array:
    """The paper's pairwise AUC surrogate "ECH" (`ExpHingeLoss`, model2.py:14-45).

    Args:
        logits: float32[B], one logit per sample (p(real) = sigmoid(logit)).
        labels: float32 or int[B] in {1 (real), 0 (bogus), -1 (unlabeled, ignored)}.
        margin: required gap between the logits of a real and a bogus sample.

    Returns:
        float32[] mean over (real i, bogus j) pairs of exp(relu6(z_j - z_i + margin)) - 1;
        0 if the batch lacks one of the classes.

    Notes:
        The paper's network has two logits (z0, z1) with a softmax; its score is
        s = z1 - z0 (model2.py:25) and p(real) = softmax(z)_1 = sigmoid(z1 - z0), so our single
        logit is exactly that score, and the ECH on it is the paper's. relu6 caps each pair's
        cost at e^6 - 1 (model2.py:40-42); the "-1" makes a pair meeting the margin cost 0.
    """
    real = (labels == 1).astype(logits.dtype)
    bogus = (labels == 0).astype(logits.dtype)
    pair = real[:, None] * bogus[None, :]
    loss = jnp.exp(jax.nn.relu6(logits[None, :] - logits[:, None] + margin)) - 1.0
    return jnp.sum(pair * loss) / jnp.maximum(jnp.sum(pair), 1.0)


def binary_entropy(logits: jax.Array) -> jax.Array:
    """Mean entropy of Bernoulli(sigmoid(logits)) (the EntMin term, Miyato et al. 2018)."""
    p = jax.nn.sigmoid(logits)
    return jnp.mean(-(p * jax.nn.log_sigmoid(logits) + (1 - p) * jax.nn.log_sigmoid(-logits)))
