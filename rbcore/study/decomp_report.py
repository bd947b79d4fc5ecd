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

__all__ = ["DECOMPOSITION_KEYS", "STEP_KEYS", "MEMORIZATION_KEYS", "TALK_FPR", "PAPER_FPR",
           "CLAIMS", "validate_decomposition", "decomposition_markdown", "step_verdict",
           "claims_markdown", "decomposition_report"]  # fmt: skip

DECOMPOSITION_KEYS = ("auc", "fpr_at_tpr90", "fpr_at_tpr90_seeds", "pauc", "n_labeled", "seconds")
STEP_KEYS = ("from", "to", "ratio", "ratio_ci", "detectable_ratio")
MEMORIZATION_KEYS = ("epoch", "fit_wrong", "fit_right")

#: FPR at TPR 0.9 on Tomo-e's real test set: the talk's table ("Evaluation with actual test
#: dataset", ../shared/seed/: Current 0.00916, VAT 0.00065) and the paper's final model
#: (Takahashi et al. 2022, PASJ 74, 946: 2e-4).
TALK_FPR = {"current": 0.00916, "vat": 0.00065}
PAPER_FPR = 2e-4
#: The paper's claims and the changes it made at once, each read as steps of
#: `rbcore.study.decomp_run.STEPS` (from, to); the third entry is the ratio the talk / paper
#: report for it (None: they report none for that step alone).
CLAIMS = (
    ("the new model lowers the FPR at TPR 0.9 (talk: 0.00916 -> 0.00065; paper: 2e-4)",
     (("talk_current", "complex_unlabeled_vat"),),
     (TALK_FPR["current"] / TALK_FPR["vat"], TALK_FPR["current"] / PAPER_FPR)),
    ("the flagged labels, removed or unlabeled with VAT, are where the gain comes from",
     (("complex_all", "complex_removed"), ("complex_removed", "complex_unlabeled_vat")), None),
    ("one model per detector (the talk's Current, each) or one pooled model (the code's all)",
     (("talk_current", "simple_all"),), None),
    ("the residual network (and its ranking loss) for the talk's CNN", (("simple_all", "complex_all"),
                                                   ("complex_all", "complex_all_ech")), None),
    ("label noise costs the classifier (distance to true labels)",
     (("complex_unlabeled_vat", "complex_oracle"), ("simple_all", "simple_oracle")), None),
)  # fmt: skip


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


def _n(v) -> str:
    """A count with thousands separators, '?' where the JSON lacks it."""
    return "?" if v is None else f"{v:,}"


def _ci(e: dict) -> str:
    lo, hi = e["ci95"]
    return f"{_f(e['value'])} [{_f(lo)}, {_f(hi)}]"


