"""Virtual Adversarial Training (VAT): the local distributional smoothness (LDS) loss.

VAT (Miyato et al. 2016, arXiv:1507.00677; Miyato et al. 2018, IEEE TPAMI 41, 1979) penalizes
how much the prediction p(y | x) changes under the small perturbation r_adv, of L2 norm eps,
that changes it most. r_adv is found without labels by power iteration on the Hessian of
KL(p(x) || p(x + r)) at r = 0, so the loss also trains on unlabeled samples. Takahashi et al.
(2022) treat the training samples that the mislabel step flags as unlabeled.

Where r_adv lives is the caller's choice (`TrainConfig.vat_space`, `rbcore.train.step.vat_view`):
on the [0, 1] min-max normalized inputs (Miyato's convention, rbcore's default) or on the raw
pixels before the normalization (the paper's code, where eps = 0.1 and xi = 1.0 are in raw
pixel units: electrons for the simulated cutouts, whose sky sigma `sky_sigma` measures).

Every function here is pure; hyperparameters are keyword-only (the names follow Miyato's
reference code, github.com/takerum/vat_tf). Our classifier has one logit per sample, so
p(y | x) is a Bernoulli distribution with p(real) = sigmoid(logit).
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

# Perturbation radius (L2 norm per sample) in normalized-pixel units (inputs min-max scaled
# to [0, 1], |x| ~ 25 for 29x29x3): our choice, 0.1 as a round value of the order Miyato et
# al. use on normalized inputs. NOTE: the paper's code also uses eps = 0.1, but on RAW pixels
# (model2.py MyModel: epsilon=0.1, applied to the input of `net`, whose first layer is the
# min-max NormalizeSimple), not on the normalized ones; see PAPER_EPS_RAW and `vat_space`.
DEFAULT_EPS = 0.1
# The paper's VAT radii, in raw-pixel units (model2.py MyModel.__init__: epsilon=0.1, xi=1.0,
# ip=1). Raw pixels of the simulated cutouts are electrons with a sky sigma of tens of e-
# (`sky_sigma` reports it), so eps = 0.1 raw is a tiny perturbation.
PAPER_EPS_RAW = 0.1
PAPER_XI_RAW = 1.0
# Finite-difference radius of the power iteration. Miyato's reference code uses xi = 1e-6,
# the paper's code xi = 1.0. Our choice is 1e-2, relative to the input scale (inputs in
# [0, 1], |x| ~ 25 for 29x29x3): with xi <= 1e-3 the logit change xi * grad f . d falls below
# float32 resolution for 3-30 % of the samples of a freshly initialized CNN, whose gradient
# then is exactly zero (no direction, no LDS); with xi = 1.0 the direction is the gradient at
# a point 10 eps away (median cosine 0.82 with grad f(x)); xi = 1e-2 gives cosine >= 0.98 for
# every sample (tests/test_vat.py).
DEFAULT_XI = 1e-2
# Power iterations: one in both the paper's code and Miyato's ("K = 1 was sufficient").
DEFAULT_N_POWER = 1


def kl_divergence_with_logits(q_logit: jax.Array, p_logit: jax.Array) -> jax.Array:
    """KL(q || p) between Bernoulli distributions given by their logits.

    Args:
        q_logit: float32[B] logits of the reference distribution q (the clean prediction).
        p_logit: float32[B] logits of p (the perturbed prediction).

    Returns:
        float32[B] KL divergences, >= 0; finite for logits of any finite size.

    Notes:
        KL = softplus(p) - softplus(q) - sigmoid(q) (p - q), the Bernoulli case of Miyato's
        `kl_divergence_with_logit`: no log(0) and no overflow at any finite logit. Its
        gradient in p is sigmoid(p) - sigmoid(q), exact even when the value, O((p - q)^2),
        is lost to rounding; the value is clamped at 0 without touching that gradient (a
        plain clamp would zero it and leave the power iteration without a direction).
    """
    q = jax.nn.sigmoid(q_logit)
    kl = jax.nn.softplus(p_logit) - jax.nn.softplus(q_logit) - q * (p_logit - q_logit)
    return kl + jax.lax.stop_gradient(jnp.maximum(-kl, 0.0))


def l2_normalize(d: jax.Array) -> jax.Array:
    """Scale each sample to unit L2 norm over all its pixels and channels.

    Args:
        d: float32[B, ...].

    Returns:
        float32[B, ...] with |d_b| = 1, or 0 where d_b is all zeros (no NaN).

    Notes:
        Miyato's `get_normalized_vector` first divides by max |d| so that squaring cannot
        underflow; we do the same, but without its 1e-12 offsets, which distort vectors
        whose entries are themselves ~1e-12 (small gradients of a flat model).
    """
    axes = tuple(range(1, d.ndim))
    scale = jnp.max(jnp.abs(d), axis=axes, keepdims=True)
    d = d / jnp.where(scale > 0, scale, 1.0)
    norm = jnp.sqrt(jnp.sum(d * d, axis=axes, keepdims=True))  # >= 1 unless d_b = 0
    return d / jnp.where(norm > 0, norm, 1.0)


def virtual_adversarial_perturbation(
    logits_fn: Callable[[jax.Array], jax.Array],
    x: jax.Array,
    *,
    key: jax.Array,
    clean_logits: jax.Array | None = None,
    eps: float = DEFAULT_EPS,
    xi: float = DEFAULT_XI,
    n_power: int = DEFAULT_N_POWER,
) -> jax.Array:
    """The virtual adversarial perturbation r_adv of each sample.

    Args:
        logits_fn: maps float32[B, ...] inputs to float32[B] logits; it must run the model
            in inference mode (dropout off), as the paper's code does for the perturbed passes.
        x: float32[B, ...] inputs (normalized, or raw when `logits_fn` normalizes).
        key: PRNG key for the random start direction d ~ N(0, I).
        clean_logits: float32[B] logits of `x`; computed with `logits_fn` if None. Held fixed
            (stop-gradient).
        eps: L2 norm of r_adv per sample.
        xi: finite-difference radius of the power iteration.
        n_power: number of power iterations K.

    Returns:
        float32[B, ...] r_adv = eps * d with |d_b| = 1 (stop-gradient: a constant for the
        caller's gradient).

    Notes:
        Miyato et al. (2018) Eq. 11-13: d <- normalize(grad_d KL(p(x) || p(x + xi d))), K times,
        starting from a random unit d; this approximates the top eigenvector of the Hessian of
        the KL at r = 0. The perturbed passes must run in inference mode so that dropout noise
        does not enter the direction (Takahashi et al. 2022 code).
    """
    if clean_logits is None:
        clean_logits = logits_fn(x)
    clean_logits = jax.lax.stop_gradient(clean_logits)

    def kl_at(d):
        return jnp.sum(kl_divergence_with_logits(clean_logits, logits_fn(x + xi * d)))

    d = l2_normalize(jax.random.normal(key, x.shape, x.dtype))
    for _ in range(n_power):
        d = l2_normalize(jax.grad(kl_at)(d))
    return jax.lax.stop_gradient(eps * d)


def virtual_adversarial_loss(
    logits_fn: Callable[[jax.Array], jax.Array],
    x: jax.Array,
    *,
    key: jax.Array,
    clean_logits: jax.Array | None = None,
    eps: float = DEFAULT_EPS,
    xi: float = DEFAULT_XI,
    n_power: int = DEFAULT_N_POWER,
) -> jax.Array:
    """The LDS loss: mean over samples of KL(p(x) || p(x + r_adv)).

    Args:
        logits_fn: inference-mode model, float32[B, ...] -> float32[B] logits (see
            `virtual_adversarial_perturbation`).
        x: float32[B, ...] inputs (normalized, or raw when `logits_fn` normalizes); no labels.
        key: PRNG key for the power iteration's start direction.
        clean_logits: float32[B] logits of `x`, held fixed; computed if None.
        eps, xi, n_power: see `virtual_adversarial_perturbation`.

    Returns:
        float32[] scalar >= 0; gradients flow only through the perturbed pass.

    Notes:
        Miyato et al. (2018) Eq. 7 (LDS) and their `virtual_adversarial_loss`: the clean
        prediction is a constant target.
    """
    if clean_logits is None:
        clean_logits = logits_fn(x)
    clean_logits = jax.lax.stop_gradient(clean_logits)
    r_adv = virtual_adversarial_perturbation(
        logits_fn, x, key=key, clean_logits=clean_logits, eps=eps, xi=xi, n_power=n_power
    )
    return jnp.mean(kl_divergence_with_logits(clean_logits, logits_fn(x + r_adv)))


def sky_sigma(images, *, channel: int = 1, border: int = 4) -> float:
    """Median per-pixel sky sigma of raw cutouts: the scale that gives a raw eps its meaning.

    Args:
        images: float[N, H, W, C] raw cutouts (NaN = masked, ignored).
        channel: which channel (0 ref, 1 new, 2 sub; default new).
        border: width in pixels of the frame whose pixels estimate the sky (the candidate
            sits in the centre; our choice, 4 of 29 pixels).

    Returns:
        The median over cutouts of 1.4826 x MAD of the border pixels (a robust Gaussian
        sigma that stars in the frame barely move), in the raw units of `images`.

    Notes:
        An eps on raw pixels spreads over H W C pixels: its per-pixel RMS is
        eps / sqrt(H W C) (0.1 / sqrt(2523) = 0.002 for 29x29x3), to be compared with this sigma.
    """
    x = np.asarray(images, np.float64)
    if x.ndim != 4 or not 0 <= channel < x.shape[-1]:
        raise ValueError(
            f"sky_sigma: images must be [N, H, W, C] with channel {channel}, got {x.shape}"
        )
    if not 0 < border < min(x.shape[1:3]) // 2:
        raise ValueError(
            f"sky_sigma: border must be in [1, {min(x.shape[1:3]) // 2 - 1}], got {border}"
        )
    ch = x[..., channel]
    frame = np.ones(ch.shape[1:], bool)
    frame[border:-border, border:-border] = False
    pix = ch[:, frame]
    med = np.nanmedian(pix, axis=1, keepdims=True)
    sigma = 1.4826 * np.nanmedian(np.abs(pix - med), axis=1)
    return float(np.nanmedian(sigma))


def sky_sigma_jax(x: jax.Array, *, border: int = 4) -> jax.Array:
    """Sky sigma of each cutout and channel (`sky_sigma`'s estimate, per cutout), jittable.

    Args:
        x: float32[B, H, W, C] cutouts (no NaN: normalized inputs).
        border: width of the frame whose pixels estimate the sky (as `sky_sigma`).

    Returns:
        float32[B, 1, 1, C]: 1.4826 x MAD of the frame's pixels; 1 where that is 0 (a flat
        frame), so that dividing by it is safe.
    """
    frame = np.ones(x.shape[1:3], bool)
    frame[border:-border, border:-border] = False
    pix = x[:, frame, :]  # [B, P, C]
    med = jnp.median(pix, axis=1, keepdims=True)
    sigma = 1.4826 * jnp.median(jnp.abs(pix - med), axis=1)
    return jnp.where(sigma > 0, sigma, 1.0)[:, None, None, :]


def eps_in_sky_sigmas(images, eps: float, *, space: str) -> dict[str, float]:
    """Per-pixel RMS of an L2 radius `eps`, in units of each channel's sky sigma.

    Args:
        images: float[N, H, W, 3] raw cutouts (ref, new, sub).
        eps: L2 norm of r_adv per sample (spread evenly: per-pixel RMS eps / sqrt(H W C)).
        space: "raw" (eps on raw pixels, the paper's code) or "normalized" (eps on the [0, 1]
            min-max normalized inputs, `rbcore.preprocess.normalize`).

    Returns:
        {"ref", "new", "sub"}: eps / sqrt(H W C) / `sky_sigma` of that channel in `space`.
    """
    from rbcore.preprocess import normalize

    x = np.asarray(images, np.float32)
    if space not in ("raw", "normalized"):
        raise ValueError(f"space must be 'raw' or 'normalized', got {space!r}")
    if space == "normalized":
        x = normalize(x)
    rms = eps / np.sqrt(np.prod(x.shape[1:]))
    return {name: rms / sky_sigma(x, channel=c) for c, name in enumerate(("ref", "new", "sub"))}
