"""Models a pipeline can load without JAX: ONNX export, and scoring through onnxruntime.

`export_checkpoint` writes a checkpoint (`rbcore.checkpoint.save_model`) as an ONNX model that
takes raw cutout triplets `float32[N, 29, 29, 3]` (NaN = masked pixel) and returns the logit
`float32[N]`, the normalization of rbcore's scorer inside (`rbcore.preprocess.normalize_jax`,
traced into the graph), so a pipeline in C++, Java, Rust or Python feeds it what it would feed
`python -m rbcore score`. The ONNX metadata (`metadata_props`) records the model version and
the checkpoint's weights hash (`read_metadata`).

The export is a trace of a JAX function of the model (`jax2onnx.to_onnx`): `logits_function`
gives `model(normalize_jax(x))` for any NNX model, or the model's plain form where one is
registered in `PLAIN_FORMS`: the same arithmetic through library layers only (`nnx.Conv`,
`nnx.max_pool`), which jax2onnx turns into ONNX `Conv` and `MaxPool` nodes instead of the
reshapes and custom-gradient functions rbcore's own forward pass uses for speed under XLA
(`rbcore.model._pooled_conv1`, `_max_pool_2x2`). tests/test_onnx_export.py checks that the
exported logits equal rbcore's within 1e-4.

`OnnxScorer` is `rbcore.inference.Scorer` through onnxruntime (same call, same pixel rule);
`make_scorer` picks the engine by name (`ENGINES`), which the command-line scorer
(`--engine`) and the deployment week (`DeployConfig.engine`) use.

The packages (jax2onnx, onnx, onnxruntime) are the optional extra `onnx` of pyproject.toml:
they are imported only here, when an export or the ONNX engine is asked for.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import jax
import numpy as np
from flax import nnx

from rbcore.inference import eval_view, gather, prefetch
from rbcore.model import IMAGE_SHAPE, RBCNN
from rbcore.preprocess import normalize_jax

ENGINES = ("jax", "onnx")  # rbcore's XLA scorer, onnxruntime on an exported model
# The engine of `python -m rbcore score` and the deployment week when none is named: the
# faster one in benchmarks/bench_engines.py on this machine (figures in benchmarks/README.md).
DEFAULT_ENGINE = "jax"
INPUT_NAME = "triplets"  # float32[N, 29, 29, 3], raw pixels, NaN = masked
OUTPUT_NAME = "logit"  # float32[N]; probability of real = sigmoid(logit)
# ONNX opset of the export. Our choice: 18, the oldest jax2onnx 0.17 writes correctly (at 17
# it still gives ReduceMean its axes as an input, opset 18's form, which the paper's ResNet
# needs), so that pipelines on onnxruntime >= 1.14 (2023) load the file.
OPSET = 18
INSTALL_HINT = "pip install 'rbcore[onnx]' (jax2onnx, onnx, onnxruntime)"
METADATA_PREFIX = "rbcore."


def _import(name: str):
    try:
        return __import__(name)
    except ImportError as err:
        raise ImportError(f"the ONNX export and engine need {name}: {INSTALL_HINT}") from err


# ---------------------------------------------------------------------------- the function


def _pool(x: jax.Array) -> jax.Array:
    # jax2onnx's max_pool plugin reads the window and strides as keyword arguments.
    return nnx.max_pool(x, window_shape=(2, 2), strides=(2, 2), padding="VALID")


def rbcnn_plain(model: RBCNN, x: jax.Array) -> jax.Array:
    """`RBCNN`'s logits float32[N] of normalized x in plain form: the layers of the talk's
    table as `nnx.Conv`, `nnx.max_pool` and `nnx.Linear`, dropout off (inference).

    The same sums as `RBCNN.__call__` (whose first layer is in phase form, see
    `rbcore.model._pooled_conv1`); only the order of the floating-point additions differs.
    """
    x = _pool(nnx.relu(model.conv1(x)))
    x = _pool(nnx.relu(model.conv2(x)))
    x = x.reshape(x.shape[0], -1)
    x = nnx.relu(model.dense1(x))
    x = nnx.relu(model.dense2(x))
    return model.dense3(x).reshape(-1)


# Architecture (class) -> its plain form (model, normalized x) -> logits; any other model is
# exported as `model(x)`.
PLAIN_FORMS = {RBCNN: rbcnn_plain}


def normalize_channels_first(x: jax.Array) -> jax.Array:
    """`normalize_jax(x)` for x float32[N, H, W, C], computed on each (cutout, channel)'s pixels
    laid out contiguously: the same values, bit for bit (a min, a max and elementwise
    arithmetic per pixel, whatever the layout).

    Notes:
        In onnxruntime, the reductions over the pixels of an [N, H*W, C] tensor (a strided
        axis) made the normalization cost about as much as both convolutions; with each
        channel's pixels contiguous the exported model scored ~25 % faster (measured on two
        loaded cores, issue 24). The transposes cost a pass each, which XLA mostly fuses.
    """
    b, h, w, c = x.shape
    per_channel = x.transpose(0, 3, 1, 2).reshape(b * c, h * w, 1, 1)
    return normalize_jax(per_channel).reshape(b, c, h, w).transpose(0, 2, 3, 1)


def logits_function(model: nnx.Module):
    """x float32[N, 29, 29, 3] raw -> logits float32[N]: normalization (`normalize_jax`, as
    `normalize_channels_first`), then the model in inference mode (its plain form when `PLAIN_FORMS` has one). `model` is left as it is."""
    graphdef, state = eval_view(model)
    twin = nnx.merge(graphdef, state)
    plain = PLAIN_FORMS.get(type(twin))

    def logits(x):
        xn = normalize_channels_first(x)
        return plain(twin, xn) if plain else twin(xn).reshape(-1)

    return logits


# ------------------------------------------------------------------------------- the export


def export_model(model: nnx.Module, metadata: dict | None = None):
    """`model` as an `onnx.ModelProto`: raw triplets in (`INPUT_NAME`, batch size free),
    logits out (`OUTPUT_NAME`); `metadata` {key: str} goes to `metadata_props` as
    "rbcore.<key>"."""
    jax2onnx = _import("jax2onnx")
    onnx = _import("onnx")
    import rbcore

    serde = logging.getLogger("onnx_ir.serde")  # warns of every constant shape it writes
    level = serde.level
    serde.setLevel(logging.ERROR)
    try:
        proto = jax2onnx.to_onnx(
            logits_function(model),
            [("N", *IMAGE_SHAPE)],
            model_name="rbcore_real_bogus",
            opset=OPSET,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
        )
    finally:
        serde.setLevel(level)
    proto.producer_name, proto.producer_version = "rbcore", rbcore.__version__
    proto.doc_string = (
        "Real/bogus classifier of transient candidates (rbcore). Input 'triplets': "
        "float32[N, 29, 29, 3] raw pixels, channels (ref, new, sub), NaN = masked; normalized "
        "inside (per cutout and channel min-max over finite pixels, NaN -> 0). Output "
        "'logit': float32[N], probability of real = sigmoid(logit)."
    )
    del proto.metadata_props[:]
    for key, value in sorted((metadata or {}).items()):
        entry = proto.metadata_props.add()
        entry.key, entry.value = METADATA_PREFIX + key, str(value)
    onnx.checker.check_model(proto)
    return proto


def checkpoint_metadata(path_dir, meta: dict) -> dict:
    """What `export_checkpoint` records: model version, weights hash, architecture."""
    import rbcore

    sha = meta["weights_sha256"]
    survey = (meta.get("extra") or {}).get("survey")  # recorded by ZTF-trained models
    return {
        **({"survey": str(survey)} if survey else {}),
        # as rbcore.inference.model_version names a model: <checkpoint name>:<sha12>
        "model_version": f"{Path(path_dir).resolve().name}:{sha[:12]}",
        "weights_sha256": sha,
        "model_config": json.dumps(meta["model"], sort_keys=True),
        "rbcore_version": rbcore.__version__,
    }


def export_checkpoint(checkpoint, output) -> Path:
    """Write the checkpoint directory `checkpoint` as the ONNX model `output` (atomically).

    Raises:
        FileNotFoundError, ValueError: no or a damaged checkpoint (`load_model`'s errors); an
            output that is a folder, in a missing folder, or a file of the checkpoint.
    """
    from rbcore.checkpoint import load_model
    from rbcore.files import write_bytes_atomic

    output, checkpoint = Path(output), Path(checkpoint)
    if output.is_dir():
        raise ValueError(f"{output}: is a directory; expected the path of an .onnx file")
    if not output.parent.is_dir():
        raise ValueError(f"{output.parent}: output directory does not exist")
    if checkpoint.is_dir() and any(output.resolve() == p.resolve() for p in checkpoint.iterdir()):
        raise ValueError(f"{output}: the output would replace a file of the checkpoint")
    model, meta = load_model(checkpoint)
    proto = export_model(model, checkpoint_metadata(checkpoint, meta))
    return write_bytes_atomic(output, proto.SerializeToString())


def read_metadata(model) -> dict:
    """The rbcore metadata of an ONNX model (a path or a ModelProto), keys without prefix."""
    onnx = _import("onnx")
    proto = onnx.load(str(model)) if isinstance(model, str | Path) else model
    n = len(METADATA_PREFIX)
    return {p.key[n:]: p.value for p in proto.metadata_props if p.key.startswith(METADATA_PREFIX)}


# ------------------------------------------------------------------------------- the engine


def cpu_cores() -> int:
    """The cores this process may run on (the affinity mask; os.cpu_count() elsewhere)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def session(model, threads: int | None = None):
    """An onnxruntime CPU session of `model` (an nnx model, a ModelProto, bytes or a path).

    `threads`: intra-op threads, default every core of this process (`cpu_cores`).
    """
    ort = _import("onnxruntime")
    if isinstance(model, nnx.Module):
        model = export_model(model)
    if hasattr(model, "SerializeToString"):
        model = model.SerializeToString()
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or cpu_cores()
    options.inter_op_num_threads = 1  # the graph is one chain: nothing runs beside it
    options.log_severity_level = 3  # errors only
    # No spin-waiting between operators: with it, two threads on a loaded two-core machine
    # scored a median 940 samples/s against 1,450 without (six interleaved rounds; issue 24,
    # benchmarks/README.md), and in the deployment week a spinning thread takes the core the
    # simulator runs on.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(
        model if isinstance(model, bytes) else str(model), options,
        providers=["CPUExecutionProvider"],
    )  # fmt: skip


