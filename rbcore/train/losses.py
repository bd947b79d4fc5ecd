"""The supervised losses, pure functions of logits and labels (the VAT loss is `rbcore.vat`)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax


def bce(logits, labels, weights):
    """Weighted binary cross-entropy, mean over the batch (Keras class_weight convention)."""
    return jnp.mean(weights * optax.sigmoid_binary_cross_entropy(logits, labels))


def pairwise_auc_loss(*, logits: jax.Array, labels: jax.Array, margin: float) -> jax.Array:
    """The paper's pairwise AUC surrogate: an exponential hinge over (real, bogus) pairs.

    Args:
        logits: float32[B]. labels: float32[B] in {0, 1}.
        margin: required gap between the probabilities of a real and a bogus sample.

    Returns:
        float32[] mean over (real i, bogus j) pairs of exp(max(0, margin - (p_i - p_j))) - 1;
        0 if the batch lacks one of the classes.

    Notes:
        Takahashi et al. (2022) code (margin 0.25 on probabilities); the "-1" makes a pair
        that meets the margin cost exactly 0.
    """
    p = jax.nn.sigmoid(logits)
    gap = p[:, None] - p[None, :]
    pair = labels[:, None] * (1.0 - labels[None, :])
    loss = jnp.exp(jnp.maximum(0.0, margin - gap)) - 1.0
    return jnp.sum(pair * loss) / jnp.maximum(jnp.sum(pair), 1.0)


def binary_entropy(logits: jax.Array) -> jax.Array:
    """Mean entropy of Bernoulli(sigmoid(logits)) (the EntMin term, Miyato et al. 2018)."""
    p = jax.nn.sigmoid(logits)
    return jnp.mean(-(p * jax.nn.log_sigmoid(logits) + (1 - p) * jax.nn.log_sigmoid(-logits)))
