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