class OnnxScorer:
    """`rbcore.inference.Scorer` through onnxruntime: the same call and result.

    Args:
        models: {name: an nnx model (exported here, in memory), an `onnx.ModelProto`, or the
            path of an .onnx file written by `export_checkpoint`}.
        batch_size: rows per onnxruntime call.
        threads: intra-op threads per session (default: every core, `cpu_cores`).
    """

    def __init__(self, models: dict, batch_size: int = 1024, threads: int | None = None):
        if not models:
            raise ValueError("OnnxScorer needs at least one model")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.names = tuple(models)
        self.batch_size = int(batch_size)
        self._sessions = [session(m, threads) for m in models.values()]
        for name, s in zip(self.names, self._sessions, strict=True):
            inputs = s.get_inputs()
            if len(inputs) != 1 or list(inputs[0].shape[1:]) != list(IMAGE_SHAPE):
                raise ValueError(f"model {name!r}: expected one input [N, 29, 29, 3], got "
                                 f"{[(i.name, i.shape) for i in inputs]}")  # fmt: skip

    def __call__(self, images) -> dict[str, np.ndarray]:
        n = len(images)
        shape = tuple(np.shape(images[np.arange(min(1, n))]))[1:]
        if n and shape != IMAGE_SHAPE:
            raise ValueError(f"OnnxScorer expects images float32[N, 29, 29, 3], got [N, {shape}]")
        size = max(1, min(n, self.batch_size))
        out = [np.empty(n, np.float32) for _ in self._sessions]

        def batches():  # read (and check the pixels) in a background thread, as Scorer does
            for s in range(0, n, size):
                yield s, gather(images, np.arange(s, min(s + size, n)))

        for s, x in prefetch(batches(), 2):
            for o, sess in zip(out, self._sessions, strict=True):
                o[s : s + len(x)] = sess.run(None, {sess.get_inputs()[0].name: x})[0]
        return dict(zip(self.names, out, strict=True))


