"""braai, ZTF's deep real/bogus classifier, as a Flax NNX module with its published weights.

braai (Duev et al. 2019, MNRAS 489, 3582; github.com/dmitryduev/braai, MIT licence) is the
VGG6 network behind the `drb` score of every ZTF alert (`drbversion` "d6_m7"). Its weights
are Keras 2 HDF5 files (`../shared/data/braai/`, read here with h5py; TensorFlow is not
needed). Run on a cutout with braai's own input recipe it reproduces the alerts' `drb`
(`tests/test_ztf_braai.py`), so it is an external judge of anything we simulate and a peer
beside our models.

Architecture (shared braai README; `d6_m7.architecture.json`): 63x63x3 input, conv3x3 16
ReLU, conv3x3 16 ReLU, max-pool 2, conv3x3 32 ReLU, conv3x3 32 ReLU, max-pool 4, flatten
(1152), dense 256 ReLU, dense 1 sigmoid; all convolutions "valid"; the dropout layers are
inactive at inference and left out.

Input recipe (`braai_inputs`, shared braai README "Input, exactly as ZTF computes drb"):
channels (science, template, difference) as stored in the packet (no sign flip of the
difference), NaN -> 0, each cutout normalized (d6_m7 and older: every image row divided by
its L2 norm, `tf.keras.utils.normalize`; d6_m9 and later: the whole cutout by its L2 norm),
a cutout smaller than 63x63 padded at the end with 1e-9. ZTF computes the norms in float32:
a row (d6_m7) or cutout (d6_m9) holding ZTF's blank value -3.4e38 (float32's lowest, on
chip-edge templates) overflows its norm to inf and becomes 0; `braai_inputs` does the same
on purpose (alert 558 of the developer set: drb 0.520 this way, 0.99999 with the blanks
masked), so stamps must be read with their blanks kept (`read_packets(keep_blank=True)`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from rbcore.ztf.alerts import REPO_ROOT, SENTINEL_ABS

# braai's input stamp side, pixels (ZTF alert cutouts, 63x63 at 1.01"/px; braai README).
BRAAI_SIZE = 63
# Pad value of cutouts smaller than 63x63, appended at the end of each axis (braai README).
PAD_VALUE = 1e-9
# Versions whose cutouts are normalized row by row (tf.keras.utils.normalize): d6_m7 and
# older; d6_m9 and later normalize the whole cutout (shared braai README).
LAST_ROW_WISE = (6, 7)  # (d, m) of d6_m7
# The model names of `python -m rbcore score --model` and the weights they load.
BRAAI_MODELS = ("braai-d6_m7", "braai-d6_m9")
# The braai folder beside the checkout (never committed: weights from another repository).
DEFAULT_WEIGHTS_DIR = REPO_ROOT.parent / "shared" / "data" / "braai"
# Rows per jitted call when scoring (our choice: 63x63x3 float32 x 512 = 24 MB per batch).
BATCH = 512


def parse_version(version: str) -> tuple[int, int]:
    """(d, m) of a braai version such as "d6_m7" or "braai-d6_m9"; ValueError otherwise."""
    m = re.fullmatch(r"(?:braai[-_])?d(\d+)_m(\d+)", str(version))
    if m is None:
        raise ValueError(f"unknown braai version {version!r}; expected e.g. 'd6_m7' or 'd6_m9'")
    return int(m.group(1)), int(m.group(2))


def row_wise(version: str) -> bool:
    """True when `version` normalizes each row (d6_m7 and older), False for the whole cutout."""
    return parse_version(version) <= LAST_ROW_WISE


class VGG6(nnx.Module):
    """braai's VGG6 (Duev et al. 2019): 63x63x3 normalized cutouts -> logits.

    Call:
        x: float32[B, 63, 63, 3] cutouts (science, template, difference) after `braai_inputs`.
        Returns float32[B] logits; braai's score (`drb`) = sigmoid(logit).
    """

    def __init__(self, *, rngs: nnx.Rngs):
        self.conv1 = nnx.Conv(3, 16, kernel_size=(3, 3), padding="VALID", rngs=rngs)
        self.conv2 = nnx.Conv(16, 16, kernel_size=(3, 3), padding="VALID", rngs=rngs)
        self.conv3 = nnx.Conv(16, 32, kernel_size=(3, 3), padding="VALID", rngs=rngs)
        self.conv4 = nnx.Conv(32, 32, kernel_size=(3, 3), padding="VALID", rngs=rngs)
        self.fc_1 = nnx.Linear(6 * 6 * 32, 256, rngs=rngs)  # 63-2-2=59, /2=29, -2-2=25, /4=6
        self.fc_out = nnx.Linear(256, 1, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        x = nnx.relu(self.conv2(nnx.relu(self.conv1(x))))
        x = nnx.max_pool(x, (2, 2), strides=(2, 2), padding="VALID")
        x = nnx.relu(self.conv4(nnx.relu(self.conv3(x))))
        x = nnx.max_pool(x, (4, 4), strides=(4, 4), padding="VALID")
        x = x.reshape(x.shape[0], -1)  # channels-last flatten, as Keras's Flatten
        return self.fc_out(nnx.relu(self.fc_1(x)))[:, 0]


@dataclass
class Braai:
    """A braai model with its version (which decides the input recipe)."""

    model: VGG6
    version: str  # "d6_m7", "d6_m9", ...
    path: Path  # the weights file read

    @property
    def row_wise(self) -> bool:
        return row_wise(self.version)


def weights_path(weights_dir, version: str) -> Path:
    """The HDF5 weights of `version` in `weights_dir`: `<v>.weights.h5` or `braai_<v>...`.

    Raises:
        FileNotFoundError: naming the folder and the file names looked for.
    """
    d, m = parse_version(version)
    v = f"d{d}_m{m}"
    folder = Path(weights_dir)
    names = (f"{v}.weights.h5", f"braai_{v}.weights.h5", f"{v}.h5", f"braai_{v}.h5")
    for name in names:
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(f"{folder}: no braai {v} weights; looked for {list(names)}")


def load_braai(version: str = "d6_m7", weights_dir=DEFAULT_WEIGHTS_DIR) -> Braai:
    """Read braai's Keras HDF5 weights into a `VGG6`.

    Args:
        version: "d6_m7" (the alerts' drb), "d6_m9", or "braai-d6_m7"-style model names.
        weights_dir: folder holding the weights (default `../shared/data/braai`).

    Raises:
        FileNotFoundError: no weights. ValueError: a layer or array missing or of the wrong shape.
    """
    import h5py

    d, m = parse_version(version)
    path = weights_path(weights_dir, version)
    model = VGG6(rngs=nnx.Rngs(0))  # every parameter is overwritten below
    with h5py.File(path, "r") as f:
        group = f["model_weights"] if "model_weights" in f else f  # full-model or weights file
        for name in ("conv1", "conv2", "conv3", "conv4", "fc_1", "fc_out"):
            layer = getattr(model, name)
            for field, attr in (("kernel", layer.kernel), ("bias", layer.bias)):
                key = f"{name}/{name}/{field}:0"
                if key not in group:
                    raise ValueError(f"{path}: no array {key!r}; not braai VGG6 weights")
                arr = np.asarray(group[key], np.float32)
                if arr.shape != attr[...].shape:
                    raise ValueError(
                        f"{path}: {key} has shape {arr.shape}, expected {attr[...].shape}"
                    )
                attr[...] = jnp.asarray(arr)  # Keras HWIO kernels = Flax's layout
    return Braai(model, f"d{d}_m{m}", path)


def _unpad(img: np.ndarray) -> np.ndarray:
    """A chip-edge stamp NaN-padded to 63x63 (`rbcore.ztf.stamps.pad_to_stamp`) cut back to
    what the chip held: edge rows and columns NaN in every channel are removed."""
    keep_y = ~np.isnan(img).all(axis=(1, 2))
    keep_x = ~np.isnan(img).all(axis=(0, 2))
    ys, xs = np.flatnonzero(keep_y), np.flatnonzero(keep_x)
    return img[ys[0] : ys[-1] + 1, xs[0] : xs[-1] + 1]


def braai_inputs(images, *, version: str, padded=None, sub_flipped=None) -> np.ndarray:
    """braai's input from stamps in the dataset layout (ref, new, sub), ZTF's recipe.

    Args:
        images: float[N, H, W, 3] (ref, new, sub) raw stamps, H, W <= 63; NaN = masked.
        version: braai version; decides row-wise (d6_m7) or whole-cutout (d6_m9) normalization.
        padded: optional bool[N]: stamps NaN-padded at a chip edge (alert files, `padded`);
            they are cut back and padded at the end with 1e-9 as ZTF does.
        sub_flipped: optional bool[N]: `sub` was negated on reading (`rbcore.ztf.stamps`);
            it is negated back, since braai reads the difference as distributed.

    Returns:
        float32[N, 63, 63, 3] (science, template, difference), normalized.
    """
    x = np.asarray(images, np.float32)
    if np.isinf(x).any():
        raise ValueError("braai_inputs: images contain +-inf; masked pixels must be NaN")
    if x.ndim != 4 or x.shape[-1] != 3 or max(x.shape[1:3]) > BRAAI_SIZE:
        raise ValueError(f"braai_inputs: expected stamps [N, <=63, <=63, 3], got {x.shape}")
    n = len(x)
    padded = np.zeros(n, bool) if padded is None else np.asarray(padded, bool)
    flip = np.zeros(n, bool) if sub_flipped is None else np.asarray(sub_flipped, bool)
    if padded.shape != (n,) or flip.shape != (n,):
        raise ValueError(f"braai_inputs: padded and sub_flipped must have length {n}")
    rows = row_wise(version)
    out = np.full((n, BRAAI_SIZE, BRAAI_SIZE, 3), PAD_VALUE, np.float32)
    sign = np.where(flip, np.float32(-1.0), np.float32(1.0))[:, None, None]
    whole = ~padded if x.shape[1:3] == (BRAAI_SIZE, BRAAI_SIZE) else np.zeros(n, bool)
    idx = np.flatnonzero(whole)
    for s in range(0, len(idx), 1024):  # full stamps in blocks (float64 norms, bounded memory)
        i = idx[s : s + 1024]
        out[i] = _normalized(x[i], sign[i], rows)
    for i in np.flatnonzero(~whole):  # chip-edge or small stamps: cut back, pad at the end
        img = _unpad(x[i]) if padded[i] else x[i]
        out[i, : img.shape[0], : img.shape[1]] = _normalized(img[None], sign[i : i + 1], rows)[0]
    return out


def _normalized(x: np.ndarray, sign: np.ndarray, rows: bool) -> np.ndarray:
    """float32[B, H, W, 3] (ref, new, sub) -> (science, template, difference), NaN -> 0, each
    cutout's rows (d6_m7) or whole cutout (d6_m9) at unit L2 norm; `sign` float[B, 1, 1]
    multiplies the difference."""
    c = np.nan_to_num(x[..., [1, 0, 2]], nan=0.0)
    c[..., 2] *= sign
    axis = (2,) if rows else (1, 2)  # tf.keras.utils.normalize(axis=-1) / the whole cutout
    blank = (np.abs(c) >= SENTINEL_ABS).any(axis=axis, keepdims=True)
    c = np.where(blank, np.float32(0.0), c)  # float32 norm overflow in ZTF: x / inf = 0
    norm = np.sqrt(np.square(c, dtype=np.float64).sum(axis=axis, keepdims=True))
    return (c / np.where(norm == 0, 1.0, norm)).astype(np.float32)  # zero stays zero


@jax.jit
def _forward(graphdef, state, x):
    return nnx.merge(graphdef, state)(x)


def braai_logits(braai: Braai, inputs: np.ndarray, batch_size: int = BATCH) -> np.ndarray:
    """float32[N] logits of braai for `braai_inputs` output (fixed-size batches, one compile)."""
    graphdef, state = nnx.split(braai.model)
    x = np.asarray(inputs, np.float32)
    out = np.empty(len(x), np.float32)
    for s in range(0, len(x), batch_size):
        part = x[s : s + batch_size]
        pad = batch_size - len(part) if len(x) > batch_size else 0
        part = np.concatenate([part, np.zeros((pad, *part.shape[1:]), np.float32)])
        out[s : s + batch_size] = np.asarray(_forward(graphdef, state, part))[: len(part) - pad]
    return out


def braai_scores(braai: Braai, images, *, padded=None, sub_flipped=None) -> np.ndarray:
    """braai's score (probability of real, `drb` for d6_m7) of stamps in the dataset layout.

    Args:
        braai: `load_braai(...)`. images: float[N, H, W, 3] (ref, new, sub), see `braai_inputs`.
        padded, sub_flipped: see `braai_inputs`.

    Returns:
        float64[N] scores in [0, 1].
    """
    x = braai_inputs(images, version=braai.version, padded=padded, sub_flipped=sub_flipped)
    from rbcore.inference import sigmoid

    return sigmoid(braai_logits(braai, x).astype(np.float64))
