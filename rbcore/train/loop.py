"""The training loop `fit`: supervised and VAT training of the real/bogus CNN.

`fit` trains `rbcore.model.RBCNN` on raw cutouts (normalized inside, on the device) with binary
cross-entropy on labeled samples plus, when `alpha > 0`, the VAT loss (LDS, `rbcore.vat`) on
labeled and unlabeled samples, as in Takahashi et al. (2022). The loop shuffles with a seed,
validates each epoch, stops early, writes a history and checkpoints
(`rbcore.train.checkpoints`), and resumes an interrupted run where it stopped. Batches are
gathered from (memory-mapped) arrays by a background thread, and each batch is split over all
local devices (data parallelism, `rbcore.inference.Placement`).

Determinism: batch order is a function of (seed, epoch), the dropout and VAT keys a function of
(seed, step), so a run restarted from an epoch checkpoint repeats the uninterrupted one bit for
bit on CPU.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field

import jax
import numpy as np
from flax import nnx

from rbcore.inference import Placement, eval_view, gather, predict_views, prefetch
from rbcore.model import IMAGE_SHAPE, RBCNN, PaperResNet, build_model
from rbcore.train import checkpoints
from rbcore.train.config import TrainConfig
from rbcore.train.step import make_optimizer, make_train_step


def _check_inputs(images, labels, labeled_mask, val_images, val_labels, config):
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) != len(images):
        raise ValueError(
            f"labels must be int[N] with N = len(images) = {len(images)}, got shape {labels.shape}"
        )
    if not np.isin(labels, (0, 1)).all():
        raise ValueError("labels must be 0 (bogus) or 1 (real)")
    mask = np.ones(len(labels), bool) if labeled_mask is None else np.asarray(labeled_mask)
    if mask.dtype != bool or mask.shape != labels.shape:
        raise ValueError(
            f"labeled_mask must be bool[{len(labels)}], got {mask.dtype}{list(mask.shape)}"
        )
    # flagged_in_batch: the unlabeled samples fill batches too (with label -1)
    n_batchable = len(labels) if config.flagged_in_batch else int(mask.sum())
    if n_batchable < config.batch_size:
        raise ValueError(
            f"{n_batchable} {'' if config.flagged_in_batch else 'labeled '}samples, fewer than "
            f"one batch ({config.batch_size})"
        )
    if (val_images is None) != (val_labels is None):
        raise ValueError("give both val_images and val_labels, or neither")
    if val_labels is not None:
        val_labels = np.asarray(val_labels)
        if val_labels.shape != (len(val_images),) or not np.isin(val_labels, (0, 1)).all():
            raise ValueError(f"val_labels must be 0/1 int[{len(val_images)}]")
        if config.early_stopping_metric == "auc" and len(np.unique(val_labels)) < 2:
            raise ValueError("val_labels hold one class only: the validation AUC is undefined")
    return labels.astype(np.int32), mask, val_labels


def _epoch_indices(config: TrainConfig, epoch: int, lab_idx, unl_idx):
    """Index arrays of the epoch's batches: labeled [S, B] and unlabeled [S, U] (or None)."""
    rng = np.random.default_rng([config.seed, epoch])
    n_steps = len(lab_idx) // config.batch_size  # the remainder waits for the next shuffle
    lab = rng.permutation(lab_idx)[: n_steps * config.batch_size]
    lab = lab.reshape(n_steps, config.batch_size)
    if not config.extra_batch:
        return lab, None
    need = n_steps * config.unlabeled_batch_size
    reps = math.ceil(need / len(unl_idx))
    unl = np.concatenate([rng.permutation(unl_idx) for _ in range(reps)])[:need]
    return lab, unl.reshape(n_steps, config.unlabeled_batch_size)


def _batches(images, labels, lab, unl, placement: Placement):
    for s in range(len(lab)):
        xl = gather(images, lab[s])
        yl = labels[lab[s]]
        xu = gather(images, unl[s]) if unl is not None else np.zeros((0, *IMAGE_SHAPE), np.float32)
        yield placement.put_batch(xl, yl, xu)


@dataclass
class _Run:
    """The state of one training run between epochs."""

    config: TrainConfig
    placement: Placement
    graphdefs: tuple  # (training-mode, eval-mode) graph definitions of the model
    params: object
    rest: object
    opt_state: object
    state: dict = field(default_factory=dict)  # epoch, step, early stopping, history
    best: object = None  # host copy of the best parameters seen by this call
    data: dict | None = None  # what the run trains on (`checkpoints.data_fingerprint`)


