"""The paper's residual network (`model_type='complex'` of Takahashi et al. 2022's code).

Read from the paper's code, repository ichiro-takahashi/tomoe-realbogus at commit 0aeb3ee
(`model2.py` = src/models/real_bogus/model2.py, `block.py` = src/models/block.py,
`real_bogus.py` = src/real_bogus.py). The Complex runs use `model_cfg` of real_bogus.py:62-76:
model_type 'complex', norm_type 'simple' (min-max per cutout and channel, model2.py:537-549,
applied before the network here as for the talk's CNN: `rbcore.preprocess.normalize_jax`),
kernel_size 5, padding 'same', num_feature_layers 4. `make_model_output_complex`
(model2.py:569-609) builds:

    conv 5x5 -> 32, ReLU                       29x29     2,432 params
    4 x conv 3x3 32 -> 32, ReLU                29x29    36,992
    max-pool 2 'same'                          15x15
    conv 3x3 -> 64, ReLU                       15x15    18,496
    ResidualBlock(64)                          15x15    82,785
    max-pool 2 'same'                           8x8
    conv 3x3 -> 128, ReLU                       8x8     73,856
    ResidualBlock(128)                          8x8    329,409
    ResidualBlock(256, strides=2)               4x4    542,977
    ResidualBlock(256)                          4x4  1,314,177
    global average pooling                     256
    dense -> 1 logit                                       257
    total (as coded)                                 2,401,381 (2,401,638 with the code's
                                                                two logits)

A ResidualBlock (block.py:48-95) is FRN -> conv 3x3 (C_in filters, the block's stride) -> FRN
-> conv 3x3 (filters) -> scSE, plus a shortcut. No dropout anywhere (the SpatialDropout2D of
model2.py:581-585 is commented out, drop_rate otherwise unused), and nothing that differs
between training and inference (FRN has no batch statistics). Every Conv2D and Dense keeps
Keras' defaults: a bias, Glorot-uniform kernels, zero biases.

Departures from the code, each on purpose:
- One logit (sigmoid) instead of two (softmax), as every rbcore model: the code's two logits
  enter its losses only through their difference s1 - s0 (ExpHingeLoss, and the softmax of the
  CE and of VAT are functions of it), which one logit represents with 257 instead of 514
  parameters of the last layer. A prediction is sigmoid(logit), the code's softmax[:, 1]
  (model2.py:450-456).
- `projection_shortcut="as_intended"` is an option beside the code's behaviour (the default).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from rbcore.pooling import max_pool_2x2_same


def glorot_uniform(key: jax.Array, shape, dtype=jnp.float32) -> jax.Array:
    """Keras' glorot_uniform: U(-l, l), l = sqrt(6 / (fan_in + fan_out)), each fan the
    receptive field times the channels in or out (the same law as nnx's xavier_uniform).

    Drawn by NumPy, seeded by the bits of the JAX key (deterministic per seed): a JAX draw
    compiles once per kernel shape, about 1.5 s each on the shared two-core machine, and this
    network has some 30 shapes.
    """
    receptive = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
    limit = np.sqrt(6.0 / ((shape[-2] + shape[-1]) * receptive))
    rng = np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel())
    return jnp.asarray(rng.uniform(-limit, limit, shape), dtype)


def zeros(key: jax.Array, shape, dtype=jnp.float32) -> jax.Array:
    """Zeros (made by NumPy, for the same reason as `glorot_uniform`)."""
    return jnp.asarray(np.zeros(shape), dtype)


# Keras' defaults for Conv2D and Dense, which the paper's code never overrides: Glorot-uniform
# kernels, zero biases (tf.keras.layers.Conv2D/Dense kernel_initializer, bias_initializer).
KERNEL_INIT = glorot_uniform
BIAS_INIT = zeros

# The projection shortcut: block.py:77 compares `filters` with input_shape[0], the batch
# dimension (None in the Keras graph), so every block gets a 1x1 projection ("as_coded");
# "as_intended" compares with the channels: identity where neither channels nor stride change,
# a 3x3 convolution where only the stride does (block.py:82-86), else the 1x1 projection.
PROJECTION_SHORTCUTS = ("as_coded", "as_intended")

N_CHANNELS = 3  # (ref, new, sub), as rbcore.model.N_CHANNELS (not imported: no cycle)


def _conv(c_in: int, c_out: int, k: int, rngs: nnx.Rngs, strides: int = 1) -> nnx.Conv:
    """Keras Conv2D(c_out, k, strides, padding='same'), with bias, NHWC.

    lax's 'SAME' is TensorFlow's: pad total max((out - 1) * s + k - in, 0), floor of half
    before, the rest after; for the stride-2 3x3 convolution on 8x8, (0, 1) (tested).
    """
    return nnx.Conv(
        c_in, c_out, kernel_size=(k, k), strides=(strides, strides), padding="SAME",
        kernel_init=KERNEL_INIT, bias_init=BIAS_INIT, rngs=rngs,
    )  # fmt: skip


def _dense(n_in: int, n_out: int, rngs: nnx.Rngs) -> nnx.Linear:
    return nnx.Linear(n_in, n_out, kernel_init=KERNEL_INIT, bias_init=BIAS_INIT, rngs=rngs)


class FRN(nnx.Module):
    """Filter response normalization with a TLU, as block.py:9-45 codes it.

    y = max(gamma * x / sqrt(nu2 + 1e-6 + softplus(eps)) + beta, tau), nu2 = the SUM over H, W
    of x^2 (block.py:39-41; Singh & Krishnan 2020 use the mean), eps learnable per channel.
    Initial values block.py:18-33: gamma 1, beta 0, tau 0, eps 0.
    """

    def __init__(self, channels: int):
        self.gamma = nnx.Param(jnp.asarray(np.ones(channels, np.float32)))
        self.beta, self.tau, self.eps = (
            nnx.Param(jnp.asarray(np.zeros(channels, np.float32))) for _ in range(3)
        )

    def __call__(self, x: jax.Array) -> jax.Array:
        nu2 = jnp.sum(jnp.square(x), axis=(1, 2), keepdims=True)  # block.py:39-41
        x = x * jax.lax.rsqrt(nu2 + 1e-6 + jax.nn.softplus(self.eps[...]))  # block.py:42-43
        return jnp.maximum(self.gamma[...] * x + self.beta[...], self.tau[...])  # block.py:45


class SCSE(nnx.Module):
    """Concurrent spatial and channel squeeze & excitation, as block.py:103-135 codes it.

    Spatial: a 1x1 convolution to one map with a sigmoid (the code's `c_se`, block.py:115-117).
    Channel: global average pool -> dense C/2 ReLU -> dense C sigmoid (the code's `s_se`,
    block.py:119-126). Output: spatial * x + channel * x (block.py:134).
    """

    def __init__(self, channels: int, *, rngs: nnx.Rngs):
        self.spatial = _conv(channels, 1, 1, rngs)
        self.squeeze = _dense(channels, channels // 2, rngs)
        self.excite = _dense(channels // 2, channels, rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        spatial = jax.nn.sigmoid(self.spatial(x))  # [B, H, W, 1]
        s = jnp.mean(x, axis=(1, 2))
        channel = jax.nn.sigmoid(self.excite(nnx.relu(self.squeeze(s))))[:, None, None, :]
        return spatial * x + channel * x


class ResidualBlock(nnx.Module):
    """block.py:48-95: FRN -> conv 3x3 (C_in, stride) -> FRN -> conv 3x3 (filters) -> scSE,
    plus the shortcut (see `PROJECTION_SHORTCUTS`). No ReLU: the FRN's TLU is the activation.
    """

    def __init__(self, c_in: int, filters: int, *, strides: int = 1,
                 projection_shortcut: str, rngs: nnx.Rngs):  # fmt: skip
        self.frn1 = FRN(c_in)
        self.conv1 = _conv(c_in, c_in, 3, rngs, strides)  # block.py:67-69, filters = C_in
        self.frn2 = FRN(c_in)
        self.conv2 = _conv(c_in, filters, 3, rngs)  # block.py:71-72
        self.scse = SCSE(filters, rngs=rngs)  # block.py:74-75 (use_se=True by default)
        if projection_shortcut == "as_coded" or filters != c_in:
            self.shortcut = _conv(c_in, filters, 1, rngs, strides)  # block.py:77-81
        elif strides != 1:
            self.shortcut = _conv(c_in, filters, 3, rngs, strides)  # block.py:82-86
        else:
            self.shortcut = None  # block.py:87-88

    def __call__(self, x: jax.Array) -> jax.Array:
        h = self.conv2(self.frn2(self.conv1(self.frn1(x))))
        h = self.scse(h)
        return (x if self.shortcut is None else self.shortcut(x)) + h  # block.py:92-95


class PaperResNet(nnx.Module):
    """The paper's residual network (module docstring), one logit out.

    Args:
        projection_shortcut: "as_coded" (every block projects, the code's behaviour) or
            "as_intended" (see `PROJECTION_SHORTCUTS`).
        rngs: random stream for parameter initialization.

    Call:
        x: float32[B, 29, 29, 3] normalized cutouts (`rbcore.preprocess.normalize_jax`).
        Returns float32[B] logits; probability of real = sigmoid(logit).

    Notes:
        The training step's interface is RBCNN's: `trunk(x, form)` (everything before the
        classifier: the pooled features [B, 256]) and `classify(features)` (the dense layer).
    """

    def __init__(self, *, projection_shortcut: str = "as_coded", rngs: nnx.Rngs):
        if projection_shortcut not in PROJECTION_SHORTCUTS:
            raise ValueError(
                f"projection_shortcut must be one of {PROJECTION_SHORTCUTS}, "
                f"got {projection_shortcut!r}"
            )
        self.projection_shortcut = projection_shortcut
        self.conv_in = _conv(N_CHANNELS, 32, 5, rngs)  # kernel_size=5, real_bogus.py model_cfg
        self.feature_convs = nnx.List([_conv(32, 32, 3, rngs) for _ in range(4)])
        self.conv64 = _conv(32, 64, 3, rngs)
        blocks = ((64, 64, 1), (128, 128, 1), (128, 256, 2), (256, 256, 1))
        self.block64, self.block128, self.block256s2, self.block256 = (
            ResidualBlock(c, f, strides=s, projection_shortcut=projection_shortcut, rngs=rngs)
            for c, f, s in blocks
        )
        self.conv128 = _conv(64, 128, 3, rngs)
        self.dense = _dense(256, 1, rngs)  # model2.py:605 Dense(units=2); one logit, see above

    def trunk(self, x: jax.Array, form: str = "direct") -> jax.Array:
        """Everything before the dense layer: [B, 29, 29, 3] -> pooled features [B, 256].

        Args:
            form: accepted for RBCNN's interface (`rbcore.train.step.conv1_form`) and checked,
                without effect: this network has no phase form of its first layer.
        """
        if form not in ("direct", "phase"):
            raise ValueError(f"form must be 'direct' or 'phase', got {form!r}")
        x = nnx.relu(self.conv_in(x))  # model2.py:574-579
        for conv in self.feature_convs:  # model2.py:580-591
            x = nnx.relu(conv(x))
        x = max_pool_2x2_same(x)  # 29 -> 15, model2.py:593
        x = self.block64(nnx.relu(self.conv64(x)))  # model2.py:594-596
        x = max_pool_2x2_same(x)  # 15 -> 8, model2.py:597
        x = self.block128(nnx.relu(self.conv128(x)))  # model2.py:598-600
        x = self.block256(self.block256s2(x))  # 8 -> 4, model2.py:601-603
        return jnp.mean(x, axis=(1, 2))  # GlobalAveragePooling2D, model2.py:604

    def classify(self, features: jax.Array) -> jax.Array:
        """The dense layer: features [B, 256] -> logits float32[B]."""
        return self.dense(features)[:, 0]

    def __call__(self, x: jax.Array) -> jax.Array:
        """Logits float32[B] of normalized cutouts float32[B, 29, 29, 3]."""
        return self.classify(self.trunk(x))


def _taps(n: int, k: int, s: int) -> int:
    """Kernel taps over one axis of a 'same' convolution that land inside the input."""
    out = -(-n // s)
    lo = max((out - 1) * s + k - n, 0) // 2
    return sum(0 <= i * s - lo + t < n for i in range(out) for t in range(k))


def forward_flops(model: PaperResNet, size: int = 29, count_padding: bool = True) -> dict:
    """FLOPs per sample of one forward pass, by layer (a multiply-add counting 2).

    Counted from the layers' kernel shapes and their 'same' output sizes (ceil(in / stride));
    convolutions and dense layers only (FRN, scSE's products, ReLU, pooling and the residual
    sums are elementwise, under 1 % together). Keys: layer names; "conv_in" is the first
    convolution, whose input gradient a training step does not need.

    Args:
        count_padding: count the taps on the zeros of the 'same' padding, which a dense
            convolution computes (True: ~214 M, the issue's figure), or only those inside the
            input (False: ~185 M, what XLA's cost analysis reports for the convolutions).
    """
    out: dict[str, int] = {}

    def conv(name, layer, n):
        kh, kw, cin, cout = layer.kernel.shape
        s = layer.strides[0]
        m = -(-n // s)
        taps = m * kh if count_padding else _taps(n, kh, s)
        out[name] = 2 * taps * taps * cin * cout
        return m

    def block(name, b, n):
        m = conv(f"{name}.conv1", b.conv1, n)
        conv(f"{name}.conv2", b.conv2, m)
        conv(f"{name}.scse.spatial", b.scse.spatial, m)
        for d in ("squeeze", "excite"):
            out[f"{name}.scse.{d}"] = 2 * int(jnp.size(getattr(b.scse, d).kernel[...]))
        if b.shortcut is not None:
            conv(f"{name}.shortcut", b.shortcut, n)
        return m

    n = conv("conv_in", model.conv_in, size)
    for i, layer in enumerate(model.feature_convs):
        conv(f"feature_convs.{i}", layer, n)
    n = -(-n // 2)
    n = block("block64", model.block64, conv("conv64", model.conv64, n))
    n = -(-n // 2)
    n = block("block128", model.block128, conv("conv128", model.conv128, n))
    n = block("block256", model.block256, block("block256s2", model.block256s2, n))
    out["dense"] = 2 * int(jnp.size(model.dense.kernel[...]))
    return out