def make_scorer(models: dict, batch_size: int = 1024, engine: str = DEFAULT_ENGINE):
    """A scorer of `models` ({name: nnx model}) on `engine` ("jax" or "onnx", `ENGINES`)."""
    if engine == "jax":
        from rbcore.inference import Scorer

        return Scorer(models, batch_size)
    if engine == "onnx":
        return OnnxScorer(models, batch_size)
    raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")


def checkpoint_scorer(checkpoint, batch_size: int = 1024, engine: str = DEFAULT_ENGINE):
    """(scorer {"model": ...}, checkpoint meta) of a checkpoint directory, or (engine "onnx")
    of an .onnx file, whose meta is {"extra": {"survey": ...}} when its metadata records one.

    Raises:
        FileNotFoundError, ValueError: missing or damaged checkpoint, an .onnx file with the
            JAX engine, an unknown engine; ImportError: the ONNX engine without onnxruntime.
    """
    from rbcore.checkpoint import load_model

    path = Path(checkpoint)
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    if path.suffix.lower() == ".onnx" and path.is_file():
        if engine != "onnx":
            raise ValueError(f"{path}: an ONNX model scores with the onnx engine (--engine onnx)")
        survey = read_metadata(path).get("survey")
        return OnnxScorer({"model": path}, batch_size), {
            "extra": {"survey": survey} if survey else {}
        }
    model, meta = load_model(path)
    return make_scorer({"model": model}, batch_size, engine), meta
