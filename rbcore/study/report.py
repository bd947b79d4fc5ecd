"""noise_study.json (notebook 07): its schema, the claims test, and the README block.

Schema (issue 13; read by our checks):

    {"ablation": {row: {"auc": {"value", "ci95"}, "fpr_at_tpr90": {"value", "ci95"},
                        "fpr_at_tpr90_seeds": {"seeds", "values", "n_seeds", "mean", "min",
                                               "max", "range"},
                        "n_labeled": int, ...}},
     "sweep": [{"noise_multiplier", "noise_rate_real", "noise_rate_bogus", "current",
                "two_stage", "oracle", "mislabel_precision", "mislabel_recall", ...}],
     "comparisons": [...], ...}

A claim compares two rows only where their difference in FPR at TPR 0.9 exceeds both the
bootstrap interval (the two 95 % intervals do not overlap) and the training-seed spread (the
difference is larger than the range over seeds; `comparisons`).
"""

from __future__ import annotations

from pathlib import Path

from rbcore.files import read_json, write_json_atomic
from rbcore.study.decomp_report import validate_decomposition
from rbcore.study.rows import ROWS, SEED_ROWS, SPECS

__all__ = [
    "ABLATION_KEYS",
    "SWEEP_KEYS",
    "COMPARED_PAIRS",
    "compare_rows",
    "comparisons",
    "validate_study",
    "write_study",
    "read_study",
    "study_markdown",
]

ABLATION_KEYS = ("auc", "fpr_at_tpr90", "fpr_at_tpr90_seeds", "n_labeled")
SWEEP_KEYS = ("noise_multiplier", "noise_rate_real", "noise_rate_bogus", "current", "two_stage",
              "oracle", "mislabel_precision", "mislabel_recall")  # fmt: skip
#: The differences the study asks about: the method against the baseline and the bounds, and
#: each ingredient (flags, VAT, the flagger) on its own.
COMPARED_PAIRS = (
    ("current", "two_stage"),
    ("current", "oracle"),
    ("two_stage", "oracle"),
    ("current", "drop_flagged"),
    ("current", "vat_only"),
    ("vat_only", "two_stage"),
    ("two_stage", "cleanlab_vat"),
    ("two_stage", "oracle_flags_vat"),
    ("oracle_flags_vat", "oracle"),
)


def compare_rows(a: dict, b: dict, seed_range: float | None) -> dict:
    """Whether rows a and b differ in FPR at TPR 0.9 beyond the bootstrap and the seed spread.

    Args:
        a, b: ablation entries ({"fpr_at_tpr90": {"value", "ci95"}, ...}).
        seed_range: the training-seed range to beat (None: not measured, so no claim).

    Returns:
        {"difference": b - a, "ratio": a / b, "beyond_bootstrap": the 95 % intervals do not
        overlap, "beyond_seeds": |difference| > seed_range (None if unmeasured), "passes"}.
    """
    va, vb = a["fpr_at_tpr90"]["value"], b["fpr_at_tpr90"]["value"]
    (la, ha), (lb, hb) = a["fpr_at_tpr90"]["ci95"], b["fpr_at_tpr90"]["ci95"]
    beyond_boot = bool(ha < lb or hb < la)
    beyond_seeds = None if seed_range is None else bool(abs(vb - va) > seed_range)
    return {
        "difference": float(vb - va),
        "ratio": float(va / vb) if vb > 0 else None,
        "beyond_bootstrap": beyond_boot,
        "beyond_seeds": beyond_seeds,
        "seed_range": seed_range,
        "passes": bool(beyond_boot and beyond_seeds),
    }