def _start(config: TrainConfig, out_dir, data_fn) -> _Run:
    """Build the model and optimizer, or resume them from `out_dir/last` (same data only)."""
    placement = Placement()
    placement.check(config.batch_size, "batch_size")
    placement.check(config.eval_batch_size, "eval_batch_size")
    if config.extra_batch:
        placement.check(config.unlabeled_batch_size, "unlabeled_batch_size")
    model = build_model(config.model_config, seed=config.seed)
    model.train()
    gd_train, params, rest = nnx.split(model, nnx.Param, ...)
    gd_eval = eval_view(model)[0]
    opt_state = make_optimizer(config).init(params)
    state = {"epoch": 0, "step": 0, "best_score": None, "best_epoch": None, "bad_epochs": 0,
             "stopped": False, "history": []}  # fmt: skip
    data = None
    if out_dir is not None:
        os.makedirs(out_dir, exist_ok=True)
        data = data_fn()
        resumed = checkpoints.resume(out_dir, config, opt_state, data)
        if resumed is not None:
            params, opt_state, state = resumed
    params, opt_state, rest = placement.put_replicated((params, opt_state, rest))
    return _Run(config, placement, (gd_train, gd_eval), params, rest, opt_state, state, data=data)


def _train_epoch(run: _Run, step_fn, images, labels, lab, unl, epoch: int, progress: bool):
    """One pass over the epoch's batches: the mean of each loss term and the throughput."""
    from tqdm.auto import tqdm

    config, t0, metrics = run.config, time.perf_counter(), []
    bar = tqdm(total=len(lab), desc=f"epoch {epoch + 1}/{config.epochs}",
               disable=not progress, leave=False)  # fmt: skip
    batches = prefetch(_batches(images, labels, lab, unl, run.placement), config.prefetch)
    for s, (xl, yl, xu) in enumerate(batches):
        run.params, run.opt_state, aux = step_fn(
            run.params, run.opt_state, run.rest, run.state["step"], xl, yl, xu
        )
        run.state["step"] += 1
        metrics.append(aux)
        if (s + 1) % config.log_every == 0 or s + 1 == len(lab):
            recent = jax.device_get(metrics[-config.log_every :])
            bar.set_postfix(loss=f"{np.mean([m['loss'] for m in recent]):.4f}")
            bar.update(s + 1 - bar.n)
    bar.close()
    metrics = jax.device_get(metrics)
    row = {"epoch": epoch + 1, "step": run.state["step"]}
    for k in metrics[0]:
        row[k] = float(np.mean(np.array([m[k] for m in metrics], np.float64)))
    n_samples = len(lab) * (
        config.batch_size + (config.unlabeled_batch_size if unl is not None else 0)
    )
    row["train_time_s"] = time.perf_counter() - t0
    row["samples_per_s"] = n_samples / row["train_time_s"]
    return row


def _validate(run: _Run, images, labels) -> dict:
    from sklearn.metrics import roc_auc_score

    state = nnx.merge_state(run.params, run.rest)
    (logits,) = predict_views(
        (run.graphdefs[1],), (state,), images, run.config.eval_batch_size, run.placement
    )
    z = logits.astype(np.float64)
    bce = np.mean(np.logaddexp(0.0, z) - labels * z)  # -log sigmoid(z) for y=1, -log(1-s) y=0
    return {"val_loss": float(bce), "val_auc": float(roc_auc_score(labels, z))}


def _predict(run: _Run, images) -> np.ndarray:
    """float32[N] logits of the run's current parameters (eval mode)."""
    state = nnx.merge_state(run.params, run.rest)
    (logits,) = predict_views(
        (run.graphdefs[1],), (state,), images, run.config.eval_batch_size, run.placement
    )
    return np.asarray(logits, np.float32)


def _notify(on_epoch_end, run: _Run, epoch: int) -> None:
    """`fit`'s per-epoch hook: `on_epoch_end(epoch counted from 1, predict)`, where
    `predict(images)` returns the float32 logits of the model as it stands after that epoch
    (eval mode); e.g. the study's memorization curves (issue 22). None: nothing. Epochs
    finished before a resume are not called again."""
    if on_epoch_end is not None:
        on_epoch_end(epoch + 1, lambda x: _predict(run, x))


def _early_stopping(run: _Run, row: dict, epoch: int) -> None:
    """Track the best epoch by the validation metric; stop after `patience` bad epochs."""
    config, state = run.config, run.state
    score = row["val_auc"] if config.early_stopping_metric == "auc" else row["val_loss"]
    best = state["best_score"]
    if best is None or (score > best if config.early_stopping_metric == "auc" else score < best):
        state.update(best_score=score, best_epoch=epoch + 1, bad_epochs=0)
        run.best = checkpoints.host_copy(run.params)
    else:
        state["bad_epochs"] += 1
        if config.patience and state["bad_epochs"] >= config.patience:
            state["stopped"] = True


