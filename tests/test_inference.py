"""Tests of rbcore.inference: predictions, the multi-model scorer, sigmoid, loading models."""

import subprocess
import sys

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from toy import toy

from rbcore import inference
from rbcore.checkpoint import save_model
from rbcore.inference import Scorer, load_models, predict_logits, sigmoid
from rbcore.model import RBCNN, build_model
from rbcore.preprocess import normalize


def test_predict_logits_matches_model_nan_safe_and_keeps_mode():
    x, _ = toy(70, 4)
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


def test_inference_does_not_recompile():
    x, _ = toy(100, 3)
    model = build_model(seed=0)
    predict_logits(model, x[:70], batch_size=64)
    n_compiled = inference._forward._cache_size()
    predict_logits(model, x[:100], batch_size=64)  # another padded size, same shape
    assert inference._forward._cache_size() == n_compiled


def test_scorer_matches_model_and_pads_without_recompiling():
    models = {"current": RBCNN(rngs=nnx.Rngs(0)), "vat": RBCNN(rngs=nnx.Rngs(1))}
    x = np.random.default_rng(0).normal(size=(70, 29, 29, 3)).astype(np.float32)
    x[0, :3, :3, 1] = np.nan
    scorer = Scorer(models, batch_size=32)
    out = scorer(x)
    for k, m in models.items():
        m.eval()
        ref = np.asarray(m(normalize(x)))
        np.testing.assert_allclose(out[k], ref, rtol=1e-4, atol=1e-5)
    before = inference._forward._cache_size()
    scorer(x[:40])  # a different length reuses the padded batch shape
    assert inference._forward._cache_size() == before
    np.testing.assert_allclose(scorer(x[:5])["vat"], out["vat"][:5], rtol=1e-4, atol=1e-5)
    small = inference._forward._cache_size()
    scorer(x[:7])  # small inputs of other lengths share a padded shape (8)
    assert inference._forward._cache_size() == small
    with pytest.raises(ValueError, match="29, 29, 3"):
        scorer(x[:, :28])


def test_sigmoid_is_stable_in_float64():
    np.seterr(over="raise")  # exp(800) must never be formed
    z = np.array([-800.0, -40.0, 0.0, 40.0, 800.0])
    p = sigmoid(z)
    assert p.dtype == np.float64 and np.all(np.isfinite(p))
    np.testing.assert_allclose(p[1:4], 1.0 / (1.0 + np.exp(-z[1:4])), rtol=1e-12)
    assert p[0] == 0.0 and p[-1] == 1.0 and 0 < p[1] < 1e-17  # no overflow at the extremes


def test_load_models_and_version(tmp_path):
    with pytest.raises(FileNotFoundError, match=rf"{tmp_path}.*notebook 03"):
        load_models(tmp_path)
    for seed, name in enumerate(inference.MODEL_NAMES):
        save_model(tmp_path / name, build_model(seed=seed))
    models, version = load_models(tmp_path)
    assert set(models) == set(inference.MODEL_NAMES)
    assert version.startswith("current:") and ",vat:" in version and "unsaved" not in version


def test_scoring_cli_does_not_import_the_simulator():
    code = "import sys, rbcore.cli; rbcore.cli.build_parser(); print(sorted(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = out.stdout
    assert "rbcore.cli" in loaded and "rbcore.simulation" not in loaded
    assert "rbcore.deploy" not in loaded and "rbcore.train" not in loaded


def test_huge_batch_size_pads_only_to_the_input():
    x, _ = toy(5, 2)
    model = build_model(seed=0)
    want = predict_logits(model, x, batch_size=8)
    got = predict_logits(model, x, batch_size=10**9)  # asked 10 TB of padding before
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert [inference.pass_size(n, 1024) for n in (0, 1, 5, 8, 9, 1000, 5000)] == [
        1,
        1,
        8,
        8,
        16,
        1024,
        1024,
    ]
    assert inference.pass_size(5, 1024, n_devices=4) == 8
    assert inference.pass_size(3, 1024, n_devices=8) == 8


def test_inference_refuses_infinite_pixels_naming_the_file(tmp_path):
    from rbcore.datasets import LazyImages, Subset

    x, _ = toy(30, 5)
    x[17, 3, 3, 1] = np.inf
    np.save(tmp_path / "images4.npy", x)
    lazy = LazyImages([np.load(tmp_path / "images4.npy", mmap_mode="r")])
    model = build_model(seed=0)
    for images in (x, lazy, Subset(lazy, np.arange(10, 30))):
        with pytest.raises(ValueError, match=r"triplet 17 has infinite pixels"):
            predict_logits(model, images, batch_size=8)
    with pytest.raises(ValueError, match=r"images4\.npy: triplet 17 has infinite pixels"):
        predict_logits(model, lazy, batch_size=8)