def comparisons(ablation: dict, pairs=COMPARED_PAIRS) -> list[dict]:
    """`compare_rows` for each pair present; the seed range to beat is the larger of the two
    rows' own ranges, or, for a row trained at one seed, the largest range measured on the
    seed rows (training-seed noise taken as a property of the training, our assumption)."""
    measured = [
        ablation[r]["fpr_at_tpr90_seeds"]["range"]
        for r in SEED_ROWS
        if r in ablation and ablation[r]["fpr_at_tpr90_seeds"]["n_seeds"] > 1
    ]
    fallback = max(measured) if measured else None
    out = []
    for a, b in pairs:
        if a not in ablation or b not in ablation:
            continue
        ranges = [
            ablation[r]["fpr_at_tpr90_seeds"]["range"]
            if ablation[r]["fpr_at_tpr90_seeds"]["n_seeds"] > 1
            else fallback
            for r in (a, b)
        ]
        known = [r for r in ranges if r is not None]
        out.append({"a": a, "b": b, **compare_rows(ablation[a], ablation[b],
                                                   max(known) if known else None)})  # fmt: skip
    return out


def validate_study(study: dict, source: str = "noise_study") -> None:
    """Raise ValueError naming the first key of the schema that is missing or malformed."""
    ablation = study.get("ablation")
    if not isinstance(ablation, dict) or not ablation:
        raise ValueError(f"{source}: 'ablation' must be a non-empty dict of rows")
    for row, entry in ablation.items():
        for key in ABLATION_KEYS:
            if key not in entry:
                raise ValueError(f"{source}: ablation row '{row}' lacks '{key}'")
        for key in ("auc", "fpr_at_tpr90"):
            if not {"value", "ci95"} <= set(entry[key]):
                raise ValueError(f"{source}: 'ablation.{row}.{key}' needs value and ci95")
        if not {"values", "mean", "min", "max", "range"} <= set(entry["fpr_at_tpr90_seeds"]):
            raise ValueError(f"{source}: 'ablation.{row}.fpr_at_tpr90_seeds' malformed")
    if "decomposition" in study:  # issue 22 (notebook 07 and benchmarks/decomposition.py)
        validate_decomposition(study, source)
    sweep = study.get("sweep")
    if not isinstance(sweep, list):
        raise ValueError(f"{source}: 'sweep' must be a list of points")
    for i, point in enumerate(sweep):
        for key in SWEEP_KEYS:
            if key not in point:
                raise ValueError(f"{source}: sweep point {i} lacks '{key}'")


def write_study(path, study: dict) -> Path:
    """Validate and write noise_study.json atomically."""
    validate_study(study, str(path))
    return write_json_atomic(path, study, indent=2, trailing_newline=True)


def read_study(path) -> dict:
    """Read and validate a noise_study.json."""
    study = read_json(path, missing="no study file (run notebooks/07_label_noise_study.ipynb)")
    validate_study(study, str(path))
    return study


def _f(v) -> str:
    if v is None:
        return "–"
    return f"{v:.2e}" if v != 0 and abs(v) < 0.01 else f"{v:.4f}"


def _ci(e: dict) -> str:
    lo, hi = e["ci95"]
    return f"{_f(e['value'])} [{_f(lo)}, {_f(hi)}]"


def _ablation_lines(study: dict) -> list[str]:
    lines = [
        "| row | what it trains on | labels used | ε, α | AUC | FPR @ TPR = 0.9 | FPR over seeds: mean [min, max] (n) |",
        "|---|---|---|---|---|---|---|",
    ]  # fmt: skip
    for row in [r for r in ROWS if r in study["ablation"]]:
        e = study["ablation"][row]
        s = e["fpr_at_tpr90_seeds"]
        eps = f"{e['eps']:g}, {e['alpha']:g}" if e.get("eps") is not None else "–"
        lines.append(
            f"| `{row}` | {SPECS[row].description} | {e['n_labeled']:,} | {eps} | {_ci(e['auc'])} "
            f"| {_ci(e['fpr_at_tpr90'])} | {_f(s['mean'])} [{_f(s['min'])}, {_f(s['max'])}] "
            f"({s['n_seeds']}) |"
        )
    return lines