def decomposition_markdown(study: dict) -> str:
    """Tables of the rows, the steps (with the A/A check) and the memorization at the end."""
    notes = study.get("decomposition_notes", {})
    counts = notes.get("test_counts", {})
    lines = [
        f"Test set: {_n(counts.get('n_real'))} real, {_n(counts.get('n_bogus'))} bogus "
        f"({notes.get('test', '?')}); training rows {_n(notes.get('n_train'))}, of which "
        f"{_n(notes.get('n_wrong_train'))} wrong labels and {_n(notes.get('n_flagged_train'))} "
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


def step_verdict(step: dict) -> str:
    """One step's result in words: a gain, a loss, or the largest effect the design rules out.

    A step passes when its 95 % interval excludes 1 (`rbcore.study.steps`); otherwise it says
    the ratio the design would have detected with probability 0.8 (`detectable_ratio`).
    """
    r, ci, det, passes = (
        step["ratio"],
        step["ratio_ci"],
        step["detectable_ratio"],
        step.get("passes"),
    )
    floored = " (an FPR of 0 floored at half a bogus)" if step.get("floored") else ""
    if passes is None or ci is None:
        return f"ratio {_f(r)}: no seed variance, no claim{floored}"
    where = f"[{_f(ci[0])}, {_f(ci[1])}]"
    if passes and r > 1:
        return f"fewer false positives: x{_f(r)} {where}{floored}"
    if passes:
        return f"more false positives: x{_f(1 / r)} {where}{floored}"
    return (f"no difference shown: ratio {_f(r)} {where}; the design would have seen "
            f"x{_f(det)} (power 0.8){floored}")  # fmt: skip


def claims_markdown(study: dict) -> str:
    """The paper's claims (`CLAIMS`) against the steps measured, the largest gain, the talk rows.

    Every sentence is computed from `study` (noise_study.json or the long run's JSON); a
    claim whose steps were not run says so.
    """
    steps = {(s["from"], s["to"]): s for s in study["steps"]}
    dec = study["decomposition"]
    lines = ["| the paper's claim, or what it changed | step | measured FPR ratio (from / to) | talk / paper | verdict |",
             "|---|---|---|---|---|"]  # fmt: skip
    not_run = []
    for claim, pairs, reported in CLAIMS:
        for a, b in pairs:
            s = steps.get((a, b))
            rep = "–" if reported is None else f"{_f(reported[0])} / {_f(reported[1])}"
            if s is None:
                not_run.append(f"`{a}` → `{b}`")
                continue
            lines.append(f"| {claim} | `{a}` → `{b}` | {_f(s['ratio'])} | {rep} "
                         f"| {step_verdict(s)} |")  # fmt: skip
    if not_run:
        lines.append(f"| (steps not run at these sizes) | {', '.join(not_run)} | – | – | – |")
    # The method's own steps: not the distance to the oracle, not the whole change at once.
    gains = [s for s in study["steps"] if s.get("passes") and s["ratio"] > 1
             and "oracle" not in s["to"] and (s["from"], s["to"]) != ("talk_current", "complex_unlabeled_vat")]  # fmt: skip
    lines.append("")
    if gains:
        best = max(gains, key=lambda s: s["ratio"])
        lines.append(f"The step that brings most of the gain: {best.get('what', '')} "
                     f"(`{best['from']}` → `{best['to']}`), {step_verdict(best)}.")  # fmt: skip
    else:
        dets = [s["detectable_ratio"] for s in study["steps"] if s.get("detectable_ratio")]
        rule = ""
        if dets:
            span = f"x{_f(min(dets))}" + (f" to x{_f(max(dets))}" if max(dets) > min(dets) else "")
            rule = (f" the design rules out effects larger than {span} "
                    "(the detectable ratio of each step, power 0.8)")  # fmt: skip
        lines.append(
            f"No step of the method passes the claims test;{rule or ' no step has a seed variance'}."
        )
    aa = study.get("aa_check")
    if aa:
        lines.append(f"The A/A check (`{aa['row']}` against itself at other seeds): "
                     f"{step_verdict(aa)} — it {'passes, so the test is too lenient' if aa.get('passes') else 'does not pass, as it must'}.")  # fmt: skip
    for row, talk, name in (
        ("talk_current", TALK_FPR["current"], "the talk's Current model"),
        ("complex_unlabeled_vat", TALK_FPR["vat"], "the talk's VAT model"),
    ):
        if row in dec:
            e = dec[row]["fpr_at_tpr90"]
            lo, hi = e["ci95"]
            inside = "inside" if lo <= talk <= hi else "outside"
            lines.append(f"`{row}`: FPR at TPR 0.9 {_ci(e)} (first seed); {name}: {_f(talk)}, "
                         f"{inside} the interval (measured, never tuned).")  # fmt: skip
    return "\n".join(lines)


def decomposition_report(study: dict, heading: str = "Against the paper's claims:") -> str:
    """The decomposition's tables, then `heading` and the claims (README blocks, the long run)."""
    return "\n".join([decomposition_markdown(study), "", heading, "", claims_markdown(study)])
