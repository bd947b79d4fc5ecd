"""Tests of the paper's loss options: the two weight conventions, flagged samples inside the
batch, VAT on raw pixels, and plain SGD (rbcore.train.step, .losses, .config, .loop)."""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from toy import SMALL, toy

from rbcore.preprocess import normalize, normalize_jax
from rbcore.train import TrainConfig
from rbcore.train.config import PAPER_STAGE2
from rbcore.train.step import loss_fn, loss_weights, make_optimizer, step_keys, vat_view
from rbcore.vat import eps_in_sky_sigmas, sky_sigma, virtual_adversarial_perturbation


class TinyNet(nnx.Module):
    """A small stand-in with RBCNN's interface (trunk, classify), quick to compile."""

    def __init__(self, seed=0):
        rngs = nnx.Rngs(seed)
        self.hidden = nnx.Linear(29 * 29 * 3, 8, rngs=rngs)
        self.out = nnx.Linear(8, 1, rngs=rngs)

    def trunk(self, x, form="direct"):
        return jnp.tanh(self.hidden(x.reshape(x.shape[0], -1)))

    def classify(self, h):
        return self.out(h)[:, 0]

    def __call__(self, x):
        return self.classify(self.trunk(x))


def _terms(config, xl, yl, xu):
    """loss_fn's (loss, aux) for `config` on one batch (the TinyNet in place of RBCNN)."""
    model = TinyNet()
    model.train()
    gd_train, params, rest = nnx.split(model, nnx.Param, ...)
    model.eval()
    gd_eval = nnx.split(model, nnx.Param, ...)[0]
    batch = (jnp.asarray(xl), jnp.asarray(yl, jnp.int32), jnp.asarray(xu))
    fn = jax.jit(functools.partial(loss_fn, config=config, graphdefs=(gd_train, gd_eval)))
    loss, aux = fn(params, rest, batch, step_keys(0, 0), eps=config.eps, alpha=config.alpha)
    return float(loss), {k: float(v) for k, v in aux.items()}


@pytest.fixture(scope="module")
def batch():
    x, y = toy(12, 5)
    return x, np.asarray(y, np.int32)


def test_weight_conventions_give_the_totals_they_claim(batch):
    x, y = batch
    # The paper's defaults (real_bogus.py): lambda_ce 0.1, lambda_auc 1, lambda_vat 0.1.
    named = TrainConfig(lambda_ce=0.1, lambda_auc=1.0, alpha=0.1, dropout_rate=0.0)
    coded = dataclasses.replace(named, loss_weights="as_coded")
    loss_n, t_n = _terms(named, x[:8], y[:8], x[8:])
    loss_c, t_c = _terms(coded, x[:8], y[:8], x[8:])
    for k in ("ce", "auc_loss", "lds"):  # the same terms, weighted differently
        assert t_n[k] == t_c[k]
    ce, ech, lds = t_n["ce"], t_n["auc_loss"], t_n["lds"]
    np.testing.assert_allclose(loss_n, 0.1 * ce + 1.0 * ech + 0.1 * lds, rtol=1e-5)
    np.testing.assert_allclose(loss_c, 0.1 * ce + 0.1 * ech + 1.0 * lds, rtol=1e-5)
    assert abs(loss_n - loss_c) > 0.1 * abs(loss_n)  # a case where the conventions differ
    # Without VAT the code keeps lambda_auc on the ECH (its overwrite needs lambda_vat != 0).
    assert loss_weights(dataclasses.replace(coded, alpha=0.0), 0.0) == (1.0, 0.0)


def test_a_flagged_sample_in_the_batch_changes_only_the_vat_term(batch):
    x, y = batch
    cfg = TrainConfig(lambda_auc=1.0, alpha=1.0, dropout_rate=0.0, flagged_in_batch=True)
    labels = y.copy()
    labels[[2, 5]] = -1  # flagged: unlabeled, inside the labeled batch
    other = x.copy()
    other[[2, 5]] = x[[10, 11]][:, ::-1]  # other images where the flagged ones were
    empty = x[:0]
    _, a = _terms(cfg, x[:8], labels[:8], empty)
    _, b = _terms(cfg, other[:8], labels[:8], empty)
    assert a["ce"] == b["ce"] and a["auc_loss"] == b["auc_loss"]
    assert abs(a["lds"] - b["lds"]) > 1e-3 * a["lds"]
    # The CE is the mean over the labeled samples only (the paper's Crossentropy).
    sup = dataclasses.replace(cfg, flagged_in_batch=False, alpha=0.0)
    _, c = _terms(sup, x[:8][labels[:8] >= 0],
                  y[:8][labels[:8] >= 0], empty)  # fmt: skip
    np.testing.assert_allclose(a["ce"], c["ce"], rtol=1e-5)


