"""Tests of rbcore.plotting: the figures draw from the data the notebooks pass them."""

import numpy as np
import pytest
from toy import scored_candidates

from rbcore import evaluation as ev
from rbcore import metrics
from rbcore import plotting as P

# --- evaluation.py (notebook 04) ---------------------------------------------------------------


def test_evaluation_figures_draw():
    params, labels, logits = scored_candidates()
    L = {"Current model": logits, "VAT": logits * 1.5}
    bins = np.arange(15.0, 20.01, 1.0)
    figs = [
        P.output_distributions(L, labels),
        P.confusion_matrices({k: metrics.confusion_matrix(labels, v, 0.0) for k, v in L.items()}),
        P.roc_curves({k: metrics.roc_curve(labels, v)[:2] for k, v in L.items()}),
        P.pr_curves({k: metrics.precision_recall_curve(labels, v)[:2] for k, v in L.items()}),
        P.completeness_curves(
            {k: ev.completeness_vs(params, labels, v, "mag", bins)[0] for k, v in L.items()},
            xlabel="mag",
        ),
        P.fpr_by_category_plot({k: ev.fpr_by_category(params, labels, v) for k, v in L.items()}),
        P.reliability_diagram(
            {k: ev.reliability_table(labels, ev.sigmoid(v)) for k, v in L.items()}
        ),
    ]
    n_axes = [len(f.axes) for f in figs]
    assert n_axes[:4] == [2, 2, 2, 1] and n_axes[4] == 2 and n_axes[6] == 2
    # Confusion-matrix panels carry count and rate, as the talk shows them.
    texts = [t.get_text() for t in figs[1].axes[0].texts]
    tn = int(np.sum((labels == 0) & (logits < 0)))
    assert any(f"({tn:,})" in t for t in texts)
    with pytest.raises(ValueError, match="2x2"):
        P.confusion_matrices({"x": np.zeros((3, 3))})
    # Magnitudes bright to faint in every panel (shared x axis inverted exactly once).
    tab = ev.completeness_vs(params, labels, logits, "mag", bins)[0]
    fig = P.completeness_curves({"m": tab}, xlabel="mag", invert_x=True)
    assert all(ax.xaxis_inverted() for ax in fig.axes)


# --- study.py (notebook 07) --------------------------------------------------------------------


def test_study_figures_draw_every_model_and_rate(tmp_path):
    points = [
        {"noise_multiplier": m, "noise_rate_real": 0.01 * m, "noise_rate_bogus": 0.006 * m,
         "current": 0.01 * (1 + m), "two_stage": 0.01, "oracle": 0.008,
         "fpr_at_tpr90_ci95": {k: [0.005, 0.05] for k in ("current", "two_stage", "oracle")},
         "mislabel_precision": None if m == 0 else 0.3, "mislabel_recall": None if m == 0 else 0.6}
        for m in (4.0, 0.0, 1.0)
    ]  # fmt: skip
    fig = P.noise_sweep(points)
    left, right = fig.axes
    assert len(left.get_legend().get_texts()) == 3 and len(right.get_lines()) == 2
    np.testing.assert_allclose(right.get_lines()[1].get_ydata(), [np.nan, 0.6, 0.6])  # by rate
    entry = {"fpr_at_tpr90": {"value": 0.01, "ci95": [0.008, 0.012]},
             "fpr_at_tpr90_seeds": {"values": [0.01, 0.011]}}  # fmt: skip
    fig = P.ablation_fpr(
        {"current": entry, "oracle": {**entry, "fpr_at_tpr90_seeds": {"values": [0.01]}}}
    )
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["current", "oracle"]
    assert P.save_figure(fig, tmp_path, "07_ablation")[1].exists()