def _claims_lines(study: dict) -> list[str]:
    comps = study.get("comparisons") or comparisons(study["ablation"])
    yes = [f"`{c['a']}` vs `{c['b']}`" for c in comps if c["passes"]]
    lines = [
        "| pair (a vs b) | FPR difference b − a | a / b | beyond bootstrap | beyond seed spread |",
        "|---|---|---|---|---|",
    ]
    for c in comps:
        seeds = (
            "not measured" if c["beyond_seeds"] is None else ("yes" if c["beyond_seeds"] else "no")
        )
        ratio = "–" if c["ratio"] is None else f"{c['ratio']:.2f}"
        lines.append(f"| `{c['a']}` vs `{c['b']}` | {c['difference']:+.2e} | {ratio} "
                     f"| {'yes' if c['beyond_bootstrap'] else 'no'} | {seeds} |")  # fmt: skip
    lines += ["", "Differences that pass both tests (the only ones a claim may rest on): "
              + (", ".join(yes) if yes else "none") + "."]  # fmt: skip
    return lines


def _sweep_lines(study: dict) -> list[str]:
    lines = [
        "| noise × | wrong real labels | wrong bogus labels | current | two_stage | oracle "
        "| flag precision | flag recall |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for p in study["sweep"]:
        lines.append(
            f"| {p['noise_multiplier']:g} | {p['noise_rate_real']:.2%} | {p['noise_rate_bogus']:.2%} "
            f"| {_f(p['current'])} | {_f(p['two_stage'])} | {_f(p['oracle'])} "
            f"| {_f(p['mislabel_precision'])} | {_f(p['mislabel_recall'])} |"
        )
    return lines


def _decomposition_lines(study: dict) -> list[str]:
    """The decomposition of notebook 07 (issue 22): rows, steps, memorization, the claims."""
    from rbcore.study.decomp_report import decomposition_report

    return [
        "The decomposition (issue 22): where the paper's gain comes from, at this profile's "
        "sizes (rows not run here are in `benchmarks/decomposition.py`'s long run below); a "
        "step passes when its 95 % interval (paired test-set bootstrap and training seeds) "
        "excludes 1; figures [07_decomposition](figures/07_decomposition.png), "
        "[07_memorization](figures/07_memorization.png):",
        "",
        decomposition_report(study),
    ]


def study_markdown(study: dict, *, study_path: str, command: str) -> str:
    """The README's study block: the ablation, the claims test and the sweep, with commands."""
    counts = study.get("test_counts", {})
    lines = [
        f"Ablation on {study.get('ablation_note', '?')}, with notebook 03's validation split, "
        f"configuration and seed (profile `{study.get('profile', '?')}`, "
        f"test set {counts.get('n_real', '?'):,} real and {counts.get('n_bogus', '?'):,} bogus); "
        f"in brackets the stratified bootstrap 95 % interval ({study.get('n_boot', '?')} "
        f"resamples). eps and alpha: {study.get('eps_alpha_note', '')}",
        "",
        *_ablation_lines(study),
        "",
        "A difference between two rows counts only where it exceeds both the bootstrap "
        "intervals (they do not overlap) and the training-seed spread (the range over seeds; "
        "for a row trained at one seed, the largest range of the seed rows):",
        "",
        *_claims_lines(study),
    ]
    if "decomposition" in study:
        lines += ["", *_decomposition_lines(study)]
    if study["sweep"]:
        lines += [
            "",
            f"Noise-rate sweep (FPR at TPR 0.9; {study.get('sweep_note', '')}); figure "
            "[07_noise_sweep](figures/07_noise_sweep.png):",
            "",
            *_sweep_lines(study),
        ]
    lines += [
        "",
        f"Generated from `{study_path}` by `{command}`; the run itself is"
        " `python -m rbcore.notebooks --profile default` (notebook `07_label_noise_study`).",
    ]
    return "\n".join(lines)
