"""The paper's data treatments and a recipe's whole run: stage 1, labels, stage 2, scores.

The README of the paper's code compares three treatments of the training data
(github.com/ichiro-takahashi/tomoe-realbogus, README.md:79-133; `rb:N` below is line N of
src/real_bogus.py at commit 0aeb3ee):

- `each` (rb:143-166, `model_cfg.detector_id` >= 0, rb:995-998): one model per detector,
  trained on that detector's samples split 5:1:1 (train : validation : unused test), stratified
  by label, with `train_test_split(test_size=2/7, random_state=seed)` and then
  `(test_size=0.5, random_state=seed + 1)` (`split_dataset`, rb:237-266). Each test candidate
  is scored by its own detector's model (`score_recipe`).
- `mix` (`small_mix_dataset`, rb:169-234, rb:999-1000): from every detector d,
  n_d = round(size_d / total * mean size) samples drawn with seed d, so the whole is about one
  average detector's worth in the detectors' proportions, each part split 5:1:1 with seeds d
  and d + 1.
- `all` (rb:269-353, rb:1001-1002): the pooled set; the code holds out a random quarter
  (`train_test_split` defaults, rb:290-292) and, through `_make_dataset`'s cache line
  (rb:510-511), early-stops on every sample; `validation="detectors"` is notebook 03's split
  of whole held-out detectors instead.

`train_recipe` runs a recipe of `rbcore.recipes` end to end (the path the notebooks and
tests/test_recipes.py share): stage 1 when the recipe needs flags, the extra label errors
(`rbcore.mislabel.noise`), the flagged samples' handling, one model per part, each saved to
`run_dir/models/<recipe>/<part>/`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

__all__ = [
    "split_5_1_1",
    "treatment_parts",
    "stage1_logits",
    "recipe_labels",
    "train_recipe",
    "ledger_inputs",
    "score_recipe",
]


def split_5_1_1(idx, labels, seed1: int, seed2: int, where: str = "") -> tuple:
    """(train, val, test) index arrays of `idx` split 5:1:1 stratified by label (rb:257-264)."""
    from sklearn.model_selection import train_test_split

    idx, y = np.asarray(idx), np.asarray(labels)[np.asarray(idx)]
    counts = np.bincount(y, minlength=2)
    if counts.min() < 4:
        raise ValueError(
            f"{where or 'split_5_1_1'}: {counts.tolist()} samples of (bogus, real); a 5:1:1 "
            "split stratified by label needs at least 4 of each"
        )
    try:
        train, rest = train_test_split(
            idx, test_size=2.0 / 7.0, stratify=y, random_state=int(seed1), shuffle=True
        )
        val, test = train_test_split(
            rest, test_size=0.5, stratify=np.asarray(labels)[rest], random_state=int(seed2)
        )
    except ValueError as err:  # scikit-learn: too few of a class for a stratified split
        raise ValueError(
            f"{where or 'split_5_1_1'}: no 5:1:1 split stratified by label of "
            f"{counts.tolist()} (bogus, real) samples ({err}); more training samples needed"
        ) from err
    return np.sort(train), np.sort(val), np.sort(test)


def treatment_parts(
    treatment: str, detector_ids, labels, *, seed: int = 0, validation: str = "as_coded"
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{part name: (train_idx, val_idx)} of a treatment (see the module docstring).

    Args:
        treatment: "each", "mix" or "all".
        detector_ids, labels: int[N] of the training set.
        seed: the split seed of `each` and `all` (the README's runs: seed=0); `mix` uses the
            detector ids as seeds, as the code.
        validation: `all` only: "as_coded" (a random 75:25 split, early stopping on every
            sample) or "detectors" (whole held-out detectors, 10 %, notebook 03's).
    """
    from rbcore.datasets import detector_validation_split

    det, y = np.asarray(detector_ids), np.asarray(labels)
    if det.shape != y.shape or det.ndim != 1:
        raise ValueError(f"detector_ids {det.shape} and labels {y.shape} must be [N] alike")
    if treatment == "each":
        out = {}
        for d in np.unique(det):
            tr, va, _ = split_5_1_1(np.flatnonzero(det == d), y, seed, seed + 1, f"detector {d}")
            out[f"detector{int(d)}"] = (tr, va)
        return out
    if treatment == "mix":
        ids, sizes = np.unique(det, return_counts=True)
        trains, vals = [], []
        for d, size in zip(ids, sizes, strict=True):
            n = int(np.round(size / sizes.sum() * sizes.mean()))  # rb:194
            members = np.flatnonzero(det == d)
            take = np.random.default_rng(int(d)).permutation(members)[:n]  # rb:198, seed d
            tr, va, _ = split_5_1_1(take, y, int(d), int(d) + 1, f"mix part of detector {d}")
            trains.append(tr)
            vals.append(va)
        return {"mix": (np.sort(np.concatenate(trains)), np.sort(np.concatenate(vals)))}
    if treatment == "all":
        if validation == "detectors":
            return {"all": detector_validation_split(det, y, fraction=0.1, seed=seed)}
        if validation != "as_coded":
            raise ValueError(f"validation must be 'as_coded' or 'detectors', got {validation!r}")
        from sklearn.model_selection import train_test_split

        train, _ = train_test_split(np.arange(y.size), shuffle=True, random_state=int(seed))
        return {"all": (np.sort(train), np.arange(y.size))}
    raise ValueError(f"treatment must be 'each', 'mix' or 'all', got {treatment!r}")


