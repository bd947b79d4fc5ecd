"""The decomposition's entries of noise_study.json (issue 22): their schema and a markdown report.

Schema (read by our checks; the long run's JSON, benchmarks/decomposition.py, has the same):

    "decomposition": {row: {"auc": {"value", "ci95"}, "fpr_at_tpr90": {"value", "ci95"},
                            "fpr_at_tpr90_seeds": {"seeds", "values", "mean", "min", "max",
                                                   "range", "n_seeds"},
                            "pauc": {"value", "ci95", "values", "mean", "max_fpr"},
                            "n_labeled": int, "seconds": float, ...}},
    "steps": [{"from", "to", "ratio", "ratio_ci", "detectable_ratio", "passes", ...}],
    "memorization": {row: [{"epoch", "fit_wrong", "fit_right", ...}]}

`ratio_ci`, `detectable_ratio` and `passes` are null where the seed variance is unknown
(`rbcore.study.steps`).
"""

from __future__ import annotations

__all__ = ["DECOMPOSITION_KEYS", "STEP_KEYS", "MEMORIZATION_KEYS", "validate_decomposition",
           "decomposition_markdown"]  # fmt: skip

DECOMPOSITION_KEYS = ("auc", "fpr_at_tpr90", "fpr_at_tpr90_seeds", "pauc", "n_labeled", "seconds")
STEP_KEYS = ("from", "to", "ratio", "ratio_ci", "detectable_ratio")
MEMORIZATION_KEYS = ("epoch", "fit_wrong", "fit_right")


def validate_decomposition(study: dict, source: str = "noise_study") -> None:
    """Raise ValueError naming the first decomposition key missing or malformed."""
    dec = study.get("decomposition")
    if not isinstance(dec, dict) or not dec:
        raise ValueError(f"{source}: 'decomposition' must be a non-empty dict of rows")
    for row, e in dec.items():
        for key in DECOMPOSITION_KEYS:
            if key not in e:
                raise ValueError(f"{source}: decomposition row '{row}' lacks '{key}'")
        for key in ("auc", "fpr_at_tpr90", "pauc"):
            if not {"value", "ci95"} <= set(e[key]):
                raise ValueError(f"{source}: 'decomposition.{row}.{key}' needs value and ci95")
        if not {"values", "mean", "min", "max"} <= set(e["fpr_at_tpr90_seeds"]):
            raise ValueError(f"{source}: 'decomposition.{row}.fpr_at_tpr90_seeds' malformed")
    steps = study.get("steps")
    if not isinstance(steps, list):
        raise ValueError(f"{source}: 'steps' must be a list")
    for i, s in enumerate(steps):
        for key in STEP_KEYS:
            if key not in s:
                raise ValueError(f"{source}: step {i} lacks '{key}'")
        if s["from"] not in dec or s["to"] not in dec:
            raise ValueError(f"{source}: step {i} compares rows not in 'decomposition'")
    memo = study.get("memorization")
    if not isinstance(memo, dict):
        raise ValueError(f"{source}: 'memorization' must be a dict of rows")
    for row, curve in memo.items():
        for j, point in enumerate(curve):
            for key in MEMORIZATION_KEYS:
                if key not in point:
                    raise ValueError(f"{source}: memorization.{row}[{j}] lacks '{key}'")


def _f(v) -> str:
    if v is None:
        return "–"
    return f"{v:.2e}" if v != 0 and abs(v) < 0.01 else f"{v:.4g}"


def _ci(e: dict) -> str:
    lo, hi = e["ci95"]
    return f"{_f(e['value'])} [{_f(lo)}, {_f(hi)}]"


def decomposition_markdown(study: dict) -> str:
    """Tables of the rows, the steps (with the A/A check) and the memorization at the end."""
    notes = study.get("decomposition_notes", {})
    counts = notes.get("test_counts", {})
    lines = [
        f"Test set: {counts.get('n_real', '?'):,} real, {counts.get('n_bogus', '?'):,} bogus "
        f"({notes.get('test', '?')}); training rows {notes.get('n_train', '?'):,}, of which "
        f"{notes.get('n_wrong_train', '?'):,} wrong labels and {notes.get('n_flagged_train', '?'):,} "
        "flagged. Brackets: bootstrap 95 % intervals of the first seed.",
        "",
        "| row | labels used | AUC | FPR @ TPR 0.9 | FPR over seeds: mean [min, max] (n) "
        "| pAUC (FPR ≤ 1e-3) | training s |",
        "|---|---|---|---|---|---|---|",
    ]
    for row, e in study["decomposition"].items():
        s = e["fpr_at_tpr90_seeds"]
        lines.append(
            f"| `{row}` | {e['n_labeled']:,} | {_ci(e['auc'])} | {_ci(e['fpr_at_tpr90'])} "
            f"| {_f(s['mean'])} [{_f(s['min'])}, {_f(s['max'])}] ({len(s['values'])}) "
            f"| {_ci(e['pauc'])} | {e['seconds']:.0f} |"
        )
    lines += [
        "",
        "| step | from → to | FPR ratio | 95 % interval | detectable ratio | passes |",
        "|---|---|---|---|---|---|",
    ]
    steps = list(study["steps"])
    aa = study.get("aa_check")
    if aa:
        steps.append({**aa, "what": "A/A check (must not pass)", "from": aa["row"],
                      "to": aa["row"]})  # fmt: skip
    for s in steps:
        ci = "–" if s["ratio_ci"] is None else f"[{_f(s['ratio_ci'][0])}, {_f(s['ratio_ci'][1])}]"
        passes = {None: "no seed variance", True: "yes", False: "no"}[s.get("passes")]
        lines.append(f"| {s.get('what', '')} | `{s['from']}` → `{s['to']}` | {_f(s['ratio'])} "
                     f"| {ci} | {_f(s['detectable_ratio'])} | {passes} |")  # fmt: skip
    lines += ["", "| row | epochs | wrong labels fitted (last epoch) | right labels fitted |",
              "|---|---|---|---|"]  # fmt: skip
    for row, curve in study["memorization"].items():
        if curve:
            last = curve[-1]
            lines.append(f"| `{row}` | {last['epoch']} | {_f(last['fit_wrong'])} "
                         f"(of {last.get('n_wrong', '?')}) | {_f(last['fit_right'])} |")  # fmt: skip
    return "\n".join(lines)
