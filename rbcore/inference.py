"""Inference: raw cutouts in, logits and probabilities out — the one path every caller takes.

Training (validation passes), evaluation, mislabel discovery, the simulated week, the real
alerts and the command-line scorer all turn cutouts into scores here: `predict_logits` for one
model, `Scorer` for several models in one XLA call per batch, `sigmoid` for probabilities, and
`load_models` for the Current and VAT checkpoints of notebook 03. Cutouts are normalized on the
device (`rbcore.preprocess.normalize_jax`), exactly as in training.

Data feeding lives here too, because training uses it as well (this module sits below
`rbcore.train`): `gather` reads rows of a (memory-mapped) array in ascending order, `prefetch`
runs a generator in a background thread, and `Placement` spreads each batch over all local
devices (data parallelism with `jax.sharding`).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import jax
import numpy as np
from flax import nnx
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from rbcore.datasets import locate_row
from rbcore.model import IMAGE_SHAPE, RBCNN, shared_input_logits
from rbcore.preprocess import as_pixels, normalize_jax

MODEL_NAMES = ("current", "vat")  # the talk's "Simple CNN" (Current) and "VAT" models

# A batch is evaluated as a loop over chunks of this many samples: each chunk's activations
# stay in the CPU cache (measured 1.7x faster than one pass over 1024 on two cores;
# benchmarks/bench_training.py).
INFERENCE_CHUNK = 64


# --------------------------------------------------------------------------- data feeding


class Placement:
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


def prefetch(iterator: Iterator, size: int) -> Iterator:
    """Run `iterator` in a background thread, `size` items ahead; re-raises its errors."""
    q: queue.Queue = queue.Queue(maxsize=size)
    stop = threading.Event()
    done = object()

    def put(item) -> bool:  # False once the consumer has stopped
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def producer():
        try:
            for item in iterator:
                if not put(item):
                    return
            put(done)
        except BaseException as e:  # handed to the consumer
            put(e)

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
        # wait for the producer (it stops at its next item): a daemon thread still inside
        # XLA when the interpreter exits (Ctrl-C) can abort it ("exception not rethrown")
        thread.join()


def gather(images, idx: np.ndarray) -> np.ndarray:
    """images[idx] as float32[len(idx), 29, 29, 3], read in ascending index order.

    Every batch of training and inference passes here, so the pixel rule
    (`rbcore.preprocess.as_pixels`: NaN masked, +-inf an error naming the file and triplet)
    holds for every caller.
    """
    order = np.argsort(idx, kind="stable")
    rows = idx[order]
    out = np.empty((len(idx), *IMAGE_SHAPE), np.float32)
    out[order] = as_pixels(images[rows], lambda i: locate_row(images, int(rows[i])))
    return out


# ------------------------------------------------------------------------------- the pass


def eval_view(model: nnx.Module):
    """(graphdef in eval mode, full state) of `model`, leaving `model`'s own mode unchanged."""
    twin = nnx.merge(*nnx.split(model))
    twin.eval()
    return nnx.split(twin)


