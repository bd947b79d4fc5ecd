"""What a training run writes to its `out_dir`, and how it resumes from it.

`out_dir/last/` is the checkpoint of the latest epoch with the optimizer state (for resuming),
`out_dir/best/` the best epoch by validation, `history.json`/`history.csv` one row per epoch.
A run restarted from `last/` repeats the uninterrupted one bit for bit on CPU.
"""

from __future__ import annotations

import io
import os

import jax
import numpy as np
from flax import nnx

from rbcore.checkpoint import load_model, read_config, save_model
from rbcore.files import write_bytes_atomic, write_json_atomic
from rbcore.train.config import TrainConfig

# Fields that may differ between a checkpoint and the run resuming it: they do not change the
# arithmetic (e.g. more epochs to continue a run).
RESUMABLE_FIELDS = ("epochs", "prefetch", "log_every")


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


def save(out_dir, name, graphdef, params, rest, config: TrainConfig, state, opt_state=None):
    """Checkpoint `out_dir/name` (weights, config, training state[, optimizer state])."""
    model = nnx.merge(graphdef, jax.device_get(params), jax.device_get(rest))
    path = os.path.join(out_dir, name)
    if opt_state is not None:
        # The optimizer state for resuming, named by epoch and written before the model's
        # config.json (the checkpoint's commit point), so a crash between the two is harmless.
        os.makedirs(path, exist_ok=True)
        leaves = [np.asarray(v) for v in jax.tree.leaves(jax.device_get(opt_state))]
        buf = io.BytesIO()
        np.savez(buf, *leaves)
        write_bytes_atomic(os.path.join(path, f"opt_state_{state['epoch']}.npz"), buf.getvalue())
    save_model(path, model, extra={"train_config": config.to_dict(), "train_state": state})
    if opt_state is not None:
        for f in os.listdir(path):
            if f.startswith("opt_state_") and f != f"opt_state_{state['epoch']}.npz":
                os.remove(os.path.join(path, f))


def resume(out_dir, config: TrainConfig, opt_state_template):
    """(params, opt_state, state) from `out_dir/last`, or None if there is no checkpoint."""
    last = os.path.join(out_dir, "last")
    if not os.path.exists(os.path.join(last, "config.json")):
        return None
    meta = read_config(last)
    stored = {
        k: v for k, v in meta["extra"].get("train_config", {}).items() if k not in RESUMABLE_FIELDS
    }
    if stored != {k: v for k, v in config.to_dict().items() if k not in RESUMABLE_FIELDS}:
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


def best_params(out_dir):
    """Parameters of `out_dir/best` (read back when a resumed run ended after its best epoch)."""
    return nnx.state(load_model(os.path.join(out_dir, "best"))[0], nnx.Param)