@pytest.mark.parametrize("eps", [0.1, 3.0])
def test_raw_vat_perturbation_has_norm_eps_in_raw_units(eps):
    x = toy(4, 7)[0] * 20.0 + 100.0  # raw-like pixels: sky sigma 20, span ~ 150
    model = TinyNet(1)
    raw_x, f_raw = vat_view("raw", jnp.asarray(x), None, model)
    norm_x, f_norm = vat_view("normalized", None, normalize_jax(x), model)
    key = jax.random.key(0)
    r_raw = virtual_adversarial_perturbation(f_raw, raw_x, key=key, eps=eps, xi=1.0)
    r_norm = virtual_adversarial_perturbation(f_norm, norm_x, key=key, eps=eps, xi=1e-2)

    def norms(r):
        return np.linalg.norm(np.asarray(r, np.float64).reshape(len(r), -1), axis=1)

    np.testing.assert_allclose(norms(r_raw), eps, rtol=1e-4)
    np.testing.assert_allclose(norms(r_norm), eps, rtol=1e-4)
    # Seen by the network (after the normalization) the raw r_adv is a small fraction of eps:
    # ~eps / span per pixel, amplified where it moves a channel's min or max (all pixels move).
    seen = normalize(x + np.asarray(r_raw)) - normalize(x)
    assert np.all(norms(seen) < eps / 5)
    with pytest.raises(ValueError, match="vat_space"):
        vat_view("pixels", raw_x, norm_x, model)


def test_sky_sigma_recovers_the_noise_of_a_flat_sky():
    rng = np.random.default_rng(0)
    x = rng.normal(500.0, 7.0, size=(200, 29, 29, 3)).astype(np.float32)
    x[:, 10:19, 10:19, 1] += 1e4  # a bright source in the centre does not enter
    x[0, 0, 0, 1] = np.nan
    assert abs(sky_sigma(x, channel=1) - 7.0) < 0.2
    ratio = eps_in_sky_sigmas(x, 0.1, space="raw")["new"]  # per-pixel RMS / sigma
    np.testing.assert_allclose(ratio, 0.1 / np.sqrt(29 * 29 * 3) / sky_sigma(x, channel=1))
    with pytest.raises(ValueError, match="border"):
        sky_sigma(x, border=20)


def test_sgd_is_plain_sgd_and_paper_presets_are_valid():
    cfg = TrainConfig(**PAPER_STAGE2)
    assert cfg.optimizer == "sgd" and cfg.lr == 1e-3 and cfg.loss_weights == "as_coded"
    assert TrainConfig(optimizer="adadelta").lr == 1.0  # standalone Keras 2 default (talk)
    g = {"w": jnp.array([1.0, -2.0])}
    opt = make_optimizer(cfg)
    state = opt.init(g)
    for _ in range(2):  # no momentum: every update is -lr * g
        upd, state = opt.update(g, state)
        np.testing.assert_allclose(upd["w"], -1e-3 * g["w"], rtol=1e-6)


def test_fit_with_flagged_in_batch_never_uses_their_labels(data):
    from test_train_loop import same_params

    from rbcore.train import fit

    x, y, _, _, mask = data
    cfg = TrainConfig(**{**SMALL, "epochs": 1}, alpha=1.0, flagged_in_batch=True,
                      lambda_auc=1.0, loss_weights="as_coded")  # fmt: skip
    m1, h1 = fit(x, y, labeled_mask=mask, config=cfg, progress=False)
    m2, _ = fit(x, np.where(mask, y, 1 - y), labeled_mask=mask, config=cfg, progress=False)
    assert same_params(m1, m2)
    assert h1[0]["step"] == len(y) // cfg.batch_size  # every sample is in the batches


def test_checkpoint_without_the_new_fields_resumes_as_their_defaults(data, tmp_path):
    import json

    from rbcore.train import fit

    x, y, *_ = data
    cfg = TrainConfig(**{**SMALL, "epochs": 1})
    fit(x, y, config=cfg, out_dir=tmp_path, progress=False)
    path = tmp_path / "last" / "config.json"
    meta = json.loads(path.read_text())
    for k in ("loss_weights", "vat_space", "flagged_in_batch"):  # a checkpoint from before
        del meta["extra"]["train_config"][k]
    path.write_text(json.dumps(meta))
    _, history = fit(x, y, config=cfg, out_dir=tmp_path, progress=False)  # resumes: done
    assert len(history) == 1
    with pytest.raises(ValueError, match="different TrainConfig"):
        fit(x, y, config=dataclasses.replace(cfg, vat_space="raw"), out_dir=tmp_path,
            progress=False)  # fmt: skip
