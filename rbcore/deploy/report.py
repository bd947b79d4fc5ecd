"""What notebook 05 shows of the deployment week, computed from the candidate database.

Every number here is a query on `rbcore.deploy.db.CandidateDB` over committed nights: the
confusion matrix at the registration threshold (from `night_summary`, which counts every
candidate), the false positives by the talk's categories, the registered candidates per
night and the chance that a registered candidate is a transient or a variable (from
`candidates`, SQL), and the threshold that meets a nightly budget (from `score_hist`).

Counts come in two kinds: raw (candidates simulated) and effective (the sum of `weight`,
i.e. the count in a stream with the natural rates of supernovae and variable stars, see
`rbcore.deploy`). "At the talk's volume" multiplies effective counts by
`DeployConfig.volume_scale` (8.2 M candidates per night over ours).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from rbcore.deploy.db import CandidateDB
from rbcore.deploy.stream import (
    HIST_EDGES,
    TRANSIENT_CATEGORIES,
    VARIABLE_CATEGORIES,
    DeployConfig,
)
from rbcore.inference import MODEL_NAMES, sigmoid
from rbcore.simulation.config import TALK_FP_COUNTS

# The talk's false positives of the deployed (VAT) model, 341 inspected of 36,337.
TALK_FP_TABLE = TALK_FP_COUNTS
# The talk's deployed week at threshold 0.8 (VAT model): [[TN, FP], [FN, TP]].
TALK_CONFUSION_VAT = [[57_386_470, 36_337], [1, 29]]
# Candidates to check per day, before (Current) -> after (VAT): the talk, "~6,000 -> ~150/day";
# Takahashi et al. (2022): about 1/130 of before, ~40 a night. Per night here (one night a day).
TALK_REGISTERED_PER_NIGHT = {"current": 6_000, "vat": 150}
PAPER_REGISTERED_PER_NIGHT_VAT = 40
PAPER_REGISTERED_RATIO_VAT = 1 / 130  # VAT's registrations over Current's, the paper's "~1/130"
TALK_CONFUSION_VAT_TOTAL = sum(map(sum, TALK_CONFUSION_VAT))  # 57,422,837 candidates
# The talk's P(registered candidate is a TNS object), before -> after the VAT model.
TALK_PURITY = {"transient": (1 / 8738, 1 / 90), "variable": (1 / 640494, 1 / 1004)}

_COMMITTED = "night IN (SELECT night FROM nights)"


def _in_list(values) -> str:
    """A SQL IN list of fixed category names (constants of rbcore, never user input)."""
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


def confusion_counts(db: CandidateDB, model: str) -> dict[str, np.ndarray]:
    """The talk's confusion matrix at the registration threshold, from every candidate.

    Args:
        db: the candidate database.
        model: "current" or "vat".

    Returns:
        {"raw": int[2, 2], "effective": float[2, 2]}: [[TN, FP], [FN, TP]], rows true Bogus /
        Real, where Real = transients (the talk's "Real": TNS transients).
    """
    _check_model(model)
    q = db.query(
        f"SELECT CASE WHEN category IN {_in_list(TRANSIENT_CATEGORIES)} THEN 1 ELSE 0 END AS is_transient,"
        f" pass_{model} AS pred, SUM(n) AS n, SUM(weight) AS w FROM night_summary"
        f" WHERE {_COMMITTED} GROUP BY 1, 2"
    )
    raw, eff = np.zeros((2, 2), np.int64), np.zeros((2, 2))
    for r, p, n, w in q.itertuples(index=False):
        raw[int(r), int(p)] += int(n)
        eff[int(r), int(p)] += float(w)
    return {"raw": raw, "effective": eff}


def fp_by_category(db: CandidateDB, model: str = "vat") -> pd.DataFrame:
    """False positives of `model` at the registration threshold by the talk's FP labels.

    Returns:
        DataFrame indexed by the talk's label (its order), columns n_raw, n_effective,
        share (of effective FPs), talk_n (the talk's 341 inspected), talk_share.

    Notes:
        Labels from the simulator's truth via `rbcore.simulation.config.TALK_FP_CATEGORY`,
        not by eye as in the talk.
    """
    from rbcore.simulation.config import TALK_FP_CATEGORY

    _check_model(model)
    q = db.query(
        f"SELECT category, SUM(n) AS n, SUM(weight) AS w FROM night_summary WHERE pass_{model} = 1"
        f" AND category NOT IN {_in_list(TRANSIENT_CATEGORIES)} AND {_COMMITTED} GROUP BY category"
    )
    unknown = set(q["category"]) - set(TALK_FP_CATEGORY)
    if unknown:
        raise ValueError(f"categories {sorted(unknown)} have no entry in TALK_FP_CATEGORY")
    q["label"] = q["category"].map(TALK_FP_CATEGORY)
    g = q.groupby("label").agg(n_raw=("n", "sum"), n_effective=("w", "sum"))
    out = g.reindex(list(TALK_FP_TABLE)).fillna(0.0)
    out["n_raw"] = out["n_raw"].astype(int)
    total = out["n_effective"].sum()
    out["share"] = out["n_effective"] / total if total > 0 else np.nan
    out["talk_n"] = pd.Series(TALK_FP_TABLE)
    out["talk_share"] = out["talk_n"] / sum(TALK_FP_TABLE.values())
    out.index.name = "talk label"
    return out


def registered_per_night(db: CandidateDB, cfg: DeployConfig, threshold: float | None = None):
    """Registered candidates per night and model, from SQL on `candidates`.

    Args:
        db: the candidate database.
        cfg: the run's config (for the registration threshold and the volume scale).
        threshold: probability threshold >= the registration threshold (default: it).

    Returns:
        DataFrame (night, model, n_raw, n_effective, n_talk_volume, transients, variables):
        raw rows, effective (weighted) count, effective count scaled to the talk's 8.2 M
        candidates per night, and the effective transients / variables among them.
    """
    threshold = cfg.threshold if threshold is None else float(threshold)
    if threshold < cfg.threshold:
        raise ValueError(
            f"threshold {threshold} is below the registration threshold {cfg.threshold}: "
            "candidates under it were not stored"
        )
    nights = db.query("SELECT night FROM nights ORDER BY night")["night"].tolist()
    rows = []
    for m in MODEL_NAMES:
        q = db.query(
            f"SELECT night, COUNT(*) AS n_raw, SUM(weight) AS n_effective, "
            f"SUM(CASE WHEN category IN {_in_list(TRANSIENT_CATEGORIES)} THEN weight ELSE 0 END)"
            f" AS transients, "
            f"SUM(CASE WHEN category IN {_in_list(VARIABLE_CATEGORIES)} THEN weight ELSE 0 END)"
            f" AS variables FROM candidates WHERE score_{m} >= ? AND {_COMMITTED} GROUP BY night",
            (threshold,),
        ).set_index("night")
        q = q.reindex(nights).fillna(0.0)
        q["model"] = m
        rows.append(q.reset_index())
    out = pd.concat(rows, ignore_index=True)
    out["n_raw"] = out["n_raw"].astype(int)
    out["n_talk_volume"] = out["n_effective"] * cfg.volume_scale
    return out[["night", "model", "n_raw", "n_effective", "n_talk_volume", "transients",
                "variables"]]  # fmt: skip


def registration_purity(per_night: pd.DataFrame) -> pd.DataFrame:
    """P(a registered candidate is a transient / a variable) per model, over the week.

    Args:
        per_night: the output of `registered_per_night`.

    Returns:
        DataFrame indexed by model: registered_per_night (talk volume), p_transient,
        one_in_transient (1/p), p_variable, one_in_variable, and the talk's values.
    """
    g = per_night.groupby("model")[["n_effective", "n_talk_volume", "transients", "variables"]]
    s = g.sum().reindex(list(MODEL_NAMES))
    n_nights = per_night["night"].nunique()
    out = pd.DataFrame(index=s.index)
    out["registered_per_night"] = s["n_talk_volume"] / max(n_nights, 1)
    for kind in ("transient", "variable"):
        p = s[f"{kind}s"] / s["n_effective"].where(s["n_effective"] > 0)
        out[f"p_{kind}"] = p
        out[f"one_in_{kind}"] = 1.0 / p.where(p > 0)
        out[f"talk_one_in_{kind}"] = [1 / v for v in TALK_PURITY[kind]]
    return out


def budget_curves(db: CandidateDB, cfg: DeployConfig) -> dict[str, pd.DataFrame]:
    """Registered per night (at the talk's volume) and completeness vs threshold, per model.

    Returns:
        {model: DataFrame(logit_threshold, threshold, registered_per_night, completeness,
        transients_per_night)} on the histogram's bin edges (logit steps of 1/16), where
        completeness = effective transients passing / all effective transients.
    """
    h = db.histograms(len(HIST_EDGES) - 1)
    n_nights = len(db.committed_nights())
    if n_nights == 0:
        raise ValueError("no committed night in the candidate database")
    curves = {}
    for m in MODEL_NAMES:
        parts = [h.get((m, t), (0, np.zeros(len(HIST_EDGES) - 1)))[1]
                 for t in ("bogus", "transient", "variable")]  # fmt: skip
        all_w = sum(parts)
        # passing at threshold edge e_i: bins i.. (a logit >= e_i); edges except -inf/+inf
        tail_all = np.cumsum(all_w[::-1])[::-1][1:]
        tail_tr = np.cumsum(parts[1][::-1])[::-1][1:]
        edges = HIST_EDGES[1:-1]
        total_tr = parts[1].sum()
        curves[m] = pd.DataFrame(
            {
                "logit_threshold": edges,
                "threshold": sigmoid(edges),
                "registered_per_night": tail_all * cfg.volume_scale / n_nights,
                "completeness": tail_tr / total_tr if total_tr > 0 else np.nan,
                "transients_per_night": tail_tr * cfg.volume_scale / n_nights,
            }
        )
    return curves


def budget_threshold(curve: pd.DataFrame, budget: float) -> dict:
    """The lowest threshold whose registered candidates per night stay within `budget`.

    Args:
        curve: one model's `budget_curves` table.
        budget: candidates a person can check per night (talk: 150 a day).

    Returns:
        dict(threshold, logit_threshold, registered_per_night, completeness); threshold is
        NaN when no threshold of the grid meets the budget (more candidates than the budget
        score above the histogram's top edge).
    """
    ok = curve[curve["registered_per_night"] <= budget]
    if len(ok) == 0:
        return dict(threshold=np.nan, logit_threshold=np.nan, registered_per_night=np.nan,
                    completeness=np.nan)  # fmt: skip
    row = ok.iloc[0]  # edges ascend, registrations descend: the first one within budget
    return {k: float(row[k]) for k in ("threshold", "logit_threshold", "registered_per_night",
                                       "completeness")}  # fmt: skip


def cutouts(db: CandidateDB, kind: str, model: str = "vat", threshold: float | None = None):
    """Stored cutouts of false negatives or false positives of `model`.

    Args:
        kind: "fn" (transients below the threshold) or "fp" (sampled false positives).
        model: "current" or "vat".
        threshold: the registration threshold (default: the stored run's).

    Returns:
        (images float32[N, 29, 29, 3], table) sorted by score, highest first for "fp".
    """
    _check_model(model)
    images, table = db.cutouts()
    score = table[f"score_{model}"].to_numpy()
    thr = float(threshold) if threshold is not None else _stored_threshold(db)
    if kind == "fn":
        sel = table["category"].isin(TRANSIENT_CATEGORIES).to_numpy() & (score < thr)
        order = np.argsort(score[sel])
    elif kind == "fp":
        sel = ~table["category"].isin(TRANSIENT_CATEGORIES).to_numpy() & (score >= thr)
        order = np.argsort(-score[sel])
    else:
        raise ValueError(f"kind must be 'fn' or 'fp', got {kind!r}")
    idx = np.flatnonzero(sel)[order]
    return images[idx], table.iloc[idx].reset_index(drop=True)


def export_cutouts(db: CandidateDB, path) -> int:
    """Write the stored cutouts to an .npz (images + table columns); returns their number."""
    from pathlib import Path

    images, table = db.cutouts()
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp.npz")
    cols = {k: (table[k].astype(str).to_numpy() if table[k].dtype == object else table[k].to_numpy())
            for k in table.columns}  # fmt: skip
    np.savez_compressed(tmp, images=images, **cols)
    tmp.replace(path)
    return len(images)


def _stored_threshold(db: CandidateDB) -> float:
    import json

    q = db.query("SELECT value FROM meta WHERE key = ?", ("fingerprint",))
    if len(q) == 0:
        raise ValueError("the candidate database has no run yet")
    return float(json.loads(q["value"].iloc[0])["threshold"])


def _check_model(model: str) -> None:
    if model not in MODEL_NAMES:
        raise ValueError(f"model must be one of {MODEL_NAMES}, got {model!r}")


def week_summary(db: CandidateDB, cfg: DeployConfig, *, budget: float) -> dict:
    """The week's headline numbers for run_dir/deployment_summary.json (JSON-ready).

    Returns:
        dict: nights, candidates (raw, effective), per model the confusion matrix at the
        registration threshold (raw and effective), recall of transients, registrations per
        night at the talk's volume, P(transient) and P(variable) among registered candidates,
        the budget threshold and its completeness; the FP table of the VAT model.
    """
    nights = db.query("SELECT SUM(n_candidates) AS n, SUM(weight) AS w, COUNT(*) AS k FROM nights")
    per = registered_per_night(db, cfg)
    pur = registration_purity(per)
    curves = budget_curves(db, cfg)
    models = {}
    for m in MODEL_NAMES:
        cm = confusion_counts(db, m)
        real = cm["effective"][1].sum()
        models[m] = {
            "confusion_raw": cm["raw"].tolist(),
            "confusion_effective": cm["effective"].tolist(),
            "recall_effective": float(cm["effective"][1, 1] / real) if real > 0 else None,
            "registered_per_night_talk_volume": float(pur.loc[m, "registered_per_night"]),
            "p_transient": _num(pur.loc[m, "p_transient"]),
            "p_variable": _num(pur.loc[m, "p_variable"]),
            "budget": budget_threshold(curves[m], budget),
        }
    taxonomy = {m: fp_by_category(db, m) for m in MODEL_NAMES}
    for m in MODEL_NAMES:
        models[m]["registered_per_night"] = models[m]["registered_per_night_talk_volume"]
        models[m]["fp_taxonomy"] = {
            label: {k: _num(row[k]) for k in ("n_raw", "n_effective", "share", "talk_share")}
            for label, row in taxonomy[m].iterrows()
        }
    fp = taxonomy["vat"]
    return {
        "n_nights": int(nights["k"].item()),
        "n_candidates_raw": int(nights["n"].item() or 0),
        "n_candidates_effective": float(nights["w"].item() or 0.0),
        "threshold": cfg.threshold,
        "budget_per_night": budget,
        "models": models,
        "fp_by_category_vat": {k: _num(v) for k, v in fp["n_effective"].items()},
        "talk": {
            "registered_per_night": TALK_REGISTERED_PER_NIGHT,
            "paper_registered_per_night_vat": PAPER_REGISTERED_PER_NIGHT_VAT,
            "confusion_vat": TALK_CONFUSION_VAT,
            "fp_inspected": TALK_FP_TABLE,
        },
    }


def talk_comparison(summary: dict) -> pd.DataFrame:
    """The week beside the talk's: registrations per night and the VAT model's confusion.

    Args:
        summary: `week_summary(...)`.

    Returns:
        DataFrame indexed by quantity, columns "simulated" and "talk" (registrations per night
        at the talk's volume for each model; TN, FP, FN, TP of the VAT model at 0.8, scaled to
        the talk's volume for the simulated week).
    """
    rows = {}
    for m in MODEL_NAMES:
        rows[f"registered per night, {m}"] = (
            summary["models"][m]["registered_per_night"],
            summary["talk"]["registered_per_night"][m],
        )
    scale = TALK_CONFUSION_VAT_TOTAL / max(summary["n_candidates_effective"], 1.0)
    cm = np.asarray(summary["models"]["vat"]["confusion_effective"], float) * scale
    for (i, j), name in np.ndenumerate(np.array([["TN", "FP"], ["FN", "TP"]])):
        rows[f"VAT {name} at 0.8 (talk's volume)"] = (cm[i, j], TALK_CONFUSION_VAT[i][j])
    return pd.DataFrame(rows, index=["simulated", "talk"]).T


def week_markdown(summary: dict, *, summary_path: str, command: str) -> str:
    """The README's week block: registrations, the VAT confusion and the FP taxonomy vs the talk.

    Args:
        summary: the contents of run_dir/deployment_summary.json (`week_summary` plus the
            run's `config` and `throughput`).
        summary_path: where it was read, quoted in the text.
        command: the command line that regenerates the block.

    Returns:
        Markdown text (no markers): three tables, every number from `summary`.
    """
    models = summary["models"]
    talk = summary["talk"]
    cfg = summary.get("config", {})
    lines = [
        f"A simulated week of {summary['n_nights']} nights, {summary['n_candidates_raw']:,}"
        f" candidates scored by both models (effective {summary['n_candidates_effective']:,.0f}"
        " after weighting the boosted supernovae and variables back to their natural rates;"
        f" boost {cfg.get('boost', '?')}), registration at probability {summary['threshold']}."
        ' Counts "at the talk\'s volume" scale the effective counts to its'
        f" {TALK_CONFUSION_VAT_TOTAL / 1e6:.1f} M candidates.",
        "",
        "| quantity | Current | VAT | talk |",
        "|---|---|---|---|",
    ]
    reg = {m: models[m]["registered_per_night"] for m in MODEL_NAMES}
    lines.append(
        f"| registered per night (talk's volume) | {reg['current']:,.0f} | {reg['vat']:,.0f} |"
        f" {talk['registered_per_night']['current']:,} → {talk['registered_per_night']['vat']:,}"
        f" (paper: ~{talk['paper_registered_per_night_vat']}) |"
    )
    lines.append(
        f"| VAT / Current registrations | | {reg['vat'] / max(reg['current'], 1e-12):.3g} |"
        f" {talk['registered_per_night']['vat'] / talk['registered_per_night']['current']:.3g}"
        f" (paper: ~1/{1 / PAPER_REGISTERED_RATIO_VAT:.0f}) |"
    )
    rec = [models[m]["recall_effective"] for m in MODEL_NAMES]
    lines.append(
        "| recall of transients at the threshold | "
        + " | ".join("–" if r is None else f"{r:.3f}" for r in rec)
        + " | – |"
    )
    lines += [
        "",
        f"The VAT model's confusion matrix at {summary['threshold']}, scaled to the talk's volume:",
        "",
    ]
    lines += ["| | simulated | talk |", "|---|---|---|"]
    table = talk_comparison(summary)
    for name in ("TN", "FP", "FN", "TP"):
        sim, ref = table.loc[f"VAT {name} at 0.8 (talk's volume)"]
        lines.append(f"| {name} | {sim:,.1f} | {ref:,.0f} |")
    n_inspected = sum(talk["fp_inspected"].values())
    lines += [
        "",
        f"False positives at {summary['threshold']} by the talk's categories (share of each"
        " model's false positives, effective counts; the talk inspected"
        f" {n_inspected} of its VAT model's):",
        "",
        f"| category | Current | VAT | talk (VAT, of {n_inspected}) |",
        "|---|---|---|---|",
    ]
    taxonomy = {m: models[m]["fp_taxonomy"] for m in MODEL_NAMES}
    for label, row in taxonomy["vat"].items():
        cur = taxonomy["current"].get(label, {}).get("share")
        cells = ["–" if v is None else f"{v:.1%}" for v in (cur, row["share"], row["talk_share"])]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Figures: [registered per night](figures/05_registered_per_night.png),"
        " [confusion](figures/05_confusion.png), [budget](figures/05_budget.png).",
        "",
        f"Generated from `{summary_path}` by `{command}`; the run itself is"
        " `python -m rbcore.notebooks --profile default` (notebook `05_deployment_week`).",
    ]
    return "\n".join(lines)


def _num(v) -> float | None:
    v = float(v)
    return v if np.isfinite(v) else None