def _checkpoint(run: _Run, out_dir, epoch: int) -> None:
    gd_eval, state = run.graphdefs[1], run.state
    if state["best_epoch"] == epoch + 1:
        checkpoints.save(out_dir, "best", gd_eval, run.params, run.rest, run.config,
                         dict(state, history=None), data=run.data)  # fmt: skip
    checkpoints.save(out_dir, "last", gd_eval, run.params, run.rest, run.config, state,
                     run.opt_state, data=run.data)  # fmt: skip
    checkpoints.write_history(out_dir, state["history"])


def fit(
    images,
    labels,
    *,
    labeled_mask=None,
    val_images=None,
    val_labels=None,
    config: TrainConfig,
    out_dir=None,
    progress: bool = True,
    on_epoch_end=None,
) -> tuple[RBCNN | PaperResNet, list[dict]]:
    """Train the model of `config.architecture` (supervised, or VAT when `config.alpha > 0`).

    Args:
        images: raw float32[N, 29, 29, 3] cutouts, or anything indexable by an int array
            returning them (the memory-mapped `TrainingSet.images`); normalized inside.
        labels: int[N], 1 = real, 0 = bogus (ignored where `labeled_mask` is False).
        labeled_mask: bool[N]; False marks unlabeled samples (flagged as mislabeled), used only
            by the LDS/entropy terms, excluded from a supervised run. None = all labeled.
        val_images, val_labels: validation split (held-out training detectors, never the test
            set) for early stopping and the best checkpoint; None = train all epochs.
        config: the hyperparameters.
        out_dir: if given, gets history.csv/json, `last/` (every epoch, with optimizer state)
            and `best/` checkpoints (`rbcore.checkpoint`); a run with a checkpoint there
            resumes from it, if it has the same TrainConfig and data (else a ValueError).
        progress: show a progress bar with the running loss.
        on_epoch_end: optional `f(epoch, predict)` after each epoch (`_notify`, issue 22).

    Returns:
        (model, history): the best model by validation (the last one without validation), in
        eval mode; one dict per epoch with the mean training loss terms and validation metrics.

    Notes:
        Loss = lambda_ce * BCE(labeled) + w_ech * ECH(labeled) + w_lds * LDS(labeled +
        unlabeled) [+ entropy], (w_ech, w_lds) per `config.loss_weights`; Takahashi et al. (2022), Miyato et al. (2018) Eq. 9. The extra
        (unlabeled) batches come from `config.unlabeled_pool`: all samples (default), or the
        unlabeled ones (all samples when there are none). With `config.flagged_in_batch`
        there is no extra batch: every sample enters the shuffled batches, the unlabeled ones
        with label -1 (skipped by the CE and the ECH, seen by the LDS), as the paper's code
        does (real_bogus.py map_record_semi_supervised).
    """
    labels, mask, val_labels = _check_inputs(
        images, labels, labeled_mask, val_images, val_labels, config
    )
    lab_idx = np.flatnonzero(mask)
    batch_labels = labels
    if config.flagged_in_batch:
        lab_idx = np.arange(len(labels))
        batch_labels = np.where(mask, labels, -1).astype(np.int32)
    if config.unlabeled_pool == "unlabeled" and (~mask).any():
        unl_idx = np.flatnonzero(~mask)
    else:
        unl_idx = np.arange(len(labels))
    run = _start(config, out_dir, lambda: checkpoints.data_fingerprint(
        images, labels, mask, val_images, val_labels))  # fmt: skip
    step_fn = make_train_step(config, *run.graphdefs)
    for epoch in range(run.state["epoch"], config.epochs):
        if run.state["stopped"]:
            break
        lab, unl = _epoch_indices(config, epoch, lab_idx, unl_idx)
        row = _train_epoch(run, step_fn, images, batch_labels, lab, unl, epoch, progress)
        if val_images is not None:
            row.update(_validate(run, val_images, val_labels))
            _early_stopping(run, row, epoch)
        run.state["history"].append(row)
        run.state["epoch"] = epoch + 1
        _notify(on_epoch_end, run, epoch)
        if out_dir is not None:
            _checkpoint(run, out_dir, epoch)
        if progress:
            shown = {k: round(v, 4) for k, v in row.items() if isinstance(v, float)}
            print(f"epoch {epoch + 1}: {shown}", flush=True)
    params = run.params
    if val_images is not None and run.state["best_epoch"] is not None:
        # resumed after the best epoch: read it back
        params = run.best if run.best is not None else checkpoints.best_params(out_dir)
    model = nnx.merge(run.graphdefs[1], jax.device_get(params), jax.device_get(run.rest))
    return model, run.state["history"]
