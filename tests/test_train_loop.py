"""Tests of rbcore.train.loop and .checkpoints: fit, early stopping, resume, data parallelism."""

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pandas as pd
import pytest
from flax import nnx
from toy import SMALL, same_params, toy

from rbcore.checkpoint import load_model
from rbcore.inference import predict_logits
from rbcore.train import TrainConfig, fit


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


def test_bad_inputs_raise(data):
    x, y, xv, yv, _ = data
    cfg = TrainConfig(**SMALL)
    with pytest.raises(ValueError, match="labels"):
        fit(x, y[:-1], config=cfg, progress=False)
    with pytest.raises(ValueError, match="0 .bogus. or 1"):
        fit(x, np.where(y == 1, 2, 0), config=cfg, progress=False)
    with pytest.raises(ValueError, match="val_images and val_labels"):
        fit(x, y, val_images=xv, config=cfg, progress=False)


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
    assert same_params(model, again) and _metrics(history) == _metrics(history2)
    other, _ = fit(
        x,
        y,
        val_images=xv,
        val_labels=yv,
        config=TrainConfig(**{**SMALL, "epochs": 3, "seed": 1}),
        progress=False,
    )
    assert not same_params(model, other)


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
    assert same_params(ref, resumed) and _metrics(history) == _metrics(ref_history)
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
    assert same_params(m1, m2)


def test_adadelta_with_entmin_and_auc_loss_trains(data):
    x, y, xv, yv, _ = data
    cfg = TrainConfig(**{**SMALL, "epochs": 2}, optimizer="adadelta", entmin=True, lambda_auc=0.5)
    _, history = fit(x, y, val_images=xv, val_labels=yv, config=cfg, progress=False)
    assert {"entropy", "auc_loss"} <= set(history[-1])
    assert np.isfinite(history[-1]["loss"]) and history[-1]["loss"] < history[0]["loss"]


def _dp_run():
    """Tiny VAT fit; returns the device count, losses and parameter sums."""
    rng = np.random.default_rng(0)
    x, y = toy(128, 6)
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
    code = "import json, test_train_loop; print(json.dumps(test_train_loop._dp_run()))"
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


def test_infinite_pixels_are_an_error_in_training_too(data):
    x, y, xv, yv, _ = data
    cfg = TrainConfig(**{**SMALL, "epochs": 1})
    bad = x.copy()
    bad[40, 0, 0, 0] = np.inf
    with pytest.raises(ValueError, match="triplet 40 has infinite pixels"):
        fit(bad, y, config=cfg, progress=False)
    bad_val = xv.copy()
    bad_val[3, 0, 0, 0] = -np.inf
    with pytest.raises(ValueError, match="triplet 3 has infinite pixels"):
        fit(x, y, val_images=bad_val, val_labels=yv, config=cfg, progress=False)


def test_other_data_in_the_same_out_dir_is_refused(data, tmp_path):
    x, y, xv, yv, mask = data
    cfg = TrainConfig(**{**SMALL, "epochs": 1})
    kw = dict(labeled_mask=mask, val_images=xv, val_labels=yv, config=cfg, progress=False)
    model, _ = fit(x, y, out_dir=tmp_path, **kw)
    again, _ = fit(x, np.where(mask, y, 1 - y), out_dir=tmp_path, **kw)  # unlabeled rows differ
    assert same_params(model, again)  # the same data as far as training goes: resumed
    other_mask = mask.copy()
    other_mask[np.flatnonzero(mask)[:5]] = False
    flipped = y.copy()
    flipped[np.flatnonzero(mask)[0]] ^= 1
    shifted = x.copy()
    shifted[0] += 1.0
    changes = {
        "labels_sha256": dict(labels=flipped),
        "labeled_mask_sha256": dict(labeled_mask=other_mask),
        "images_sha256": dict(images=shifted),
        "val_labels_sha256": dict(val_labels=1 - yv),
        "n 192 -> 160": dict(images=x[:160], labels=y[:160], labeled_mask=mask[:160]),
    }
    for what, change in changes.items():
        args = {"images": x, "labels": y, **kw, **change}
        with pytest.raises(ValueError, match=rf"{tmp_path}: .*other data .*{what}"):
            fit(args.pop("images"), args.pop("labels"), out_dir=tmp_path, **args)


class _KillAt:
    """`save_model`'s file writer, killed before the n-th config.json of `last/`."""

    def __init__(self, write, n):
        self.write, self.n = write, n

    def __call__(self, path, data):
        if os.path.basename(path) == "config.json" and "last" in os.path.basename(
            os.path.dirname(path)
        ):
            self.n -= 1
            if self.n == 0:
                raise KeyboardInterrupt("killed between weights and config")
        return self.write(path, data)


def test_kill_between_weights_and_config_resumes_bit_identical(data, tmp_path, monkeypatch):
    import rbcore.checkpoint

    x, y, xv, yv, mask = data
    cfg = TrainConfig(**{**SMALL, "epochs": 3})
    kw = dict(labeled_mask=mask, val_images=xv, val_labels=yv, config=cfg, progress=False)
    ref, ref_history = fit(x, y, **kw)
    with monkeypatch.context() as m:
        m.setattr(rbcore.checkpoint, "write_bytes_atomic",
                  _KillAt(rbcore.checkpoint.write_bytes_atomic, 3))  # fmt: skip
        with pytest.raises(KeyboardInterrupt):
            fit(x, y, out_dir=tmp_path, **kw)  # killed while writing epoch 3's last/
    resumed, history = fit(x, y, out_dir=tmp_path, **kw)
    assert same_params(ref, resumed) and _metrics(history) == _metrics(ref_history)
    # killed between the two renames of the swap: last/ is gone, .last.old/ holds it
    os.replace(tmp_path / "last", tmp_path / ".last.old")
    (tmp_path / ".last.new").mkdir()
    again, _ = fit(x, y, out_dir=tmp_path, **kw)
    assert same_params(ref, again)
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["best", "last"]