def stage1_logits(
    name: str, images, labels, detector_ids, *, profile: str, run_dir, seed: int = 0, **overrides
) -> np.ndarray:
    """Out-of-fold logits of a recipe's stage 1, resumable and shared between recipes.

    The fold scores live in run_dir/recipes/stage1/<key>/mislabel/, where the key is a hash
    of the stage-1 settings and the labels: recipes with the same stage 1 on the same labels
    (paper_complex_removed, _unlabeled, _pseudo) train it once. `overrides` (TrainConfig
    fields, None ignored) resize the fold models, e.g. in tests.
    """
    import hashlib
    import json

    from rbcore import recipes
    from rbcore.mislabel.folds import assign_folds, cnn_trainer, out_of_fold_logits

    s1 = recipes.stage1_settings(name, profile, seed=seed, **overrides)
    labels = np.asarray(labels).astype(np.int64)
    folds = assign_folds(s1["n_folds"], groups=detector_ids, labels=labels,
                         by=s1["fold_by"], seed=s1["fold_seed"])  # fmt: skip
    trainer = cnn_trainer(images, labels, s1["config"], validation=s1["validation"])
    meta = {"train_config": s1["config"].to_dict(), "n_folds": s1["n_folds"],
            "fold_by": s1["fold_by"], "fold_seed": s1["fold_seed"],
            "validation": s1["validation"]}  # fmt: skip
    key = hashlib.sha256(json.dumps(meta, sort_keys=True).encode() + labels.tobytes())
    out_dir = Path(run_dir) / "recipes" / "stage1" / key.hexdigest()[:16]
    return out_of_fold_logits(folds, trainer, run_dir=out_dir, meta=meta)


def recipe_labels(recipe, labels, flags) -> tuple[np.ndarray, np.ndarray]:
    """(training labels, labeled mask) of a recipe's label handling.

    "all": every label kept; "removed" and "unlabeled": the flagged samples unlabeled (seen
    by the LDS only when alpha > 0, by nothing otherwise; rb:562-567 labels them -1);
    "pseudo": the flagged samples' labels flipped, all labeled (rb:542-547).
    """
    y = np.asarray(labels).astype(np.int64)
    mask = np.ones(y.size, bool)
    if recipe.labels == "all":
        return y, mask
    f = np.asarray(flags).astype(bool)
    if f.shape != y.shape:
        raise ValueError(f"flags {f.shape} and labels {y.shape} differ")
    if recipe.labels == "pseudo":
        from rbcore.mislabel.noise import apply_flips

        return apply_flips(y, f), mask
    return y, ~f


