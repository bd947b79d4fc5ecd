"""The training step: `loss_fn` (returns `(loss, aux)`) and `train_step` (gradient + update).

In the manner of flax `examples/mnist`: the loss is a pure function of the parameters and the
batch, the step is value-and-grad of it plus an optimizer update, returning a small dict of
measurements (the loss terms and the gradient norm). `make_train_step` jits the step once per
arithmetic configuration; eps and alpha are traced arguments, so a sweep over them compiles
once.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from rbcore.preprocess import normalize_jax
from rbcore.train.config import TrainConfig
from rbcore.train.losses import bce, binary_entropy, exp_hinge_loss, masked_bce
from rbcore.vat import DEFAULT_EPS, sky_sigma_jax, virtual_adversarial_loss

# Samples per piece of the convolutional layers in a training step (see `conv_in_pieces`): our
# choice from A/B timing in one process (benchmarks/bench_ab.py; pieces of 64 beat one pass
# and pieces of 32 for the 128 + 128 steps on 2 cores).
CONV_PIECE = 64


def make_optimizer(config: TrainConfig) -> optax.GradientTransformation:
    """Adam (Kingma & Ba defaults), Adadelta (Keras defaults) or plain SGD (the paper's)."""
    if config.optimizer == "adam":
        return optax.adam(config.lr)  # Kingma & Ba defaults b1=0.9, b2=0.999, eps=1e-8
    if config.optimizer == "sgd":
        # The paper's code: tf.keras.optimizers.SGD(learning_rate=lr) (real_bogus.py
        # train_classifier; make_base_classifier likewise): Keras defaults momentum 0,
        # nesterov False; use_clip False (real_bogus.py:82), so no gradient clipping.
        return optax.sgd(config.lr)
    # Keras Adadelta defaults, rho = 0.95 and epsilon = 1e-7, in both standalone Keras 2 and
    # tf.keras (the paper's code passes only the learning rate); the lr: TrainConfig.lr.
    return optax.adadelta(config.lr, rho=0.95, eps=1e-7)


def conv1_form(config: TrainConfig) -> str:
    """How a training step computes conv2d_1 and its pool (`RBCNN.trunk`'s `form`).

    The same values either way. Measured in one process, interleaved (benchmarks/bench_ab.py,
    2 cores, 128 + 128 samples): the phase form made the VAT step 8-10 % faster (41 vs 38 %
    of the bound) and the supervised step 7-15 % slower (39 vs 42 %), so each gets its own.
    """
    return "phase" if config.uses_unlabeled else "direct"


def conv_in_pieces(model, x: jax.Array, piece: int | None = None, form: str = "direct"):
    """model.trunk(x, form) (the convolutional layers) run over pieces of `piece` samples.

    The same values as one pass (samples are independent there); a parameter gradient is the
    sum of the pieces' gradients (the same sum in another order). A piece's activations stay
    in the CPU cache. One pass when `piece` (default `CONV_PIECE`) does not divide the batch,
    and on accelerators (no CPU cache to fit; bigger products keep them busy).
    """
    piece = piece or CONV_PIECE
    b = x.shape[0]
    if b % piece or b == piece or jax.default_backend() != "cpu":
        return model.trunk(x, form)
    return jnp.concatenate([model.trunk(x[i : i + piece], form) for i in range(0, b, piece)])


def in_pieces(model, x: jax.Array, piece: int | None = None, form: str = "direct"):
    """model(x) with the convolutional layers in pieces (`conv_in_pieces`).

    Dropout and the dense layers see the whole batch (the same dropout mask as one pass).
    """
    return model.classify(conv_in_pieces(model, x, piece, form))


def with_key(rest, key):
    """The non-parameter state (dropout RNG stream) re-seeded with `key`."""
    return jax.tree.map(
        lambda v: key if jnp.issubdtype(v.dtype, jax.dtypes.prng_key) else jnp.zeros_like(v),
        rest,
    )


def step_keys(seed: int, step) -> tuple[jax.Array, jax.Array]:
    """(dropout key, VAT key) of a training step: a function of (seed, step) only."""
    key_drop, key_vat = jax.random.split(jax.random.fold_in(jax.random.key(seed), step))
    return key_drop, key_vat


def vat_view(vat_space: str, x_raw, x_normalized, logits_of_normalized):
    """(inputs that r_adv is added to, their logits function) for `TrainConfig.vat_space`.

    "normalized": the [0, 1] min-max normalized inputs and the model (Miyato's convention:
    eps in units of the network's input). "raw": the raw pixels and normalize-then-model, so
    r_adv (L2 norm eps in raw units) is added before the normalization, as the paper's code
    does (model2.py MyModel perturbs the input of `net`, whose first layer is NormalizeSimple).
    "sky": the normalized inputs divided by each cutout's sky sigma per channel
    (`rbcore.vat.sky_sigma_jax`), so eps / sqrt(H W C) is a per-pixel RMS in sky sigmas.
    """
    if vat_space == "raw":
        return x_raw, lambda x: logits_of_normalized(normalize_jax(x))
    if vat_space == "normalized":
        return x_normalized, logits_of_normalized
    if vat_space == "sky":  # normalized inputs in units of each cutout's sky sigma per channel
        s = jax.lax.stop_gradient(sky_sigma_jax(x_normalized))
        return x_normalized / s, lambda z: logits_of_normalized(z * s)
    raise ValueError(f"vat_space must be 'normalized', 'raw' or 'sky', got {vat_space!r}")


def loss_weights(config: TrainConfig, alpha):
    """(weight of the ECH, weight of the LDS) under `config.loss_weights`.

    "as_named": lambda_auc and alpha. "as_coded": the paper's code (real_bogus.py
    train_classifier) writes loss_weights['auc'] = lambda_auc, then overwrites it with
    lambda_vat when lambda_vat != 0, and gives 'vat' no weight (Keras' 1): ECH x alpha and
    LDS x 1 when alpha > 0, ECH x lambda_auc without VAT. Either way the ECH is on only when
    lambda_auc > 0 (the code's use_auc = lambda_auc != 0).
    """
    if config.loss_weights == "as_named" or config.alpha == 0:
        return config.lambda_auc, alpha
    return alpha, 1.0


def loss_fn(params, rest, batch, keys, *, config: TrainConfig, graphdefs, eps, alpha):
    """Loss of one batch and its terms: (loss, aux).

    Args:
        params, rest: the model's parameters and its other state (dropout RNG).
        batch: (xl, yl, xu): raw labeled cutouts, their 0/1 labels, raw extra cutouts for
            the label-free terms (LDS, entropy). With `config.flagged_in_batch`, yl holds -1
            for the unlabeled samples inside xl (seen by the LDS/entropy only) and xu is empty.
        keys: (dropout key, VAT key) of the step (`step_keys`).
        config: the arithmetic settings (weights, AUC margin, xi, n_power, entmin, spaces).
        graphdefs: (training-mode graphdef, eval-mode graphdef) of the model.
        eps, alpha: VAT radius and LDS weight (traced).

    Notes:
        lambda_ce * BCE + w_ech * ECH + w_lds * LDS [+ entropy], (w_ech, w_lds) from
        `loss_weights`; Takahashi et al. (2022) code, Miyato et al. (2018) Eq. 9. The LDS
        covers every sample of the step (the paper's MyModel.train_step: the whole batch).
    """
    (xl, yl, xu), (key_drop, key_vat), (gd_train, gd_eval) = batch, keys, graphdefs
    w_bogus, w_real = config.class_weight
    w_ech, w_lds = loss_weights(config, alpha)
    xl_n = normalize_jax(xl)
    # The convolutional layers have no dropout: their output for xl serves the training-mode
    # pass and the clean inference-mode pass below.
    model_train = nnx.merge(gd_train, params, with_key(rest, key_drop))
    form = conv1_form(config)
    pooled_l = conv_in_pieces(model_train, xl_n, form=form)
    logits = model_train.classify(pooled_l)
    weights = jnp.where(yl == 1, w_real, w_bogus)
    if config.flagged_in_batch:
        ce = masked_bce(logits, yl, weights)  # label -1 skipped (the paper's Crossentropy)
    else:
        ce = bce(logits, yl.astype(jnp.float32), weights)
    loss = config.lambda_ce * ce
    aux = {"ce": ce}
    if config.lambda_auc > 0:
        auc = exp_hinge_loss(logits=logits, labels=yl, margin=config.auc_margin)
        loss = loss + w_ech * auc
        aux["auc_loss"] = auc
    if config.uses_unlabeled:
        # eval mode: the perturbed passes must not see dropout noise (the paper's code); the
        # LDS covers the labeled and the unlabeled samples of the step.
        model_eval = nnx.merge(gd_eval, params, rest)
        if config.extra_batch:
            xu_n = normalize_jax(xu)
            x_all_n, x_all_raw = jnp.concatenate([xl_n, xu_n]), jnp.concatenate([xl, xu])
            pooled_all = jnp.concatenate([pooled_l, conv_in_pieces(model_eval, xu_n, form=form)])
        else:
            x_all_n, x_all_raw, pooled_all = xl_n, xl, pooled_l
        logits_all = model_eval.classify(pooled_all)
        if config.alpha > 0:
            x_vat, logits_eval = vat_view(
                config.vat_space, x_all_raw, x_all_n, lambda x: in_pieces(model_eval, x, form=form)
            )
            lds = virtual_adversarial_loss(
                logits_eval,
                x_vat,
                key=key_vat,
                clean_logits=logits_all,
                eps=eps,
                xi=config.xi,
                n_power=config.n_power,
            )
            loss = loss + w_lds * lds
            aux["lds"] = lds
        if config.entmin:
            ent = binary_entropy(logits_all)
            loss = loss + ent
            aux["entropy"] = ent
    aux["loss"] = loss
    return loss, aux


def train_step(params, opt_state, rest, step, batch, eps, alpha, *, config, graphdefs):
    """One update: (params, opt_state, aux with the loss terms and the gradient norm)."""
    keys = step_keys(config.seed, step)
    grads, aux = jax.grad(loss_fn, has_aux=True)(
        params, rest, batch, keys, config=config, graphdefs=graphdefs, eps=eps, alpha=alpha
    )
    updates, opt_state = make_optimizer(config).update(grads, opt_state, params)
    params = optax.apply_updates(params, updates)
    aux["grad_norm"] = optax.tree.norm(grads)
    return params, opt_state, aux


# Fields of TrainConfig that do not enter the step function (the loop, not the arithmetic).
_LOOP_FIELDS = (
    "epochs",
    "patience",
    "early_stopping_metric",
    "prefetch",
    "eval_batch_size",
    "log_every",
    "unlabeled_pool",
)


def make_train_step(config: TrainConfig, gd_train, gd_eval):
    """The step (params, opt_state, rest, step, xl, yl, xu) -> (params, opt_state, aux).

    The jitted function behind it (`.jitted`) is cached and takes eps and alpha as traced
    arguments: runs that differ only in loop settings or in eps/alpha (a sweep) share one
    compilation.
    """
    key_config = dataclasses.replace(
        config,
        **{k: TrainConfig.__dataclass_fields__[k].default for k in _LOOP_FIELDS},
        eps=DEFAULT_EPS,
        alpha=1.0 if config.alpha > 0 else 0.0,
    )
    jitted = _jitted_step(key_config, gd_train, gd_eval)
    eps, alpha = np.float32(config.eps), np.float32(config.alpha)

    def step(params, opt_state, rest, i, xl, yl, xu):
        return jitted(params, opt_state, rest, i, (xl, yl, xu), eps, alpha)

    step.jitted = jitted
    return step


@functools.lru_cache(maxsize=16)
def _jitted_step(config: TrainConfig, gd_train, gd_eval):
    fn = functools.partial(train_step, config=config, graphdefs=(gd_train, gd_eval))
    return jax.jit(fn, donate_argnums=(0, 1))
