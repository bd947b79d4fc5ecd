"""Notebook 07's steps: notebook 03's settings, the ablation's models and scores, the sweep.

The notebook calls these in order; each trained model is checkpointed under
`run_dir/study/` (ablation/ and sweep/x<multiplier>/), so an interrupted run resumes at the
first model not finished, and each step prints its progress.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from rbcore.metrics import fpr_at_tpr
from rbcore.profiles import settings
from rbcore.study.ablation import (
    StudyData,
    ablation_plan,
    choose_eps_alpha,
    row_config,
    train_row,
)
from rbcore.study.report import comparisons
from rbcore.study.rows import SPECS, VAT_ROWS
from rbcore.study.scores import model_scores, seed_spread, test_logits
from rbcore.train.config import TrainConfig

__all__ = ["study_settings", "notebook03_settings", "train_ablation", "score_ablation",
           "study_results"]  # fmt: skip


def study_settings(profile: str, **overrides) -> dict:
    """The profile's "study" settings (`rbcore.profiles`) with the seeds and sweep sizes filled in.

    `sweep_n_train` None means the survey's training size, `sweep_n_folds` None notebook 02's.
    """
    s = settings(profile, "study", **overrides)
    survey = settings(profile, "survey")
    s["sweep_n_train"] = s.get("sweep_n_train") or survey["n_train"]
    s["sweep_n_detectors"] = s.get("sweep_n_detectors") or survey["n_detectors"]
    s["sweep_n_folds"] = s.get("sweep_n_folds") or settings(profile, "mislabel")["n_folds"]
    return s


def notebook03_settings(run_dir) -> dict:
    """What notebook 03 chose: its base TrainConfig (the Current model's), seed, eps/alpha, sweep.

    Raises:
        FileNotFoundError: no training_summary.json (run notebook 03 first).
    """
    path = Path(run_dir) / "models" / "training_summary.json"
    if not path.exists():
        raise FileNotFoundError(f"{path}: no training summary (run notebook 03 first)")
    summary = json.loads(path.read_text())
    base = TrainConfig.from_dict(summary["models"]["current"]["train_config"])
    sweep = summary["sweep"]
    return {
        "base": base,
        "seed": int(summary["seed"]),
        "chosen": {"eps": float(sweep["chosen"]["eps"]), "alpha": float(sweep["chosen"]["alpha"])},
        "grid": sweep["grid"],
        "sweep_samples": sweep["n_samples"],
        "sweep_epochs": int(sweep["epochs"]),
    }


def train_ablation(
    data: StudyData,
    *,
    seeds,
    nb03: dict,
    per_row_sweep: bool,
    run_dir,
    study_dir,
    rows=tuple(SPECS),
    log=print,
) -> tuple[dict, dict]:
    """Choose eps/alpha for the VAT rows and train (or reuse) every (row, seed) of the plan.

    Returns:
        (choices {row: eps/alpha choice}, trained {(row, seed): (checkpoint, info)}).
    """
    t0 = time.time()
    choices = {}
    for row in [r for r in rows if r in VAT_ROWS]:
        choices[row] = choose_eps_alpha(
            data, row, base=nb03["base"], notebook03=nb03["chosen"], per_row=per_row_sweep,
            grid=nb03["grid"], n_samples=nb03["sweep_samples"], epochs=nb03["sweep_epochs"],
            out_dir=Path(study_dir) / "eps_alpha",
        )  # fmt: skip
        log(f"{row}: eps {choices[row]['eps']:g}, alpha {choices[row]['alpha']:g} "
            f"({choices[row]['source']})")  # fmt: skip
    plan = ablation_plan(rows, seeds)
    trained = {}
    for i, (row, seed) in enumerate(plan, 1):
        config = row_config(nb03["base"], row, seed, choices.get(row))
        ckpt, info = train_row(data, row, config, run_dir=run_dir, study_dir=study_dir)
        trained[(row, seed)] = (ckpt, info)
        log(f"[{i}/{len(plan)}] {row} seed {seed}: {info['source']}, {info['n_labeled']:,} "
            f"labels, {info['seconds']:.0f} s (total {time.time() - t0:.0f} s)")  # fmt: skip
    return choices, trained


def score_ablation(
    trained: dict, choices: dict, test, *, fingerprint: dict, cache_dir, n_boot: int, seed: int
) -> dict:
    """The "ablation" entry of noise_study.json: each row at the first seed with its intervals,
    and the FPR at TPR 0.9 over every seed it was trained with."""
    labels = np.asarray(test.labels)
    fpr = {}
    out = {}
    for (row, s), (ckpt, info) in trained.items():
        z = test_logits(ckpt, test.images, cache_dir=cache_dir, fingerprint=fingerprint)
        if row not in out:  # the first seed: the table's row, with bootstrap intervals
            scores = model_scores(labels, z, n_boot=n_boot, seed=seed)
            choice = choices.get(row, {})
            out[row] = {**scores, "n_labeled": info["n_labeled"], "n_train": info["n_train"],
                        "seed": s, "model": str(ckpt), "source": info["source"],
                        "eps": choice.get("eps"), "alpha": choice.get("alpha"),
                        "eps_alpha_source": choice.get("source")}  # fmt: skip
            fpr.setdefault(row, []).append((s, scores["fpr_at_tpr90"]["value"]))
        else:
            fpr[row].append((s, float(fpr_at_tpr(labels, z, 0.9)[0])))
    for row, pairs in fpr.items():
        out[row]["fpr_at_tpr90_seeds"] = {"seeds": [p[0] for p in pairs],
                                          "values": [p[1] for p in pairs],
                                          **seed_spread([p[1] for p in pairs])}  # fmt: skip
    return out


def study_results(
    *, run: dict, ablation: dict, sweep: list[dict], test, notes: dict, seconds: float
) -> dict:
    """The contents of noise_study.json (schema in `rbcore.study.report`)."""
    labels = np.asarray(test.labels)
    return {
        **run,
        "test_counts": {"n_real": int(labels.sum()), "n_bogus": int((labels == 0).sum())},
        "ablation": ablation,
        "comparisons": comparisons(ablation),
        "sweep": sweep,
        **notes,
        "total_seconds": seconds,
    }
