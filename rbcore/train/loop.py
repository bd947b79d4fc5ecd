"""Training engine: supervised and VAT training of the real/bogus CNN.

`fit` trains `rbcore.model.RBCNN` on raw cutouts (normalized inside, on the device, with
`rbcore.preprocess.normalize_jax`) with binary cross-entropy on labeled samples plus, when
`alpha > 0`, the VAT loss (LDS, `rbcore.vat`) on labeled and unlabeled samples, as in
Takahashi et al. (2022). The loop shuffles with a seed, validates each epoch, stops early,
writes a history and checkpoints, and resumes an interrupted run where it stopped. Batches
are gathered from (memory-mapped) arrays by a background thread, and each batch is split over
all local devices (data parallelism with `jax.sharding`).

Determinism: batch order is a function of (seed, epoch), the dropout and VAT keys a function of
(seed, step), so a run restarted from an epoch checkpoint repeats the uninterrupted one bit for
bit on CPU.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import queue
import threading
import time
from collections.abc import Iterator

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from rbcore.model import RBCNN, build_model
from rbcore.preprocess import normalize_jax
from rbcore.vat import DEFAULT_EPS, DEFAULT_N_POWER, DEFAULT_XI, virtual_adversarial_loss

__all__ = ["TrainConfig", "fit", "predict_logits", "PROFILES", "profile_config"]


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Hyperparameters of one training run (every default with its source).

    Notes:
        The paper's code: Takahashi et al. (2022); Miyato: Miyato et al. (2018) and their
        reference code github.com/takerum/vat_tf.
    """

    epochs: int = 20  # maximum epochs; our choice (early stopping usually ends sooner)
    batch_size: int = 128  # labeled samples per step; our choice: 32-128 run fastest on CPU
    unlabeled_batch_size: int = 128  # extra samples per step for the LDS; Miyato et al. use
    # 32 labeled + 128 unlabeled on CIFAR-10; equal halves here (the benchmark's 128 + 128)
    unlabeled_pool: str = "all"  # where that extra batch is drawn from: "all" training samples
    # (Miyato's convention: the unlabeled set includes the labeled images) or only the
    # "unlabeled" (flagged) ones, which with ~1 % flagged repeats each ~100 times per epoch
    optimizer: str = "adam"  # "adam" (Miyato, our default) or "adadelta" (the paper's "Simple")
    learning_rate: float | None = None  # None: 1e-3 for Adam (Kingma & Ba 2015, Miyato),
    # 1.0 for Adadelta (Keras default, the paper's Keras code)
    alpha: float = 0.0  # weight of the LDS (lambda_vat); 0 = supervised. Miyato: alpha = 1
    lambda_ce: float = 1.0  # weight of the cross-entropy; the paper's code: 1
    lambda_auc: float = 0.0  # weight of the pairwise AUC loss; off by default (our choice)
    auc_margin: float = 0.25  # margin of the exponential-hinge AUC loss; the paper's code
    eps: float = DEFAULT_EPS  # L2 norm of r_adv on [0, 1] inputs; the paper's code: 0.1
    xi: float = DEFAULT_XI  # power-iteration radius; our choice, see rbcore.vat.DEFAULT_XI
    n_power: int = DEFAULT_N_POWER  # power iterations; the paper's code and Miyato: 1
    entmin: bool = False  # add the entropy of p(y|x) (VAT+EntMin, Miyato et al. 2018 Sec. 3.4)
    class_weight: tuple[float, float] = (1.0, 1.0)  # CE weights of (bogus, real); our default
    # is unweighted, as the paper's code
    patience: int = 3  # epochs without validation improvement before stopping; our choice
    early_stopping_metric: str = "auc"  # "auc" (maximize) or "loss" (minimize); our choice
    seed: int = 0  # initialization, batch order, dropout and VAT noise
    dropout_rate: float = 0.25  # see rbcore.model.DEFAULT_DROPOUT_RATE (Keras mnist_cnn)
    prefetch: int = 4  # batches gathered ahead by the background thread; our choice
    eval_batch_size: int = 1024  # batch of validation/inference passes; our choice
    log_every: int = 20  # steps between progress-bar updates (each one syncs the device)

    def __post_init__(self):
        if self.optimizer not in ("adam", "adadelta"):
            raise ValueError(
                f"TrainConfig.optimizer must be 'adam' or 'adadelta', got {self.optimizer!r}"
            )
        if self.unlabeled_pool not in ("all", "unlabeled"):
            raise ValueError(
                f"TrainConfig.unlabeled_pool must be 'all' or 'unlabeled', got {self.unlabeled_pool!r}"
            )
        if self.early_stopping_metric not in ("auc", "loss"):
            raise ValueError(
                "TrainConfig.early_stopping_metric must be 'auc' or 'loss', "
                f"got {self.early_stopping_metric!r}"
            )
        for name in ("epochs", "batch_size", "unlabeled_batch_size", "eval_batch_size", "prefetch"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"TrainConfig.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("alpha", "lambda_ce", "lambda_auc", "eps", "xi", "patience", "n_power"):
            if getattr(self, name) < 0:
                raise ValueError(f"TrainConfig.{name} must be >= 0, got {getattr(self, name)}")
        if len(self.class_weight) != 2 or min(self.class_weight) < 0:
            raise ValueError(
                f"TrainConfig.class_weight must be two weights >= 0, got {self.class_weight}"
            )

    @property
    def uses_unlabeled(self) -> bool:
        """Whether the loss has a term that needs no labels (LDS or entropy)."""
        return self.alpha > 0 or self.entmin

    @property
    def lr(self) -> float:
        """The learning rate in effect (optimizer-specific default when None)."""
        if self.learning_rate is not None:
            return float(self.learning_rate)
        return 1e-3 if self.optimizer == "adam" else 1.0

    def to_dict(self) -> dict:
        """JSON-ready dict (stored with checkpoints and the history)."""
        d = dataclasses.asdict(self)
        d["class_weight"] = list(d["class_weight"])
        return d

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        """Inverse of `to_dict`; unknown fields are an error."""
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown TrainConfig fields {sorted(unknown)}")
        d = dict(d)
        if "class_weight" in d:
            d["class_weight"] = tuple(d["class_weight"])
        return cls(**d)


# Sizes of the notebook profiles (notebook 03; our choices). smoke: CI, two models on 3,000
# samples in about a minute on two CPU cores. default: 120,000 samples; 6 epochs, the
# training under which the survey was calibrated (benchmarks/CALIBRATION.md, run 6), so the
# "Current" baseline is the calibrated one; notebook 03 then takes about 20 minutes.
# paper: millions of samples on a GPU, stopped early on the validation AUC.
PROFILES = {
    "smoke": dict(epochs=4, batch_size=64, unlabeled_batch_size=64, patience=2),
    "default": dict(epochs=6, batch_size=128, unlabeled_batch_size=128, patience=2),
    "paper": dict(epochs=30, batch_size=128, unlabeled_batch_size=128, patience=5),
}


def profile_config(profile: str, **overrides) -> TrainConfig:
    """The `TrainConfig` of a notebook profile ("smoke", "default", "paper") with overrides."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; expected one of {sorted(PROFILES)}")
    return TrainConfig(**{**PROFILES[profile], **overrides})


# ----------------------------------------------------------------------------- the losses


def _make_optimizer(config: TrainConfig) -> optax.GradientTransformation:
    if config.optimizer == "adam":
        return optax.adam(config.lr)  # Kingma & Ba defaults b1=0.9, b2=0.999, eps=1e-8
    # Keras Adadelta defaults (the paper's Keras code): rho = 0.95, epsilon = 1e-7.
    return optax.adadelta(config.lr, rho=0.95, eps=1e-7)


def _bce(logits, labels, weights):
    """Weighted binary cross-entropy, mean over the batch (Keras class_weight convention)."""
    return jnp.mean(weights * optax.sigmoid_binary_cross_entropy(logits, labels))


def pairwise_auc_loss(*, logits: jax.Array, labels: jax.Array, margin: float) -> jax.Array:
    """The paper's pairwise AUC surrogate: an exponential hinge over (real, bogus) pairs.

    Args:
        logits: float32[B]. labels: float32[B] in {0, 1}.
        margin: required gap between the probabilities of a real and a bogus sample.

    Returns:
        float32[] mean over (real i, bogus j) pairs of exp(max(0, margin - (p_i - p_j))) - 1;
        0 if the batch lacks one of the classes.

    Notes:
        Takahashi et al. (2022) code (margin 0.25 on probabilities); the "-1" makes a pair
        that meets the margin cost exactly 0.
    """
    p = jax.nn.sigmoid(logits)
    gap = p[:, None] - p[None, :]
    pair = labels[:, None] * (1.0 - labels[None, :])
    loss = jnp.exp(jnp.maximum(0.0, margin - gap)) - 1.0
    return jnp.sum(pair * loss) / jnp.maximum(jnp.sum(pair), 1.0)


def binary_entropy(logits: jax.Array) -> jax.Array:
    """Mean entropy of Bernoulli(sigmoid(logits)) (the EntMin term, Miyato et al. 2018)."""
    p = jax.nn.sigmoid(logits)
    return jnp.mean(-(p * jax.nn.log_sigmoid(logits) + (1 - p) * jax.nn.log_sigmoid(-logits)))


# ------------------------------------------------------------------------- the train step


def _with_key(rest, key):
    """The non-parameter state (dropout RNG stream) re-seeded with `key`."""
    return jax.tree.map(
        lambda v: key if jnp.issubdtype(v.dtype, jax.dtypes.prng_key) else jnp.zeros_like(v),
        rest,
    )


def step_keys(seed: int, step) -> tuple[jax.Array, jax.Array]:
    """(dropout key, VAT key) of a training step: a function of (seed, step) only."""
    key_drop, key_vat = jax.random.split(jax.random.fold_in(jax.random.key(seed), step))
    return key_drop, key_vat


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


def _make_train_step(config: TrainConfig, gd_train, gd_eval):
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
    jitted = _cached_train_step(key_config, gd_train, gd_eval)
    eps, alpha = np.float32(config.eps), np.float32(config.alpha)

    def step(params, opt_state, rest, i, xl, yl, xu):
        return jitted(params, opt_state, rest, i, xl, yl, xu, eps, alpha)

    step.jitted = jitted
    return step


@functools.lru_cache(maxsize=16)
def _cached_train_step(config: TrainConfig, gd_train, gd_eval):
    optimizer = _make_optimizer(config)
    w_bogus, w_real = config.class_weight

    def step_fn(params, opt_state, rest, step, xl, yl, xu, eps, alpha):
        key_drop, key_vat = step_keys(config.seed, step)

        def loss_fn(params):
            xl_n = normalize_jax(xl)
            logits = nnx.merge(gd_train, params, _with_key(rest, key_drop))(xl_n)
            y = yl.astype(jnp.float32)
            ce = _bce(logits, y, jnp.where(yl == 1, w_real, w_bogus))
            loss = config.lambda_ce * ce
            aux = {"ce": ce}
            if config.lambda_auc > 0:
                auc = pairwise_auc_loss(logits=logits, labels=y, margin=config.auc_margin)
                loss = loss + config.lambda_auc * auc
                aux["auc_loss"] = auc
            if config.uses_unlabeled:
                # eval mode: the perturbed passes must not see dropout noise (the paper's
                # code); the LDS covers the labeled and the unlabeled samples of the step.
                def logits_eval(x):
                    return nnx.merge(gd_eval, params, rest)(x)

                x_all = jnp.concatenate([xl_n, normalize_jax(xu)])
                logits_all = logits_eval(x_all)
                if config.alpha > 0:
                    lds = virtual_adversarial_loss(
                        logits_eval,
                        x_all,
                        key=key_vat,
                        clean_logits=logits_all,
                        eps=eps,
                        xi=config.xi,
                        n_power=config.n_power,
                    )
                    # The intended weight: alpha multiplies the LDS (the paper's code put its
                    # VAT weight on another term by mistake).
                    loss = loss + alpha * lds
                    aux["lds"] = lds
                if config.entmin:
                    ent = binary_entropy(logits_all)
                    loss = loss + ent
                    aux["entropy"] = ent
            aux["loss"] = loss
            return loss, aux

        grads, aux = jax.grad(loss_fn, has_aux=True)(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        aux["grad_norm"] = optax.tree.norm(grads)
        return params, opt_state, aux

    return jax.jit(step_fn, donate_argnums=(0, 1))


# --------------------------------------------------------------------------- data feeding


class _Placement:
    """Where batches and parameters live: one device, or all local devices (data parallel)."""

    def __init__(self):
        devices = jax.local_devices()
        self.n = len(devices)
        if self.n > 1:
            mesh = Mesh(np.array(devices), ("data",))
            self.batch = NamedSharding(mesh, PartitionSpec("data"))
            self.replicated = NamedSharding(mesh, PartitionSpec())
        else:
            self.batch = self.replicated = devices[0]

    def check(self, size: int, name: str):
        if size % self.n:
            raise ValueError(f"{name}={size} must be divisible by the {self.n} local devices")

    def put_batch(self, *arrays):
        return tuple(jax.device_put(a, self.batch) for a in arrays)

    def put_replicated(self, tree):
        return jax.device_put(tree, self.replicated)


def _prefetch(iterator: Iterator, size: int) -> Iterator:
    """Run `iterator` in a background thread, `size` items ahead; re-raises its errors."""
    q: queue.Queue = queue.Queue(maxsize=size)
    stop = threading.Event()
    done = object()

    def producer():
        try:
            for item in iterator:
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(done)
        except BaseException as e:  # handed to the consumer
            q.put(e)

    thread = threading.Thread(target=producer, daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()


def _gather(images, idx: np.ndarray) -> np.ndarray:
    """images[idx] as float32[len(idx), 29, 29, 3], read in ascending index order."""
    order = np.argsort(idx, kind="stable")
    out = np.empty((len(idx), 29, 29, 3), np.float32)
    out[order] = np.asarray(images[idx[order]], dtype=np.float32)
    return out


def _epoch_indices(config: TrainConfig, epoch: int, lab_idx, unl_idx):
    """Index arrays of the epoch's batches: labeled [S, B] and unlabeled [S, U] (or None)."""
    rng = np.random.default_rng([config.seed, epoch])
    n_steps = len(lab_idx) // config.batch_size  # the remainder waits for the next shuffle
    lab = rng.permutation(lab_idx)[: n_steps * config.batch_size]
    lab = lab.reshape(n_steps, config.batch_size)
    if not config.uses_unlabeled:
        return lab, None
    need = n_steps * config.unlabeled_batch_size
    reps = math.ceil(need / len(unl_idx))
    unl = np.concatenate([rng.permutation(unl_idx) for _ in range(reps)])[:need]
    return lab, unl.reshape(n_steps, config.unlabeled_batch_size)


def _batches(images, labels, lab, unl, placement: _Placement):
    for s in range(len(lab)):
        xl = _gather(images, lab[s])
        yl = labels[lab[s]]
        xu = _gather(images, unl[s]) if unl is not None else np.zeros((0, 29, 29, 3), np.float32)
        yield placement.put_batch(xl, yl, xu)


# ------------------------------------------------------------------------------ inference


def _eval_view(model: nnx.Module):
    """(graphdef in eval mode, full state) of `model`, leaving `model`'s own mode unchanged."""
    twin = nnx.merge(*nnx.split(model))
    twin.eval()
    return nnx.split(twin)


# Inference runs a large batch as a loop over chunks of this many samples: each chunk's
# activations stay in the CPU cache (measured 1.7x faster than one pass over 1024 on two
# cores; benchmarks/bench_training.py).
INFERENCE_CHUNK = 64


@jax.jit
def _logits_batch(graphdef, state, x):
    """float32[B, 29, 29, 3] raw cutouts -> float32[B] eval-mode logits."""
    b = x.shape[0]
    chunk = INFERENCE_CHUNK if b % INFERENCE_CHUNK == 0 else b

    def logits(xc):
        return nnx.merge(graphdef, state)(normalize_jax(xc))

    return jax.lax.map(logits, x.reshape(b // chunk, chunk, *x.shape[1:])).reshape(b)


def _predict(graphdef, state, images, batch_size: int, placement: _Placement) -> np.ndarray:
    n = len(images)
    placement.check(batch_size, "batch_size")
    out = np.empty(n, np.float32)

    def batches():
        for start in range(0, n, batch_size):
            x = _gather(images, np.arange(start, min(start + batch_size, n)))
            if len(x) < batch_size:  # fixed shape: pad with zeros, no recompilation
                x = np.concatenate([x, np.zeros((batch_size - len(x), *x.shape[1:]), x.dtype)])
            yield start, placement.put_batch(x)[0]

    pending = []
    for start, x in _prefetch(batches(), 2):
        pending.append((start, _logits_batch(graphdef, state, x)))
        if len(pending) > 2:  # keep a few batches in flight, bound the memory
            s, y = pending.pop(0)
            out[s : s + batch_size] = np.asarray(y)[: n - s]
    for s, y in pending:
        out[s : s + batch_size] = np.asarray(y)[: n - s]
    return out


def predict_logits(model: RBCNN, images, batch_size: int = 1024) -> np.ndarray:
    """Logits of `model` for raw cutouts, in inference mode (dropout off).

    Args:
        model: a trained `RBCNN` (its train/eval mode is left as it is).
        images: raw float32[N, 29, 29, 3] cutouts, or anything indexable by an int array
            returning them (e.g. the memory-mapped `TrainingSet.images`); NaN pixels allowed.
        batch_size: samples per device pass; every pass has this shape (the last batch is
            zero-padded) so nothing recompiles.

    Returns:
        float32[N] logits; probability of "real" = sigmoid(logit).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    placement = _Placement()
    graphdef, state = _eval_view(model)
    return _predict(graphdef, placement.put_replicated(state), images, batch_size, placement)


# ------------------------------------------------------------------------------- the loop


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
    if int(mask.sum()) < config.batch_size:
        raise ValueError(
            f"{int(mask.sum())} labeled samples, fewer than one batch ({config.batch_size})"
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


def _validate(graphdef, params, rest, images, labels, config, placement) -> dict:
    from sklearn.metrics import roc_auc_score

    logits = _predict(
        graphdef, nnx.merge_state(params, rest), images, config.eval_batch_size, placement
    )
    z = logits.astype(np.float64)
    bce = np.mean(np.logaddexp(0.0, z) - labels * z)  # -log sigmoid(z) for y=1, -log(1-s) y=0
    return {"val_loss": float(bce), "val_auc": float(roc_auc_score(labels, z))}


def _host_copy(tree):
    # A copy, not a view: the device buffers are donated to the next step.
    return jax.tree.map(lambda a: np.array(a, copy=True), jax.device_get(tree))


def _improved(config: TrainConfig, score: float, best: float | None) -> bool:
    if best is None:
        return True
    return score > best if config.early_stopping_metric == "auc" else score < best


def _write_history(out_dir: str, history: list[dict]) -> None:
    import pandas as pd

    tmp = os.path.join(out_dir, "history.json.tmp")
    with open(tmp, "w") as f:
        json.dump(history, f, indent=1)
    os.replace(tmp, os.path.join(out_dir, "history.json"))
    pd.DataFrame(history).to_csv(os.path.join(out_dir, "history.csv.tmp"), index=False)
    os.replace(os.path.join(out_dir, "history.csv.tmp"), os.path.join(out_dir, "history.csv"))


def _save(out_dir, name, graphdef, params, rest, config, state, opt_state=None):
    from rbcore.checkpoint import save_model

    model = nnx.merge(graphdef, jax.device_get(params), jax.device_get(rest))
    path = os.path.join(out_dir, name)
    if opt_state is not None:
        # The optimizer state for resuming, named by epoch and written before the model's
        # config.json (the checkpoint's commit point), so a crash between the two is harmless.
        os.makedirs(path, exist_ok=True)
        leaves = [np.asarray(v) for v in jax.tree.leaves(jax.device_get(opt_state))]
        tmp = os.path.join(path, "opt_state.tmp.npz")
        np.savez(tmp, *leaves)
        os.replace(tmp, os.path.join(path, f"opt_state_{state['epoch']}.npz"))
    save_model(path, model, extra={"train_config": config.to_dict(), "train_state": state})
    if opt_state is not None:
        for f in os.listdir(path):
            if f.startswith("opt_state_") and f != f"opt_state_{state['epoch']}.npz":
                os.remove(os.path.join(path, f))


def _resume(out_dir, config, opt_state_template):
    """(params, opt_state, state) from `out_dir/last`, or None if there is no checkpoint."""
    from rbcore.checkpoint import load_model, read_config

    last = os.path.join(out_dir, "last")
    if not os.path.exists(os.path.join(last, "config.json")):
        return None
    meta = read_config(last)
    # Fields that do not change the arithmetic may differ (e.g. more epochs to continue).
    free = ("epochs", "prefetch", "log_every")
    stored = {k: v for k, v in meta["extra"].get("train_config", {}).items() if k not in free}
    if stored != {k: v for k, v in config.to_dict().items() if k not in free}:
        raise ValueError(
            f"{last}: checkpoint was trained with a different TrainConfig; use another out_dir "
            f"(stored {stored}, now {config.to_dict()})"
        )
    state = meta["extra"]["train_state"]
    model, _ = load_model(last)
    opt_path = os.path.join(last, f"opt_state_{state['epoch']}.npz")
    if not os.path.exists(opt_path):
        raise FileNotFoundError(f"{opt_path}: optimizer state of the last checkpoint is missing")
    with np.load(opt_path) as z:
        leaves = [z[f"arr_{i}"] for i in range(len(z.files))]
    treedef = jax.tree.structure(opt_state_template)
    if treedef.num_leaves != len(leaves):
        raise ValueError(f"{opt_path}: {len(leaves)} arrays, expected {treedef.num_leaves}")
    opt_state = jax.tree.unflatten(treedef, leaves)
    return nnx.state(model, nnx.Param), opt_state, state


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
) -> tuple[RBCNN, list[dict]]:
    """Train an `RBCNN` (supervised, or VAT when `config.alpha > 0`).

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
            resumes from it.
        progress: show a progress bar with the running loss.

    Returns:
        (model, history): the best model by validation (the last one without validation), in
        eval mode; one dict per epoch with the mean training loss terms and validation metrics.

    Notes:
        Loss = lambda_ce * BCE(labeled) + lambda_auc * AUC loss(labeled) + alpha * LDS(labeled +
        unlabeled) [+ entropy]; Takahashi et al. (2022), Miyato et al. (2018) Eq. 9. The extra
        (unlabeled) batches come from `config.unlabeled_pool`: all samples (default), or the
        unlabeled ones (all samples when there are none).
    """
    from tqdm.auto import tqdm

    labels, mask, val_labels = _check_inputs(
        images, labels, labeled_mask, val_images, val_labels, config
    )
    placement = _Placement()
    placement.check(config.batch_size, "batch_size")
    placement.check(config.eval_batch_size, "eval_batch_size")
    if config.uses_unlabeled:
        placement.check(config.unlabeled_batch_size, "unlabeled_batch_size")
    lab_idx = np.flatnonzero(mask)
    if config.unlabeled_pool == "unlabeled" and (~mask).any():
        unl_idx = np.flatnonzero(~mask)
    else:
        unl_idx = np.arange(len(labels))

    model = build_model(
        {"architecture": "RBCNN", "dropout_rate": config.dropout_rate}, seed=config.seed
    )
    model.train()
    gd_train, params, rest = nnx.split(model, nnx.Param, ...)
    twin = nnx.merge(gd_train, params, rest)
    twin.eval()
    gd_eval = nnx.split(twin, nnx.Param, ...)[0]
    optimizer = _make_optimizer(config)
    opt_state = optimizer.init(params)
    state = {
        "epoch": 0,
        "step": 0,
        "best_score": None,
        "best_epoch": None,
        "bad_epochs": 0,
        "stopped": False,
        "history": [],
    }
    if out_dir is not None:
        os.makedirs(out_dir, exist_ok=True)
        resumed = _resume(out_dir, config, opt_state)
        if resumed is not None:
            params, opt_state, state = resumed
    params, opt_state, rest = placement.put_replicated((params, opt_state, rest))
    train_step = _make_train_step(config, gd_train, gd_eval)
    history = state["history"]
    best_params = None

    for epoch in range(state["epoch"], config.epochs):
        if state["stopped"]:
            break
        t0 = time.perf_counter()
        lab, unl = _epoch_indices(config, epoch, lab_idx, unl_idx)
        metrics = []
        bar = tqdm(
            total=len(lab),
            desc=f"epoch {epoch + 1}/{config.epochs}",
            disable=not progress,
            leave=False,
        )
        for s, (xl, yl, xu) in enumerate(
            _prefetch(_batches(images, labels, lab, unl, placement), config.prefetch)
        ):
            params, opt_state, aux = train_step(params, opt_state, rest, state["step"], xl, yl, xu)
            state["step"] += 1
            metrics.append(aux)
            if (s + 1) % config.log_every == 0 or s + 1 == len(lab):
                recent = jax.device_get(metrics[-config.log_every :])
                bar.set_postfix(loss=f"{np.mean([m['loss'] for m in recent]):.4f}")
                bar.update(s + 1 - bar.n)
        bar.close()
        metrics = jax.device_get(metrics)
        row = {"epoch": epoch + 1, "step": state["step"]}
        for k in metrics[0]:
            row[k] = float(np.mean(np.array([m[k] for m in metrics], np.float64)))
        n_samples = len(lab) * (
            config.batch_size + (config.unlabeled_batch_size if unl is not None else 0)
        )
        row["train_time_s"] = time.perf_counter() - t0
        row["samples_per_s"] = n_samples / row["train_time_s"]
        if val_images is not None:
            row.update(_validate(gd_eval, params, rest, val_images, val_labels, config, placement))
            score = row["val_auc"] if config.early_stopping_metric == "auc" else row["val_loss"]
            if _improved(config, score, state["best_score"]):
                state.update(best_score=score, best_epoch=epoch + 1, bad_epochs=0)
                best_params = _host_copy(params)
            else:
                state["bad_epochs"] += 1
                if config.patience and state["bad_epochs"] >= config.patience:
                    state["stopped"] = True
        history.append(row)
        state["epoch"] = epoch + 1
        if out_dir is not None:
            if state["best_epoch"] == epoch + 1:
                _save(out_dir, "best", gd_eval, params, rest, config, dict(state, history=None))
            _save(out_dir, "last", gd_eval, params, rest, config, state, opt_state)
            _write_history(out_dir, history)
        if progress:
            shown = {k: round(v, 4) for k, v in row.items() if isinstance(v, float)}
            print(f"epoch {epoch + 1}: {shown}", flush=True)

    if val_images is not None and state["best_epoch"] is not None:
        if best_params is None:  # resumed after the best epoch: read it back
            from rbcore.checkpoint import load_model

            best_params = nnx.state(load_model(os.path.join(out_dir, "best"))[0], nnx.Param)
        params = best_params
    model = nnx.merge(gd_eval, jax.device_get(params), jax.device_get(rest))
    return model, history


def detector_validation_split(
    detector_ids, labels, *, fraction: float = 0.1, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Hold out whole detectors of the training data as the validation split.

    Args:
        detector_ids: int[N] detector of each training sample (Tomo-e has 84).
        labels: int[N] 0/1 labels (the split must hold both classes).
        fraction: target share of samples held out; detectors are drawn in a seeded random
            order until at least this share is reached (at least one detector, never all).
        seed: the draw's seed.

    Returns:
        (train_idx, val_idx): sorted int64 arrays partitioning 0..N-1.

    Notes:
        Whole detectors, so that no detector's artifacts are both trained on and validated
        on; from the training data, never the test set (our choice, issue 4).
    """
    det = np.asarray(detector_ids)
    labels = np.asarray(labels)
    if det.shape != labels.shape or det.ndim != 1:
        raise ValueError(f"detector_ids {det.shape} and labels {labels.shape} must be [N] alike")
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    unique = np.unique(det)
    if len(unique) < 2:
        raise ValueError(f"need at least 2 detectors to hold one out, got {unique.tolist()}")
    order = np.random.default_rng(seed).permutation(unique)
    counts = np.array([np.sum(det == d) for d in order])
    n_take = int(np.searchsorted(np.cumsum(counts), fraction * len(det)) + 1)
    n_take = min(max(n_take, 1), len(unique) - 1)
    is_val = np.isin(det, order[:n_take])
    for name, part in (("validation", is_val), ("training", ~is_val)):
        if len(np.unique(labels[part])) < 2:
            raise ValueError(
                f"the {name} part of the detector split (seed {seed}) holds one class only"
            )
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)
