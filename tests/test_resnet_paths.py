"""The paper's ResNet through every path that trains, saves, loads or scores a model.

Training (`rbcore.train.fit` with VAT, and one supervised step), checkpoints (the architecture
recorded; a config without one loads as RBCNN), `Scorer`/`predict_logits`, `load_models` (the
week's and notebook 03's models, here one of each architecture) and `python -m rbcore score`.
Tiny batches: the ResNet costs ~214 MFLOP per sample forward.
"""

import dataclasses
import json
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from flax import nnx
from toy import same_params, toy

from rbcore.checkpoint import load_model, read_config, save_model
from rbcore.cli import main
from rbcore.inference import Scorer, eval_view, load_models, predict_logits
from rbcore.model import RBCNN, build_model
from rbcore.preprocess import normalize
from rbcore.resnet import PaperResNet
from rbcore.train import TrainConfig, fit
from rbcore.train.step import make_optimizer, make_train_step

CFG = dict(architecture="PaperResNet", batch_size=8, unlabeled_batch_size=8, eval_batch_size=16,
           epochs=1, patience=0)  # fmt: skip
RESNET_CONFIG = {"architecture": "PaperResNet", "projection_shortcut": "as_coded"}


@nnx.jit
def logits_of(model, x):
    return model(x)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """One VAT epoch of `fit` on the ResNet (three steps of 8 labeled + 8 extra cutouts)."""
    out = tmp_path_factory.mktemp("fit") / "run"
    x, y = toy(24, 0)
    vx, vy = toy(16, 1)
    config = TrainConfig(**CFG, alpha=1.0)
    model, history = fit(x, y, val_images=vx, val_labels=vy, config=config, out_dir=out,
                         progress=False)  # fmt: skip
    return {"out": out, "model": model, "history": history, "data": (x, y, vx, vy),
            "config": config}  # fmt: skip


def _moved(before, after):
    """(arrays that changed, arrays in all), both finite-checked."""
    pairs = list(zip(jax.tree.leaves(before), jax.tree.leaves(after), strict=True))
    assert all(np.isfinite(np.asarray(b)).all() for _, b in pairs)
    return sum(not np.array_equal(a, b) for a, b in pairs), len(pairs)


def test_vat_training_checkpoints_and_resumes_the_resnet(fitted, tmp_path):
    out, model, history, config = (
        fitted["out"],
        fitted["model"],
        fitted["history"],
        fitted["config"],
    )
    assert isinstance(model, PaperResNet)
    assert len(history) == 1 and np.isfinite(history[0]["loss"]) and history[0]["lds"] > 0
    init = nnx.state(build_model(config.model_config, seed=config.seed), nnx.Param)
    moved, n = _moved(init, nnx.state(model, nnx.Param))
    assert moved == n, f"{n - moved} of {n} parameter arrays did not move"
    assert read_config(out / "best")["model"] == RESNET_CONFIG
    assert read_config(out / "best")["extra"]["train_config"]["architecture"] == "PaperResNet"
    loaded, _ = load_model(out / "best")
    assert isinstance(loaded, PaperResNet) and same_params(loaded, model)
    # A second epoch resumes from last/ (epochs may change between calls); in a copy, so the
    # other tests keep the one-epoch model.
    shutil.copytree(out, tmp_path / "run")
    x, y, vx, vy = fitted["data"]
    _, longer = fit(x, y, val_images=vx, val_labels=vy, out_dir=tmp_path / "run",
                    config=dataclasses.replace(config, epochs=2), progress=False)  # fmt: skip
    assert [r["epoch"] for r in longer] == [1, 2] and longer[0] == history[0]


def test_one_supervised_step_moves_every_weight_with_a_finite_loss():
    config = TrainConfig(**CFG)
    model = build_model(config.model_config, seed=0)
    assert isinstance(model, PaperResNet)
    model.train()
    gd_train, params, rest = nnx.split(model, nnx.Param, ...)
    step = make_train_step(config, gd_train, eval_view(model)[0])
    x, y = toy(8, 3)
    new, _, aux = step(jax.tree.map(jnp.array, params), make_optimizer(config).init(params),
                       rest, 0, x, y.astype(np.int32), x[:0])  # fmt: skip
    assert all(np.isfinite(float(v)) for v in aux.values()) and "lds" not in aux
    moved, n = _moved(params, new)
    assert moved == n, f"{n - moved} of {n} parameter arrays did not move"


def test_cli_scores_a_resnet_checkpoint(fitted, tmp_path):
    vx = fitted["data"][2]
    np.save(tmp_path / "x.npy", vx)
    args = ["score", "--checkpoint", str(fitted["out"] / "best"), "--input",
            str(tmp_path / "x.npy"), "--output", str(tmp_path / "s.csv"), "--batch-size", "16",
            "--no-progress"]  # fmt: skip
    assert main(args) == 0
    want = logits_of(fitted["model"], jnp.asarray(normalize(vx)))
    assert np.ptp(np.asarray(want)) > 0  # not a constant model
    np.testing.assert_allclose(pd.read_csv(tmp_path / "s.csv")["logit"], want, atol=1e-4)


def test_scorer_and_load_models_take_one_model_of_each_architecture(fitted, tmp_path):
    vx = fitted["data"][2]
    save_model(tmp_path / "current", build_model(seed=0))  # the talk's CNN
    shutil.copytree(fitted["out"] / "best", tmp_path / "vat")  # the paper's ResNet
    models, version = load_models(tmp_path)
    assert isinstance(models["current"], RBCNN) and isinstance(models["vat"], PaperResNet)
    assert "unsaved" not in version
    both = Scorer(models, batch_size=16)(vx)
    for name, model in models.items():  # the generic path equals each model alone
        alone = logits_of(model, jnp.asarray(normalize(vx)))
        np.testing.assert_allclose(both[name], alone, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(predict_logits(models["vat"], vx, 16), both["vat"], atol=1e-5)


def test_a_checkpoint_without_architecture_loads_as_rbcnn(tmp_path):
    save_model(tmp_path / "old", build_model({"dropout_rate": 0.3}, seed=2))
    path = tmp_path / "old" / "config.json"
    meta = json.loads(path.read_text())
    del meta["model"]["architecture"]  # as written before there was a choice
    path.write_text(json.dumps(meta))
    model, _ = load_model(tmp_path / "old")
    assert isinstance(model, RBCNN) and model.dropout_rate == 0.3


def test_a_resnet_checkpoint_refuses_rbcnn_weights(tmp_path):
    save_model(tmp_path / "m", build_model(seed=0))
    path = tmp_path / "m" / "config.json"
    meta = json.loads(path.read_text())
    meta["model"] = RESNET_CONFIG
    path.write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="do not match the PaperResNet architecture"):
        load_model(tmp_path / "m")


def test_train_config_fields():
    assert TrainConfig().model_config == {"architecture": "RBCNN", "dropout_rate": 0.25}
    cfg = TrainConfig(architecture="PaperResNet", projection_shortcut="as_intended")
    assert cfg.model_config == {"architecture": "PaperResNet", "projection_shortcut": "as_intended"}
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="TrainConfig.architecture"):
        TrainConfig(architecture="ResNet50")
    with pytest.raises(ValueError, match="TrainConfig.projection_shortcut"):
        TrainConfig(projection_shortcut="never")
