"""Figures of notebook 03 (training): training curves and the eps/alpha sweep of VAT."""

from __future__ import annotations

import matplotlib
import matplotlib.pyplot as plt

__all__ = [
    "training_curves",
    "vat_sweep",
]


def training_curves(histories: dict, *, axes=None) -> plt.Figure:
    """Training loss terms, validation loss and validation AUC per epoch, one line per model.

    Args:
        histories: {model name: list of per-epoch dicts from `rbcore.train.fit`} (keys epoch,
            loss, ce, lds (VAT only), val_loss, val_auc).
        axes: optional sequence of three Axes.

    Returns:
        The Figure.
    """
    if axes is None:
        fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    else:
        fig = axes[0].figure
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (name, hist) in enumerate(histories.items()):
        col = colors[i % len(colors)]
        ep = [r["epoch"] for r in hist]
        axes[0].plot(ep, [r["ce"] for r in hist], "-o", ms=3, color=col, label=f"{name}: CE")
        if all("lds" in r for r in hist):
            axes[0].plot(ep, [r["lds"] for r in hist], "--s", ms=3, color=col, label=f"{name}: LDS")
        if all("val_loss" in r for r in hist):
            axes[1].plot(ep, [r["val_loss"] for r in hist], "-o", ms=3, color=col, label=name)
            axes[2].plot(ep, [r["val_auc"] for r in hist], "-o", ms=3, color=col, label=name)
    titles = ("training loss terms", "validation loss (BCE)", "validation AUC")
    for ax, title in zip(axes, titles, strict=True):
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=7)
    axes[0].set_yscale("log")
    fig.tight_layout()
    return fig


def vat_sweep(table, *, ax=None) -> plt.Figure:
    """Validation AUC of the eps/alpha sweep: AUC against eps, one line per alpha.

    Args:
        table: DataFrame with columns eps, alpha, val_auc (`rbcore.train.experiment.run_sweep`).
        ax: optional Axes.

    Returns:
        The Figure.
    """
    if ax is None:
        fig, ax = plt.subplots(figsize=(4.5, 3.4))
    else:
        fig = ax.figure
    for alpha, group in table.groupby("alpha"):
        g = group.sort_values("eps")
        ax.plot(g["eps"], g["val_auc"], "-o", ms=4, label=f"alpha = {alpha:g}")
    best = table.sort_values(["val_auc", "val_loss"], ascending=[False, True]).iloc[0]
    ax.plot(best["eps"], best["val_auc"], "*", ms=12, color="k", label="chosen")
    ax.set_xscale("log")
    ax.set_xlabel("eps (L2 norm of r_adv, normalized pixels)")
    ax.set_ylabel("validation AUC")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