@partial(jax.jit, static_argnums=0)
def _forward(graphdefs, states, x):
    """Logits of each model for raw x: float32[B, 29, 29, 3] -> tuple of float32[B].

    One XLA computation for all models; the graph definitions are static, so every call with
    the same models and batch size shares one compiled function.
    """
    b = x.shape[0]
    chunk = INFERENCE_CHUNK if b % INFERENCE_CHUNK == 0 else b

    def logits(xc):
        xn = normalize_jax(xc)  # on the device, as in training
        models = [nnx.merge(g, s) for g, s in zip(graphdefs, states, strict=True)]
        if len(models) > 1 and all(isinstance(m, RBCNN) for m in models):
            return shared_input_logits(models, xn)  # the first convolutions as one product
        return tuple(m(xn) for m in models)

    out = jax.lax.map(logits, x.reshape(b // chunk, chunk, *x.shape[1:]))
    return tuple(y.reshape(b) for y in out)


def pass_size(n: int, batch_size: int, n_devices: int = 1) -> int:
    """Rows per device pass for `n` cutouts: `batch_size`, or fewer for a smaller input.

    An input of fewer rows than `batch_size` is padded only up to the next power of two (a
    multiple of the device count), so a huge batch size allocates nothing for padding, and
    small inputs of any length share a few compiled shapes.
    """
    if n >= batch_size:
        return batch_size
    size = 1 << max(n - 1, 0).bit_length()
    return min(-(-size // n_devices) * n_devices, batch_size)


def predict_views(graphdefs, states, images, batch_size: int, placement: Placement) -> list:
    """Logits float32[N] per model view (graphdef, state) for raw cutouts `images`.

    Every pass has shape [pass_size, ...] (the last batch is zero-padded, so nothing
    recompiles); batches are read by a background thread and a few are kept in flight.
    """
    n = len(images)
    placement.check(batch_size, "batch_size")
    batch_size = pass_size(n, batch_size, placement.n)
    out = [np.empty(n, np.float32) for _ in graphdefs]

    def batches():
        for start in range(0, n, batch_size):
            x = gather(images, np.arange(start, min(start + batch_size, n)))
            if len(x) < batch_size:  # fixed shape: pad with zeros, no recompilation
                x = np.concatenate([x, np.zeros((batch_size - len(x), *x.shape[1:]), x.dtype)])
            yield start, placement.put_batch(x)[0]

    def collect(s, ys):
        for o, y in zip(out, ys, strict=True):
            o[s : s + batch_size] = np.asarray(y)[: n - s]

    pending = []
    for start, x in prefetch(batches(), 2):
        pending.append((start, _forward(graphdefs, states, x)))
        if len(pending) > 2:  # keep a few batches in flight, bound the memory
            collect(*pending.pop(0))
    for s, ys in pending:
        collect(s, ys)
    return out


def predict_logits(model: nnx.Module, images, batch_size: int = 1024) -> np.ndarray:
    """Logits of `model` for raw cutouts, in inference mode (dropout off).

    Args:
        model: a trained `RBCNN` or `PaperResNet` (its train/eval mode is left as it is).
        images: raw float32[N, 29, 29, 3] cutouts, or anything indexable by an int array
            returning them (e.g. the memory-mapped `TrainingSet.images`); NaN pixels allowed.
        batch_size: samples per device pass.

    Returns:
        float32[N] logits; probability of "real" = sigmoid(logit).
    """
    return Scorer({"model": model}, batch_size)(images)["model"]


class Scorer:
    """Every model's forward pass in one jitted call per fixed-size batch.

    Args:
        models: {name: RBCNN or PaperResNet}, evaluated in inference mode (dropout off); the
            models' own train/eval mode is left as it is. Two or more RBCNNs and nothing else
            share their first convolution (`shared_input_logits`); any other mix runs each
            model's own pass.
        batch_size: rows per XLA call (divisible by the number of local devices).

    Call:
        images: raw float32[N, 29, 29, 3] cutouts (NaN = masked), or a lazy indexable.
        Returns {name: float32[N] logits}.
    """

    def __init__(self, models: dict, batch_size: int = 1024):
        if not models:
            raise ValueError("Scorer needs at least one model")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.names = tuple(models)
        self.batch_size = int(batch_size)
        self.placement = Placement()
        views = [eval_view(m) for m in models.values()]
        self._graphdefs = tuple(g for g, _ in views)
        self._states = self.placement.put_replicated(tuple(s for _, s in views))

    def __call__(self, images) -> dict[str, np.ndarray]:
        shape = tuple(np.shape(images[np.arange(min(1, len(images)))]))[1:]
        if len(images) and shape != IMAGE_SHAPE:
            raise ValueError(f"Scorer expects images float32[N, 29, 29, 3], got [N, {shape}]")
        logits = predict_views(
            self._graphdefs, self._states, images, self.batch_size, self.placement
        )
        return dict(zip(self.names, logits, strict=True))


def sigmoid(logits) -> np.ndarray:
    """Probability of real from logits, in float64 (no rounding to 1 near the top)."""
    z = np.asarray(logits, np.float64)
    return np.exp(-np.logaddexp(0.0, -z))


# ----------------------------------------------------------------------------- the models


def model_version(metas: dict) -> str:
    """'current:<sha12>,vat:<sha12>' from the checkpoints' metadata (weights checksum)."""
    parts = []
    for k in MODEL_NAMES:
        sha = (metas.get(k) or {}).get("weights_sha256") or "unsaved"
        parts.append(f"{k}:{sha[:12]}")
    return ",".join(parts)


def load_models(models_dir, names=MODEL_NAMES) -> tuple[dict, str]:
    """The checkpoints `models_dir/<name>/` written by notebook 03, and their version.

    Returns:
        ({name: model in eval mode, either architecture}, `model_version` string).

    Raises:
        FileNotFoundError: naming `models_dir` and the notebook that makes the models.
    """
    from rbcore.checkpoint import load_model

    models_dir = Path(models_dir)
    missing = [n for n in names if not (models_dir / n / "config.json").is_file()]
    if missing:
        raise FileNotFoundError(
            f"{models_dir}: no trained model(s) {missing} here (expected {models_dir}/<name>/"
            "config.json); run notebook 03 (training of the Current and VAT models) with the "
            "same run_dir first, or set models_dir to the folder that holds them"
        )
    models, metas = {}, {}
    for k in names:
        models[k], metas[k] = load_model(models_dir / k)
    return models, model_version(metas)
