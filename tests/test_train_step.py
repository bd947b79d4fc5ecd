"""Tests of rbcore.train.config, .losses and .step: the config, the losses, one training step."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from toy import SMALL

from rbcore.model import build_model
from rbcore.preprocess import normalize
from rbcore.train import TrainConfig, profile_config
from rbcore.train.losses import binary_entropy, exp_hinge_loss
from rbcore.train.step import make_optimizer, make_train_step, step_keys, with_key
from rbcore.vat import virtual_adversarial_loss


def test_config_validation_and_round_trip():
    for bad in (
        dict(optimizer="rmsprop"),
        dict(loss_weights="as_written"),
        dict(vat_space="pixels"),
        dict(early_stopping_metric="acc"),
        dict(alpha=-1.0),
        dict(unlabeled_pool="some"),
    ):
        with pytest.raises(ValueError, match="TrainConfig"):
            TrainConfig(**bad)
    cfg = TrainConfig(alpha=0.5, class_weight=(1.0, 3.0))
    assert TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert TrainConfig(optimizer="adadelta").lr == 1.0 and TrainConfig().lr == 1e-3
    with pytest.raises(ValueError, match="profile"):
        profile_config("huge")
    assert profile_config("smoke", alpha=2.0).alpha == 2.0
    assert profile_config("smoke").batch_size < profile_config("paper").batch_size


def test_exp_hinge_loss_matches_numpy_reference():
    # The paper's ECH (model2.py ExpHingeLoss): mean over (real, bogus) pairs of
    # exp(relu6(s_bogus - s_real + margin)) - 1, on logits; label -1 takes part in no pair.
    rng = np.random.default_rng(3)
    logits = rng.normal(scale=4.0, size=24)  # wide enough that relu6 clips some pairs
    labels = rng.integers(-1, 2, 24)
    pairs = [
        np.exp(np.clip(logits[j] - logits[i] + 0.25, 0.0, 6.0)) - 1
        for i in range(24)
        for j in range(24)
        if labels[i] == 1 and labels[j] == 0
    ]
    assert max(logits[j] - logits[i] for i in range(24) for j in range(24)) > 6  # clip reached
    got = exp_hinge_loss(
        logits=jnp.asarray(logits, jnp.float32), labels=jnp.asarray(labels), margin=0.25
    )
    np.testing.assert_allclose(float(got), np.mean(pairs), rtol=1e-5)
    one_class = exp_hinge_loss(logits=jnp.ones(4), labels=jnp.array([1, 1, -1, 1]), margin=0.25)
    assert float(one_class) == 0.0


def _one_step(config, x, y, xu):
    model = build_model({"dropout_rate": config.dropout_rate}, seed=config.seed)
    model.train()
    gd_train, params, rest = nnx.split(model, nnx.Param, ...)
    model.eval()
    gd_eval = nnx.split(model, nnx.Param, ...)[0]
    step = make_train_step(config, gd_train, gd_eval)
    opt_state = make_optimizer(config).init(params)
    copy = jax.tree.map(jnp.array, params)
    _, _, aux = step(copy, opt_state, rest, 0, x, y, xu)
    return aux, (gd_train, gd_eval, params, rest, step)


def test_step_terms_class_weights_and_eval_mode_lds(data):
    x, y, *_ = data
    xl, yl, xu = x[:32], y[:32].astype(np.int32), x[32:64]
    # Class weights (0, 1) with no dropout: the CE is the real samples' BCE summed over B.
    cfg = TrainConfig(**SMALL, dropout_rate=0.0, class_weight=(0.0, 1.0))
    aux, (_, gd_eval, params, rest, _) = _one_step(cfg, xl, yl, xu[:0])
    z = np.asarray(nnx.merge(gd_eval, params, rest)(normalize(xl)), np.float64)
    bce = np.logaddexp(0, z) - yl * z
    np.testing.assert_allclose(float(aux["ce"]), np.sum(bce[yl == 1]) / len(yl), rtol=1e-5)

    # The step's LDS runs the perturbed passes in eval mode: with dropout 0.5 it equals the
    # eval-mode LDS and differs from the one with dropout active.
    cfg = TrainConfig(**SMALL, alpha=1.0)  # dropout 0.25; compiled once for several tests
    aux, (gd_train, gd_eval, params, rest, _) = _one_step(cfg, xl, yl, xu)
    assert {"ce", "lds", "grad_norm", "loss"} <= set(aux)
    x_all = jnp.concatenate([normalize(xl), normalize(xu)])
    key_drop, key_vat = step_keys(cfg.seed, 0)

    def lds_with(gd):
        @jax.jit
        def run(params, rest):
            def f(z):
                return nnx.merge(gd, params, with_key(rest, key_drop))(z)

            return virtual_adversarial_loss(f, x_all, key=key_vat, eps=cfg.eps, xi=cfg.xi)

        return float(run(params, rest))

    np.testing.assert_allclose(float(aux["lds"]), lds_with(gd_eval), rtol=1e-4)
    assert abs(lds_with(gd_train) - float(aux["lds"])) > 1e-3 * float(aux["lds"])


def test_step_does_not_recompile(data):
    x, y, *_ = data
    cfg = TrainConfig(**SMALL, alpha=1.0)
    _, (_, _, params, rest, step) = _one_step(cfg, x[:32], y[:32].astype(np.int32), x[32:64])
    opt_state = make_optimizer(cfg).init(params)
    # Other tests may share this compiled step (same arithmetic): count only new entries.
    n_compiled = step.jitted._cache_size()
    for s in range(3):
        sl = slice(32 * s, 32 * s + 32)
        params, opt_state, _ = step(
            params, opt_state, rest, s, x[sl], y[sl].astype(np.int32), x[sl]
        )
    assert step.jitted._cache_size() == n_compiled


def test_binary_entropy_matches_numpy():
    z = np.array([-30.0, -2.0, 0.0, 0.5, 40.0])
    p = 1 / (1 + np.exp(-z))
    with np.errstate(divide="ignore", invalid="ignore"):
        h = np.nan_to_num(-(p * np.log(p) + (1 - p) * np.log(1 - p)))
    np.testing.assert_allclose(float(binary_entropy(jnp.asarray(z))), h.mean(), atol=1e-6)