def train_recipe(
    name: str,
    images,
    params: pd.DataFrame,
    *,
    profile: str,
    run_dir,
    seed: int = 0,
    flags=None,
    base_logits=None,
    progress: bool = False,
    **overrides,
) -> dict:
    """Train a recipe's model(s) and save them to run_dir/models/<name>/<part>/.

    Args:
        name: a recipe of `rbcore.recipes.RECIPES`.
        images, params: the training set (`TrainingSet.images`, `.params` with detector_id,
            label and, for `label_noise`, the truth `label_is_wrong`).
        profile: sizes the run (`rbcore.recipes.stage2_config`, `stage1_settings`).
        run_dir: stage 1 under run_dir/recipes/stage1/ (`stage1_logits`), models under
            run_dir/models/<name>/.
        seed: training seed (stage 1 and 2).
        flags: bool[N] flags of this recipe's stage 1 already made (notebook 02's ledger when
            it ran this recipe); None: stage 1 runs here when the recipe needs flags.
        base_logits: float[N] stage-1 logits on the given labels (the ledger's oof_logit);
            None: computed here when `label_noise` needs them.
        progress: progress bars.
        **overrides: TrainConfig fields for both stages (None ignored), e.g. a test's sizes.

    Returns:
        The summary written to run_dir/models/<name>/recipe_summary.json.
    """
    from rbcore import recipes
    from rbcore.mislabel.flags import flag_disagreements, sigmoid
    from rbcore.train.experiment import train_model, write_summary

    recipe = recipes.get(name)
    run_dir = Path(run_dir)
    det = params["detector_id"].to_numpy()
    given = params["label"].to_numpy().astype(np.int64)
    labels, info = given, {"recipe": name, "profile": profile, "seed": int(seed)}

    def stage1(y):
        return stage1_logits(name, images, y, det, profile=profile, run_dir=run_dir,
                             seed=seed, **overrides)  # fmt: skip

    if recipe.label_noise is not None:
        from rbcore.mislabel.noise import apply_flips, error_table_from_truth, make_label_error

        if "label_is_wrong" not in params.columns:
            raise ValueError(f"recipe {name!r}: label_noise needs the truth column label_is_wrong")
        z = stage1(given) if base_logits is None else np.asarray(base_logits)
        table = error_table_from_truth(z, given, params["label_is_wrong"].to_numpy())
        flips = make_label_error(z, given, table, factor=recipe.label_noise,
                                 seed=recipe.label_noise_seed)  # fmt: skip
        labels = apply_flips(given, flips)
        info.update(n_noise_flips=int(flips.sum()), noise_table=table)
        flags = None  # the flags come from stage 1 on the noisy labels (rb:445-450, 481-493)
    if recipe.needs_flags and flags is None:
        flags = flag_disagreements(labels, sigmoid(stage1(labels)), 0.5)
    if flags is not None:
        info["n_flagged"] = int(np.sum(flags))
    y, mask = recipe_labels(recipe, labels, flags)
    config = recipes.stage2_config(name, profile, seed=seed, **overrides)
    parts = treatment_parts(recipe.treatment, det, y, seed=recipe.split_seed,
                            validation=recipe.validation)  # fmt: skip
    info["parts"] = {}
    for part, (train_idx, val_idx) in parts.items():
        val_idx = val_idx[mask[val_idx]]  # flagged samples have no label to validate on
        _, history = train_model(
            f"{name}/{part}", images, y, labeled_mask=mask, train_idx=train_idx,
            val_idx=val_idx, config=config, run_dir=run_dir, progress=progress,
            extra={"recipe": name, "part": part},
        )  # fmt: skip
        info["parts"][part] = {"n_train": int(train_idx.size), "n_val": int(val_idx.size),
                               "epochs_run": len(history),
                               "checkpoint": str(run_dir / "models" / name / part)}  # fmt: skip
    info["train_config"] = config.to_dict()
    write_summary(run_dir / "models" / name / "recipe_summary.json", info)
    return info


def ledger_inputs(run_dir, name: str, params: pd.DataFrame) -> tuple:
    """(flags, oof logits) of notebook 02's ledger when it ran recipe `name`, else (None, None).

    Notebook 02 records its recipe in run_dir/mislabel_metrics.json; a ledger made by another
    recipe's stage 1 is not this recipe's, so `train_recipe` then runs its own stage 1.
    """
    import json

    from rbcore.train.experiment import labeled_mask_from_ledger

    run_dir = Path(run_dir)
    metrics, ledger = run_dir / "mislabel_metrics.json", run_dir / "label_ledger.csv"
    if not (metrics.is_file() and ledger.is_file()):
        return None, None
    if json.loads(metrics.read_text()).get("recipe") != name:  # older ledgers: no recipe
        return None, None
    labeled, _ = labeled_mask_from_ledger(ledger, params)
    oof = pd.read_csv(ledger).set_index("id").loc[params["id"].to_numpy(), "oof_logit"]
    return ~labeled, oof.to_numpy(np.float64)


def score_recipe(run_dir, name: str, images, detector_ids=None) -> np.ndarray:
    """float32[N] logits of a trained recipe on `images`.

    `each` scores every candidate with the model of its own detector (`detector_ids`
    required; a detector without a model is an error naming it); `mix` and `all` with their
    one model.
    """
    from rbcore import recipes
    from rbcore.checkpoint import load_model
    from rbcore.datasets import Subset
    from rbcore.inference import predict_logits

    recipe = recipes.get(name)
    root = Path(run_dir) / "models" / name
    if recipe.treatment != "each":
        model, _ = load_model(root / recipe.treatment)
        return predict_logits(model, images)
    if detector_ids is None:
        raise ValueError(f"recipe {name!r} (each) scores by detector: give detector_ids")
    det = np.asarray(detector_ids)
    if det.shape != (len(images),):
        raise ValueError(f"detector_ids {det.shape} must be one per image ({len(images)})")
    out = np.full(det.size, np.nan, np.float32)
    for d in np.unique(det):
        path = root / f"detector{int(d)}"
        if not path.is_dir():
            raise ValueError(f"{path}: no model for detector {int(d)} (recipe {name!r}, each)")
        model, _ = load_model(path)
        idx = np.flatnonzero(det == d)
        out[idx] = predict_logits(model, Subset(images, idx))
    return out
