"""What a training run writes to its `out_dir`, and how it resumes from it.

`out_dir/last/` is the checkpoint of the latest epoch with the optimizer state (for resuming),
`out_dir/best/` the best epoch by validation, `history.json`/`history.csv` one row per epoch.
A run restarted from `last/` repeats the uninterrupted one bit for bit on CPU.

A checkpoint is written whole into `.<name>.new/` and then swapped in by renames (the old one
is kept as `.<name>.old/` until the new one is in place), so a kill at any moment leaves a
complete `last/` (or a `.last.old/` that `recover` puts back). Each checkpoint records what the
run was trained on (`data_fingerprint`); a run given other data in the same `out_dir` is
refused instead of handed the stored model.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil

import jax
import numpy as np
from flax import nnx

from rbcore.checkpoint import load_model, read_config, save_model
from rbcore.files import write_bytes_atomic, write_json_atomic
from rbcore.inference import gather
from rbcore.train.config import TrainConfig

# Fields that may differ between a checkpoint and the run resuming it: they do not change the
# arithmetic (e.g. more epochs to continue a run).
RESUMABLE_FIELDS = ("epochs", "prefetch", "log_every")
# Rows of the images hashed into the data fingerprint: evenly spaced, a few MB to read; with
# the full hashes of labels and mask this tells one data set from another (our choice).
FINGERPRINT_ROWS = 256


def _sha256(a) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def _rows_sha256(images) -> str:
    n = len(images)
    idx = np.unique(np.linspace(0, n - 1, min(n, FINGERPRINT_ROWS)).astype(np.int64))
    return _sha256(gather(images, idx))


def data_fingerprint(images, labels, mask, val_images=None, val_labels=None) -> dict:
    """What a run is trained on: sizes, hashes of the labels (where labeled), of the labeled
    mask and of a sample of image rows, and the same of the validation split (JSON-ready)."""
    fp = {
        "n": int(len(labels)),
        "n_labeled": int(mask.sum()),
        "labels_sha256": _sha256(np.where(mask, labels, -1).astype(np.int8)),
        "labeled_mask_sha256": _sha256(mask.astype(np.int8)),
        "images_sha256": _rows_sha256(images),
    }
    if val_labels is not None:
        fp.update(
            n_val=int(len(val_labels)),
            val_labels_sha256=_sha256(np.asarray(val_labels).astype(np.int8)),
            val_images_sha256=_rows_sha256(val_images),
        )
    return fp


def host_copy(tree):
    """A host copy, not a view: the device buffers are donated to the next step."""
    return jax.tree.map(lambda a: np.array(a, copy=True), jax.device_get(tree))


def write_history(out_dir, history: list[dict]) -> None:
    """history.json and history.csv (one row per epoch), each written atomically."""
    import pandas as pd

    write_json_atomic(os.path.join(out_dir, "history.json"), history, indent=1)
    write_bytes_atomic(
        os.path.join(out_dir, "history.csv"),
        pd.DataFrame(history).to_csv(index=False).encode(),
    )


def _paths(out_dir, name) -> tuple[str, str, str]:
    """(checkpoint, the one being written, the previous one during the swap)."""
    return tuple(os.path.join(out_dir, n) for n in (name, f".{name}.new", f".{name}.old"))


def recover(out_dir, name) -> None:
    """Finish or undo a swap that a kill interrupted: a complete checkpoint stays at `name`."""
    final, new, old = _paths(out_dir, name)
    if not os.path.exists(final) and os.path.exists(old):
        os.replace(old, final)  # killed between the two renames: the previous one comes back
    shutil.rmtree(new, ignore_errors=True)
    shutil.rmtree(old, ignore_errors=True)


def save(out_dir, name, graphdef, params, rest, config: TrainConfig, state, opt_state=None,
         data: dict | None = None):  # fmt: skip
    """Checkpoint `out_dir/name` (weights, config, training state, data fingerprint[, optimizer
    state]), written whole beside it and swapped in by renames."""
    model = nnx.merge(graphdef, jax.device_get(params), jax.device_get(rest))
    final, new, old = _paths(out_dir, name)
    shutil.rmtree(new, ignore_errors=True)
    os.makedirs(new)
    if opt_state is not None:  # the optimizer state for resuming, named by epoch
        leaves = [np.asarray(v) for v in jax.tree.leaves(jax.device_get(opt_state))]
        buf = io.BytesIO()
        np.savez(buf, *leaves)
        write_bytes_atomic(os.path.join(new, f"opt_state_{state['epoch']}.npz"), buf.getvalue())
    extra = {"train_config": config.to_dict(), "train_state": state, "train_data": data}
    save_model(new, model, extra=extra)
    shutil.rmtree(old, ignore_errors=True)
    if os.path.exists(final):
        os.replace(final, old)
    os.replace(new, final)
    shutil.rmtree(old, ignore_errors=True)


def _check_data(out_dir, meta: dict, data: dict | None) -> None:
    stored = meta["extra"].get("train_data")
    if stored is None and data is not None:
        raise ValueError(
            f"{out_dir}: the checkpoint there does not record what it was trained on (an older "
            "rbcore wrote it), so it cannot be resumed safely; use another out_dir or delete it"
        )
    if stored != data:
        keys = sorted(set(stored or {}) | set(data or {}))
        diff = [k for k in keys if (stored or {}).get(k) != (data or {}).get(k)]
        shown = [
            k if k.endswith("sha256") else f"{k} {(stored or {}).get(k)} -> {(data or {}).get(k)}"
            for k in diff
        ]
        raise ValueError(
            f"{out_dir}: the checkpoint there was trained on other data (differs: "
            f"{', '.join(shown)}); use another out_dir for these data, or delete it to retrain"
        )


def resume(out_dir, config: TrainConfig, opt_state_template, data: dict | None = None):
    """(params, opt_state, state) from `out_dir/last`, or None if there is no checkpoint.

    Raises:
        ValueError: the checkpoint was trained with another TrainConfig or on other data
            (`data`, a `data_fingerprint`), naming `out_dir` and what differs.
    """
    for name in ("last", "best"):
        recover(out_dir, name)
    last = os.path.join(out_dir, "last")
    if not os.path.exists(os.path.join(last, "config.json")):
        return None
    meta = read_config(last)
    # A field the stored config lacks did not exist when it was written: its default is what
    # that run did (every new TrainConfig field defaults to the old behaviour).
    stored = {**TrainConfig().to_dict(), **meta["extra"].get("train_config", {})}
    stored = {k: v for k, v in stored.items() if k not in RESUMABLE_FIELDS}
    if stored != {k: v for k, v in config.to_dict().items() if k not in RESUMABLE_FIELDS}:
        raise ValueError(
            f"{last}: checkpoint was trained with a different TrainConfig; use another out_dir "
            f"(stored {stored}, now {config.to_dict()})"
        )
    _check_data(out_dir, meta, data)
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


def best_params(out_dir):
    """Parameters of `out_dir/best` (read back when a resumed run ended after its best epoch)."""
    return nnx.state(load_model(os.path.join(out_dir, "best"))[0], nnx.Param)
