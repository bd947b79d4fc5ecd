"""Tests of rbcore.train: losses, the step, the fit loop, resume, inference, data parallelism."""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from flax import nnx

from rbcore import train
from rbcore.checkpoint import load_model
from rbcore.model import build_model
from rbcore.preprocess import normalize
from rbcore.train import TrainConfig, fit, predict_logits
from rbcore.vat import virtual_adversarial_loss

SMALL = dict(batch_size=32, unlabeled_batch_size=32, eval_batch_size=64, epochs=2, patience=0)


def _toy(n, seed, signal=1.5):
    """Cutouts of noise; 'real' ones carry a faint point source in new and sub."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n).astype(np.int64)
    x = rng.normal(size=(n, 29, 29, 3)).astype(np.float32)
    x[y == 1, 12:17, 12:17, 1:] += signal
    return x, y


@pytest.fixture(scope="module")
def data():
    x, y = _toy(192, 0)
    xv, yv = _toy(64, 1)
    mask = np.random.default_rng(2).random(len(y)) > 0.25
    return x, y, xv, yv, mask


def _params(model):
    return [np.asarray(a) for a in jax.tree.leaves(nnx.state(model, nnx.Param))]


def _same(m1, m2):
    return all(np.array_equal(a, b) for a, b in zip(_params(m1), _params(m2), strict=True))


def _metrics(history):
    return [
        {k: v for k, v in r.items() if k not in ("train_time_s", "samples_per_s")} for r in history
    ]


class _Interrupt:
    """Images that raise KeyboardInterrupt after `n` reads (an interrupted run)."""

    def __init__(self, images, n):
        self.images, self.n = images, n

    def __len__(self):
        return len(self.images)

    def __getitem__(self, idx):
        self.n -= 1
        if self.n < 0:
            raise KeyboardInterrupt("simulated interruption")
        return self.images[idx]


def test_config_validation_and_round_trip():
    for bad in (
        dict(optimizer="sgd"),
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
        train.profile_config("huge")
    assert train.profile_config("smoke", alpha=2.0).alpha == 2.0
    assert train.profile_config("smoke").batch_size < train.profile_config("paper").batch_size


def test_bad_inputs_raise(data):
    x, y, xv, yv, _ = data
    cfg = TrainConfig(**SMALL)
    with pytest.raises(ValueError, match="labels"):
        fit(x, y[:-1], config=cfg, progress=False)
    with pytest.raises(ValueError, match="0 .bogus. or 1"):
        fit(x, np.where(y == 1, 2, 0), config=cfg, progress=False)
    with pytest.raises(ValueError, match="val_images and val_labels"):
        fit(x, y, val_images=xv, config=cfg, progress=False)


def test_pairwise_auc_loss_matches_brute_force():
    rng = np.random.default_rng(3)
    logits, labels = rng.normal(size=20), rng.integers(0, 2, 20)
    p = 1 / (1 + np.exp(-logits))
    pairs = [
        np.exp(max(0.0, 0.25 - (p[i] - p[j]))) - 1
        for i in range(20)
        for j in range(20)
        if labels[i] == 1 and labels[j] == 0
    ]
    got = train.pairwise_auc_loss(
        logits=jnp.asarray(logits, jnp.float32),
        labels=jnp.asarray(labels, jnp.float32),
        margin=0.25,
    )
    np.testing.assert_allclose(float(got), np.mean(pairs), rtol=1e-5)


def _one_step(config, x, y, xu):
    model = build_model({"dropout_rate": config.dropout_rate}, seed=config.seed)
    model.train()
    gd_train, params, rest = nnx.split(model, nnx.Param, ...)
    model.eval()
    gd_eval = nnx.split(model, nnx.Param, ...)[0]
    step = train.loop._make_train_step(config, gd_train, gd_eval)
    opt_state = train.loop._make_optimizer(config).init(params)
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
    key_drop, key_vat = train.step_keys(cfg.seed, 0)

    def lds_with(gd):
        @jax.jit
        def run(params, rest):
            def f(z):
                return nnx.merge(gd, params, train.loop._with_key(rest, key_drop))(z)

            return virtual_adversarial_loss(f, x_all, key=key_vat, eps=cfg.eps, xi=cfg.xi)

        return float(run(params, rest))

    np.testing.assert_allclose(float(aux["lds"]), lds_with(gd_eval), rtol=1e-4)
    assert abs(lds_with(gd_train) - float(aux["lds"])) > 1e-3 * float(aux["lds"])


def test_step_and_inference_do_not_recompile(data):
    x, y, *_ = data
    cfg = TrainConfig(**SMALL, alpha=1.0)
    _, (_, _, params, rest, step) = _one_step(cfg, x[:32], y[:32].astype(np.int32), x[32:64])
    opt_state = train.loop._make_optimizer(cfg).init(params)
    for s in range(3):
        sl = slice(32 * s, 32 * s + 32)
        params, opt_state, _ = step(
            params, opt_state, rest, s, x[sl], y[sl].astype(np.int32), x[sl]
        )
    assert step.jitted._cache_size() == 1

    model = build_model(seed=0)
    predict_logits(model, x[:70], batch_size=64)
    n_compiled = train.loop._logits_batch._cache_size()
    predict_logits(model, x[:100], batch_size=64)  # another padded size, same shape
    assert train.loop._logits_batch._cache_size() == n_compiled


def test_predict_logits_matches_model_nan_safe_and_keeps_mode():
    x, _ = _toy(70, 4)
    x[0, :5, :5, 0] = np.nan
    model = build_model(seed=1)
    model.train()
    got = predict_logits(model, x, batch_size=64)
    model.eval()
    want = np.asarray(model(jnp.asarray(normalize(x))))
    assert got.dtype == np.float32 and got.shape == (70,) and np.isfinite(got).all()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    model.train()
    predict_logits(model, x[:3], batch_size=64)
    assert not model.dropout.deterministic  # still in training mode


def test_fit_learns_writes_checkpoints_and_is_deterministic(data, tmp_path):
    x, y, xv, yv, _ = data
    cfg = TrainConfig(**{**SMALL, "epochs": 3})
    model, history = fit(
        x, y, val_images=xv, val_labels=yv, config=cfg, out_dir=tmp_path, progress=False
    )
    assert history[-1]["val_auc"] > 0.9 and history[-1]["loss"] < history[0]["loss"]
    for name in ("history.csv", "history.json", "last/config.json", "best/config.json"):
        assert (tmp_path / name).exists(), name
    assert len(pd.read_csv(tmp_path / "history.csv")) == len(history) == 3
    best, meta = load_model(tmp_path / "best")
    assert meta["extra"]["train_config"] == cfg.to_dict()
    np.testing.assert_array_equal(predict_logits(best, xv), predict_logits(model, xv))

    again, history2 = fit(x, y, val_images=xv, val_labels=yv, config=cfg, progress=False)
    assert _same(model, again) and _metrics(history) == _metrics(history2)
    other, _ = fit(
        x,
        y,
        val_images=xv,
        val_labels=yv,
        config=TrainConfig(**{**SMALL, "epochs": 3, "seed": 1}),
        progress=False,
    )
    assert not _same(model, other)


def test_early_stopping_on_uninformative_validation(data):
    x, y, xv, _, _ = data
    yv = np.random.default_rng(5).integers(0, 2, len(xv))  # random labels: AUC wanders
    cfg = TrainConfig(**{**SMALL, "epochs": 8, "patience": 1})
    model, history = fit(x, y, val_images=xv, val_labels=yv, config=cfg, progress=False)
    assert len(history) < 8
    aucs = [r["val_auc"] for r in history]
    assert aucs[-1] <= max(aucs[:-1])
    z = predict_logits(model, xv)
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(yv, z) == pytest.approx(max(aucs))  # the best epoch's model comes back


def test_vat_resume_after_interruption_is_bit_identical(data, tmp_path):
    x, y, xv, yv, mask = data
    cfg = TrainConfig(**{**SMALL, "epochs": 3}, alpha=1.0)
    kw = dict(labeled_mask=mask, val_images=xv, val_labels=yv, config=cfg, progress=False)
    ref, ref_history = fit(x, y, **kw)
    steps = int(mask.sum()) // 32
    with pytest.raises(KeyboardInterrupt):
        fit(_Interrupt(x, 2 * steps * 2 + 3), y, out_dir=tmp_path, **kw)  # dies in epoch 3
    assert (
        json.loads((tmp_path / "last/config.json").read_text())["extra"]["train_state"]["epoch"]
        == 2
    )
    resumed, history = fit(x, y, out_dir=tmp_path, **kw)
    assert _same(ref, resumed) and _metrics(history) == _metrics(ref_history)
    with pytest.raises(ValueError, match="different TrainConfig"):
        fit(
            x,
            y,
            out_dir=tmp_path,
            **{**kw, "config": TrainConfig(**{**SMALL, "epochs": 3}, alpha=2.0)},
        )


@pytest.mark.parametrize(("alpha", "pool"), [(0.0, "all"), (1.0, "all"), (1.0, "unlabeled")])
def test_labels_of_unlabeled_samples_are_never_used(data, alpha, pool):
    x, y, _, _, mask = data
    cfg = TrainConfig(**{**SMALL, "epochs": 1}, alpha=alpha, unlabeled_pool=pool)
    flipped = np.where(mask, y, 1 - y)
    m1, _ = fit(x, y, labeled_mask=mask, config=cfg, progress=False)
    m2, _ = fit(x, flipped, labeled_mask=mask, config=cfg, progress=False)
    assert _same(m1, m2)


def test_adadelta_with_entmin_and_auc_loss_trains(data):
    x, y, xv, yv, _ = data
    cfg = TrainConfig(**{**SMALL, "epochs": 2}, optimizer="adadelta", entmin=True, lambda_auc=0.5)
    _, history = fit(x, y, val_images=xv, val_labels=yv, config=cfg, progress=False)
    assert {"entropy", "auc_loss"} <= set(history[-1])
    assert np.isfinite(history[-1]["loss"]) and history[-1]["loss"] < history[0]["loss"]


def test_binary_entropy_matches_numpy():
    z = np.array([-30.0, -2.0, 0.0, 0.5, 40.0])
    p = 1 / (1 + np.exp(-z))
    with np.errstate(divide="ignore", invalid="ignore"):
        h = np.nan_to_num(-(p * np.log(p) + (1 - p) * np.log(1 - p)))
    np.testing.assert_allclose(float(train.binary_entropy(jnp.asarray(z))), h.mean(), atol=1e-6)


def test_detector_validation_split():
    det = np.repeat(np.arange(10), 50)
    labels = np.tile([0, 1], 250)
    tr, va = train.detector_validation_split(det, labels, fraction=0.2, seed=3)
    assert np.array_equal(np.sort(np.concatenate([tr, va])), np.arange(500))
    assert not set(det[tr]) & set(det[va]) and len(va) >= 100
    tr2, va2 = train.detector_validation_split(det, labels, fraction=0.2, seed=3)
    assert np.array_equal(va, va2)
    with pytest.raises(ValueError, match="one class"):
        train.detector_validation_split(det, (det == 0).astype(int), fraction=0.3, seed=0)


def _dp_run():
    """Tiny VAT fit; returns the device count, losses and parameter sums."""
    rng = np.random.default_rng(0)
    x, y = _toy(128, 6)
    cfg = TrainConfig(**{**SMALL, "epochs": 1}, alpha=1.0, dropout_rate=0.0)
    model, history = fit(
        x,
        y,
        labeled_mask=rng.random(128) > 0.25,
        val_images=x[:64],
        val_labels=y[:64],
        config=cfg,
        progress=False,
    )
    leaves = jax.tree.leaves(nnx.state(model, nnx.Param))
    return {
        "devices": jax.local_device_count(),
        "loss": [r["loss"] for r in history],
        "val_loss": [r["val_loss"] for r in history],
        "params": [float(np.abs(np.asarray(a)).sum()) for a in leaves],
    }


def test_data_parallel_over_two_devices_matches_one():
    # A fresh process with two forced host devices (the flag must precede JAX's start).
    code = "import json, test_train; print(json.dumps(test_train._dp_run()))"
    env = dict(
        os.environ,
        XLA_FLAGS="--xla_force_host_platform_device_count=2",
        PYTHONPATH=os.pathsep.join([os.path.dirname(__file__), os.environ.get("PYTHONPATH", "")]),
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    one = _dp_run()  # meanwhile, here, on one device
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-2000:]
    two = json.loads(out.strip().splitlines()[-1])
    assert one["devices"] == 1 and two["devices"] == 2
    for k in ("loss", "val_loss", "params"):
        np.testing.assert_allclose(two[k], one[k], rtol=2e-4, atol=1e-6)
