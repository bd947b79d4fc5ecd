"""The real/bogus CNN of the Tomo-e Gozen transient survey.

The architecture is the "current" model of the talk (Takahashi 2021, table "従来CNNモデルの
構造", after Hamasaki's master's thesis) and of Takahashi et al. (2022, PASJ 74, 946):

    conv2d 5x5x32 valid  -> (25, 25, 32)   2,432 params
    max-pool 2           -> (12, 12, 32)
    conv2d 3x3x64 valid  -> (10, 10, 64)  18,496 params
    max-pool 2           -> (5, 5, 64)
    dropout
    flatten              -> 1600
    dense 128                             204,928 params
    dense 64                                8,256 params
    dense 1 (logit)                            65 params
    total                                 234,177 params

ReLU after every hidden layer; one logit out, probability = sigmoid(logit).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from rbcore.pooling import max_pool_2x2 as _max_pool_2x2
from rbcore.resnet import PROJECTION_SHORTCUTS, PaperResNet

# Cutout geometry of the Tomo-e dataset: 29x29 pixels, channels (ref, new, sub).
CUTOUT_SIZE = 29
N_CHANNELS = 3
IMAGE_SHAPE = (CUTOUT_SIZE, CUTOUT_SIZE, N_CHANNELS)  # one triplet, channels last

# The talk's table gives no dropout rate. 0.25 after the second pooling is the value of the
# Keras "mnist_cnn" example whose layer sequence this model follows (conv32-conv64-pool-
# dropout-dense128); an assumption, stated here and in the README.
DEFAULT_DROPOUT_RATE = 0.25


def _conv_nhwc(x: jax.Array, kernel: jax.Array) -> jax.Array:
    return jax.lax.conv_general_dilated(
        x, kernel, (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC")
    )


@jax.custom_vjp
def _input_conv(x: jax.Array, kernel: jax.Array) -> jax.Array:
    """'VALID' convolution of the 3-channel input (conv2d_1, without bias).

    Notes:
        Same values as nnx.Conv; only the input gradient differs in how it is computed. XLA
        computes it as a transposed convolution with 3 output channels, a matrix product of
        width 3 that runs far below the CPU's speed; VAT's power iteration needs it for every
        sample. Here it is one wide product, g[B*H*W, 32] @ kernel^T[32, 5*5*3], followed by
        summing the 25 shifted patch contributions (col2im), about twice as fast (issue 4).
    """
    return _conv_nhwc(x, kernel)


def _input_conv_fwd(x, kernel):
    return _conv_nhwc(x, kernel), (x, kernel)


def _input_conv_bwd(res, g):
    x, kernel = res
    kh, kw, cin, cout = kernel.shape
    b, ho, wo, _ = g.shape
    g_kernel = jax.vjp(lambda k: _conv_nhwc(x, k), kernel)[1](g)[0]
    patches = (g.reshape(-1, cout) @ kernel.reshape(-1, cout).T).reshape(b, ho, wo, kh, kw, cin)
    g_x = sum(
        jnp.pad(patches[:, :, :, i, j, :], ((0, 0), (i, kh - 1 - i), (j, kw - 1 - j), (0, 0)))
        for i in range(kh)
        for j in range(kw)
    )
    return g_x, g_kernel


_input_conv.defvjp(_input_conv_fwd, _input_conv_bwd)


# The first convolution and its pooling in phases (`_pooled_conv1`). _PHASE_ROWS[q, r, a] is
# the kernel row, plus one, that joins output row 2i + a to input row 2(i + q) + r: the 5x5
# kernel padded by one zero row on each side (rows -1 and 5 read as 0).
_PHASE_ROWS = np.array([[[2 * q + r - a + 1 for a in (0, 1)] for r in (0, 1)] for q in (0, 1, 2)])


def _phase_kernel(kernel: jax.Array) -> jax.Array:
    """The 5x5 kernel [5, 5, C, O] as a 3x3 kernel [3, 3, 4C, 4O] on 2x2 pixel blocks.

    Input channel (r, s, c) is pixel (r, s) of a block, channel c; output channel (a, b, o) is
    the conv2d_1 output at (2i + a, 2j + b) of block (i, j), filter o.
    """
    kh, kw, cin, cout = kernel.shape
    if (kh, kw) != (5, 5):
        raise ValueError(f"the phase form is written for a 5x5 kernel, got {kh}x{kw}")
    padded = jnp.pad(kernel, ((1, 1), (1, 1), (0, 0), (0, 0)))
    rows, cols = _PHASE_ROWS[:, None, :, None, :, None], _PHASE_ROWS[None, :, None, :, None, :]
    k = padded[rows, cols]  # [qy, qx, r, s, a, b, C, O]
    return k.transpose(0, 1, 2, 3, 6, 4, 5, 7).reshape(3, 3, 4 * cin, 4 * cout)


def _pixel_blocks(x: jax.Array) -> jax.Array:
    """[B, 29, 29, C] -> [B, 14, 14, 4C]: 2x2 pixel blocks as channels (r, s, c).

    Row and column 28 are left out: they only reach conv2d_1's row and column 24, which the
    pooling drops (odd edge), so nothing downstream depends on them.
    """
    b, h, w, c = x.shape
    h2, w2 = (h - 1) // 2, (w - 1) // 2
    x = x[:, : 2 * h2, : 2 * w2].reshape(b, h2, 2, w2, 2, c)
    return x.transpose(0, 1, 3, 2, 4, 5).reshape(b, h2, w2, 4 * c)


@jax.custom_vjp
def _max_of_phases(y: jax.Array) -> jax.Array:
    """[B, H, W, 4C] with channels (a, b, c) -> [B, H, W, C], the max over the four (a, b).

    The 2x2 max-pool of `_max_pool_2x2` for the phase form; its gradient, like the pool's,
    goes to the first maximal phase in row-major (a, b) order.
    """
    return functools.reduce(jnp.maximum, _phases(y))


def _phases(y):
    c = y.shape[-1] // 4
    return [y[..., i * c : (i + 1) * c] for i in range(4)]


def _max_of_phases_fwd(y):
    m = _max_of_phases(y)
    return m, (y, m)


def _max_of_phases_bwd(res, g):
    y, m = res
    taken = jnp.zeros(m.shape, bool)
    parts = []
    for p in _phases(y):
        first = (p == m) & ~taken
        taken = taken | first
        parts.append(jnp.where(first, g, 0.0))
    return (jnp.concatenate(parts, axis=-1),)


_max_of_phases.defvjp(_max_of_phases_fwd, _max_of_phases_bwd)


def _pooled_conv1(x: jax.Array, kernel: jax.Array, bias: jax.Array) -> jax.Array:
    """max_pooling2d_1 of raw inputs: relu(conv2d_1) max-pooled, [B, 29, 29, 3] -> [B, 12, 12, O].

    Notes:
        The same sums as `_direct_pooled_conv1`, rearranged (issue "every stage near the
        compute bound"): 2x2 pixel blocks become channels, the four positions of a pooling
        window become output channels, and the 5x5 convolution with 3 inputs becomes a 3x3
        one with 12 inputs and 4 x O outputs. The products are 44 % more (zeros of the phase
        kernel) but the convolution is wide enough to run near the CPU's speed: about 1.8x
        faster forward on two cores, the layer timed alone (scoring by the week's two models
        +15 % in benchmarks/bench_ab.py). Output row and column 24, which the pooling drops,
        are never computed. The bias and ReLU commute with the max.
    """
    y = _input_conv(_pixel_blocks(x), _phase_kernel(kernel))
    return nnx.relu(_max_of_phases(y) + bias)


def _direct_pooled_conv1(x: jax.Array, kernel: jax.Array, bias: jax.Array) -> jax.Array:
    """`_pooled_conv1` the direct way: the 5x5 convolution, bias, ReLU, then the 2x2 pool."""
    return _max_pool_2x2(nnx.relu(_input_conv(x, kernel) + bias))


class RBCNN(nnx.Module):
    """The talk's real/bogus CNN (234,177 parameters).

    Args:
        dropout_rate: dropout probability after the second pooling layer.
        rngs: random streams for parameter initialization and dropout.

    Call:
        x: float32[B, 29, 29, 3] normalized cutouts (see `rbcore.preprocess.normalize`).
        Returns float32[B] logits.

    Notes:
        `model.train()` enables dropout, `model.eval()` disables it (Flax NNX).
    """

    def __init__(self, *, dropout_rate: float = DEFAULT_DROPOUT_RATE, rngs: nnx.Rngs):
        self.dropout_rate = dropout_rate
        self.conv1 = nnx.Conv(N_CHANNELS, 32, kernel_size=(5, 5), padding="VALID", rngs=rngs)
        self.conv2 = nnx.Conv(32, 64, kernel_size=(3, 3), padding="VALID", rngs=rngs)
        self.dropout = nnx.Dropout(dropout_rate, rngs=rngs)
        self.dense1 = nnx.Linear(5 * 5 * 64, 128, rngs=rngs)
        self.dense2 = nnx.Linear(128, 64, rngs=rngs)
        self.dense3 = nnx.Linear(64, 1, rngs=rngs)

    def features(self, x: jax.Array) -> dict[str, jax.Array]:
        """Every layer's output, keyed by the talk's layer names (for inspection and tests)."""
        out = {}
        x = out["conv2d_1"] = nnx.relu(self._conv1(x))
        x = out["max_pooling2d_1"] = _max_pool_2x2(x)
        x = out["conv2d_2"] = nnx.relu(self.conv2(x))
        x = out["max_pooling2d_2"] = _max_pool_2x2(x)
        x = out["dropout_1"] = self.dropout(x)
        x = out["flatten_1"] = x.reshape(x.shape[0], -1)
        x = out["dense_1"] = nnx.relu(self.dense1(x))
        x = out["dense_2"] = nnx.relu(self.dense2(x))
        out["dense_3"] = self.dense3(x)
        return out

    def _conv1(self, x: jax.Array) -> jax.Array:
        # self.conv1's parameters through the faster-gradient convolution (see _input_conv).
        return _input_conv(x, self.conv1.kernel[...]) + self.conv1.bias[...]

    def __call__(self, x: jax.Array) -> jax.Array:
        """Logits float32[B] of x, float32[B, 29, 29, 3] (the first layer in phase form)."""
        return self.head(_pooled_conv1(x, self.conv1.kernel[...], self.conv1.bias[...]))

    def trunk(self, x: jax.Array, form: str = "direct") -> jax.Array:
        """The convolutional layers: float32[B, 29, 29, 3] -> max_pooling2d_2, [B, 5, 5, 64].

        Args:
            form: how conv2d_1 and its pool are computed, the same values either way:
                "direct" (a 5x5 convolution, then the pool) or "phase" (`_pooled_conv1`,
                as in `__call__`). The training step picks the faster for its kind of step
                (`rbcore.train.step.conv1_form`).
        """
        if form not in ("direct", "phase"):
            raise ValueError(f"form must be 'direct' or 'phase', got {form!r}")
        pooled = _pooled_conv1 if form == "phase" else _direct_pooled_conv1
        return self._after_pool1(pooled(x, self.conv1.kernel[...], self.conv1.bias[...]))

    def head(self, pool1_out: jax.Array) -> jax.Array:
        """Logits float32[B] from max_pooling2d_1's output, float32[B, 12, 12, 32]."""
        return self.classify(self._after_pool1(pool1_out))

    def _after_pool1(self, pool1_out: jax.Array) -> jax.Array:
        return _max_pool_2x2(nnx.relu(self.conv2(pool1_out)))

    def classify(self, pooled: jax.Array) -> jax.Array:
        """Dropout and the dense layers: max_pooling2d_2 [B, 5, 5, 64] -> logits float32[B]."""
        x = self.dropout(pooled)
        x = x.reshape(x.shape[0], -1)
        x = nnx.relu(self.dense1(x))
        x = nnx.relu(self.dense2(x))
        return self.dense3(x)[:, 0]


def shared_input_logits(models: list[RBCNN], x: jax.Array) -> tuple[jax.Array, ...]:
    """Logits of several models for the same inputs x: a tuple of float32[B].

    Notes:
        The first convolutions of all models run as one convolution in phase form
        (`_pooled_conv1`), 4 x 32 output channels per model: on CPU a wider product runs
        closer to the machine's speed (issue "every stage near the compute bound";
        benchmarks/bench_ab.py). Each output channel is the same sum as in the model's own
        pass.
    """
    kernel = jnp.concatenate([m.conv1.kernel[...] for m in models], axis=-1)
    bias = jnp.concatenate([m.conv1.bias[...] for m in models], axis=-1)
    pooled = _pooled_conv1(x, kernel, bias)
    return tuple(
        m.head(p) for m, p in zip(models, jnp.split(pooled, len(models), axis=-1), strict=True)
    )


ARCHITECTURES = ("RBCNN", "PaperResNet")  # the talk's CNN; the paper's ResNet (rbcore.resnet)


def model_config(model: RBCNN | PaperResNet) -> dict:
    """The constructor arguments that rebuild `model` (stored with checkpoints)."""
    if isinstance(model, PaperResNet):
        return {"architecture": "PaperResNet", "projection_shortcut": model.projection_shortcut}
    return {"architecture": "RBCNN", "dropout_rate": float(model.dropout_rate)}


def build_model(config: dict | None = None, *, seed: int = 0) -> RBCNN | PaperResNet:
    """Build an `RBCNN` or a `PaperResNet` from a config dict as returned by `model_config`.

    A config without "architecture" (checkpoints written before the ResNet existed) is RBCNN.
    """
    config = dict(config or {"architecture": "RBCNN"})
    arch = config.pop("architecture", "RBCNN")
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}; expected one of {ARCHITECTURES}")
    fields = {"RBCNN": {"dropout_rate"}, "PaperResNet": {"projection_shortcut"}}[arch]
    unknown = set(config) - fields
    if unknown:
        raise ValueError(
            f"unknown {arch} config fields {sorted(unknown)}; expected {sorted(fields)}"
        )
    if arch == "PaperResNet":
        shortcut = config.get("projection_shortcut", "as_coded")
        if shortcut not in PROJECTION_SHORTCUTS:
            raise ValueError(
                f"projection_shortcut must be one of {PROJECTION_SHORTCUTS}, got {shortcut!r}"
            )
        return PaperResNet(rngs=nnx.Rngs(seed), **config)
    rate = config.get("dropout_rate", DEFAULT_DROPOUT_RATE)
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0.0 <= rate < 1.0:
        raise ValueError(f"dropout_rate must be a number in [0, 1), got {rate!r}")
    return RBCNN(rngs=nnx.Rngs(seed), **config)


def count_params(model: nnx.Module) -> int:
    """Number of trainable parameters."""
    return sum(int(jnp.size(p)) for p in jax.tree.leaves(nnx.state(model, nnx.Param)))
