"""Tests of rbcore.train.experiment: the ledger mask, the sweep choice, the saved models."""

import json

import numpy as np
import pandas as pd
import pytest

from rbcore.checkpoint import load_model
from rbcore.inference import predict_logits
from rbcore.train import TrainConfig
from rbcore.train import experiment as vt


def _params(n=40):
    det = np.repeat([0, 1, 2, 3], n // 4)
    return pd.DataFrame({"id": np.arange(n), "detector_id": det, "label": np.arange(n) % 2})


def test_labeled_mask_from_ledger_aligns_by_id_and_checks(tmp_path):
    params = _params()
    flagged = (params["id"] % 7 == 0).astype(int)
    rule = np.where(flagged == 1, "oof: disagrees", "none")
    ledger = params.assign(flagged=flagged, rule=rule).sample(
        frac=1.0, random_state=0
    )  # rows in another order: matched by id
    path = tmp_path / "label_ledger.csv"
    ledger.to_csv(path, index=False)
    mask, info = vt.labeled_mask_from_ledger(path, params)
    assert np.array_equal(mask, params["id"].to_numpy() % 7 != 0)
    assert info == {
        "ledger": str(path),
        "ledger_found": True,
        "n_flagged": 6,
        "rules": ["oof: disagrees"],
    }

    ledger.assign(label=1 - ledger["label"]).to_csv(path, index=False)
    with pytest.raises(ValueError, match="'label' differs"):
        vt.labeled_mask_from_ledger(path, params)
    ledger.iloc[:-1].to_csv(path, index=False)
    with pytest.raises(ValueError, match="no ledger row"):
        vt.labeled_mask_from_ledger(path, params)

    mask, info = vt.labeled_mask_from_ledger(tmp_path / "missing.csv", params)
    assert mask.all() and not info["ledger_found"]


def test_sweep_grid_and_choice():
    grid = vt.sweep_grid("smoke", eps=(0.1, 0.3), alpha=(1.0, 2.0))
    assert grid == [
        {"eps": 0.1, "alpha": 1.0},
        {"eps": 0.1, "alpha": 2.0},
        {"eps": 0.3, "alpha": 1.0},
        {"eps": 0.3, "alpha": 2.0},
    ]
    table = pd.DataFrame(grid).assign(
        val_auc=[0.90, 0.95, 0.95, 0.80], val_loss=[0.3, 0.4, 0.2, 0.5]
    )
    assert vt.choose_from_sweep(table) == {"eps": 0.3, "alpha": 1.0}  # AUC tie: lower loss
    with pytest.raises(ValueError, match="unknown profile"):
        vt.sweep_grid("huge")


def test_train_model_saves_a_loadable_best_model(tmp_path):
    rng = np.random.default_rng(0)
    n = 160
    labels = rng.integers(0, 2, n)
    images = rng.normal(size=(n, 29, 29, 3)).astype(np.float32)
    images[labels == 1, 12:17, 12:17, 1:] += 1.5
    mask = rng.random(n) > 0.2
    train_idx, val_idx = np.arange(0, 128), np.arange(128, n)
    cfg = TrainConfig(
        batch_size=32, unlabeled_batch_size=32, eval_batch_size=32, epochs=2, alpha=1.0
    )
    model, history = vt.train_model(
        "vat", images, labels, labeled_mask=mask, train_idx=train_idx, val_idx=val_idx,
        config=cfg, run_dir=tmp_path, extra={"sweep_choice": {"eps": 0.1}}, progress=False,
    )  # fmt: skip
    loaded, meta = load_model(tmp_path / "models" / "vat")
    np.testing.assert_array_equal(predict_logits(loaded, images), predict_logits(model, images))
    extra = meta["extra"]
    assert extra["sweep_choice"] == {"eps": 0.1} and extra["n_unlabeled"] == int(
        (~mask[:128]).sum()
    )
    assert extra["val_auc"] == vt.best_epoch_row(history, cfg)["val_auc"]
    assert TrainConfig.from_dict(extra["train_config"]) == cfg
    assert (tmp_path / "training" / "vat" / "history.csv").exists()

    summary = vt.write_summary(tmp_path / "s.json", {"x": np.float32(1.5), "a": np.arange(2)})
    assert json.loads(summary.read_text()) == {"x": 1.5, "a": [0, 1]}
