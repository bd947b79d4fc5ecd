"""Figures of notebook 01 (data preparation): cutout triplets, category counts, magnitudes.

Cutout triplets are shown as the talk shows them: Ref | New | Sub columns, zscale, origin
lower, the score in the title. Data from rbcore.datasets / rbcore.simulation.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np

from rbcore.plotting.common import zscale

__all__ = [
    "CHANNEL_NAMES",
    "triplet_gallery",
    "category_counts",
    "real_magnitudes",
]


CHANNEL_NAMES = ("Ref", "New", "Sub")


def triplet_gallery(
    images: np.ndarray,
    titles: Sequence[str] | None = None,
    *,
    ncols_triplets: int = 1,
    panel_size: float = 1.3,
    suptitle: str | None = None,
) -> plt.Figure:
    """Cutout triplets as rows of Ref | New | Sub panels (zscale, origin lower).

    Args:
        images: float[N, H, W, 3] raw or normalized cutouts; NaN (masked) pixels are shown
            in the colormap's "bad" colour (red).
        titles: one string per triplet (e.g. "prediction: -2.19"), shown above its New panel.
        ncols_triplets: triplets side by side per figure row.
        panel_size: inches per panel.
        suptitle: figure title.

    Returns:
        The Figure.
    """
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(
            f"triplet_gallery expects images of shape [N, H, W, 3], got {images.shape}"
        )
    n = images.shape[0]
    if titles is not None and len(titles) != n:
        raise ValueError(f"got {len(titles)} titles for {n} triplets")
    nrows = max(1, int(np.ceil(n / ncols_triplets)))
    ncols = 3 * ncols_triplets
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(ncols * panel_size, nrows * panel_size * 1.12), squeeze=False
    )
    cmap = plt.get_cmap("gray").with_extremes(bad="red")
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_frame_on(False)
    for i in range(n):
        r, c0 = divmod(i, ncols_triplets)
        for ch in range(3):
            ax = axes[r, 3 * c0 + ch]
            ax.set_frame_on(True)
            img = images[i, :, :, ch]
            vmin, vmax = zscale(img)
            ax.imshow(np.ma.masked_invalid(img), origin="lower", cmap=cmap, vmin=vmin, vmax=vmax)
            if r == 0:
                ax.set_xlabel(CHANNEL_NAMES[ch], fontsize=8)
                ax.xaxis.set_label_position("top")
            if ch == 1 and titles is not None:
                ax.set_title(titles[i], fontsize=7, pad=10 if r == 0 else 2)
    if n == 0:
        axes[0, 0].text(
            0.5, 0.5, "no samples", ha="center", va="center", transform=axes[0, 0].transAxes
        )
    if suptitle:
        fig.suptitle(suptitle, fontsize=9)
    fig.tight_layout()
    return fig


def category_counts(train_params, test_params=None) -> plt.Figure:
    """Number of samples per simulated category, split by label (log scale).

    Args:
        train_params: training params with `category` and `label` columns.
        test_params: optional test params (same columns).

    Returns:
        The Figure (one panel per set).
    """
    sets = [("training set", train_params)] + (
        [("test set", test_params)] if test_params is not None else []
    )
    fig, axes = plt.subplots(1, len(sets), figsize=(5.2 * len(sets), 4.2), squeeze=False)
    for ax, (name, p) in zip(axes[0], sets, strict=True):
        tab = p.groupby(["category", "label"]).size().unstack(fill_value=0)
        tab = tab.reindex(columns=[0, 1], fill_value=0)
        y = np.arange(len(tab))
        ax.barh(y - 0.2, tab[0], height=0.4, color="tab:red", label="label bogus")
        ax.barh(y + 0.2, tab[1], height=0.4, color="tab:blue", label="label real")
        ax.set_yticks(y, tab.index, fontsize=7)
        ax.set_xscale("log")
        ax.set_xlabel("samples")
        ax.set_title(f"{name} ({len(p):,} samples)", fontsize=9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def real_magnitudes(train_params, test_params=None) -> plt.Figure:
    """Magnitude and S/N of the real samples: injections rand vs galx (and test supernovae).

    Args:
        train_params: training params with `object_type`, `mag`, `det_snr`, `noise_cause`.
        test_params: optional test params (real rows have label 1).

    Returns:
        The Figure: magnitude histograms | detection S/N against magnitude.
    """
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.8))
    groups = [
        (ot.split("_")[0], train_params[train_params["object_type"] == ot], c)
        for ot, c in (("rand_artificial_real", "tab:blue"), ("galx_artificial_real", "tab:orange"))
    ]
    if test_params is not None:
        groups.append(("test SNe", test_params[test_params["label"] == 1], "tab:green"))
    mags = np.concatenate([g["mag"].dropna().to_numpy() for _, g, _ in groups] or [np.zeros(1)])
    bins = np.linspace(np.floor(mags.min()), np.ceil(mags.max()), 30) if mags.size else 10
    for name, g, c in groups:
        a1.hist(
            g["mag"].dropna(),
            bins=bins,
            histtype="step",
            color=c,
            density=True,
            label=f"{name} ({len(g)})",
        )
        a2.scatter(g["mag"], np.clip(g["det_snr"], 0.1, None), s=3, alpha=0.4, color=c, label=name)
    a1.set_xlabel("magnitude")
    a1.set_ylabel("density")
    a1.legend(fontsize=7)
    a2.set_yscale("log")
    a2.axhline(5.0, color="k", lw=0.8, ls="--", label="detection threshold")
    a2.set_xlabel("magnitude")
    a2.set_ylabel("detection S/N in sub")
    a2.legend(fontsize=7, markerscale=3)
    fig.tight_layout()
    return fig
